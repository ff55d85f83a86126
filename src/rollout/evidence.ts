import type { Subscribable } from '../common/subscribers.js';
import { failedAttempt, type Outcome } from '../observe/outcomes.js';
import type { DrumMemory } from '../observe/health.js';
import type { PollSample } from '../observe/poller.js';
import { mismatchSample, type MismatchSample, type ShadowFinished } from '../shadow/shadow.js';
import { isMeasure, type Evidence, type MemoryEvidence, type ShadowEvidence } from './checks.js';
import type { RolloutPlan } from './plan.js';
import { growthPerHour } from './stats.js';
import { ExchangeWindow } from './window.js';

/**
 * Where the controller's numbers come from. The same controller, checks and state machine judge
 * either this process's own exchanges (LocalEvidence) or a fleet's, read from Prometheus
 * (fleet/prometheus.ts).
 */
export interface EvidenceSource {
  /**
   * What the checks judge, for the window ending at `at`; never rejects (no numbers: say why in
   * `unavailable`). `stopped` is aborted when the controller stops: a query still out gives up.
   */
  gather(at: number, stopped: AbortSignal): Promise<Evidence>;
  /** A new step (or rollout) judges only its own traffic, from now on: all of it, or only its latencies (see Fresh). */
  reset(scope?: Fresh): void;
  /** For a source that collects between gathers: begins; `judging` says whether a rollout is active (an idle one collects nothing). */
  start?(judging: () => boolean): void;
  /** A PromQL instant query at `at`, its {window} the step's own window: the plan's query checks (the fleet's Prometheus; serve has none). */
  query?(promql: string, at: number, stopped: AbortSignal): Promise<readonly { readonly value: number }[]>;
  stop?(): void;
}

/**
 * What a window starting again leaves out: `all` exchanges so far (a new step; a failing window
 * confirmed on new evidence), or their `latency` samples only (a settled change: what the change
 * itself cost is not judged, the errors it brought still count).
 */
export type Fresh = 'all' | 'latency';

const HOUR = 3_600_000;
/** Latency samples kept per bucket and upstream: p99 and the U test over up to ten buckets of these. */
const SAMPLE_PER_BUCKET = 4000;

/** The canary's RSS over the last hour, for the leak check: the same fit whichever source reads it. */
export class RssHistory {
  readonly #points: [number, number][] = [];

  /** A size that is not one (NaN, ±Inf, negative: see isMeasure) is left out: one would make the fit NaN. */
  add(at: number, rss: number): void {
    if (isMeasure(rss)) this.#points.push([at, rss]);
  }

  /** Growth per hour over the last hour; undefined until a quarter of an hour of points, or one restart's noise reads as a leak. */
  growthPerHour(now: number): number | undefined {
    while (this.#points.length > 0 && this.#points[0]![0] < now - HOUR) this.#points.shift();
    const span = this.#points.length > 0 ? this.#points.at(-1)![0] - this.#points[0]![0] : 0;
    return this.#points.length >= 3 && span >= HOUR / 4 ? growthPerHour(this.#points) : undefined;
  }
}

/** One process's evidence: its own exchanges (the window) and its upstream polls (/ping, /stats/). */
export class LocalEvidence implements EvidenceSource {
  readonly #window: ExchangeWindow;
  /** Each upstream's last DRUM memory. */
  readonly #memory = new Map<string, DrumMemory | undefined>();
  readonly #rss = new RssHistory();
  /** The canary's last /info/ identity. */
  #identity: string | undefined;
  readonly #unsubscribe: (() => void)[] = [];
  /** The shadow's compared pairs to the canary, each side under its upstream's name. */
  readonly #pairs: ExchangeWindow;
  /** Its mismatches, one entry each under the canary's name. */
  readonly #mismatches: ExchangeWindow;
  /** The exchanges cohort rules took to their upstreams: counted, not judged. */
  readonly #routed: ExchangeWindow;
  /** The window's last mismatch and when it came. */
  #lastMismatch: { readonly at: number; readonly sample: MismatchSample } | undefined;

  constructor(
    private readonly deps: {
      readonly plan: RolloutPlan;
      readonly outcomes: Subscribable<Outcome>;
      /** Upstream polls (/ping, /stats/) and how long one has been silent. */
      readonly poller: Subscribable<PollSample> & { downMs(upstream: string): number };
      readonly now: () => number;
      /** The live shadow's finished copies (every process's), and whether it is on now; given only when it copies to the canary. */
      readonly shadow?: Subscribable<ShadowFinished> & { readonly enabled: boolean };
    },
  ) {
    const opts = { windowMs: deps.plan.windowMs, bucketMs: deps.plan.intervalMs, samplePerBucket: SAMPLE_PER_BUCKET, random: Math.random };
    this.#window = new ExchangeWindow(opts);
    this.#pairs = new ExchangeWindow(opts);
    this.#mismatches = new ExchangeWindow({ ...opts, samplePerBucket: 0 });
    this.#routed = new ExchangeWindow({ ...opts, samplePerBucket: 0 });
  }

