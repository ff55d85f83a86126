// `npm run bench:memory` (not CI): what drum-splitter holds in memory, and what V8's heap settings
// trade between memory and CPU. Three tables:
//   1. at rest, an empty Node, then Node importing each runtime dependency alone: the difference
//      is what that dependency costs a process that loads it (an upper bound for what it adds to
//      drum-splitter, where V8's heap and its compilers' work are there anyway: all of them
//      together cost less than their sum);
//   2. drum-splitter at rest: `serve` (the bench's two upstreams), with a --config file, and the
//      processes of --workers 2 (the primary runs the admin API, a worker only the proxy);
//   3. under the load of `npm run bench:throughput` (wrk, POST /predict/), drum-splitter and the
//      bare node:http + undici proxy under each heap setting (HEAP_VARIANTS): req/s, CPU a request,
//      p99, RSS sampled every 250 ms — steady is the median once the first third of the run is
//      over (the young generation and the pools have grown by then), peak the kernel's
//      high-water mark (VmHWM) — and the memory gate: drum-splitter's steady RSS against the bare
//      proxy's under serve's settings.
// RSS is the kernel's VmRSS, read SETTLE_MS after the process is ready (start-up garbage and lazy
// compilation settle); "of it anonymous" (RssAnon) is the heap and other private memory, the rest
// mostly the node binary's own code pages, mapped from its file.
// Markdown to stdout, progress to stderr.
// Env: BENCH_DURATION (30), BENCH_WARMUP (2), BENCH_CONNECTIONS (32), BENCH_ROUNDS (1: each load
// target once, a fresh process; more: a round each, in a rotated order), BENCH_HEAPS (the heap
// settings to run, by name; default all), BENCH_SERVE_FLAGS (more flags for drum-splitter's rows),
// NGINX_BIN. Flag: --only deps,serve,load (which tables).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DRUM_SPLITTER_CLI, REQUEST_BODY, REQUEST_PATH, ROOT, drumSplitterArgs, envInt, machineLine, median, reportGate, rotatedRounds, startNode, startUpstream, type Running,
} from './common.js';
import { findNginx, nginxVersion } from './nginx.js';
import { freePort, installCleanup, makeTempDir, track } from './proc.js';
import { fileURLToPath } from 'node:url';
import { SERVE_HEAP_FLAGS } from '../src/heap.js';
import { meter, processTree, statusMb } from './usage.js';
import { errorSummary, postScript, runWrk, wrkArgs, wrkAvailable, type WrkOptions } from './wrk.js';

/** From ready to the reading: long enough for start-up's garbage to be collected and the timers to have run once. */
const SETTLE_MS = 1000;
const SAMPLE_MS = 250;
const BARE_PROXY = fileURLToPath(new URL('./bare-proxy.js', import.meta.url));
/** At-rest readings vary by a megabyte or so; each row is the median of this many processes. */
const REST_RUNS = 3;
/** package.json's runtime dependencies, but cli-progress (replay's progress bar only). */
const DEPENDENCIES = ['fastify', 'undici', 'prom-client', 'pino', 'yaml', 'sonic-boom', 'murmurhash'];
const PARTS = ['deps', 'serve', 'load'];
const BARE = 'bare node:http + undici proxy';
const SERVES = "serve's settings";
/** The gate: drum-splitter's steady RSS under load at most this times the bare proxy's, same load and heap settings. */
const RSS_GATE = 1.25;
/**
 * The heap settings measured under load, as node flags given to both proxies. The first is V8's
 * defaults (flags that make src/heap.ts leave V8 as it is, each naming its default); for "serve's
 * settings" drum-splitter gets no flag (src/heap.ts chooses) and the bare proxy the same settings
 * as flags.
 */
