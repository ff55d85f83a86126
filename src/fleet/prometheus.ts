import type { Logger } from 'pino';
import { request } from 'undici';
import type { Evidence, ShadowEvidence, SideStats } from '../rollout/checks.js';
import { RssHistory, type EvidenceSource, type Fresh } from '../rollout/evidence.js';
import type { RolloutPlan } from '../rollout/plan.js';
import type { HistogramBucket } from '../rollout/stats.js';

/**
 * The fleet's evidence, read from Prometheus: every replica's drum_* metrics summed, with the
 * seed's queries (CANARY_DEPLOYMENT.md) in counting form — increase() over the step's own window
 * where the dashboard shows rate(), since the checks need how many requests they judge.
 */

/** One PromQL instant query's answer: a vector of label sets and values. */
export interface Sample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The queries one check reads, by name; each side's are named `<what>:<upstream>`. */
export function fleetQueries(plan: Pick<RolloutPlan, 'baseline' | 'canary'>, windowSeconds: number, latencySeconds = windowSeconds): Record<string, string> {
  const range = (seconds: number): string => `${Math.max(1, Math.round(seconds))}s`;
  const w = range(windowSeconds);
  const q: Record<string, string> = {};
  for (const name of [plan.baseline, plan.canary]) {
    const st = `server_type=${JSON.stringify(name)}`;
    // route="": the split's exchanges only (series without the label); those a cohort rule took carry its name.
    const split = `${st},route=""`;
    q[`requests:${name}`] = `sum(increase(drum_requests_total{${split}}[${w}]))`;
    q[`errors:${name}`] = `sum(increase(drum_requests_total{${split},status=~"5.."}[${w}]))`;
    q[`latency:${name}`] = `sum by (le) (increase(drum_request_duration_seconds_bucket{${split}}[${range(latencySeconds)}]))`;
    q[`routed:${name}`] = `sum(increase(drum_requests_total{${st},route!=""}[${w}]))`;
    q[`rss:${name}`] = `avg(drum_memory_bytes{type="rss",${st}})`;
  }
  // Every replica must have lost the canary: one replica's network trouble is not the canary's deadlock.
  q.down = `min(drum_upstream_down_seconds{server_type=${JSON.stringify(plan.canary)}})`;
  return q;
}

/**
 * The replicas' live shadow (drum_shadow_*): its pairs compared and mismatched, each side's
 * latencies. Only where the shadow copies to the canary: its counters name no shadow upstream.
 */
export function shadowQueries(plan: Pick<RolloutPlan, 'baseline' | 'canary'>, windowSeconds: number, latencySeconds = windowSeconds): Record<string, string> {
  const range = (seconds: number): string => `${Math.max(1, Math.round(seconds))}s`;
  const q: Record<string, string> = {
    'shadow:compared': `sum(increase(drum_shadow_requests_total{result=~"match|mismatch"}[${range(windowSeconds)}]))`,
    'shadow:mismatches': `sum(increase(drum_shadow_requests_total{result="mismatch"}[${range(windowSeconds)}]))`,
  };
  for (const name of [plan.baseline, plan.canary]) {
    q[`shadow_latency:${name}`] = `sum by (le) (increase(drum_shadow_duration_seconds_bucket{server_type=${JSON.stringify(name)}}[${range(latencySeconds)}]))`;
  }
  return q;
}

/**
 * The shadow's pairs from shadowQueries' answers; undefined when it compared none (off). Each
 * side's requests are the pairs; their statuses are not exported, so errors are 0: a status that
 * differs is a mismatch.
 */
export function shadowFromAnswers(plan: Pick<RolloutPlan, 'baseline' | 'canary'>, answers: Readonly<Record<string, readonly Sample[]>>): ShadowEvidence | undefined {
  const compared = scalar(answers['shadow:compared']);
  if (compared === undefined || compared === 0) return undefined;
  const pairs = (name: string): SideStats => ({ requests: compared, errors: 0, latencies: { histogram: buckets(answers[`shadow_latency:${name}`] ?? []) } });
  return { compared, mismatches: scalar(answers['shadow:mismatches']) ?? 0, baseline: pairs(plan.baseline), canary: pairs(plan.canary) };
}