  start(judging: () => boolean): void {
    const { deps } = this;
    this.#unsubscribe.push(
      // Only while it judges: an idle controller costs the request path one Set lookup. The split's
      // exchanges are judged; those a cohort rule took are only counted.
      deps.outcomes.subscribe('rollout', (o) => {
        if (!judging()) return;
        const now = deps.now();
        if (o.routed === true) return this.#routed.add(o, now);
        this.#window.add(o, now);
        // The upstream a fallback left is judged on its failure, not on the baseline's answer.
        if (o.fallback !== undefined) this.#window.add(failedAttempt(o, o.fallback), now);
      }),
      deps.poller.subscribe('rollout', (s) => this.#polled(s)),
    );
    const { shadow } = deps;
    if (shadow !== undefined) {
      this.#unsubscribe.push(
        shadow.subscribe('rollout', (f) => {
          if (judging()) this.#shadowed(f, deps.now());
        }),
      );
    }
  }

  /** A compared copy: both sides into the pairs' window, a mismatch counted and kept (drops and errors have no pair). */
  #shadowed(f: ShadowFinished, now: number): void {
    const { plan } = this.deps;
    if (f.pair === undefined) return;
    this.#pairs.add({ serverType: plan.baseline, status: f.pair.baselineStatus, seconds: f.pair.baselineSeconds }, now);
    this.#pairs.add({ serverType: plan.canary, status: f.pair.shadowStatus, seconds: f.pair.shadowSeconds }, now);
    if (f.result !== 'mismatch') return;
    this.#mismatches.add({ serverType: plan.canary, status: 0, seconds: 0 }, now);
    this.#lastMismatch = { at: now, sample: mismatchSample(f.line!) };
  }

  /** The shadow's pairs in the window; undefined while it is off and compared none. */
  #shadowEvidence(at: number): ShadowEvidence | undefined {
    const { plan, shadow } = this.deps;
    const baseline = this.#pairs.stats(plan.baseline, at);
    if (shadow?.enabled !== true && baseline.requests === 0) return undefined;
    const mismatches = this.#mismatches.stats(plan.canary, at).requests;
    const last = this.#lastMismatch;
    const sample = mismatches > 0 && last !== undefined && last.at > at - plan.windowMs ? last.sample : undefined;
    return { compared: baseline.requests, mismatches, baseline, canary: this.#pairs.stats(plan.canary, at), sample };
  }

  stop(): void {
    for (const off of this.#unsubscribe.splice(0)) off();
  }

  reset(scope: Fresh = 'all'): void {
    if (scope === 'latency') {
      this.#window.dropLatencies();
      this.#pairs.dropLatencies();
    } else {
      this.#window.clear();
      this.#routed.clear();
      this.#pairs.clear();
      this.#mismatches.clear();
      this.#lastMismatch = undefined;
    }
  }

  /** Already here: resolves at once. */
  async gather(at: number): Promise<Evidence> {
    const { plan, poller } = this.deps;
    const canary = this.#memory.get(plan.canary);
    const memory: MemoryEvidence = {
      canaryRss: canary?.rss,
      baselineRss: this.#memory.get(plan.baseline)?.rss,
      canaryGrowthPerHour: this.#rss.growthPerHour(at),
      canaryOom: canary?.containerLimit === undefined || canary.containerMaxUsed === undefined ? undefined : canary.containerMaxUsed >= canary.containerLimit,
    };
    return {
      baseline: this.#window.stats(plan.baseline, at),
      canary: this.#window.stats(plan.canary, at),
      memory,
      canaryDownMs: poller.downMs(plan.canary),
      canaryIdentity: this.#identity,
      shadow: this.#shadowEvidence(at),
      routed: { [plan.baseline]: this.#routed.stats(plan.baseline, at).requests, [plan.canary]: this.#routed.stats(plan.canary, at).requests },
    };
  }

  #polled(sample: PollSample): void {
    // An /info/ that cannot be read says nothing about a change: the last known identity stands.
    if (sample.kind === 'info' && sample.upstream === this.deps.plan.canary && sample.identity !== undefined) this.#identity = sample.identity;
    if (sample.kind !== 'stats') return;
    this.#memory.set(sample.upstream, sample.memory);
    if (sample.upstream === this.deps.plan.canary && sample.memory !== undefined) this.#rss.add(sample.at, sample.memory.rss);
  }
}
