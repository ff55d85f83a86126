// `npm run bench:growth`: how drum-splitter's cost grows next to nginx split_clients'.
// For each point of a series — the request body's size (1 KB to 10 MB), the number of keep-alive
// connections (32 to 10,000), request and response buffering on and off — wrk drives drum-splitter
// (defaults, bench/common.ts) and nginx split_clients (bench/nginx.ts) one after the other in front
// of one nginx upstream, and the table shows CPU µs a request (bench/usage.ts, over the target's
// processes) and p99, each as a ratio to nginx's at the same point. Markdown to stdout, progress to stderr.
// Env: BENCH_DURATION (10), BENCH_WARMUP (2), BENCH_ROUNDS (1; more: both targets once a round at
// each point, in a rotated order, medians shown), BENCH_SERIES (body,connections,buffering), NGINX_BIN.
// Flags: --json FILE (raw numbers), --png FILE (the ratios plotted, rendered by Debian's chromium).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  DRUM_SPLITTER_CLI, REQUEST_BODY, REQUEST_PATH, UPSTREAM_BODY, drumSplitterArgs, envInt, machineLine, median,
  rotatedRounds, startNode, type Running,
} from './common.js';
import { bodyReadingJsonServerHttp, findNginx, nginxVersion, splitClientsHttp, startNginx } from './nginx.js';
import { freePort, installCleanup, makeTempDir, track } from './proc.js';
import { meter } from './usage.js';
import { errorSummary, postScript, runWrk, wrkArgs, wrkAvailable } from './wrk.js';

const KB = 1024;
const MB = 1024 * KB;
/** 10,000 connections are 10,000 fds in wrk and up to twice that (client and upstream side) in a proxy. */
const FD_LIMIT = 65_536;
/** nginx's worker_connections, as far as the fd limit goes. */
const NGINX_CONNECTIONS = 32_768;
/** Generous: at 10,000 connections a request waits behind thousands; wrk's 2 s default would drop those from p99. */
const WRK_TIMEOUT_SEC = 30;
/** nginx's limit set to drum-splitter's --body-limit default, so neither refuses what the other takes. */
const BODY_LIMIT = '100m';

type SeriesKey = 'body' | 'connections' | 'buffering';
interface Point {
  label: string;
  /** Where the plot puts it (log scale for body and connections) and what its tick says. */
  x: number; tick: string[];
  /** Points of one group are joined by a line in the plot. */
  group: string;
  body: string; connections: number;
  drumFlags: string[]; nginxDirectives: string[];
}
interface Series { key: SeriesKey; title: string; about: string; logX: boolean; points: Point[] }

const size = (bytes: number): string => (bytes >= MB ? `${bytes / MB} MB` : bytes >= KB ? `${bytes / KB} KB` : `${bytes} B`);

/** The bench's CSV prediction grown to exactly `bytes`: its header, then its data row repeated. */
function csvBody(bytes: number): string {
  const [head = '', row = ''] = REQUEST_BODY.split(/(?<=\n)/);
  return (head + row.repeat(Math.ceil(bytes / row.length))).slice(0, bytes);
}

/** Fewer connections for big bodies: 32 × 10 MB in flight is 320 MB of temp files per proxy, for no new information. */
const bodyConnections = (bytes: number): number => (bytes <= 100 * KB ? 32 : bytes <= MB ? 8 : 4);

const BUFFERING = [
  { name: 'both on', tick: 'on', drum: [], nginx: [] },
  { name: 'request off', tick: 'req off', drum: ['--no-request-buffering'], nginx: ['proxy_request_buffering off'] },
  { name: 'response off', tick: 'resp off', drum: ['--no-response-buffering'], nginx: ['proxy_buffering off'] },
  { name: 'both off', tick: 'off', drum: ['--no-request-buffering', '--no-response-buffering'], nginx: ['proxy_request_buffering off', 'proxy_buffering off'] },
];