const HEAP_VARIANTS: readonly { name: string; node: readonly string[]; bareNode?: readonly string[]; note?: string }[] = [
  { name: 'V8 defaults', node: ['--allocation-site-pretenuring', '--heap-growing-percent=0', '--max-semi-space-size=0', '--wasm-tier-up', '--wasm-dynamic-tiering'], note: 'each names its default' },
  { name: SERVES, node: [], bareNode: SERVE_HEAP_FLAGS, note: `drum-splitter: no flag; the bare proxy: \`${SERVE_HEAP_FLAGS.join(' ')}\`` },
  { name: 'RSS-capped (before)', node: ['--allocation-site-pretenuring', '--heap-growing-percent=50', '--max-semi-space-size=8', '--no-wasm-tier-up', '--no-wasm-dynamic-tiering'], note: 'what serve applied before: semi-spaces capped at 8 MB, a full collection at 50% growth, llhttp kept in Liftoff' },
  { name: 'semi-spaces 16 MB', node: ['--allocation-site-pretenuring', '--heap-growing-percent=0', '--max-semi-space-size=16', '--wasm-tier-up', '--wasm-dynamic-tiering'] },
  { name: 'semi-spaces 8 MB', node: ['--allocation-site-pretenuring', '--heap-growing-percent=0', '--max-semi-space-size=8', '--wasm-tier-up', '--wasm-dynamic-tiering'] },
  { name: 'semi-spaces 8 MB, no pretenuring', node: ['--no-allocation-site-pretenuring', '--heap-growing-percent=0', '--max-semi-space-size=8', '--wasm-tier-up', '--wasm-dynamic-tiering'] },
  { name: 'llhttp in Liftoff', node: ['--allocation-site-pretenuring', '--heap-growing-percent=0', '--max-semi-space-size=0', '--no-wasm-tier-up', '--no-wasm-dynamic-tiering'] },
];
/** BENCH_SERVE_FLAGS: more `serve` flags for drum-splitter's rows (e.g. --no-request-buffering). */
const SERVE_EXTRA = (process.env.BENCH_SERVE_FLAGS ?? '').split(' ').filter((f) => f !== '');
interface LoadTarget { name: string; proxy: string; heap: string; script: string; node: readonly string[]; args(port: number, upstreamUrl: string): string[] }
/** BENCH_HEAPS: the heap settings to run, by name (default all). */
const chosenHeaps = (): typeof HEAP_VARIANTS => {
  const names = process.env.BENCH_HEAPS?.split(',').map((n) => n.trim());
  if (names === undefined) return HEAP_VARIANTS;
  const unknown = names.filter((n) => !HEAP_VARIANTS.some((v) => v.name === n));
  if (unknown.length > 0) throw new Error(`BENCH_HEAPS: unknown "${unknown.join('", "')}"; known: ${HEAP_VARIANTS.map((v) => v.name).join(', ')}`);
  return HEAP_VARIANTS.filter((v) => names.includes(v.name));
};
const LOAD_TARGETS: LoadTarget[] = chosenHeaps().flatMap((v) => [
  { name: `drum-splitter · ${v.name}`, proxy: 'drum-splitter', heap: v.name, script: DRUM_SPLITTER_CLI, node: v.node, args: (port: number, up: string) => [...drumSplitterArgs(port, up), ...SERVE_EXTRA] },
  { name: `${BARE} · ${v.name}`, proxy: BARE, heap: v.name, script: BARE_PROXY, node: v.bareNode ?? v.node, args: (port: number, up: string) => [String(port), up.replace(/\/$/, '')] },
]);

interface Reading { rss: number; anon: number }

const mb = (n: number): string => n.toFixed(1);

/** RSS and its anonymous part now, in MB. */
function read(pid: number): Reading {
  return { rss: statusMb(pid, 'VmRSS') ?? NaN, anon: statusMb(pid, 'RssAnon') ?? NaN };
}

