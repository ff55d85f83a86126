// Bytes allocated a request: a target started with alloc-probe.js loaded, warmed up, then sent a
// fixed number of DRUM predictions from this process (keep-alive, a fixed concurrency) to a
// node:http upstream also in this process; the probe's count before and after, over the count.
// Repeatable to about a percent here, where CPU time is not: the allocation-budget tests
// (test/alloc-budget.test.ts) and `npm run bench:alloc` use it.
// `npm run bench:alloc` prints drum-splitter's rows (defaults, recording 1%, a rollout running,
// --no-request-buffering, --split-hash md5-mod-100, three cohort rules none of the requests
// match) beside the bare node:http + undici proxy's, and the recording gate in the two forms this
// machine can resolve: bytes a request, and the share of CPU-profile samples in recording code
// (src/record/, anywhere on the stack) with recording at 1%.
// Env: BENCH_REQUESTS (20000), BENCH_WARMUP_REQUESTS (20000), BENCH_CONNECTIONS (32); flags: --json FILE.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Pool } from 'undici';
import { BUILT, DRUM_SPLITTER_CLI, REQUEST_BODY, REQUEST_PATH, UPSTREAM_BODY, drumSplitterArgs, envInt, machineLine, reportGate, signed } from './common.js';
import { freePort, waitReady } from './proc.js';
import type { AllocCounts } from './alloc-probe.js';
import { cpuSeconds } from './usage.js';

export const PROBE = `${BUILT}bench/alloc-probe.js`;
/** Recording's code, as the built CLI's profile names it. */
const RECORD_CODE = /\/dist\/src\/record\//;
const BARE_PROXY = `${BUILT}bench/bare-proxy.js`;

/** A target: the script node runs with the probe, and its arguments given its port and the upstream's URL. */
export interface AllocTarget {
  readonly name: string;
  readonly script: string;
  args(port: number, upstreamUrl: string): string[];
  /** Run once it answers, before the warm-up: e.g. start a rollout over its admin API. */
  prepare?(): Promise<void>;
  readonly nodeArgs?: readonly string[];
  /** More environment for the target (it gets only PATH, HOME and TMPDIR of this process's). */
  readonly env?: Readonly<Record<string, string>>;
}

export interface AllocOptions {
  readonly requests: number;
  readonly warmup: number;
  readonly connections: number;
  /** The node binary (default: this one). */
  readonly node?: string;
}

/** Over the measured requests: bytes allocated and promoted a request, collections, and their pauses (µs a request). */
export interface AllocResult {
  readonly bytesPerRequest: number;
  readonly promotedPerRequest: number;
  readonly collections: number;
  readonly scavenges: number;
  readonly pauseUsPerRequest: number;
  /** The target's CPU time (user + kernel, from /proc) over the measured requests, µs a request: noisy here, unlike the bytes. */
  readonly cpuUsPerRequest: number;
}

/** The near-free upstream: a fixed JSON answer, the request body read and dropped. */
async function upstream(): Promise<{ url: string; server: Server }> {
  const body = Buffer.from(UPSTREAM_BODY);
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body));
  });
  server.keepAliveTimeout = 75_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** Sends `n` predictions through `pool`, `connections` at a time; throws on any non-200. */