// Connections last: their TIME_WAIT sockets (fewTimeWaits) would otherwise delay every point after them.
const SERIES: Series[] = [
  {
    key: 'body', title: 'Request body size', logX: true,
    about: `POST /${REQUEST_PATH} with a CSV body of 1 KB to 10 MB (KB = 1,024 bytes); wrk -c 32 up to 100 KB, 8 at 1 MB, 4 at 10 MB (the same bodies in flight would be GBs of temp files). Both buffer the whole body before sending it upstream (defaults): drum-splitter in memory up to 64 KB (--buffer-memory), nginx up to 8 KB (client_body_buffer_size on x86-64), past that in a temp file under /tmp.`,
    points: [KB, 100 * KB, MB, 10 * MB].map((b) => ({
      label: size(b), x: b, tick: [size(b)], group: '', body: csvBody(b), connections: bodyConnections(b), drumFlags: [], nginxDirectives: [],
    })),
  },
  {
    key: 'buffering', title: 'Buffering on / off', logX: false,
    about: `drum-splitter \`--no-request-buffering\` / \`--no-response-buffering\` against nginx \`proxy_request_buffering off\` / \`proxy_buffering off\`, at 1 KB (wrk -c 32) and 1 MB (wrk -c 8). The answer is ${UPSTREAM_BODY.length} bytes, so response buffering has nothing to hold: its rows show only what the setting itself costs.`,
    points: [KB, MB].flatMap((b) => BUFFERING.map((m) => ({
      label: `${size(b)}, ${m.name}`, x: 0, tick: [size(b), m.tick], group: size(b), body: csvBody(b), connections: bodyConnections(b),
      drumFlags: m.drum, nginxDirectives: m.nginx,
    }))).map((p, i) => ({ ...p, x: i })),
  },
  {
    key: 'connections', title: 'Keep-alive connections', logX: true,
    about: `the bench's ${REQUEST_BODY.length}-byte prediction over 32, 1,000 and 10,000 keep-alive connections, all opened by one wrk thread at the start of the run (the warm-up uses 32); "held" is how many of them the target had accepted half-way through (ESTABLISHED sockets on its port, drum-splitter / nginx): wrk keeps a request in flight on each, and counts no connect error for one still waiting in the target's full listen queue. Opened all at once, they overflow that queue (511), and a connection whose handshake was dropped waits for the kernel's retransmit (1 s, then 3 s, …): at 1,000 and 10,000, p99 is mostly that wait, not the steady state. Neither caps its upstream connections: nginx keeps 32 idle ones (\`keepalive 32\`, the bench's setting), drum-splitter's undici pool keeps idle ones for 1 s.`,
    points: [32, 1000, 10_000].map((c) => ({
      label: c.toLocaleString('en-US'), x: c, tick: [c.toLocaleString('en-US')], group: '', body: REQUEST_BODY, connections: c, drumFlags: [], nginxDirectives: [],
    })),
  },
];

function parseArgs(argv: string[]): { json?: string; png?: string } {
  const out: { json?: string; png?: string } = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (v === undefined || (a !== '--json' && a !== '--png')) throw new Error(`usage: growth.js [--json FILE] [--png FILE] (got ${a})`);
    out[a === '--json' ? 'json' : 'png'] = v;
  }
  return out;
}

function parseSeries(): Series[] {
  const keys = (process.env.BENCH_SERIES ?? 'body,connections,buffering').split(',').map((s) => s.trim());
  const bad = keys.find((k) => !SERIES.some((s) => s.key === k));
  if (bad !== undefined) throw new Error(`BENCH_SERIES: "${bad}" is not one of ${SERIES.map((s) => s.key).join(', ')}`);
  return SERIES.filter((s) => keys.includes(s.key));
}

/**
 * Children inherit our RLIMIT_NOFILE (node already raised its soft limit to the hard one), and
 * nginx without a master process never applies worker_rlimit_nofile, so raise ours once rather
 * than wrap every spawn in a shell. Past the hard limit this needs CAP_SYS_RESOURCE.
 */
