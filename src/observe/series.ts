import type { Subscribable } from '../common/subscribers.js';
import type { Outcome } from './outcomes.js';
import type { PollSample } from './poller.js';

/** One upstream over one interval; null where there is nothing to say (no requests, no /stats/). */
export interface SidePoint {
  /** Requests a second. */
  readonly rps: number;
  readonly errorRate: number | null;
  /** Seconds. */
  readonly p50: number | null;
  readonly p99: number | null;
  /** DRUM's RSS in bytes, from its last /stats/. */
  readonly rss: number | null;
}

export interface SeriesPoint {
  readonly at: string;
  readonly upstreams: Readonly<Record<string, SidePoint>>;
}

export interface SeriesView {
  readonly intervalMs: number;
  readonly upstreams: readonly string[];
  readonly baseline: string;
  readonly samples: readonly SeriesPoint[];
  /** Whether each upstream answered its last GET /ping (the poller's), null before the first. */
  readonly ping: Readonly<Record<string, boolean | null>>;
}

/** Latencies kept per upstream and interval: p99 of a uniform sample, bounded memory whatever the rate. */
const SAMPLE = 2000;
const HOUR = 3_600_000;

/** One upstream's interval so far: exact counts, a reservoir of latencies. */
class Side {
  requests = 0;
  errors = 0;
  readonly sample = new Float64Array(SAMPLE);

  add(status: number, seconds: number, random: () => number): void {
    const n = this.requests++;
    if (status >= 500) this.errors++;
    if (n < SAMPLE) this.sample[n] = seconds;
    else {
      // Algorithm R: the n-th value replaces a kept one with probability SAMPLE / (n + 1).
      const j = Math.floor(random() * (n + 1));
      if (j < SAMPLE) this.sample[j] = seconds;
    }
  }

  /** The interval's point, and a fresh start. */
  close(intervalMs: number, rss: number | null): SidePoint {
    const kept = this.sample.subarray(0, Math.min(this.requests, SAMPLE)).sort();
    // Nearest rank, as the rollout's quantile (rollout/stats.ts) takes it.
    const at = (q: number): number | null => (kept.length === 0 ? null : kept[Math.max(1, Math.ceil(q * kept.length)) - 1]!);
    const point = { rps: this.requests / (intervalMs / 1000), errorRate: this.requests === 0 ? null : this.errors / this.requests, p50: at(0.5), p99: at(0.99), rss };
    this.requests = 0;
    this.errors = 0;
    return point;
  }
}

/**
 * The last hour of each upstream's rate, errors, latency and DRUM memory, a point per interval,
 * kept in the process for the console (GET /series) — what a dashboard shows, with no
 * Prometheus. Time and randomness are injected; `tick()` closes an interval.
 */
export class Series {
  readonly #sides = new Map<string, Side>();
  readonly #rss = new Map<string, number>();
  readonly #ping = new Map<string, boolean>();
  readonly #points: SeriesPoint[] = [];
  readonly #unsubscribe: (() => void)[] = [];

  constructor(
    private readonly opts: {
      readonly upstreams: readonly string[];
      readonly intervalMs: number;
      readonly now: () => number;
      readonly random: () => number;
    },
  ) {
    for (const name of opts.upstreams) this.#sides.set(name, new Side());
  }

  /** Hears the exchanges and the polls. */
  listen(outcomes: Subscribable<Outcome>, poller: Subscribable<PollSample>): void {
    const { random } = this.opts;
    this.#unsubscribe.push(
      // The split's exchanges: those a cohort rule took would make a canary look busier (or worse) than its share.
      outcomes.subscribe('series', (o) => {
        if (o.routed === true) return;
        this.#sides.get(o.serverType)?.add(o.status, o.seconds, random);
        if (o.fallback !== undefined) this.#sides.get(o.fallback.from)?.add(o.fallback.status, o.fallback.seconds, random);
      }),
      poller.subscribe('series', (s) => {
        if (s.kind === 'ping') this.#ping.set(s.upstream, s.answered);
        else if (s.kind === 'stats' && s.memory !== undefined) this.#rss.set(s.upstream, s.memory.rss);
      }),
    );
  }

  stop(): void {
    for (const off of this.#unsubscribe.splice(0)) off();
  }

  /** Closes the interval: a point for each upstream; points older than an hour leave. */
  tick(): void {
    const { intervalMs, now } = this.opts;
    const at = now();
    const upstreams = Object.fromEntries([...this.#sides].map(([name, side]) => [name, side.close(intervalMs, this.#rss.get(name) ?? null)]));
    this.#points.push({ at: new Date(at).toISOString(), upstreams });
    const keep = Math.ceil(HOUR / intervalMs);
    if (this.#points.length > keep) this.#points.splice(0, this.#points.length - keep);
  }

  view(): SeriesView {
    const { upstreams, intervalMs } = this.opts;
    const ping = Object.fromEntries(upstreams.map((name) => [name, this.#ping.get(name) ?? null]));
    return { intervalMs, upstreams, baseline: upstreams[0]!, samples: this.#points, ping };
  }
}