async function send(pool: Pool, n: number, connections: number): Promise<void> {
  let left = n;
  const worker = async (): Promise<void> => {
    while (left-- > 0) {
      const res = await pool.request({ method: 'POST', path: `/${REQUEST_PATH}`, headers: { 'content-type': 'text/csv' }, body: REQUEST_BODY });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`a prediction answered ${res.statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
}

/** Bytes the target allocates a request, as alloc-probe.js counts them. */
export async function allocationPerRequest(target: AllocTarget, opts: AllocOptions): Promise<AllocResult> {
  const dir = mkdtempSync(join(tmpdir(), 'drum-alloc-'));
  const counts = join(dir, 'counts.json');
  const up = await upstream();
  const port = await freePort();
  // An environment of its own: a test runner's NODE_OPTIONS and coverage hooks change what V8 allocates.
  const env = Object.fromEntries(['PATH', 'HOME', 'TMPDIR'].flatMap((k) => (process.env[k] === undefined ? [] : [[k, process.env[k]]])));
  const child = spawn(opts.node ?? process.execPath, [...(target.nodeArgs ?? []), '--import', pathToFileURL(PROBE).href, target.script, ...target.args(port, up.url)], {
    env: { ...env, ...target.env, DRUM_ALLOC_PROBE: counts, NODE_ENV: 'production' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: opts.connections });
  const read = async (): Promise<AllocCounts> => {
    rmSync(counts, { force: true });
    child.kill('SIGUSR2');
    for (let i = 0; i < 200; i++) {
      try {
        return JSON.parse(readFileSync(counts, 'utf8')) as AllocCounts;
      } catch {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    throw new Error(`${target.name}: the allocation probe did not answer`);
  };
  try {
    await waitReady(`http://127.0.0.1:${port}/`).catch((e: Error) => {
      throw new Error(`${target.name} did not start: ${e.message}\n${stderr}`);
    });
    await target.prepare?.();
    await send(pool, opts.warmup, opts.connections);
    const before = await read();
    const cpuBefore = cpuSeconds([child.pid!]);
    await send(pool, opts.requests, opts.connections);
    const cpuAfter = cpuSeconds([child.pid!]);
    const after = await read();
    const per = (k: keyof AllocCounts): number => (after[k] - before[k]) / opts.requests;
    return {
      bytesPerRequest: per('allocated'),
      promotedPerRequest: per('promoted'),
      collections: after.collections - before.collections,
      scavenges: after.scavenges - before.scavenges,
      pauseUsPerRequest: per('pauseUs'),
      cpuUsPerRequest: (1e6 * (cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system)) / opts.requests,
    };
  } finally {
    await pool.close();
    // SIGTERM, so a recording is written out; SIGKILL if that takes long.
    const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit');
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(kill);
    up.server.closeAllConnections();
    up.server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** drum-splitter's `serve` as a user runs it (5% to the canary), with these extra flags. */
export function serveTarget(name: string, extra: () => string[] = () => []): AllocTarget {
  return { name, script: DRUM_SPLITTER_CLI, args: (port, up) => [...drumSplitterArgs(port, up), ...extra()] };
}

/**
 * drum-splitter with an in-proxy rollout running (the seed's plan, first step 1%): every exchange
 * also enters the rollout's window. Forced: the start lowers the canary from the bench's 5%.
 */
export async function rolloutTarget(name: string): Promise<AllocTarget> {
  const admin = await freePort();
  return {
    name,
    script: DRUM_SPLITTER_CLI,
    args: (port, up) => [...drumSplitterArgs(port, up), '--admin', `127.0.0.1:${admin}`],
    async prepare() {
      const res = await fetch(`http://127.0.0.1:${admin}/rollout/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"reason":"bench","force":true}' });
      if (!res.ok) throw new Error(`POST /rollout/start: ${res.status} ${await res.text()}`);
    },
  };
}

/** A V8 CPU profile (.cpuprofile), as much of it as cpuShare reads. */
export interface CpuProfile {
  readonly nodes: readonly { id: number; callFrame: { functionName: string; url: string }; children?: readonly number[] }[];
  readonly samples: readonly number[];
}

/** The share of the profile's busy samples (all but "(idle)") whose stack has a frame from a script matching `code`. */
export function cpuShare(profile: CpuProfile, code: RegExp): { share: number; samples: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const within = new Map<number, boolean>();
  const mark = (id: number, inside: boolean): void => {
    const node = byId.get(id)!;
    const here = inside || code.test(node.callFrame.url);
    within.set(id, here);
    for (const child of node.children ?? []) mark(child, here);
  };
  mark(profile.nodes[0]!.id, false);
  let busy = 0;
  let hits = 0;
  for (const id of profile.samples) {
    if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
    busy++;
    if (within.get(id) === true) hits++;
  }
  return { share: busy === 0 ? 0 : hits / busy, samples: busy };
}

/** Runs `target` as allocationPerRequest does, with V8's CPU profiler on; its profile over the whole run. */
async function profiled(target: AllocTarget, opts: AllocOptions): Promise<CpuProfile> {
  const dir = mkdtempSync(join(tmpdir(), 'drum-prof-'));
  try {
    await allocationPerRequest({ ...target, nodeArgs: [...(target.nodeArgs ?? []), '--cpu-prof', '--cpu-prof-dir', dir] }, opts);
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) throw new Error(`${target.name}: no CPU profile written`);
    return JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const bareTarget: AllocTarget = { name: 'bare node:http + undici proxy', script: BARE_PROXY, args: (port, up) => [String(port), up] };

async function main(): Promise<void> {
  const opts: AllocOptions = {
    requests: envInt('BENCH_REQUESTS', 20_000),
    warmup: envInt('BENCH_WARMUP_REQUESTS', 20_000),
    connections: envInt('BENCH_CONNECTIONS', 32),
  };
  const json = process.argv[2] === '--json' ? process.argv[3] : undefined;
  const recordDir = mkdtempSync(join(tmpdir(), 'drum-alloc-rec-'));
  const routesFile = join(recordDir, 'routes.yaml');
  writeFileSync(routesFile, [
    'routes:',
    '  - { name: beta, match: { header: { x-beta: "1" } }, upstream: fastapi }',
    '  - { name: qa, match: { cookie: { qa: { regex: "^run-" } } }, upstream: fastapi }',
    '  - { name: v2, match: { path: /v2/, method: GET }, upstream: flask }',
    '',
  ].join('\n'));
  const targets = [
    bareTarget,
    serveTarget('drum-splitter'),
    serveTarget('drum-splitter recording 1%', () => ['--record', join(recordDir, 'r.jsonl'), '--record-sample', '0.01']),
    await rolloutTarget('drum-splitter rollout running'),
    serveTarget('drum-splitter --no-request-buffering', () => ['--no-request-buffering']),
    // The seed's Option B: an MD5 of the key a request instead of murmur2.
    serveTarget('drum-splitter --split-hash md5-mod-100', () => ['--split-hash', 'md5-mod-100']),
    // Cohort rules none of the predictions match: every rule tested on every request, then the split.
    serveTarget('drum-splitter 3 cohort rules', () => ['--config', routesFile]),
  ];
  const rows: (AllocResult & { name: string })[] = [];
  for (const t of targets) {
    process.stderr.write(`bench:alloc: ${t.name} … `);
    const r = await allocationPerRequest(t, opts);
    process.stderr.write(`${r.bytesPerRequest.toFixed(0)} B/req\n`);
    rows.push({ name: t.name, ...r });
  }
  process.stderr.write('bench:alloc: CPU profile of drum-splitter recording 1% … ');
  const profile = cpuShare(await profiled(targets[2]!, opts), RECORD_CODE);
  process.stderr.write(`${(100 * profile.share).toFixed(2)}% of ${profile.samples} samples\n`);
  rmSync(recordDir, { recursive: true, force: true });
  const bare = rows[0]!.bytesPerRequest;
  const off = rows[1]!.bytesPerRequest;
  const recording = rows[2]!.bytesPerRequest / off - 1;
  const command = `BENCH_REQUESTS=${opts.requests} BENCH_WARMUP_REQUESTS=${opts.warmup} BENCH_CONNECTIONS=${opts.connections} npm run bench:alloc`;
  const lines = [
    `command: \`${command}\``,
    machineLine(null),
    '',
    '| target | bytes allocated a request | vs bare | vs drum-splitter | promoted a request | collections | of them scavenges | collection pauses µs a request |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.name} | ${r.bytesPerRequest.toFixed(0)} | ${(r.bytesPerRequest / bare).toFixed(2)}× | ${signed(100 * (r.bytesPerRequest / off - 1), 1)}% | ${r.promotedPerRequest.toFixed(0)} | ${r.collections} | ${r.scavenges} | ${r.pauseUsPerRequest.toFixed(2)} |`),
    '',
    `CPU profile (\`node --cpu-prof\`) of drum-splitter recording 1% over the same run, start-up included: ${(100 * profile.share).toFixed(2)}% of ${profile.samples} busy samples have src/record/ code on their stack.`,
    '',
    reportGate({
      name: 'recording 1%: bytes a request over recording off, and its share of the CPU profile',
      bar: '≤ +3% bytes and ≤ 3% of samples',
      figure: `${signed(100 * recording, 1)}% bytes (${rows[2]!.bytesPerRequest.toFixed(0)} vs ${off.toFixed(0)}), ${(100 * profile.share).toFixed(2)}% of samples`,
      met: recording <= 0.03 && profile.share <= 0.03,
      command,
    }),
    '',
  ];
  process.stdout.write(lines.join('\n'));
  if (json !== undefined) writeFileSync(json, JSON.stringify({ date: new Date().toISOString(), node: process.version, opts, rows }, null, 2));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`bench:alloc: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