/** The only value of a one-series answer; undefined with no series (no traffic yet, no scrape). */
const scalar = (samples: readonly Sample[] | undefined): number | undefined => (samples?.length === 1 ? samples[0]!.value : undefined);

/** Cumulative buckets by `le`, ascending, +Inf last; empty without series. */
function buckets(samples: readonly Sample[]): HistogramBucket[] {
  return samples
    .map((s) => ({ le: s.metric.le === '+Inf' ? Infinity : Number(s.metric.le), count: s.value }))
    .filter((b) => !Number.isNaN(b.le))
    .sort((a, b) => a.le - b.le);
}

function side(answers: Readonly<Record<string, readonly Sample[]>>, name: string): SideStats {
  return {
    requests: scalar(answers[`requests:${name}`]) ?? 0,
    errors: scalar(answers[`errors:${name}`]) ?? 0,
    latencies: { histogram: buckets(answers[`latency:${name}`] ?? []) },
  };
}

/**
 * Evidence from the answers to fleetQueries. A query without series counts as nothing seen: no
 * requests (so too few: inconclusive, never a promotion), no memory (that check unavailable).
 * NaN, ±Inf and negative values are passed on as they are: the checks take them for no
 * measurement (inconclusive), where a stand-in such as 0 would pass. DRUM's container limit is
 * not exported, so the OOM check is unavailable here.
 */
export function evidenceFromAnswers(
  plan: Pick<RolloutPlan, 'baseline' | 'canary'>,
  answers: Readonly<Record<string, readonly Sample[]>>,
  canaryGrowthPerHour: number | undefined,
): Evidence {
  return {
    baseline: side(answers, plan.baseline),
    canary: side(answers, plan.canary),
    memory: { canaryRss: scalar(answers[`rss:${plan.canary}`]), baselineRss: scalar(answers[`rss:${plan.baseline}`]), canaryGrowthPerHour, canaryOom: undefined },
    canaryDownMs: (scalar(answers.down) ?? 0) * 1000,
    routed: { [plan.baseline]: scalar(answers[`routed:${plan.baseline}`]) ?? 0, [plan.canary]: scalar(answers[`routed:${plan.canary}`]) ?? 0 },
  };
}

/** Prometheus's JSON answer to /api/v1/query, as far as we read it. */
interface QueryAnswer {
  status?: string;
  error?: string;
  data?: { resultType?: string; result?: { metric?: Record<string, string>; value?: [number, string] }[] };
}

/** A vector answer's samples; throws with Prometheus's own message for an error or another shape. */
export function parseAnswer(body: unknown): Sample[] {
  const a = body as QueryAnswer;
  if (a?.status !== 'success') throw new Error(`Prometheus answered an error: ${a?.error ?? JSON.stringify(body).slice(0, 200)}`);
  if (a.data?.resultType !== 'vector' || !Array.isArray(a.data.result)) throw new Error(`Prometheus answered a ${String(a.data?.resultType)}, not a vector`);
  return a.data.result.map((r) => ({ metric: r.metric ?? {}, value: float(r.value?.[1]) }));
}

/** A sample's value as Prometheus writes it (Go's float format: "NaN", "+Inf", "-Inf" too); NaN for none. */
const float = (text: string | undefined): number => (text === '+Inf' ? Infinity : text === '-Inf' ? -Infinity : Number(text));

export interface PrometheusOptions {
  /** Prometheus's base URL, e.g. http://prometheus:9090. */
  readonly url: string;
  readonly plan: RolloutPlan;
  readonly timeoutMs: number;
  readonly log: Logger;
  /** The clock reset() reads: a step's window starts then. */
  readonly now: () => number;
  /** The replicas' shadow copies to the canary: its pairs are evidence (the shadow phase, the mismatch check). */
  readonly shadow?: boolean;
  /** A differing pair to show when the shadow's counters say there are some (the replicas keep them). */
  readonly mismatchSample?: () => Promise<ShadowEvidence['sample']>;
}

