// `npm run bench:latency`: the latency a proxy adds at the rates a DRUM pod really sees, not at
// saturation. hey (Debian's package) sends the bench's prediction at fixed total rates (default
// 200, 1,000 and 3,000 req/s) to each target in turn — direct, nginx split_clients, node:http
// answering itself, the bare node:http + undici proxy and drum-splitter — and the table shows each
// target's p50/p99 and what it adds to direct's in the same round. Why hey: it is in Debian, it
// is not a Node process competing with the targets on the same cores' runtime, and `-q` holds a
// rate per worker (closed loop per worker: exact while a request takes less than its interval,
// 20 / rate, i.e. up to 6.7 ms at 3,000 req/s, which every target here stays under at p50).
// Two client patterns (BENCH_PATTERNS): "spread", up to 10 independent one-connection clients
// (runSpread: the arrivals of many callers), and "bursts", hey -c 20 at the same total rate, whose
// workers tick together and so send 20 requests at once every 20 / rate seconds — the pattern the
// issue's first numbers were taken with, and the one where a single-threaded proxy queues.
// Markdown to stdout, progress to stderr.
// Env: BENCH_RATES (200,1000,3000), BENCH_PATTERNS (spread,bursts), BENCH_DURATION (10), BENCH_WARMUP (2), BENCH_ROUNDS (3), NGINX_BIN.
// Flags: --only a,b (direct always runs: what the others add is measured against it).
import { REQUEST_BODY, REQUEST_PATH, envInt, machineLine, median, reportGate, rotatedRounds, startUpstream } from './common.js';
import { heyArgs, heyAvailable, runHey, runSpread, type HeyOptions, type HeyResult } from './hey.js';
import { findNginx, nginxVersion } from './nginx.js';
import { installCleanup, makeTempDir } from './proc.js';
import { BARE_ROW, DRUM_SPLITTER_ROW, NGINX_ROW, Skip, targets, type Ctx, type Started, type Target } from './targets.js';

const DEFAULT_ROWS = ['direct', NGINX_ROW, 'node:http answering itself', BARE_ROW, DRUM_SPLITTER_ROW];
/** hey's workers: the rate is shared among them. */
const WORKERS = 20;
/** The gate: at this rate, drum-splitter adds at most this much over what the bare proxy adds. */
const GATE = { rate: 1000, p50Ms: 0.3, p99Ms: 1 };

interface Run { result?: HeyResult; note: string }

type Pattern = 'spread' | 'bursts';
const PATTERNS: Record<Pattern, string> = {
  spread: 'spread: min(10, rate / 100) one-connection hey clients at unrelated phases (hey -c 1 -q rate/clients each)',
  bursts: `bursts: one hey with -c ${WORKERS} -q rate/${WORKERS}, its workers ticking together`,
};

function parsePatterns(): Pattern[] {
  const text = process.env.BENCH_PATTERNS ?? 'spread,bursts';
  const patterns = text.split(',').map((p) => p.trim());
  const bad = patterns.find((p) => !(p in PATTERNS));
  if (bad !== undefined) throw new Error(`BENCH_PATTERNS: "${bad}" is not one of ${Object.keys(PATTERNS).join(', ')}`);
  return patterns as Pattern[];
}

function parseRates(): number[] {
  const text = process.env.BENCH_RATES ?? '200,1000,3000';
  const rates = text.split(',').map((r) => Number(r.trim()));
  if (rates.some((r) => !Number.isInteger(r) || r < WORKERS)) throw new Error(`BENCH_RATES must be whole rates of at least ${WORKERS} req/s, got "${text}"`);
  return rates;
}

function parseOnly(argv: string[]): string[] {
  if (argv.length === 0) return DEFAULT_ROWS;
  if (argv[0] !== '--only' || argv[1] === undefined || argv.length > 2) throw new Error('usage: latency.js [--only name1,name2]');
  return ['direct', ...argv[1].split(',').map((s) => s.trim()).filter((n) => n !== 'direct')];
}

const ms = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(2));
const plus = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '–' : `${n >= 0 ? '+' : ''}${n.toFixed(2)}`);

