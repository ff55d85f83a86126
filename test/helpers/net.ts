import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, type IncomingMessage, type RequestOptions, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createSubscriberErrors, type SubscriberDeps } from '../../src/common/subscribers.js';
import { Agent, request as undiciRequest } from 'undici';
import { buildConfig, type RawSettings } from '../../src/config/config.js';
import { startProxy, type RunningProxy } from '../../src/proxy/listener.js';

/** A real upstream on 127.0.0.1 with a handler of the test's choosing. */
export interface TestUpstream {
  readonly server: Server;
  readonly url: string;
  /** Requests seen, with their raw headers and full body bytes. */
  readonly seen: { method: string; url: string; rawHeaders: string[]; headers: IncomingMessage['headers']; body: Buffer }[];
  close(): Promise<void>;
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** Echo: 200 with JSON of what arrived, or the handler's answer. Reads the whole body first. */
export async function startUpstream(name: string, handler?: UpstreamHandler, opts: { readBody?: boolean } = {}): Promise<TestUpstream> {
  const seen: TestUpstream['seen'] = [];
  const server = createServer((req, res) => {
    if (opts.readBody === false) {
      seen.push({ method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, headers: req.headers, body: Buffer.alloc(0) });
      handler!(req, res, Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, headers: req.headers, body });
      if (handler) return handler(req, res, body);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ upstream: name, bytes: body.length }));
    });
  });
  // Node 22+ answers 431 past its default 1,000 headers; the proxy lets 1,000 through and adds its
  // X-Forwarded-*, and the tests want to see what arrives.
  server.maxHeadersCount = 0;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

export const silentLog = pino({ level: 'silent' });

/** For a subscriber list a test makes on its own: silent, counting into a registry no one reads. */
export const quietLists: SubscriberDeps = { log: silentLog, errors: createSubscriberErrors(new Registry()) };

/** Starts the proxy in-process on an ephemeral loopback port. */
export async function startTestProxy(settings: RawSettings): Promise<RunningProxy & { url: string }> {
  const proxy = await startProxy(buildConfig({ listen: '127.0.0.1:0', ...settings }), silentLog);
  return Object.assign(proxy, { url: `http://127.0.0.1:${proxy.address.port}` });
}

export interface Reply {
  status: number;
  statusMessage: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: Buffer;
}

/** One request with node:http (which, unlike undici, honours localAddress), body collected. */
export function send(url: string, opts: RequestOptions & { body?: Buffer | string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const { body, ...options } = opts;
    const req = request(url, { agent: false, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, statusMessage: res.statusMessage!, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Writes raw bytes on a fresh TCP connection and resolves with everything read until the
 * server closes it (send "Connection: close"). It does not half-close: like nginx, the
 * proxy takes an early EOF from the client as the client going away.
 */
export function rawExchange(port: number, bytes: Buffer | string, localAddress?: string, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host, ...(localAddress ? { localAddress } : {}) });
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.write(bytes);
  });
}

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/**
 * Runs the real CLI from source, under tap's TypeScript loader so coverage counts it; without
 * tap's mock loader, which the CLI never uses and which costs a fifth of each start.
 */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const execArgv = process.execArgv.filter((a) => !a.includes('/@tapjs/mock/'));
  return spawn(process.execPath, [...execArgv, CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

const BUILT_CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

/**
 * Runs the compiled CLI, as a user does (`npm test` builds it first). For measurements of
 * the process itself, where tap's TypeScript loader would distort memory.
 */
export function spawnBuiltCli(args: string[]): ChildProcess {
  return spawn(process.execPath, [BUILT_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion; given `timeoutMs`, kills it after that long (code null), so it cannot hang the test. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs?: number): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawnCli(args, env);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Resolves once the child prints a line matching `pattern` on stdout. */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let errors = '';
    child.stderr?.on('data', (d) => (errors += d));
    const timer = setTimeout(
      () => reject(new Error(`no line matching ${pattern} in ${timeoutMs} ms; stdout: ${buffered} stderr: ${errors}`)),
      timeoutMs,
    );
    child.stdout!.on('data', (d) => {
      buffered += d;
      const line = buffered.split('\n').find((l) => pattern.test(l));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(line);
      }
    });
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * At most `n` jobs at once. Each CLI process costs about a second of CPU to start; more
 * than a few together only thrash this 2-core machine and slow them all.
 */
export function limiter(n: number): <T>(job: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (job) => {
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await job();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/** An upstream answering after `ms`, with a 500 for every `errorEvery`-th request. */
export const behaving = (ms: number, errorEvery = 0): UpstreamHandler => {
  let n = 0;
  return (_req, res) => {
    n++;
    setTimeout(() => {
      res.statusCode = errorEvery > 0 && n % errorEvery === 0 ? 500 : 200;
      res.setHeader('content-type', 'application/json');
      res.end('{"predictions":[1]}');
    }, ms);
  };
};

/**
 * Predictions in a steady loop until stop(): `clients` loops, the i-th request to `url(i)` (many
 * paths or queries, so every weight sends its share to each upstream), paced by `pauseMs` so the
 * tests beside keep their CPU. A failed request (an app or replica closing under us) is skipped.
 */
export function steadyTraffic(url: (i: number) => string, opts: { clients?: number; pauseMs?: number; headers?: Record<string, string> } = {}): { stop(): Promise<void> } {
  const { clients = 4, pauseMs = 10, headers } = opts;
  const agent = new Agent({ connections: 2 * clients });
  let running = true;
  const loop = async (c: number): Promise<void> => {
    for (let i = c; running; i += clients) {
      try {
        const res = await undiciRequest(url(i), { method: 'POST', body: 'a\n1\n', ...(headers === undefined ? {} : { headers }), dispatcher: agent });
        await res.body.dump();
      } catch {
        // the app closing under us
      }
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  };
  const loops = Array.from({ length: clients }, (_, c) => loop(c));
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      await agent.close();
    },
  };
}
