import type { SideStats } from './checks.js';

/** An exchange as the window takes it: whom it counts against, its status and latency. */
export interface Observed {
  readonly serverType: string;
  readonly status: number;
  readonly seconds: number;
}

interface Bucket {
  readonly start: number;
  readonly sides: Map<string, { requests: number; errors: number; seen: number; sample: number[] }>;
}

/**
 * The last `windowMs` of exchanges per upstream, in buckets of `bucketMs`: counts exactly, and
 * latencies as a uniform sample of at most `samplePerBucket` per bucket and upstream (reservoir
 * sampling), so a busy baseline costs bounded memory while a small canary keeps every sample.
 * Time and randomness are injected.
 */
export class ExchangeWindow {
  readonly #buckets: Bucket[] = [];

  constructor(
    private readonly opts: { readonly windowMs: number; readonly bucketMs: number; readonly samplePerBucket: number; readonly random: () => number },
  ) {}

  add(o: Observed, now: number): void {
    const start = now - (now % this.opts.bucketMs);
    let bucket = this.#buckets.at(-1);
    if (bucket === undefined || bucket.start !== start) {
      bucket = { start, sides: new Map() };
      this.#buckets.push(bucket);
      this.#expire(now);
    }
    let side = bucket.sides.get(o.serverType);
    if (side === undefined) {
      side = { requests: 0, errors: 0, seen: 0, sample: [] };
      bucket.sides.set(o.serverType, side);
    }
    side.requests++;
    if (o.status >= 500) side.errors++;
    side.seen++;
    if (side.sample.length < this.opts.samplePerBucket) {
      side.sample.push(o.seconds);
    } else {
      // Algorithm R: the i-th value replaces a kept one with probability size / i.
      const j = Math.floor(this.opts.random() * side.seen);
      if (j < this.opts.samplePerBucket) side.sample[j] = o.seconds;
    }
  }

  /** What `serverType` did in the window ending at `now`; latencies ascending. */
  stats(serverType: string, now: number): SideStats {
    this.#expire(now);
    let requests = 0;
    let errors = 0;
    const latencies: number[] = [];
    for (const bucket of this.#buckets) {
      const side = bucket.sides.get(serverType);
      if (side === undefined) continue;
      requests += side.requests;
      errors += side.errors;
      for (const s of side.sample) latencies.push(s);
    }
    latencies.sort((a, b) => a - b);
    return { requests, errors, latencies };
  }

  /** Forgets everything: a new step judges only its own traffic. */
  clear(): void {
    this.#buckets.length = 0;
  }

  /** Forgets the latencies so far and keeps the counts: the window after a settled change. */
  dropLatencies(): void {
    for (const bucket of this.#buckets) {
      for (const side of bucket.sides.values()) {
        side.sample.length = 0;
        side.seen = 0;
      }
    }
  }

  #expire(now: number): void {
    // A bucket leaves once it ends before the window starts.
    while (this.#buckets.length > 0 && this.#buckets[0]!.start + this.opts.bucketMs <= now - this.opts.windowMs) this.#buckets.shift();
  }
}
