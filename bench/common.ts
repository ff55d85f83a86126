// What `npm run bench:throughput` (run.ts) and `npm run soak` (soak.ts) set up the same way, so the two
// measure the same thing: the request sent, the upstream, drum-splitter's command line, the
// machine line. (run.ts runs its bench on import, so soak.ts cannot import from it.)
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { arch, availableParallelism, cpus, release, type as osType } from 'node:os';
import { fileURLToPath } from 'node:url';
import { jsonServerHttp, nginxVersion, startNginx } from './nginx.js';
import { freePort, startChild, waitReady, type Child } from './proc.js';

export const UPSTREAM_BODY = '{"predictions":[0.5]}';
/** What each request sends: a prediction, the route drum-splitter records by default. */
export const REQUEST_PATH = 'predict/';
export const REQUEST_BODY = 'x1,x2,x3,x4\n0.25,1.5,3,-2\n';
/** The repository (with a trailing slash): the nearest folder above this module holding a package.json — from dist/bench/ when built, from bench/ when a test imports the source. */
export const ROOT = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return `${dir}/`;
})();
/** The built files the benches start (`npm run build` makes them). */
export const BUILT = `${ROOT}dist/`;
export const DRUM_SPLITTER_CLI = `${BUILT}src/cli/main.js`;

export interface Running { url: string; /** The server's process, whose CPU and memory the bench reads. */ pid: number | undefined; stop(): Promise<void> }

/** The middle value (the mean of the middle two for an even count). */
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** `n` with its sign, to `d` decimals: +1.2, -3.0. */
export const signed = (n: number, d: number): string => `${n >= 0 ? '+' : ''}${n.toFixed(d)}`;

/** Start a node script (with node's own `nodeArgs`; by `bin`, default this node) as a child and wait for it to answer on `port`. */
export async function startNode(
  logDir: string, name: string, script: string, args: string[], port: number, nodeArgs: readonly string[] = [], bin = process.execPath,
): Promise<Running & { child: Child }> {
  const child = startChild(bin, [...nodeArgs, script, ...args], { logDir, name, cwd: ROOT, env: { ...process.env, NODE_ENV: 'production' } });
  const url = `http://127.0.0.1:${port}/`;
  try {
    await waitReady(url, child);
  } catch (e) {
    await child.stop();
    throw e;
  }
  return { url, child, pid: child.proc.pid, stop: () => child.stop() };
}

/** The near-free model server: nginx when installed, else a node:http stand-in. */
export async function startUpstream(nginx: string | null, logDir: string): Promise<Running & { desc: string }> {
  const port = await freePort();
  if (nginx) {
    const n = await startNginx(nginx, 'upstream', port, jsonServerHttp(port, UPSTREAM_BODY));
    return { ...n, desc: `nginx ${nginxVersion(nginx) ?? 'unknown'}, 1 worker, \`return 200 '${UPSTREAM_BODY}'\`` };
  }
  const s = await startNode(logDir, 'upstream', fileURLToPath(new URL('./upstream.js', import.meta.url)), [String(port)], port);
  return { ...s, desc: `node:http fallback (nginx absent), fixed \`${UPSTREAM_BODY}\`` };
}

/** drum-splitter's `serve` arguments as a user runs it (defaults), 5% to the canary. */
export function drumSplitterArgs(port: number, upstreamUrl: string): string[] {
  const up = upstreamUrl.replace(/\/$/, '');
  return ['serve', '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0',
    '--upstream', `flask=${up}`, '--upstream', `fastapi=${up}`, '--weight', 'fastapi=5'];
}

export function envInt(name: string, def: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${v}"`);
  return n;
}

/** Lines in a recording (0 when none was written). */
export function countLines(file: string): number {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').length - 1 : 0;
}

export const cpuModel = (): string => cpus()[0]?.model.trim() ?? 'unknown CPU';

export function machineLine(nginxVersion: string | null): string {
  return `node ${process.version} · nginx ${nginxVersion ?? 'absent'} · nproc ${availableParallelism()} · ${osType()} ${release()} ${arch()} · ${cpuModel()}`;
}

/**
 * Measures every target once a round, each round starting one target later: on a shared
 * machine the order alone moves numbers by several percent, so no target should always run
 * right after the same one. Each target's measurements, by name, in round order.
 */
export async function rotatedRounds<T extends { name: string }, R>(targets: readonly T[], rounds: number, measure: (t: T) => Promise<R>): Promise<Map<string, R[]>> {
  const runs = new Map<string, R[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < targets.length; i++) {
      const t = targets[(i + round) % targets.length]!;
      runs.get(t.name)!.push(await measure(t));
    }
  }
  return runs;
}

/**
 * One of the performance gates (docs/performance.md, Targets): its bar, what was measured, and
 * whether it holds — true, false, or a word (e.g. "not shown") where the run cannot tell.
 */
export interface Gate {
  readonly name: string;
  readonly bar: string;
  readonly figure: string;
  readonly met: boolean | string;
  /** The command that measured it. */
  readonly command: string;
}

/** A gate's line for a bench's output; with BENCH_GATES set (`npm run bench` sets it) it is also appended there, for the summary. */
export function reportGate(gate: Gate): string {
  const file = process.env.BENCH_GATES;
  if (file !== undefined && file !== '') appendFileSync(file, `${JSON.stringify({ ...gate, date: new Date().toISOString(), node: process.version })}\n`);
  const verdict = gate.met === true ? 'PASS' : gate.met === false ? 'FAIL' : gate.met.toUpperCase();
  return `gate — ${gate.name}: ${gate.figure} (bar: ${gate.bar}): ${verdict}`;
}
