// `npm run bench:throughput` (the first of `npm run bench`'s four): drum-splitter (recording off,
// 1%, 100%; 1 and 2 workers; a rollout running) next to nginx split_clients, node-http-proxy,
// @fastify/http-proxy, a bare node:http + undici proxy (the floor under our request path),
// node:http with a minimal hand-rolled client (the floor under any undici replacement) and
// node:http answering itself (Node's ceiling), all in front of one near-free upstream, measured by wrk one target at a time with DRUM predictions: POST /predict/, a small CSV body.
// Besides wrk's numbers, each row shows what the target itself spent during the measured run
// (bench/usage.ts): CPU µs per request and peak RSS, summed over its processes (workers included).
// Markdown goes to stdout (paste into the README as is); progress goes to stderr.
// Env: BENCH_DURATION (10), BENCH_CONNECTIONS (32), BENCH_WARMUP (2), BENCH_ROUNDS (1: each
// target once; more: every target once a round, in a rotated order, median shown), NGINX_BIN.
// Flags: --json FILE (raw numbers), --only a,b (direct and nginx always run: they are the ratios' bases).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { REQUEST_BODY, REQUEST_PATH, cpuModel, envInt, machineLine, median, reportGate, rotatedRounds, signed, startUpstream } from './common.js';
import { findNginx, nginxVersion } from './nginx.js';
import { installCleanup, makeTempDir, track } from './proc.js';
import { BARE_HEAP_ROW, BARE_ROW, DRUM_SPLITTER_ROW, FASTIFY_ROW, NGINX_ROW, NODE_HTTP_PROXY_ROW, RECORDING_ROW, ROLLOUT_ROW, Skip, targets, type Ctx, type Started, type Target } from './targets.js';
import { meter, type Usage } from './usage.js';
import { errorSummary, postScript, runWrk, wrkArgs, wrkAvailable, type WrkOptions, type WrkResult } from './wrk.js';

function parseArgs(argv: string[]): { json?: string; only?: string[] } {
  const out: { json?: string; only?: string[] } = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = (): string => { const v = argv[++i]; if (v === undefined) throw new Error(`${a} needs a value`); return v; };
    if (a === '--json') out.json = val();
    else if (a === '--only') out.only = val().split(',').map((s) => s.trim());
    else throw new Error(`unknown argument ${a} (use --json FILE, --only name1,name2)`);
  }
  return out;
}

interface Row { name: string; result?: WrkResult; usage?: Usage; note: string; failed?: boolean }

/** A target's row from its rounds: the run with the median throughput, or the failure if one failed. */
function medianRow(runs: Row[]): Row {
  const failed = runs.find((r) => r.result === undefined);
  if (failed !== undefined) return failed;
  const sorted = [...runs].sort((a, b) => a.result!.rps - b.result!.rps);
  const middle = sorted[Math.floor((sorted.length - 1) / 2)]!;
  if (runs.length === 1) return middle;
  // Each column its own median (peak RSS its maximum): the run with the median throughput need not have the median CPU.
  const usages = runs.flatMap((r) => (r.usage === undefined ? [] : [r.usage]));
  const usage = usages.length === runs.length
    ? {
      cpuUsPerRequest: median(usages.map((u) => u.cpuUsPerRequest)),
      systemUsPerRequest: median(usages.map((u) => u.systemUsPerRequest)),
      peakRssMb: Math.max(...usages.map((u) => u.peakRssMb)),
    }
    : undefined;
  const spread = `median of ${runs.length} (${sorted[0]!.result!.rps.toFixed(0)}–${sorted.at(-1)!.result!.rps.toFixed(0)} req/s)`;
  return { ...middle, usage, note: [spread, middle.note].filter((n) => n !== '').join('; ') };
}

/** `a` against `b` as a signed percentage: +3.1%, -16.4%. */
const change = (a: number, b: number): string => `${signed(100 * (a / b - 1), 1)}%`;
const fmt = (n: number | null | undefined, d: number): string => (n == null || !Number.isFinite(n) ? '–' : n.toFixed(d));
const ratio = (a: number | null | undefined, b: number | null | undefined): string =>
  a == null || b == null || b === 0 ? '–' : `${(a / b).toFixed(2)}×`;

