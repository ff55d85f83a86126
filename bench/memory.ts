// `npm run bench:memory` (not CI): what drum-splitter holds in memory, against issue 15's bars for
// one process — steady RSS under load ≤ 110 MB, peak ≤ 140 MB. Three tables:
//   1. at rest, an empty Node, then Node importing each runtime dependency alone: the difference
//      is what that dependency costs a process that loads it (an upper bound for what it adds to
//      drum-splitter, where V8's heap and its compilers' work are there anyway: all of them
//      together cost less than their sum);
//   2. drum-splitter at rest: `serve` (the bench's two upstreams), with a --config file, and the
//      processes of --workers 2 (the primary runs the admin API, a worker only the proxy);
//   3. `serve` under the load of `npm run bench` (wrk, POST /predict/), RSS sampled every 250 ms:
//      steady is the median once the first third of the run is over (the young generation and
//      the pools have grown by then), peak the kernel's high-water mark (VmHWM). Next to it the
//      same process with V8's defaults (node flags that src/heap.ts leaves alone), to show what
//      its heap settings do.
// RSS is the kernel's VmRSS, read SETTLE_MS after the process is ready (start-up garbage and lazy
// compilation settle); "of it anonymous" (RssAnon) is the heap and other private memory, the rest
// mostly the node binary's own code pages, mapped from its file.
// Markdown to stdout, progress to stderr. Exit 1 when a bar fails.
// Env: BENCH_DURATION (30), BENCH_WARMUP (2), BENCH_CONNECTIONS (32), BENCH_ROUNDS (1: each load
// target once, a fresh process; more: a round each, in a rotated order), NGINX_BIN.
// Flag: --only deps,serve,load (which tables).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DRUM_SPLITTER_CLI, REQUEST_BODY, REQUEST_PATH, ROOT, drumSplitterArgs, envInt, machineLine, median, rotatedRounds, startNode, startUpstream, type Running,
} from './common.js';
import { findNginx, nginxVersion } from './nginx.js';
import { freePort, installCleanup, makeTempDir, track } from './proc.js';
import { meter, processTree, statusMb } from './usage.js';
import { errorSummary, postScript, runWrk, wrkArgs, wrkAvailable, type WrkOptions } from './wrk.js';

const BARS = { steadyMb: 110, peakMb: 140 };
/** From ready to the reading: long enough for start-up's garbage to be collected and the timers to have run once. */
const SETTLE_MS = 1000;
const SAMPLE_MS = 250;
/** At-rest readings vary by a megabyte or so; each row is the median of this many processes. */
const REST_RUNS = 3;
/** package.json's runtime dependencies, but cli-progress (replay's progress bar only). */
const DEPENDENCIES = ['fastify', 'undici', 'prom-client', 'pino', 'yaml', 'sonic-boom', 'murmurhash'];
const PARTS = ['deps', 'serve', 'load'];
/** Node flags that make src/heap.ts leave V8 as it is: each names its default. */
const V8_DEFAULTS = ['--heap-growing-percent=0', '--max-semi-space-size=16', '--wasm-tier-up'];
const LOAD_TARGETS = [{ name: 'serve', node: [] }, { name: 'serve, V8 defaults', node: V8_DEFAULTS }];

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
  const script = join(logDir, 'predict.lua');
  writeFileSync(script, postScript(REQUEST_BODY, 'text/csv'));
  const wrkBase: Omit<WrkOptions, 'url' | 'durationSec'> = { threads: 1, connections, script };
  const nginx = findNginx();

  const sections: string[] = [];
  const failures: string[] = [];
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
        const args = (port: number): string[] => drumSplitterArgs(port, upstream.url);
        const runs = await rotatedRounds(LOAD_TARGETS, rounds, async (target) => {
          process.stderr.write(`bench:memory: under load, ${target.name} … `);
          const proxy = await start('drum-splitter-load', args, target.node);
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
            process.stderr.write(`${result.rps.toFixed(0)} req/s, steady ${mb(steady)} MB, peak ${mb(peak)} MB\n`);
            return { rest, steady, peak, min: Math.min(...samples), max: Math.max(...samples), rps: result.rps, cpu: usage?.cpuUsPerRequest, errs };
          } finally {
            await proxy.stop();
          }
        });
        const rows = LOAD_TARGETS.flatMap((target) => runs.get(target.name)!.map((r, i) => {
          if (target.node.length === 0 && r.steady > BARS.steadyMb) failures.push(`${target.name}, round ${i + 1}: steady RSS ${mb(r.steady)} MB > ${BARS.steadyMb} MB`);
          if (target.node.length === 0 && r.peak > BARS.peakMb) failures.push(`${target.name}, round ${i + 1}: peak RSS ${mb(r.peak)} MB > ${BARS.peakMb} MB`);
          return [target.name, String(i + 1), r.rps.toFixed(0), r.cpu === undefined ? '–' : r.cpu.toFixed(1), mb(r.rest.rss), mb(r.min), mb(r.steady), mb(r.max), mb(r.peak), r.errs ? `ERRORS: ${r.errs}` : ''];
        }));
        sections.push([
          `**Under load** (bars: steady ≤ ${BARS.steadyMb} MB, peak ≤ ${BARS.peakMb} MB)`,
          `- proxy: \`node dist/src/cli/main.js ${args(0).join(' ').replace(':0 ', ':PORT ')}\`, a fresh process each run; "V8 defaults": \`node ${V8_DEFAULTS.join(' ')} dist/src/cli/main.js …\` (src/heap.ts then sets nothing)`,
          `- load: \`wrk ${wrkArgs({ ...wrkBase, script: 'predict.lua', durationSec: duration, url: `<proxy>/${REQUEST_PATH}` }).join(' ')}\` (POST, \`Content-Type: text/csv\`, ${REQUEST_BODY.length}-byte CSV body) after a ${warmup}s warm-up; ${rounds} round(s), the two processes in a rotated order`,
          `- RSS: VmRSS every ${SAMPLE_MS} ms during the measured run; steady = median of the samples after the first third; peak = VmHWM (the process's whole life, start-up included) or the highest sample if higher`,
          `- upstream: ${upstream.desc}`,
          '',
          table(['process', 'round', 'req/s', 'CPU µs/req', 'RSS at rest MB', 'min MB', 'steady MB', 'max sample MB', 'peak (VmHWM) MB', 'notes'], rows),
        ].join('\n'));
      }
    } finally {
      await upstream.stop();
    }
  }

  const envShown = `BENCH_DURATION=${duration} BENCH_WARMUP=${warmup} BENCH_CONNECTIONS=${connections} BENCH_ROUNDS=${rounds}`;
  process.stdout.write([
    `command: \`${envShown} npm run bench:memory${argv.length ? ` -- ${argv.join(' ')}` : ''}\``,
    machineLine(nginx ? nginxVersion(nginx) ?? 'unknown' : null),
    '',
    sections.join('\n\n'),
    '',
    ...(parts.includes('load') ? [failures.length ? failures.map((f) => `FAIL: ${f}`).join('\n') : `PASS: serve's steady RSS ≤ ${BARS.steadyMb} MB and peak ≤ ${BARS.peakMb} MB in every round`, ''] : []),
  ].join('\n'));
  return failures.length ? 1 : 0;
}

main().then((code) => process.exit(code), (e: unknown) => {
  process.stderr.write(`bench:memory: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