function raiseFdLimit(): number {
  spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${FD_LIMIT}:${FD_LIMIT}`], { stdio: 'ignore' });
  return Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 0);
}

/**
 * ESTABLISHED sockets whose local port is `port`: the target's side of wrk's connections. ss, not
 * /proc/net/tcp, whose text is read in pieces while thousands of sockets come and go (it counted
 * 1,117 of 1,000).
 */
function established(port: number): number {
  const r = spawnSync('ss', ['-Htn', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n').filter((l) => l !== '').length : NaN;
}

/** TCP sockets in TIME_WAIT, machine-wide. */
const timeWaits = (): number => Number(/^TCP:.* tw (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'))?.[1] ?? 0);

/**
 * A run at 10,000 connections leaves tens of thousands of loopback sockets in TIME_WAIT for 60 s,
 * and while the ephemeral ports are crowded every connect() is slower: the next run would pay for
 * the last one's. Wait (up to 65 s) for them to go.
 */
async function fewTimeWaits(): Promise<void> {
  const until = Date.now() + 65_000;
  if (timeWaits() > 2000) process.stderr.write(`(waiting for ${timeWaits()} TIME_WAIT sockets) `);
  while (timeWaits() > 2000 && Date.now() < until) await new Promise((r) => setTimeout(r, 1000));
}

type Who = 'drum' | 'nginx';
interface Run { rps: number; p99Ms: number | null; meanMs: number | null; cpuUs: number | null; requests: number; held: number; errors: string }
interface Measured { point: Point; runs: Record<Who, Run[]> }

const med = (runs: Run[], k: 'rps' | 'p99Ms' | 'cpuUs' | 'held'): number | null => {
  const xs = runs.flatMap((r) => (r[k] === null ? [] : [r[k]]));
  return xs.length === 0 ? null : median(xs);
};
const fmt = (n: number | null, d: number): string => (n === null || !Number.isFinite(n) ? '–' : n.toFixed(d));
const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b);

function table(s: Series, ms: Measured[]): string {
  const head = ['point', 'wrk -c', 'drum CPU µs/req', 'nginx CPU µs/req', 'CPU ratio', 'drum p99 ms', 'nginx p99 ms', 'p99 ratio', 'req/s drum / nginx', 'notes'];
  const rows = ms.map(({ point: p, runs: { drum, nginx } }) => {
    const notes = (['drum', 'nginx'] as const).flatMap((w) => [...new Set(({ drum, nginx })[w].map((r) => r.errors).filter((e) => e !== ''))].map((e) => `${w}: ${e}`));
    if (s.key === 'connections') notes.unshift(`held ${fmt(med(drum, 'held'), 0)} / ${fmt(med(nginx, 'held'), 0)}`);
    const r = (k: 'cpuUs' | 'p99Ms'): string => { const x = ratio(med(drum, k), med(nginx, k)); return x === null ? '–' : `${x.toFixed(2)}×`; };
    return [p.label, String(p.connections), fmt(med(drum, 'cpuUs'), 1), fmt(med(nginx, 'cpuUs'), 1), r('cpuUs'),
      fmt(med(drum, 'p99Ms'), 2), fmt(med(nginx, 'p99Ms'), 2), r('p99Ms'), `${fmt(med(drum, 'rps'), 0)} / ${fmt(med(nginx, 'rps'), 0)}`, notes.join('; ')];
  });
  return [`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i === 0 || i === head.length - 1 ? '---' : '---:')).join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** One small SVG: a panel per series, x its points, y (log2) drum-splitter's CPU and p99 ratios to nginx's. */
