/** Shutdown is not held by admin clients: a console tab or Prometheus keeps connections open, some never used. */
import { connect } from 'node:net';
import t from 'tap';
import { startApp } from '../src/app.js';
import { silentLog, startUpstream } from './helpers/net.js';

t.test('close() with an idle keep-alive connection and an unused one on the admin listener: prompt', async (t) => {
  const flask = await startUpstream('flask');
  t.teardown(() => flask.close());
  const app = await startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: [`flask=${flask.url}`] } }, { env: {}, log: silentLog });
  const { port } = app.adminAddress;
  const unused = connect(port, '127.0.0.1');
  const kept = connect(port, '127.0.0.1', () => kept.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n'));
  await new Promise<void>((r) => kept.once('data', () => r()));
  const closed = new Promise<void>((r) => unused.once('close', () => r()));
  const started = Date.now();
  await app.close();
  t.ok(Date.now() - started < 2000, `closed in ${Date.now() - started} ms (it took minutes while those connections held it)`);
  await closed;
  kept.destroy();
});
