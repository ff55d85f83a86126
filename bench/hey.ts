// hey (Debian's `hey`, rakyll/hey) at a fixed rate: `-c` workers each sending at most `-q`
// requests a second, so the total is c × q whatever the latency (as long as it stays under
// c / rate seconds). wrk cannot hold a rate; at the rates DRUM sees, latency is what counts.
import { spawn, spawnSync } from 'node:child_process';
import { track } from './proc.js';

export interface HeyOptions {
  url: string;
  /** Requests per second in all. */
  rate: number;
  workers: number;
  durationSec: number;
  body: string;
  contentType: string;
}

export interface HeyResult {
  requests: number;
  rps: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** Answers other than 2xx, and requests with no answer. */
  non2xx: number;
  errors: number;
  raw: string;
}

export function heyAvailable(bin = 'hey'): boolean {
  return !spawnSync(bin, ['-h'], { stdio: 'ignore' }).error;
}

/** hey's arguments for `o`; `extra` flags (e.g. -o csv) go before the URL. */
export function heyArgs(o: HeyOptions, extra: readonly string[] = []): string[] {
  const perWorker = o.rate / o.workers;
  return ['-z', `${o.durationSec}s`, '-c', String(o.workers), '-q', String(perWorker), '-m', 'POST', '-T', o.contentType, '-d', o.body, ...extra, o.url];
}

/** Runs hey and resolves to what it printed; a failure's output goes in the error. */
function hey(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('hey', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`hey exited ${code}: ${out.slice(-500)}`))));
  });
}

export function parseHey(raw: string): HeyResult {
  const pct = (p: number): number | null => {
    const m = new RegExp(`^\\s*${p}%+ in ([\\d.]+) secs`, 'm').exec(raw);
    return m === null ? null : Number(m[1]) * 1000;
  };
  let ok = 0;
  let other = 0;
  for (const m of raw.matchAll(/^\s*\[(\d{3})\]\s+(\d+) responses/gm)) {
    if (m[1]!.startsWith('2')) ok += Number(m[2]);
    else other += Number(m[2]);
  }
  let errors = 0;
  const errorPart = raw.split('Error distribution:')[1] ?? '';
  for (const m of errorPart.matchAll(/^\s*\[(\d+)\]\s/gm)) errors += Number(m[1]);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(raw);
  return { requests: ok + other + errors, rps: rps === null ? 0 : Number(rps[1]), p50Ms: pct(50), p99Ms: pct(99), non2xx: other, errors, raw };
}

export async function runHey(o: HeyOptions): Promise<HeyResult> {
  return parseHey(await hey(heyArgs(o)));
}

/** Requests a second each spread client sends, at least: one every 10 ms, well above any target's p99 here. */
const PER_CLIENT_RATE = 100;
/** At most this many clients: 30 hey processes for 3,000 req/s took this 2-core machine's CPU themselves. */
const MAX_CLIENTS = 10;

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** hey's per-request CSV (-o csv): each request's total time in ms, and its status. */
export function parseHeyCsv(text: string): { ms: number; status: number }[] {
  return text
    .split('\n')
    .slice(1)
    .filter((l) => /^\d/.test(l))
    .map((l) => {
      const cells = l.split(',');
      return { ms: Number(cells[0]) * 1000, status: Number(cells[6]) };
    });
}

/**
 * The rate from ceil(rate / 100) (at most 10) independent hey clients of one connection each
 * (`-c 1`), started one after another so their phases are unrelated: the
 * arrivals of many independent callers, not hey's `-c N` workers, whose tickers start together and
 * so send N requests at once every N / rate seconds. Percentiles are computed from every
 * request's own time (hey -o csv, 0.1 ms resolution).
 */
export async function runSpread(o: Omit<HeyOptions, 'workers'>): Promise<HeyResult> {
  const clients = Math.min(MAX_CLIENTS, Math.max(1, Math.ceil(o.rate / PER_CLIENT_RATE)));
  const outputs = await Promise.all(
    Array.from({ length: clients }, (_, i) =>
      new Promise<string>((resolve, reject) => {
        // Each one a little later, so no two start their tickers at the same moment.
        setTimeout(() => hey(heyArgs({ ...o, rate: o.rate / clients, workers: 1 }, ['-o', 'csv'])).then(resolve, reject), (i * 1000) / o.rate);
      }),
    ),
  );
  const rows = outputs.flatMap(parseHeyCsv);
  const times = rows.map((r) => r.ms).sort((a, b) => a - b);
  const non2xx = rows.filter((r) => r.status < 200 || r.status > 299).length;
  return { requests: rows.length, rps: rows.length / o.durationSec, p50Ms: percentile(times, 50), p99Ms: percentile(times, 99), non2xx, errors: 0, raw: '' };
}