/**
 * The fleet's EvidenceSource: gather() asks Prometheus for the window ending at its time, over
 * the step so far when that is shorter. An outage is said once in the log, and in every verdict
 * while it lasts.
 */
export class PrometheusEvidence implements EvidenceSource {
  /** When the step began (reset): its window does not reach back before. */
  #since = 0;
  /** When the latencies' window begins: the step's start, or when it settled. */
  #latencySince = 0;
  #outage: string | undefined;
  readonly #rss = new RssHistory();

  constructor(private readonly opts: PrometheusOptions) {}

  reset(scope: Fresh = 'all'): void {
    this.#latencySince = this.opts.now();
    if (scope === 'all') this.#since = this.#latencySince;
  }

  async gather(at: number, stopped: AbortSignal): Promise<Evidence> {
    const { plan } = this.opts;
    const windowMs = Math.min(plan.windowMs, at - this.#since);
    const latencyMs = Math.min(plan.windowMs, at - this.#latencySince);
    const queries = Object.entries({
      ...fleetQueries(plan, windowMs / 1000, latencyMs / 1000),
      ...(this.opts.shadow === true ? shadowQueries(plan, windowMs / 1000, latencyMs / 1000) : {}),
    });
    let answers: Record<string, Sample[]>;
    try {
      answers = Object.fromEntries(await Promise.all(queries.map(async ([name, q]) => [name, await this.#query(q, at, stopped)] as const)));
    } catch (err) {
      // Shutting down: nothing is judged, and Prometheus is not to blame.
      if (stopped.aborted) return { ...NOTHING, unavailable: 'the controller is stopping' };
      const message = `Prometheus at ${this.opts.url}: ${(err as Error).message}`;
      if (this.#outage === undefined) this.opts.log.warn({ prometheus: this.opts.url, err: (err as Error).message }, 'rollout: Prometheus unreachable or failing; holding the weights until it answers');
      this.#outage = message;
      return { ...NOTHING, unavailable: message };
    }
    if (this.#outage !== undefined) this.opts.log.info({ prometheus: this.opts.url }, 'rollout: Prometheus answers again');
    this.#outage = undefined;
    const rss = scalar(answers[`rss:${plan.canary}`]);
    if (rss !== undefined) this.#rss.add(at, rss);
    const evidence = evidenceFromAnswers(plan, answers, this.#rss.growthPerHour(at));
    const shadow = shadowFromAnswers(plan, answers);
    if (shadow === undefined) return evidence;
    // Counts from increase() are fractional: one mismatch may read 0.9.
    const sample = Math.round(shadow.mismatches) > 0 ? await this.opts.mismatchSample?.() : undefined;
    return { ...evidence, shadow: { ...shadow, sample } };
  }

  /** A custom check's query, its {window} the one the built-in checks read now. */
  async query(promql: string, at: number, stopped: AbortSignal): Promise<Sample[]> {
    const seconds = Math.max(1, Math.round(Math.min(this.opts.plan.windowMs, at - this.#since) / 1000));
    return this.#query(promql.replaceAll('{window}', `${seconds}s`), at, stopped);
  }

  async #query(query: string, at: number, stopped: AbortSignal): Promise<Sample[]> {
    const url = new URL('/api/v1/query', this.opts.url);
    url.searchParams.set('query', query);
    url.searchParams.set('time', String(at / 1000));
    const res = await request(url, { headersTimeout: this.opts.timeoutMs, bodyTimeout: this.opts.timeoutMs, signal: stopped });
    const text = await res.body.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`HTTP ${res.statusCode}, not JSON: ${text.slice(0, 200)}`);
    }
    return parseAnswer(body);
  }
}

const EMPTY: SideStats = { requests: 0, errors: 0, latencies: { histogram: [] } };
const NOTHING: Evidence = { baseline: EMPTY, canary: EMPTY, memory: { canaryRss: undefined, baselineRss: undefined, canaryGrowthPerHour: undefined, canaryOom: undefined }, canaryDownMs: 0 };