async function main(): Promise<number> {
  if (!heyAvailable()) {
    process.stderr.write('bench:latency: hey not found on PATH (Debian/Ubuntu: apt-get install hey)\n');
    return 2;
  }
  installCleanup();
  const rates = parseRates();
  const patterns = parsePatterns();
  const names = parseOnly(process.argv.slice(2));
  const unknown = names.filter((n) => !targets.some((t) => t.name === n));
  if (unknown.length > 0) throw new Error(`no target named ${unknown.join(', ')}; targets: ${targets.map((t) => t.name).join(', ')}`);
  const chosen = names.map((n) => targets.find((t) => t.name === n)!);
  const duration = envInt('BENCH_DURATION', 10);
  const warmup = envInt('BENCH_WARMUP', 2);
  const rounds = envInt('BENCH_ROUNDS', 3);
  const logDir = makeTempDir('bench-latency-');
  const nginx = findNginx();
  const upstream = await startUpstream(nginx, logDir);
  const ctx: Ctx = { upstreamUrl: upstream.url, upstreamPid: upstream.pid, nginx, logDir };
  const load = (url: string, rate: number, durationSec: number): HeyOptions => ({ url, rate, workers: WORKERS, durationSec, body: REQUEST_BODY, contentType: 'text/csv' });

  const send = (pattern: Pattern, o: HeyOptions): Promise<HeyResult> => (pattern === 'spread' ? runSpread(o) : runHey(o));

  async function measure(t: Target, rate: number, pattern: Pattern): Promise<Run> {
    process.stderr.write(`bench:latency: ${pattern} ${rate} req/s ${t.name} … `);
    let s: Started | undefined;
    try {
      s = await t.start(ctx);
      const url = s.url + REQUEST_PATH;
      await send(pattern, load(url, rate, warmup));
      const result = await send(pattern, load(url, rate, duration));
      const failed = result.errors + result.non2xx;
      process.stderr.write(`p50 ${ms(result.p50Ms ?? undefined)} p99 ${ms(result.p99Ms ?? undefined)} ms${failed ? `, ${failed} failed` : ''}\n`);
      return { result, note: failed ? `${failed} failed` : '' };
    } catch (e) {
      const msg = (e as Error).message.split('\n')[0]!;
      process.stderr.write(`${e instanceof Skip ? '' : 'FAILED '}${msg}\n`);
      return { note: msg };
    } finally {
      await s?.stop();
    }
  }

  const sections: string[] = [];
  const gates: string[] = [];
  const command = `BENCH_RATES=${rates.join(',')} BENCH_PATTERNS=${patterns.join(',')} BENCH_DURATION=${duration} BENCH_WARMUP=${warmup} BENCH_ROUNDS=${rounds} npm run bench:latency${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  try {
    for (const pattern of patterns) for (const rate of rates) {
      const runs = await rotatedRounds(chosen, rounds, (t) => measure(t, rate, pattern));
      const direct = runs.get('direct')!;
      /** A target's percentile in each round, and what it adds to direct's in that round. */
      const per = (name: string, key: 'p50Ms' | 'p99Ms'): { own: number; added: number } => {
        const own = runs.get(name)!.map((r) => r.result?.[key] ?? NaN);
        const added = own.map((v, i) => v - (direct[i]?.result?.[key] ?? NaN));
        return { own: median(own), added: median(added) };
      };
      const lines = chosen.map((t) => {
        const p50 = per(t.name, 'p50Ms');
        const p99 = per(t.name, 'p99Ms');
        const notes = [...new Set(runs.get(t.name)!.map((r) => r.note).filter((n) => n !== ''))].join('; ');
        const byRound = runs.get(t.name)!.map((r) => `${ms(r.result?.p50Ms ?? undefined)}/${ms(r.result?.p99Ms ?? undefined)}`).join(' · ');
        return `| ${t.name} | ${ms(p50.own)} | ${ms(p99.own)} | ${t.name === 'direct' ? '–' : plus(p50.added)} | ${t.name === 'direct' ? '–' : plus(p99.added)} | ${byRound} | ${notes} |`;
      });
      sections.push([
        `**${rate} req/s, ${pattern}**`,
        '',
        '| target | p50 ms | p99 ms | adds p50 | adds p99 | p50/p99 per round | notes |',
        '| --- | ---: | ---: | ---: | ---: | --- | --- |',
        ...lines,
        '',
      ].join('\n'));
      if (rate === GATE.rate && names.includes(BARE_ROW) && names.includes(DRUM_SPLITTER_ROW)) {
        const d50 = per(DRUM_SPLITTER_ROW, 'p50Ms').added - per(BARE_ROW, 'p50Ms').added;
        const d99 = per(DRUM_SPLITTER_ROW, 'p99Ms').added - per(BARE_ROW, 'p99Ms').added;
        const figure = `p50 ${plus(d50)} ms, p99 ${plus(d99)} ms over what the bare proxy adds`;
        const bar = `p50 ≤ +${GATE.p50Ms} ms, p99 ≤ +${GATE.p99Ms} ms`;
        const met = d50 <= GATE.p50Ms && d99 <= GATE.p99Ms;
        // The gate is the spread pattern's (many callers); bursts are shown beside it.
        gates.push(pattern === 'spread'
          ? reportGate({ name: `latency at a fixed ${GATE.rate} req/s (spread): what the features add`, bar, figure, met, command })
          : `bursts at ${GATE.rate} req/s, beside the gate: ${figure}`);
        if (names.includes(NGINX_ROW)) {
          gates.push(`${pattern} at ${GATE.rate} req/s, the anchor: drum-splitter adds p50 ${ms(per(DRUM_SPLITTER_ROW, 'p50Ms').added)} ms, nginx split_clients ${ms(per(NGINX_ROW, 'p50Ms').added)} ms`);
        }
      }
    }
  } finally {
    await upstream.stop();
  }
  process.stdout.write([
    `command: \`${command}\``,
    `load: POST /predict/ with the bench's CSV, patterns — ${patterns.map((p) => PATTERNS[p]).join('; ')}; e.g. \`hey ${heyArgs(load('<target>/predict/', rates[0]!, duration)).map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}\`; ${warmup}s warm-up, targets rotated each round, medians of ${rounds}; "adds" is the target's percentile minus direct's in the same round`,
    `upstream: ${upstream.desc}`,
    machineLine(nginx ? nginxVersion(nginx) : null),
    '',
    ...sections,
    ...gates.flatMap((g) => [g, '']),
  ].join('\n'));
  return 0;
}

main().then((code) => process.exit(code), (e: unknown) => {
  process.stderr.write(`bench:latency: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