const medianReading = (rs: Reading[]): Reading => ({ rss: median(rs.map((r) => r.rss)), anon: median(rs.map((r) => r.anon)) });

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = (i: number): boolean => i > 0 && /^[\d.+–-]/.test(rows[0]?.[i] ?? '');
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (numeric(i) ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join(' | ')} |`;
  return [line(head), `|${w.map((n, i) => (numeric(i) ? `${'-'.repeat(n + 1)}:` : '-'.repeat(n + 2))).join('|')}|`, ...rows.map(line)].join('\n');
}

/**
 * A Node process that imports `modules` (none: an empty Node) from the repository, says so and
 * idles; its RSS once settled. Imported as the app does (ESM import, the package's main entry).
 */
async function restingNode(modules: readonly string[]): Promise<Reading> {
  const code = `${modules.map((m) => `await import(${JSON.stringify(m)});`).join(' ')} process.stdout.write('ready\\n'); setInterval(() => {}, 1e9);`;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  track(proc);
  try {
    await new Promise<void>((resolve, reject) => {
      proc.stdout.once('data', () => resolve());
      proc.once('exit', (code) => reject(new Error(`node importing ${modules.join(', ')} exited (${code})`)));
    });
    await sleep(SETTLE_MS);
    return read(proc.pid!);
  } finally {
    proc.kill('SIGKILL');
  }
}

async function dependencies(): Promise<string> {
  const runs = async (modules: readonly string[]): Promise<Reading> => {
    const rs: Reading[] = [];
    for (let i = 0; i < REST_RUNS; i++) rs.push(await restingNode(modules));
    return medianReading(rs);
  };
  process.stderr.write('bench:memory: dependencies at rest …\n');
  const empty = await runs([]);
  const rows = [['empty node', mb(empty.rss), mb(empty.anon), '–']];
  for (const m of [...DEPENDENCIES, DEPENDENCIES]) {
    const r = await runs(typeof m === 'string' ? [m] : m);
    rows.push([typeof m === 'string' ? m : `all ${m.length} together`, mb(r.rss), mb(r.anon), `+${mb(r.rss - empty.rss)}`]);
  }
  return [
    `**At rest: Node importing each runtime dependency alone** (\`node --input-type=module -e "await import('NAME')"\`, RSS ${SETTLE_MS / 1000} s after the import, median of ${REST_RUNS} processes)`,
    '',
    table(['process', 'RSS MB', 'of it anonymous MB', 'costs at rest MB'], rows),
  ].join('\n');
}

