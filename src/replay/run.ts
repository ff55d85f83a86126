import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import type { Answer } from '../compare/answers.js';
import type { ReplayRecord } from './input.js';

/** One send to one backend: its answer, or why there is none. */
export interface Sent {
  readonly answer?: Answer;
  /** From sending to the last byte of the body, as the seed times it. */
  readonly latencyMs: number;
  readonly error?: string;
}

/** One record sent to both backends (and, in the noise sample, to the baseline again). */
export interface Exchange {
  readonly record: ReplayRecord;
  readonly baseline: Sent;
  readonly canary: Sent;
  readonly again?: Sent;
}

/**
 * Whether exchange `n` (0-based, in the order started) is in a noise sample of `share`: exactly
 * that share, spread evenly (0.25: the 4th, 8th, …), so that a replay is the same each time.
 */
export function inNoiseSample(n: number, share: number): boolean {
  return Math.floor((n + 1) * share) > Math.floor(n * share);
}

export interface RunOptions<T> {
  readonly baseline: URL;
  readonly canary: URL;
  readonly concurrency: number;
  /** Records started per second, overall; undefined for as fast as concurrency allows. */
  readonly rate?: number;
  readonly timeoutMs: number;
  /** The share of exchanges whose baseline is sent the request a second time, 0..1. */
  readonly noiseSample: number;
  /** How many times each record is sent (to both backends each time). */
  readonly repeat: number;
  /** Aborted: start nothing more, cut what is in flight, keep only what finished. */
  readonly signal: AbortSignal;
  /** Called as each exchange finishes; what it returns is what replayRecords collects. */
  readonly onExchange: (exchange: Exchange) => T;
}

class Target {
  readonly pool: Pool;
  /** The backend URL's path without trailing slashes: the seed sends f"{base_url}{record.path}". */
  readonly basePath: string;

  constructor(url: URL, connections: number) {
    this.pool = new Pool(url.origin, { connections });
    this.basePath = url.pathname.replace(/\/+$/, '');
  }
}

async function send(target: Target, record: ReplayRecord, timeoutMs: number, stop: AbortSignal): Promise<Sent> {
  const start = performance.now();
  // One limit for the whole exchange, connecting and the body included; undici's own
  // headers/body timeouts (300 s by default) are turned off so that they cannot cut a longer --timeout.
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const res = await target.pool.request({
      method: record.method,
      path: target.basePath + record.path,
      headers: record.headers as string[],
      body: record.body.length > 0 ? record.body : null,
      headersTimeout: 0,
      bodyTimeout: 0,
      signal: AbortSignal.any([stop, timeout]),
    });
    const body = new Uint8Array(await res.body.arrayBuffer());
    const type = res.headers['content-type'];
    const answer: Answer = typeof type === 'string' ? { status: res.statusCode, body, contentType: type } : { status: res.statusCode, body };
    return { answer, latencyMs: performance.now() - start };
  } catch (err) {
    return { latencyMs: performance.now() - start, error: timeout.aborted ? `timeout after ${timeoutMs} ms` : (err as Error).message };
  }
}

/**
 * Sends every record to both backends at once, `repeat` times in a row, `concurrency` records at
 * a time, each exchange started no sooner than its slot at `rate`. Both sends of an exchange start
 * together, so whatever drifts (the machine's load, a backend warming up) drifts for both; the one
 * started first alternates from one repeat to the next. Records are taken from `records` as a
 * worker is free for one, so at most `concurrency` are held. Resolves with onExchange's value for
 * each finished exchange, in record order and then repeat order; a failed send is part of its
 * exchange, never a rejection.
 */
export async function replayRecords<T>(records: AsyncGenerator<ReplayRecord>, opts: RunOptions<T>): Promise<T[]> {
  const baseline = new Target(opts.baseline, opts.concurrency);
  const canary = new Target(opts.canary, opts.concurrency);
  const done: { value: T }[] = [];
  const { signal, timeoutMs } = opts;
  const interval = opts.rate === undefined ? 0 : 1000 / opts.rate;
  const t0 = performance.now();
  let next = 0;

  const exchange = async (record: ReplayRecord, n: number, canaryFirst: boolean): Promise<Exchange> => {
    const to = (target: Target): Promise<Sent> => send(target, record, timeoutMs, signal);
    const [b, c] = canaryFirst ? await Promise.all([to(canary), to(baseline)]).then(([cs, bs]) => [bs, cs] as const) : await Promise.all([to(baseline), to(canary)]);
    // Sent after the first answer, not beside it, so a timestamp in the answer has moved on.
    const again = b.answer && c.answer && inNoiseSample(n, opts.noiseSample) ? await to(baseline) : undefined;
    return again === undefined ? { record, baseline: b, canary: c } : { record, baseline: b, canary: c, again };
  };

  const worker = async (): Promise<void> => {
    while (!signal.aborted) {
      const taken = await records.next();
      if (taken.done === true) return;
      const i = next++;
      for (let k = 0; k < opts.repeat; k++) {
        const n = i * opts.repeat + k;
        const wait = t0 + n * interval - performance.now();
        // Rejects when interrupted; the checks below then end the worker.
        if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => undefined);
        if (signal.aborted) return;
        const e = await exchange(taken.value, n, k % 2 === 1);
        if (signal.aborted) return;
        done[n] = { value: opts.onExchange(e) };
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
  } finally {
    // Interrupted: the records not taken are not read.
    await Promise.all([baseline.pool.destroy(), canary.pool.destroy(), records.return(undefined)]);
  }
  // Holes are records not done when interrupted; filter skips them.
  return done.filter(() => true).map((d) => d.value);
}