function table(rows: Row[]): string {
  const direct = rows.find((r) => r.name === 'direct')?.result;
  const ngxRow = rows.find((r) => r.name === NGINX_ROW);
  const ngx = ngxRow?.result;
  const ngxCpu = ngxRow?.usage?.cpuUsPerRequest;
  const offRow = rows.find((r) => r.name === DRUM_SPLITTER_ROW);
  const off = offRow?.result;
  const offCpu = offRow?.usage?.cpuUsPerRequest;
  const cpuOf = (name: string): number | undefined => rows.find((r) => r.name === name)?.usage?.cpuUsPerRequest;
  const cost = (r: Row): string => {
    const cpu = r.usage?.cpuUsPerRequest;
    const over = (base: string, what: string): string[] => {
      const b = cpuOf(base);
      return cpu && b ? [`CPU/req vs ${what} ${change(cpu, b)}`] : [];
    };
    // The features gate: the features' CPU over the floor, under V8's defaults and under serve's heap settings.
    if (r.name === DRUM_SPLITTER_ROW || r.name === ROLLOUT_ROW) return [...over(BARE_ROW, 'bare'), ...over(BARE_HEAP_ROW, 'bare with its heap settings')].join(', ');
    if (!r.name.startsWith(RECORDING_ROW) || !r.result || !off) return '';
    const cpuVsOff = cpu && offCpu ? `, CPU/req ${change(cpu, offCpu)}` : '';
    return `vs off: throughput ${change(r.result.rps, off.rps)}${cpuVsOff}`;
  };
  const head = ['target', 'req/s', 'p50 ms', 'p99 ms', 'req/s vs direct', 'req/s vs nginx', 'p99 vs nginx', 'CPU µs/req', 'of it kernel', 'CPU vs nginx', 'peak RSS MB', 'notes'];
  const body = rows.map((r) => {
    const x = r.result;
    const u = r.usage;
    return [r.name, x ? x.rps.toFixed(0) : '–', fmt(x?.p50Ms, 2), fmt(x?.p99Ms, 2),
      ratio(x?.rps, direct?.rps), ratio(x?.rps, ngx?.rps), ratio(x?.p99Ms, ngx?.p99Ms),
      fmt(u?.cpuUsPerRequest, 1), fmt(u?.systemUsPerRequest, 1), ratio(u?.cpuUsPerRequest, ngxCpu), fmt(u?.peakRssMb, 1), [cost(r), r.note].filter((n) => n !== '').join('; ')];
  });
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const numeric = (i: number): boolean => i > 0 && i < head.length - 1;
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (numeric(i) ? c.padStart(w[i] ?? 0) : c.padEnd(w[i] ?? 0))).join(' | ')} |`;
  return [line(head), `|${w.map((n, i) => (numeric(i) ? `${'-'.repeat(n + 1)}:` : '-'.repeat(n + 2))).join('|')}|`, ...body.map(line)].join('\n');
}

/** The gates this run can judge (docs/performance.md, Targets), as lines; rows the run left out leave theirs out. */
function gates(rows: Row[], command: string): string[] {
  const row = (name: string): Row | undefined => rows.find((r) => r.name === name && r.result !== undefined);
  const ours = row(DRUM_SPLITTER_ROW);
  const cpu = (r: Row | undefined): number | undefined => r?.usage?.cpuUsPerRequest;
  const out: string[] = [];
  const floor = row(BARE_HEAP_ROW);
  if (cpu(ours) !== undefined && cpu(floor) !== undefined) {
    const over = cpu(ours)! / cpu(floor)! - 1;
    out.push(reportGate({
      name: 'features: CPU a request over the bare node:http + undici proxy (same Node, same heap settings)',
      bar: '≤ +15%',
      figure: `${signed(100 * over, 1)}% (${cpu(ours)!.toFixed(1)} vs ${cpu(floor)!.toFixed(1)} µs)`,
      met: over <= 0.15,
      command,
    }));
  }
  const nhp = row(NODE_HTTP_PROXY_ROW);
  const fastify = row(FASTIFY_ROW);
  if (ours !== undefined && nhp !== undefined && fastify !== undefined) {
    const [a, b, c] = [ours.result!, nhp.result!, fastify.result!];
    const lowerP99 = a.p99Ms !== null && b.p99Ms !== null && c.p99Ms !== null && a.p99Ms < b.p99Ms && a.p99Ms < c.p99Ms;
    out.push(reportGate({
      name: 'saturation against the Node peers',
      bar: '> 1.1× node-http-proxy and ≥ 2× @fastify/http-proxy, with a lower p99 than both',
      figure: `${(a.rps / b.rps).toFixed(2)}× node-http-proxy, ${(a.rps / c.rps).toFixed(2)}× @fastify/http-proxy; p99 ${fmt(a.p99Ms, 2)} vs ${fmt(b.p99Ms, 2)} and ${fmt(c.p99Ms, 2)} ms`,
      met: a.rps / b.rps > 1.1 && a.rps / c.rps >= 2 && lowerP99,
      command,
    }));
  }
  const recording = row(`${RECORDING_ROW} 1%`);
  if (cpu(ours) !== undefined && cpu(recording) !== undefined) {
    const more = cpu(recording)! / cpu(ours)! - 1;
    out.push(reportGate({
      name: 'recording 1%: CPU a request over recording off',
      bar: '≤ +3% (bench:alloc gives the bytes and the profile share, which this machine can resolve)',
      figure: `${signed(100 * more, 1)}% (${cpu(recording)!.toFixed(1)} vs ${cpu(ours)!.toFixed(1)} µs)`,
      met: more <= 0.03,
      command,
    }));
  }
  return out;
}

async function main(): Promise<number> {
  if (!wrkAvailable()) {
    process.stderr.write('bench: wrk not found on PATH (Debian/Ubuntu: apt-get install wrk)\n');
    return 2;
  }
  const args = parseArgs(process.argv.slice(2));
  installCleanup();
  const duration = envInt('BENCH_DURATION', 10);
  const connections = envInt('BENCH_CONNECTIONS', 32);
  const warmup = envInt('BENCH_WARMUP', 2);
  const rounds = envInt('BENCH_ROUNDS', 1);
  const logDir = makeTempDir('bench-logs-');
  const script = join(logDir, 'predict.lua');
  writeFileSync(script, postScript(REQUEST_BODY, 'text/csv'));
  const wrkBase: Omit<WrkOptions, 'url' | 'durationSec'> = { threads: 1, connections, script };

  const nginx = findNginx();
  const version = nginx ? nginxVersion(nginx) ?? 'unknown' : null;
  if (!nginx) process.stderr.write(`bench: nginx not found, "${NGINX_ROW}" is skipped and the upstream is node:http\n`);
  const upstream = await startUpstream(nginx, logDir);
  const ctx: Ctx = { upstreamUrl: upstream.url, upstreamPid: upstream.pid, nginx, logDir };

  /** One measurement of one target: start it, warm it up, wrk it, stop it. */
  async function measure(t: Target): Promise<Row> {
    process.stderr.write(`bench: ${t.name} … `);
    let s: Started | undefined;
    try {
      s = await t.start(ctx);
      const url = s.url + REQUEST_PATH;
      await runWrk({ ...wrkBase, url, durationSec: warmup }, 'wrk', track); // fills pools and JITs the hot path
      const cpu = s.pid === undefined ? undefined : meter(s.pid);
      const result = await runWrk({ ...wrkBase, url, durationSec: duration }, 'wrk', track);
      const usage = result.requests > 0 ? cpu?.stop(result.requests) : undefined;
      const errs = errorSummary(result);
      await s.stop();
      const notes = [errs ? `ERRORS: ${errs}` : '', s.note ?? ''].filter((n) => n !== '');
      s = undefined;
      process.stderr.write(`${result.rps.toFixed(0)} req/s${errs ? ` (${errs})` : ''}\n`);
      return { name: t.name, result, ...(usage === undefined ? {} : { usage }), note: notes.join('; ') };
    } catch (e) {
      const skip = e instanceof Skip;
      const msg = (e as Error).message;
      process.stderr.write(skip ? `${msg}\n` : `FAILED\n${msg}\n`);
      return { name: t.name, note: skip ? msg : `failed: ${msg.split('\n')[0]}`, failed: !skip };
    } finally {
      await s?.stop();
    }
  }

  const chosen = targets.filter((t) => !args.only || args.only.includes(t.name) || t.name === 'direct' || t.name === NGINX_ROW);
  let runs: Map<string, Row[]>;
  try {
    runs = await rotatedRounds(chosen, rounds, measure);
  } finally {
    await upstream.stop();
  }
  const rows = chosen.map((t) => medianRow(runs.get(t.name)!));

  const cpu = cpuModel();
  const envShown = `BENCH_DURATION=${duration} BENCH_CONNECTIONS=${connections} BENCH_WARMUP=${warmup} BENCH_ROUNDS=${rounds}`;
  const command = `${envShown} npm run bench:throughput${process.argv.length > 2 ? ` -- ${process.argv.slice(2).map((a) => (/\s/.test(a) ? `"${a}"` : a)).join(' ')}` : ''}`;
  const out = [
    `command: \`${command}\``,
    `load: \`wrk ${wrkArgs({ ...wrkBase, script: 'predict.lua', durationSec: duration, url: `<target>/${REQUEST_PATH}` }).join(' ')}\` (POST, \`Content-Type: text/csv\`, ${REQUEST_BODY.length}-byte CSV body), ${warmup}s warm-up before each run, targets one after another, all on 127.0.0.1`,
    `upstream: ${upstream.desc}`,
    machineLine(version),
    '',
    table(rows),
    '',
    ...gates(rows, command),
    '',
  ].join('\n');
  process.stdout.write(out);

  if (args.json) {
    writeFileSync(args.json, JSON.stringify({
      date: new Date().toISOString(), node: process.version, nginx: version,
      nproc: availableParallelism(), cpu, wrk: { ...wrkBase, durationSec: duration, warmupSec: warmup },
      upstream: upstream.desc, rows,
    }, null, 2));
    process.stderr.write(`bench: raw numbers written to ${args.json}\n`);
  }
  return rows.some((r) => r.failed) ? 1 : 0;
}

main().then((code) => process.exit(code), (e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
