import type { Logger } from 'pino';
import type { Test } from 'tap';
import { startApp, type AppSettings, type RunningApp } from '../../src/app.js';
import type { RawSettings } from '../../src/config/config.js';
import { silentLog } from './net.js';

export interface TestApp extends RunningApp {
  /** http://127.0.0.1:PORT of the admin API. */
  readonly adminUrl: string;
  /** http://127.0.0.1:PORT of the traffic listener. */
  readonly traffic: string;
}

/**
 * The whole app (startApp) on ephemeral loopback ports with `flags`, silent unless given a log,
 * closed when the test ends; close() may be called before, and runs once.
 */
export async function startTestApp(t: Test, flags: RawSettings, opts: { env?: NodeJS.ProcessEnv; log?: Logger; file?: AppSettings['file'] } = {}): Promise<TestApp> {
  const running = await startApp(
    { flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', ...flags }, ...(opts.file === undefined ? {} : { file: opts.file }) },
    { env: opts.env ?? {}, log: opts.log ?? silentLog },
  );
  const close = running.close;
  let closing: Promise<number> | undefined;
  const app: TestApp = Object.assign(running, {
    adminUrl: `http://127.0.0.1:${running.adminAddress.port}`,
    traffic: `http://127.0.0.1:${running.proxy.address.port}`,
    close: () => (closing ??= close()),
  });
  t.teardown(() => app.close());
  return app;
}