function svg(results: Array<{ series: Series; measured: Measured[] }>): { svg: string; width: number; height: number } {
  const W = 420; const H = 310; const L = 48; const R = 16; const T = 34; const B = 52; const LEGEND = 30;
  const esc = (t: string): string => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const panels = results.map(({ series, measured }, n) => {
    const pts = measured.map((m) => ({
      p: m.point,
      cpu: ratio(med(m.runs.drum, 'cpuUs'), med(m.runs.nginx, 'cpuUs')),
      p99: ratio(med(m.runs.drum, 'p99Ms'), med(m.runs.nginx, 'p99Ms')),
    }));
    const ys = pts.flatMap((q) => [q.cpu, q.p99]).filter((v): v is number => v !== null && v > 0);
    const lo = Math.floor(Math.log2(Math.min(1, ...ys)) - 0.01); const hi = Math.ceil(Math.log2(Math.max(2, ...ys)) + 0.01);
    const fx = (x: number): number => (series.logX ? Math.log10(x) : x);
    const xs = pts.map((q) => fx(q.p.x)); const x0 = Math.min(...xs); const x1 = Math.max(...xs);
    const X = (x: number): number => L + 20 + ((fx(x) - x0) / (x1 - x0 || 1)) * (W - L - R - 40);
    const Y = (v: number): number => T + ((hi - Math.log2(v)) / (hi - lo)) * (H - T - B);
    const out: string[] = [`<g transform="translate(${n * W},${LEGEND})">`, `<text x="${W / 2}" y="18" text-anchor="middle" font-weight="bold">${esc(series.title)}</text>`];
    for (let e = lo; e <= hi; e++) {
      const v = 2 ** e;
      out.push(`<line x1="${L}" x2="${W - R}" y1="${Y(v)}" y2="${Y(v)}" stroke="${e === 0 ? '#000' : '#ddd'}" ${e === 0 ? 'stroke-dasharray="4 3"' : ''}/>`,
        `<text x="${L - 5}" y="${Y(v) + 4}" text-anchor="end" font-size="11">${v >= 1 ? v : v.toFixed(2).replace(/0+$/, '')}×</text>`);
    }
    out.push(`<text x="${L + 4}" y="${Y(1) - 4}" font-size="10">nginx</text>`);
    for (const q of pts) q.p.tick.forEach((t, i) => out.push(`<text x="${X(q.p.x)}" y="${H - B + 16 + 12 * i}" text-anchor="middle" font-size="10">${esc(t)}</text>`));
    for (const [k, colour, dash] of [['cpu', '#1f6fb4', ''], ['p99', '#e2711d', 'stroke-dasharray="5 3"']] as const) {
      for (const g of new Set(pts.map((q) => q.p.group))) {
        const line = pts.filter((q) => q.p.group === g && q[k] !== null).map((q) => `${X(q.p.x)},${Y(q[k]!)}`).join(' ');
        out.push(`<polyline points="${line}" fill="none" stroke="${colour}" stroke-width="2" ${dash}/>`);
      }
      for (const q of pts) {
        if (q[k] === null) continue;
        const dy = q[k]! >= (q[k === 'cpu' ? 'p99' : 'cpu'] ?? 0) ? -7 : 14; // the higher value's label above, the lower's below
        out.push(`<circle cx="${X(q.p.x)}" cy="${Y(q[k]!)}" r="3.5" fill="${colour}"/>`,
          `<text x="${X(q.p.x)}" y="${Y(q[k]!) + dy}" text-anchor="middle" font-size="10" fill="${colour}">${q[k]!.toFixed(1)}</text>`);
      }
    }
    out.push('</g>');
    return out.join('\n');
  });
  const width = W * results.length;
  const legend = `<g transform="translate(${width / 2 - 190},20)" font-size="12"><line x1="0" x2="22" y1="-4" y2="-4" stroke="#1f6fb4" stroke-width="2"/><text x="27" y="0">CPU µs a request ÷ nginx's</text>`
    + `<line x1="200" x2="222" y1="-4" y2="-4" stroke="#e2711d" stroke-width="2" stroke-dasharray="5 3"/><text x="227" y="0">p99 ÷ nginx's (log₂ scale)</text></g>`;
  return { width, height: H + LEGEND, svg: `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H + LEGEND}" font-family="sans-serif"><rect width="100%" height="100%" fill="#fff"/>${legend}\n${panels.join('\n')}</svg>` };
}

/** The SVG in a bare page, screenshotted by chromium headless at exactly its size. */
function renderPng(plot: { svg: string; width: number; height: number }, file: string, dir: string): void {
  const page = join(dir, 'growth.html');
  writeFileSync(page, `<!doctype html><meta charset="utf-8"><body style="margin:0">${plot.svg}</body>`);
  const r = spawnSync('chromium', ['--headless', '--disable-gpu', '--no-sandbox', '--hide-scrollbars', `--screenshot=${resolve(file)}`,
    `--window-size=${plot.width},${plot.height}`, pathToFileURL(page).href], { encoding: 'utf8', timeout: 120_000 });
  if (r.error || r.status !== 0) throw new Error(`chromium failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr.slice(-500)}`);
}

