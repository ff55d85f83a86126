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

export function heyArgs(o: HeyOptions): string[] {
  const perWorker = o.rate / o.workers;
  return ['-z', `${o.durationSec}s`, '-c', String(o.workers), '-q', String(perWorker), '-m', 'POST', '-T', o.contentType, '-d', o.body, o.url];
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

export function runHey(o: HeyOptions): Promise<HeyResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('hey', heyArgs(o), { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(parseHey(out)) : reject(new Error(`hey exited ${code}: ${out.slice(-500)}`))));
  });
}
