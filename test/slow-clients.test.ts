/**
 * Issue 11, point 1: slow clients must not reach a gunicorn of sync workers. Each sync worker
 * serves one connection at a time and blocks on it, so ten 1-byte/s uploads, or ten clients
 * that never read a large response, would hold all of `gunicorn -w 2` and starve everyone else.
 * nginx protects gunicorn by reading the whole request body before it connects upstream, and by
 * taking the whole response off the worker whatever the client reads. Through the real CLI, in
 * front of Debian's gunicorn running test/fixtures/wsgi_standin.py, normal requests must keep
 * their latency while the attack runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { freePort, send, spawnBuiltCli, waitForLine } from './helpers/net.js';
import { sleep, until } from './helpers/wait.js';

/** Debian's gunicorn (run by /usr/bin/python3) first, as CI installs it; else one on PATH. */
function findGunicorn(): string | undefined {
  const candidates = ['/usr/bin/gunicorn', ...(process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'gunicorn'))];
  return candidates.find((p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const gunicorn = findGunicorn();
const FIXTURES = fileURLToPath(new URL('fixtures/', import.meta.url));
const N = 100;
const ATTACKERS = 10;
const UPLOAD_BYTES = 102_400;
const CSV = 'a,b,c\n1,2,3\n4,5,6\n';
/**
 * Phase B gives up sending after this long. With the proxy at fault every request waits out
 * the 5 s --timeout, and 100 of them would take minutes. It also stays under gunicorn's 30 s
 * worker timeout, after which its arbiter would kill the held workers and free them.
 */
const PHASE_DEADLINE_MS = 20_000;

/** Resolves when `child` has exited, killing it with SIGKILL if it takes over `graceMs`. */
function stop(child: ChildProcess, signal: NodeJS.Signals, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

async function waitForPing(url: string, stderr: () => string): Promise<void> {
  // Refused until it listens.
  const answers = async (): Promise<boolean> => (await send(`${url}/ping`).catch(() => undefined))?.status === 200;
  await until(answers, 15_000, 100).catch(() => {
    throw new Error(`gunicorn did not answer /ping in 15 s; stderr: ${stderr()}`);
  });
}

interface Phase {
  /** Latency in ms of each request answered 200. */
  latencies: number[];
  /** How many requests ended each way: a status, an error code, or "not sent" past the deadline. */
  outcomes: Record<string, number>;
}

/**
 * `n` normal predictions, one at a time: a stall of this VM then delays one sample, where with
 * several in flight it would delay them all and fill the tail.
 */
async function normalTraffic(url: string, n: number, deadlineMs = Infinity): Promise<Phase> {
  const phase: Phase = { latencies: [], outcomes: {} };
  const count = (k: string): void => void (phase.outcomes[k] = (phase.outcomes[k] ?? 0) + 1);
  const until = Date.now() + deadlineMs;
  for (let i = 0; i < n; i++) {
    if (Date.now() > until) {
      count('not sent');
      continue;
    }
    const start = performance.now();
    try {
      const reply = await send(`${url}/predict/`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: CSV });
      count(String(reply.status));
      if (reply.status === 200) phase.latencies.push(performance.now() - start);
    } catch (err) {
      count((err as NodeJS.ErrnoException).code ?? 'error');
    }
  }
  return phase;
}

function p99(latencies: number[]): number {
  const sorted = [...latencies].sort((a, b) => a - b);
  return sorted[Math.ceil(sorted.length * 0.99) - 1] ?? NaN;
}

t.test(
  'ten 1-byte/s uploads and ten slow readers do not starve gunicorn -w 2 behind the proxy',
  { skip: gunicorn ? false : 'gunicorn not found; install it (apt-get install gunicorn) to run this (CI does)' },
  async (t) => {
    const [gport, port, admin] = await Promise.all([freePort(), freePort(), freePort()]);
    const upstream = spawn(gunicorn!, ['-w', '2', '-k', 'sync', '--bind', `127.0.0.1:${gport}`, '--chdir', FIXTURES, 'wsgi_standin:app'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let upstreamLog = '';
    upstream.stderr!.on('data', (d) => (upstreamLog = (upstreamLog + d).slice(-4000)));
    // SIGQUIT is gunicorn's quick shutdown; SIGTERM would wait up to 30 s for the held workers.
    t.teardown(() => stop(upstream, 'SIGQUIT'));
    await waitForPing(`http://127.0.0.1:${gport}`, () => upstreamLog);

    const proxy = spawnBuiltCli([
      'serve', '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`,
      '--upstream', `flask=http://127.0.0.1:${gport}`, '--timeout', '5s',
    ]);
    t.teardown(() => stop(proxy, 'SIGKILL'));
    let proxyLog = '';
    proxy.stderr!.on('data', (d) => (proxyLog = (proxyLog + d).slice(-4000)));
    await waitForLine(proxy, /"msg":"listening"/);
    const url = `http://127.0.0.1:${port}`;

    await normalTraffic(url, 20); // the first requests pay for the JIT warming up
    const calm = await normalTraffic(url, N);
    t.same(calm.outcomes, { 200: N }, 'without the attack every request gets 200');

    const sockets: Socket[] = [];
    const open = (head: string): Socket => {
      const s = connect({ port, host: '127.0.0.1' });
      s.on('error', () => {}); // the proxy may cut an attacker off; that is its right
      s.write(head);
      sockets.push(s);
      return s;
    };
    const uploads = Array.from({ length: ATTACKERS }, () =>
      open(`POST /predict/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\nContent-Length: ${UPLOAD_BYTES}\r\n\r\n`),
    );
    for (let i = 0; i < ATTACKERS; i++) open('GET /big/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n').pause();
    const dribble = setInterval(() => {
      for (const s of uploads) if (s.writable) s.write('1');
    }, 1000);
    t.teardown(() => {
      clearInterval(dribble);
      for (const s of sockets) s.destroy();
    });
    await sleep(1500); // the attackers' connections in place

    const attacked = await normalTraffic(url, N, PHASE_DEADLINE_MS);
    t.same(attacked.outcomes, { 200: N }, 'under the attack every request still gets 200', { proxyLog, exitCode: proxy.exitCode });
    // p99 of 100 samples is the second slowest, and this 2-core VM, running other test files
    // alongside, stalls for tens of ms now and then: 50 ms of slack on top of the 2× bar keeps
    // two such stalls from failing the test, far below the 5 s a held worker costs.
    const bar = 2 * p99(calm.latencies) + 50;
    const p99Attacked = p99(attacked.latencies);
    t.ok(
      p99Attacked <= bar,
      `p99 ${p99Attacked.toFixed(1)} ms under attack, bar ${bar.toFixed(1)} ms (p99 without: ${p99(calm.latencies).toFixed(1)} ms)`,
    );
  },
);