/** drum-splitter `args(port)` run by node with `nodeArgs`, once it answers on its port. */
async function startProxy(logDir: string, name: string, nodeArgs: readonly string[], args: (port: number) => string[]): Promise<Running> {
  const port = await freePort();
  return startNode(logDir, name, DRUM_SPLITTER_CLI, args(port), port, nodeArgs);
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const parts = argv.length === 0 ? PARTS : argv.length === 2 && argv[0] === '--only' ? argv[1]!.split(',').map((p) => p.trim()) : [];
  if (parts.length === 0 || parts.some((p) => !PARTS.includes(p))) throw new Error(`unknown arguments ${argv.join(' ')} (use --only ${PARTS.join(',')})`);
  if (parts.includes('load') && !wrkAvailable()) {
    process.stderr.write('bench:memory: wrk not found on PATH (Debian/Ubuntu: apt-get install wrk)\n');
    return 2;
  }
  installCleanup();
  const duration = envInt('BENCH_DURATION', 30);
  const warmup = envInt('BENCH_WARMUP', 2);
  const connections = envInt('BENCH_CONNECTIONS', 32);
  const rounds = envInt('BENCH_ROUNDS', 1);
  const logDir = makeTempDir('bench-memory-');
  const commandLine = (): string => {
    const env = Object.entries({ BENCH_HEAPS: process.env.BENCH_HEAPS, BENCH_SERVE_FLAGS: process.env.BENCH_SERVE_FLAGS })
      .flatMap(([k, v]) => (v === undefined ? [] : [`${k}="${v}"`]));
    return [`BENCH_DURATION=${duration} BENCH_WARMUP=${warmup} BENCH_CONNECTIONS=${connections} BENCH_ROUNDS=${rounds}`, ...env, `npm run bench:memory${argv.length ? ` -- ${argv.join(' ')}` : ''}`].join(' ');
  };
  const script = join(logDir, 'predict.lua');
  writeFileSync(script, postScript(REQUEST_BODY, 'text/csv'));
  const wrkBase: Omit<WrkOptions, 'url' | 'durationSec'> = { threads: 1, connections, script };
  const nginx = findNginx();

  const sections: string[] = [];
  if (parts.includes('deps')) sections.push(await dependencies());

  if (parts.includes('serve') || parts.includes('load')) {
    const upstream = await startUpstream(nginx, logDir);
    const up = upstream.url.replace(/\/$/, '');
    /** drum-splitter started with `args` (its listen port given), ready and settled. */
    const start = async (name: string, args: (port: number) => string[], nodeArgs: readonly string[] = []): Promise<Running> => {
      const proxy = await startProxy(logDir, name, nodeArgs, args);
      await sleep(SETTLE_MS);
      return proxy;
    };
    try {
      if (parts.includes('serve')) {
        process.stderr.write('bench:memory: drum-splitter at rest …\n');
        const configFile = join(logDir, 'drum-splitter.yaml');
        const yaml = `upstreams:\n  flask: ${up}\n  fastapi: ${up}\nweights:\n  fastapi: 5\n`;
        writeFileSync(configFile, yaml);
        const rows: string[][] = [];
        const variants: { name: string; args: (port: number) => string[]; workers?: boolean }[] = [
          { name: 'serve', args: (port) => drumSplitterArgs(port, upstream.url) },
          { name: 'serve --config FILE', args: (port) => ['serve', '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0', '--config', configFile] },
          { name: 'serve --workers 2', args: (port) => [...drumSplitterArgs(port, upstream.url), '--workers', '2'], workers: true },
        ];
        for (const v of variants) {
          const readings: Reading[][] = [];
          for (let i = 0; i < REST_RUNS; i++) {
            const proxy = await start('drum-splitter-rest', v.args);
            try {
              readings.push(processTree(proxy.pid!).map(read)); // the primary first, then its workers
            } finally {
              await proxy.stop();
            }
          }
          const row = (name: string, r: Reading): string[] => [name, mb(r.rss), mb(r.anon)];
          rows.push(row(v.workers ? `${v.name}: the primary` : v.name, medianReading(readings.map((r) => r[0]!))));
          if (v.workers) rows.push(row(`${v.name}: a worker`, medianReading(readings.flatMap((r) => r.slice(1)))));
        }
        sections.push([
          `**drum-splitter at rest** (RSS ${SETTLE_MS / 1000} s after it answers, median of ${REST_RUNS} starts)`,
          `- serve: \`node dist/src/cli/main.js ${drumSplitterArgs(0, upstream.url).join(' ').replace(':0 ', ':PORT ')}\``,
          `- --config FILE: the same upstreams and weights from the file instead of flags (\`${yaml.trim().replace(/\n/g, '⏎')}\`)`,
          '',
          table(['process', 'RSS MB', 'of it anonymous MB'], rows),
        ].join('\n'));
      }

      if (parts.includes('load')) {
        const runs = await rotatedRounds(LOAD_TARGETS, rounds, async (target) => {
          process.stderr.write(`bench:memory: under load, ${target.name} … `);
          const port = await freePort();
          const proxy = await startNode(logDir, 'load', target.script, target.args(port, upstream.url), port, target.node);
          await sleep(SETTLE_MS);
          const pid = proxy.pid!;
          try {
            const rest = read(pid);
            const url = proxy.url + REQUEST_PATH;
            await runWrk({ ...wrkBase, url, durationSec: warmup }, 'wrk', track); // pools filled, hot path compiled
            const samples: number[] = [];
            const timer = setInterval(() => { const v = statusMb(pid, 'VmRSS'); if (v !== null) samples.push(v); }, SAMPLE_MS);
            const cpu = meter(pid);
            let result;
            try {
              result = await runWrk({ ...wrkBase, url, durationSec: duration }, 'wrk', track);
            } finally {
              clearInterval(timer);
            }
            const usage = cpu?.stop(result.requests);
            const steady = median(samples.slice(Math.floor(samples.length / 3)));
            // The kernel updates VmHWM lazily (per-thread RSS counters): a sample can top it by a few hundred kB.
            const peak = Math.max(statusMb(pid, 'VmHWM') ?? NaN, ...samples);
            const errs = errorSummary(result);
            process.stderr.write(`${result.rps.toFixed(0)} req/s, ${usage?.cpuUsPerRequest.toFixed(1) ?? '–'} µs/req, steady ${mb(steady)} MB, peak ${mb(peak)} MB\n`);
            return { rest, steady, peak, rps: result.rps, p99: result.p99Ms, cpu: usage?.cpuUsPerRequest, errs };
          } finally {
            await proxy.stop();
          }
        });
        // Each column its own median over the rounds; peak the highest.
        const summary = new Map(LOAD_TARGETS.map((t) => {
          const rs = runs.get(t.name)!;
          const med = (f: (r: (typeof rs)[number]) => number | null | undefined): number => median(rs.map(f).filter((v): v is number => v != null && Number.isFinite(v)));
          return [t.name, { ...t, rps: med((r) => r.rps), cpu: med((r) => r.cpu), p99: med((r) => r.p99), rest: med((r) => r.rest.rss), steady: med((r) => r.steady), peak: Math.max(...rs.map((r) => r.peak)), errs: rs.map((r) => r.errs).filter((e) => e !== '').join('; ') }];
        }));
        const rows = [...summary.values()].map((r) => {
          const bare = summary.get(`${BARE} · ${r.heap}`);
          const defaults = summary.get(`${r.proxy} · ${HEAP_VARIANTS[0]!.name}`)!;
          const vs = (a: number, b: number | undefined): string => (b === undefined || !Number.isFinite(a) || !Number.isFinite(b) ? '–' : `${(a / b).toFixed(2)}×`);
          return [r.proxy, r.heap, r.rps.toFixed(0), r.cpu.toFixed(1), vs(r.cpu, defaults.cpu), r.proxy === BARE ? '' : vs(r.cpu, bare?.cpu), r.p99.toFixed(2), mb(r.rest), mb(r.steady), mb(r.peak), r.proxy === BARE ? '' : vs(r.steady, bare?.steady), r.errs ? `ERRORS: ${r.errs}` : ''];
        });
        sections.push([
          `**Under load, by heap setting** (drum-splitter and the bare node:http + undici proxy, each setting given to both as node flags)`,
          `- proxies: \`node FLAGS dist/src/cli/main.js ${drumSplitterArgs(0, upstream.url).join(' ').replace(':0 ', ':PORT ')}\` and \`node FLAGS dist/bench/bare-proxy.js PORT UPSTREAM\`, a fresh process each run; "serve's settings" is what \`serve\` applies with no flag (src/heap.ts), and only drum-splitter has it`,
          ...HEAP_VARIANTS.map((v) => `- ${v.name}: ${v.node.length === 0 ? 'no flag' : `\`${v.node.join(' ')}\``}${v.note === undefined ? '' : ` (${v.note})`}`),
          `- load: \`wrk ${wrkArgs({ ...wrkBase, script: 'predict.lua', durationSec: duration, url: `<proxy>/${REQUEST_PATH}` }).join(' ')}\` (POST, \`Content-Type: text/csv\`, ${REQUEST_BODY.length}-byte CSV body) after a ${warmup}s warm-up; ${rounds} round(s) in a rotated order, each column the median over them (peak: the highest)`,
          `- RSS: VmRSS every ${SAMPLE_MS} ms during the measured run; steady = median of the samples after the first third; peak = VmHWM (the process's whole life, start-up included) or the highest sample if higher`,
          `- upstream: ${upstream.desc}`,
          '',
          table(['proxy', 'heap', 'req/s', 'CPU µs/req', 'CPU vs its V8 defaults', 'CPU vs bare, same heap', 'p99 ms', 'RSS at rest MB', 'steady MB', 'peak MB', 'steady vs bare, same heap', 'notes'], rows),
        ].join('\n'));
        const ours = summary.get(`drum-splitter · ${SERVES}`);
        const bare = summary.get(`${BARE} · ${SERVES}`);
        if (ours !== undefined && bare !== undefined) {
          sections.push(reportGate({
            name: "memory: steady RSS under load against the bare proxy's (same load, same heap settings)",
            bar: `≤ ${RSS_GATE}×`,
            figure: `${(ours.steady / bare.steady).toFixed(2)}× (${mb(ours.steady)} vs ${mb(bare.steady)} MB; peaks ${mb(ours.peak)} and ${mb(bare.peak)} MB)`,
            met: ours.steady <= RSS_GATE * bare.steady,
            command: commandLine(),
          }));
        }
      }
    } finally {
      await upstream.stop();
    }
  }

  process.stdout.write([
    `command: \`${commandLine()}\``,
    machineLine(nginx ? nginxVersion(nginx) ?? 'unknown' : null),
    '',
    sections.join('\n\n'),
    '',
  ].join('\n'));
  return 0;
}

main().then((code) => process.exit(code), (e: unknown) => {
  process.stderr.write(`bench:memory: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