async function main(): Promise<number> {
  if (!wrkAvailable()) { process.stderr.write('bench:growth: wrk not found on PATH (apt-get install wrk)\n'); return 2; }
  const nginx = findNginx();
  if (!nginx) { process.stderr.write('bench:growth: nginx not found: it is the base of every ratio (apt-get install nginx)\n'); return 2; }
  const args = parseArgs(process.argv.slice(2));
  const series = parseSeries();
  installCleanup();
  const fds = raiseFdLimit();
  if (fds < FD_LIMIT) process.stderr.write(`bench:growth: RLIMIT_NOFILE stays ${fds} (no CAP_SYS_RESOURCE to raise it to ${FD_LIMIT}): at 10,000 client connections a proxy has ${fds - 10_000} fds left for its upstream ones\n`);
  const duration = envInt('BENCH_DURATION', 10);
  const warmup = envInt('BENCH_WARMUP', 2);
  const rounds = envInt('BENCH_ROUNDS', 1);
  const logDir = makeTempDir('bench-growth-');
  const version = nginxVersion(nginx);

  const upPort = await freePort();
  const workerConnections = Math.min(NGINX_CONNECTIONS, fds);
  const upstream = await startNginx(nginx, 'upstream', upPort, bodyReadingJsonServerHttp(upPort, UPSTREAM_BODY), undefined, { workerConnections });
  /** A body's wrk script, written once. */
  const script = (body: string): string => {
    const f = join(logDir, `body-${body.length}.lua`);
    if (!existsSync(f)) writeFileSync(f, postScript(body, 'text/csv'));
    return f;
  };

  const start = async (who: Who, p: Point): Promise<Running> => {
    const port = await freePort();
    if (who === 'drum') return startNode(logDir, 'drum-splitter', DRUM_SPLITTER_CLI, [...drumSplitterArgs(port, upstream.url), ...p.drumFlags], port);
    // error_log at error, a user's default: the bench's warn would log every body spilled to a temp file.
    const directives = [`client_max_body_size ${BODY_LIMIT}`, 'error_log stderr error', ...p.nginxDirectives].map((d) => `  ${d};\n`).join('');
    return startNginx(nginx, 'split', port, directives + splitClientsHttp(port, [
      { name: 'fastapi', url: upstream.url, percent: 5 },
      { name: 'flask', url: upstream.url },
    ]), undefined, { workerConnections });
  };

  async function measure(who: Who, p: Point): Promise<Run> {
    process.stderr.write(`bench:growth: ${p.label}, -c${p.connections}, ${who} … `);
    let s: Running | undefined;
    try {
      await fewTimeWaits();
      s = await start(who, p);
      const o = { url: s.url + REQUEST_PATH, threads: 1, connections: p.connections, timeoutSec: WRK_TIMEOUT_SEC, script: script(p.body) };
      // Fills pools and JITs the hot path; at most 32 connections, so thousands of them leave no backlog in the measured run.
      await runWrk({ ...o, connections: Math.min(p.connections, 32), durationSec: warmup }, 'wrk', track);
      const cpu = s.pid === undefined ? undefined : meter(s.pid);
      let held = 0;
      const port = Number(new URL(s.url).port);
      const probe = setTimeout(() => { held = established(port); }, (duration * 1000) / 2);
      const w = await runWrk({ ...o, durationSec: duration }, 'wrk', track);
      clearTimeout(probe);
      const usage = w.requests > 0 ? cpu?.stop(w.requests) : undefined;
      const errors = errorSummary(w);
      process.stderr.write(`${w.rps.toFixed(0)} req/s, p99 ${fmt(w.p99Ms, 2)} ms, ${fmt(usage?.cpuUsPerRequest ?? null, 1)} µs/req${errors ? ` (${errors})` : ''}\n`);
      return { rps: w.rps, p99Ms: w.p99Ms, meanMs: w.latencyAvgMs, cpuUs: usage?.cpuUsPerRequest ?? null, requests: w.requests, held, errors };
    } catch (e) {
      const msg = (e as Error).message.split('\n')[0]!;
      process.stderr.write(`FAILED ${msg}\n`);
      return { rps: 0, p99Ms: null, meanMs: null, cpuUs: null, requests: 0, held: 0, errors: `failed: ${msg}` };
    } finally {
      await s?.stop();
    }
  }

  const results: Array<{ series: Series; measured: Measured[] }> = [];
  try {
    for (const s of series) {
      const measured: Measured[] = [];
      for (const point of s.points) {
        const runs = await rotatedRounds([{ name: 'drum' as const }, { name: 'nginx' as const }], rounds, (t) => measure(t.name, point));
        measured.push({ point, runs: { drum: runs.get('drum')!, nginx: runs.get('nginx')! } });
      }
      results.push({ series: s, measured });
    }
  } finally {
    await upstream.stop();
  }

  const argv = process.argv.slice(2);
  const load = ['wrk', ...wrkArgs({ url: `<target>/${REQUEST_PATH}`, threads: 1, connections: 0, durationSec: duration, timeoutSec: WRK_TIMEOUT_SEC, script: 'body.lua' })].join(' ').replace('-c0', '-c<N>');
  process.stdout.write([
    `command: \`BENCH_DURATION=${duration} BENCH_WARMUP=${warmup} BENCH_ROUNDS=${rounds} BENCH_SERIES=${series.map((s) => s.key).join(',')} npm run bench:growth${argv.length ? ` -- ${argv.join(' ')}` : ''}\``,
    `load: \`${load}\` (POST, \`Content-Type: text/csv\`); at each point drum-splitter (defaults, 5% to the canary, plus the point's flags) and nginx split_clients (1 worker, \`keepalive 32\` upstream, \`client_max_body_size ${BODY_LIMIT}\` like drum-splitter's --body-limit default, plus the point's directives) one after the other${rounds > 1 ? `, ${rounds} rounds in a rotated order, medians` : ''}, ${warmup}s warm-up each, all on 127.0.0.1; RLIMIT_NOFILE ${fds}, nginx worker_connections ${workerConnections}; CPU is the target's own processes (not wrk's or the upstream's)`,
    `upstream: nginx ${version ?? 'unknown'}, 1 worker, \`return 200 '${UPSTREAM_BODY}'\` once it has read the whole body into memory (\`mirror_request_body on\`, any size: a model server reads it before answering, and \`return\` alone answers early, which makes undici drop the connection mid-body) — the answer is small (${UPSTREAM_BODY.length} bytes) whatever the body: only the request grows`,
    machineLine(version),
    '',
    ...results.flatMap(({ series: s, measured }) => [`**${s.title}** — ${s.about}`, '', table(s, measured), '']),
  ].join('\n'));

  if (args.json) {
    writeFileSync(args.json, JSON.stringify({
      date: new Date().toISOString(), machine: machineLine(version), durationSec: duration, warmupSec: warmup, rounds, fdLimit: fds,
      series: results.map(({ series: s, measured }) => ({
        key: s.key, title: s.title,
        points: measured.map(({ point: p, runs }) => ({ label: p.label, bodyBytes: p.body.length, connections: p.connections, drumFlags: p.drumFlags, nginxDirectives: p.nginxDirectives, ...runs })),
      })),
    }, null, 2));
    process.stderr.write(`bench:growth: raw numbers written to ${args.json}\n`);
  }
  if (args.png) {
    renderPng(svg(results), args.png, logDir);
    process.stderr.write(`bench:growth: plot written to ${args.png}\n`);
  }
  return results.some((r) => r.measured.some((m) => [...m.runs.drum, ...m.runs.nginx].some((x) => x.requests === 0))) ? 1 : 0;
}

main().then((code) => process.exit(code), (e: unknown) => {
  process.stderr.write(`bench:growth: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
