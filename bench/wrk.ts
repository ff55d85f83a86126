// wrk runner and parser of its text output (`--latency` distribution included).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export interface WrkOptions {
  url: string;
  threads: number;
  connections: number;
  durationSec: number;
  timeoutSec?: number;
  /** A wrk Lua script (e.g. setting the method and body). */
  script?: string;
}

export interface WrkResult {
  requests: number;
  rps: number;
  latencyAvgMs: number | null;
  p50Ms: number | null;
  p75Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  raw: string;
}

export function wrkAvailable(bin = 'wrk'): boolean {
  const r = spawnSync(bin, ['-v'], { stdio: 'ignore' });
  return !r.error; // `wrk -v` exits 1 after printing usage, so only a spawn error means "missing"
}

export function wrkArgs(o: WrkOptions): string[] {
  const a = [`-t${o.threads}`, `-c${o.connections}`, `-d${o.durationSec}s`, '--latency'];
  if (o.timeoutSec !== undefined) a.push(`--timeout`, `${o.timeoutSec}s`);
  if (o.script !== undefined) a.push('-s', o.script);
  return [...a, o.url];
}

const UNIT_MS: Record<string, number> = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

function toMs(v: string | undefined, unit: string | undefined): number | null {
  if (v === undefined || unit === undefined) return null;
  const f = UNIT_MS[unit];
  return f === undefined ? null : Math.round(Number(v) * f * 1e6) / 1e6; // drop float noise from the unit scaling
}

export function parseWrk(raw: string): WrkResult {
  const num = (re: RegExp): number => { const m = re.exec(raw); return m?.[1] ? Number(m[1]) : 0; };
  const pct = (p: number): number | null => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(raw);
    return toMs(m?.[1], m?.[2]);
  };
  const avg = /^\s*Latency\s+([\d.]+)(us|ms|s|m|h)/m.exec(raw);
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(raw);
  return {
    requests: num(/(\d+) requests in/),
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    latencyAvgMs: toMs(avg?.[1], avg?.[2]),
    p50Ms: pct(50), p75Ms: pct(75), p90Ms: pct(90), p99Ms: pct(99),
    // wrk counts status >= 400 here despite the wording
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    socketErrors: {
      connect: Number(se?.[1] ?? 0), read: Number(se?.[2] ?? 0),
      write: Number(se?.[3] ?? 0), timeout: Number(se?.[4] ?? 0),
    },
    raw,
  };
}

export function errorSummary(r: WrkResult): string {
  const s = r.socketErrors;
  const sock = s.connect + s.read + s.write + s.timeout;
  const parts: string[] = [];
  if (r.non2xx) parts.push(`${r.non2xx} non-2xx`);
  if (sock) parts.push(`socket errors: connect ${s.connect}, read ${s.read}, write ${s.write}, timeout ${s.timeout}`);
  if (r.requests === 0) parts.push('no requests completed');
  return parts.join('; ');
}

/** Runs wrk to completion; `onSpawn` lets the caller track the child for Ctrl-C cleanup. */
export function runWrk(o: WrkOptions, bin = 'wrk', onSpawn?: (p: ChildProcess) => void): Promise<WrkResult> {
  return new Promise((res, rej) => {
    const p = spawn(bin, wrkArgs(o), { stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn?.(p);
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.once('error', rej);
    p.once('close', (code) => {
      if (code !== 0) rej(new Error(`wrk exited ${code}: ${err || out}`));
      else res(parseWrk(out));
    });
  });
}

/** A wrk script sending every request as a POST with this body and content type. */
export function postScript(body: string, contentType: string): string {
  const lua = (v: string): string => JSON.stringify(v); // a JSON string is a valid Lua string here: ASCII, \n and \" escapes
  return `wrk.method = "POST"\nwrk.body = ${lua(body)}\nwrk.headers["Content-Type"] = ${lua(contentType)}\n`;
}
