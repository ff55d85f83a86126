// The verdict bench's pure parts: the 95% interval on a rate, the client's view of each interval,
// the reference rule (Flagger's default analysis) over it, and what a run's actions mean given
// the scenario's truth. Table-tested in test/verdicts-bench.test.ts.
import { quantile } from '../src/rollout/stats.js';
import type { Expected } from './verdicts-scenarios.js';

/** z of the two-sided 95% normal interval. */
const Z95 = 1.959963984540054;

/**
 * Wilson's score interval for k successes in n trials at 95%: unlike the normal approximation
 * it stays inside [0, 1] and is not empty at k = 0 (0 of 20 → 0–16.1%). n = 0 says nothing: [0, 1].
 */
export function wilson(k: number, n: number): [number, number] {
  if (n === 0) return [0, 1];
  const p = k / n;
  const z2 = Z95 * Z95;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (Z95 / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // At k = 0 and k = n the bound is exactly 0 or 1; floating point would leave 1e-17.
  return [k === 0 ? 0 : centre - half, k === n ? 1 : centre + half];
}

/** One side of one interval, as the client saw it. */
export interface SideObs {
  readonly requests: number;
  /** Answers with a 5xx status. */
  readonly errors: number;
  /** Milliseconds, nearest-rank as the rollout takes it; NaN without requests. */
  readonly p99: number;
}

export interface IntervalObs {
  /** The check that closes it (ms since the epoch). */
  readonly end: number;
  readonly baseline: SideObs;
  readonly canary: SideObs;
}

/** What interval bucketing needs of an exchange (verdicts-load.ts's Exchange). */
export interface Answer { readonly end: number; readonly upstream: string; readonly status: number; readonly ms: number }

/**
 * The client's answers cut at the check times: interval i holds those that ended in
 * (boundaries[i], boundaries[i + 1]], per upstream. Requests the client never got an answer to
 * name no upstream and are left out (counted apart by the runner).
 */
export function intervalsOf(answers: readonly Answer[], boundaries: readonly number[], baseline: string, canary: string): IntervalObs[] {
  const out: IntervalObs[] = [];
  const sorted = [...answers].sort((a, b) => a.end - b.end);
  let j = 0;
  for (let i = 0; i + 1 < boundaries.length; i++) {
    const from = boundaries[i]!;
    const to = boundaries[i + 1]!;
    while (j < sorted.length && sorted[j]!.end <= from) j++;
    const sides = { [baseline]: [] as Answer[], [canary]: [] as Answer[] };
    for (; j < sorted.length && sorted[j]!.end <= to; j++) sides[sorted[j]!.upstream]?.push(sorted[j]!);
    out.push({ end: to, baseline: side(sides[baseline]!), canary: side(sides[canary]!) });
  }
  return out;
}

function side(answers: readonly Answer[]): SideObs {
  const ms = answers.map((a) => a.ms).sort((a, b) => a - b);
  return { requests: answers.length, errors: answers.filter((a) => a.status >= 500).length, p99: quantile(ms, 0.99) };
}

/** A step's criteria as the reference applies them. */
export interface Criteria { readonly maxErrorRate: number; readonly maxP99Increase: number }

/**
 * Flagger's `analysis.threshold` as its docs' examples set it (docs.flagger.app, the Istio, Linkerd
 * and Contour canary tutorials: `threshold: 5  # max number of failed metric checks before
 * rollback`; their logs end "Rolling back podinfo.test failed checks threshold reached 5"). Left
 * unset, GetAnalysisThreshold() in pkg/apis/flagger/v1beta1/canary.go makes it 1.
 */
export const FLAGGER_THRESHOLD = 5;

const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

/**
 * One interval judged as Flagger's builtin checks judge it (pkg/controller/scheduler_metrics.go,
 * runBuiltinMetricChecks; docs.flagger.app/usage/metrics): request-success-rate, then
 * request-duration, each an absolute threshold on that interval's value, no test, no minimum
 * sample; the first that fails halts advancement, and a metric with no values fails too ("Halt
 * advancement no values found"). Flagger's request-duration threshold is a fixed number of ms
 * (`thresholdRange.max: 500`); the plan's criterion is relative, so the fixed number here is
 * the interval's baseline p99 × (1 + maxP99Increase). The reason it failed, or null.
 */
export function referenceCheck(iv: IntervalObs, c: Criteria): string | null {
  const { canary, baseline } = iv;
  if (canary.requests === 0) return 'no canary requests (no values found)';
  const rate = canary.errors / canary.requests;
  if (rate > c.maxErrorRate) return `success rate below ${pct(1 - c.maxErrorRate)}: ${canary.errors} of ${canary.requests} 5xx`;
  const limit = baseline.p99 * (1 + c.maxP99Increase);
  if (baseline.requests > 0 && canary.p99 > limit) return `p99 ${canary.p99.toFixed(1)} ms > ${limit.toFixed(1)} ms`;
  return null;
}

/**
 * Flagger's canary loop over the checks (pkg/controller/scheduler.go, advanceCanary): every failed
 * check adds one to the canary's failedChecks, which nothing but a new revision resets; once it
 * reaches the threshold the canary is rolled back. (Flagger notices at its next tick; counted
 * here at the check that reached it, in its favour.)
 */
export function referenceEvents(checks: readonly (string | null)[], ends: readonly number[], threshold = FLAGGER_THRESHOLD): Event[] {
  const events: Event[] = [];
  let failed = 0;
  checks.forEach((reason, i) => {
    if (reason === null) return;
    events.push({ at: ends[i]!, level: LEVEL.hold });
    if (++failed === threshold) events.push({ at: ends[i]!, level: LEVEL.rollback });
  });
  return events;
}

/** What a judge did to the canary at a check: held it (a criterion missed), reduced it, or rolled it back. */
export const LEVEL = { hold: 1, reduce: 2, rollback: 3 } as const satisfies Record<Expected, number>;
export interface Event { readonly at: number; readonly level: 1 | 2 | 3 }

/** The controller's verdicts (GET /rollout's lastVerdict, each check) and decisions (GET /rollout/decisions), as the bench keeps them. */
export interface SeenVerdict { readonly at: number; readonly action: string }
export interface SeenDecision { readonly at: number; readonly action: string }

/** A decision this soon after a verdict is that check's; one later (its verdict unseen) keeps its own time. */
const SNAP_MS = 500;
const DECISION_LEVEL: Readonly<Record<string, Event['level']>> = { hold: LEVEL.hold, reduce: LEVEL.reduce, rollback: LEVEL.rollback };

/**
 * The controller's actions as events: a check's miss holds the step, reduce and rollback
 * decisions move the canary (a gradual trigger at 1–10% is a rollback: the reduction goes to 0%).
 * A decision is timed by its check (the last verdict at or before it: the weight change takes a
 * few ms after the verdict), so it counts in that check's interval.
 */
export function controllerEvents(verdicts: readonly SeenVerdict[], decisions: readonly SeenDecision[]): Event[] {
  const checks = verdicts.map((v) => v.at).sort((a, b) => a - b);
  const events: Event[] = verdicts.filter((v) => v.action === 'miss').map((v) => ({ at: v.at, level: LEVEL.hold }));
  for (const d of decisions) {
    const level = DECISION_LEVEL[d.action];
    const check = checks.filter((t) => t <= d.at).at(-1);
    if (level !== undefined) events.push({ at: check !== undefined && d.at - check < SNAP_MS ? check : d.at, level });
  }
  return events.sort((a, b) => a.at - b.at);
}

/** On a healthy canary, within its first checks (up to `until`), each kind of action is a false one. */
export interface HealthyOutcome { readonly hold: boolean; readonly reduce: boolean; readonly rollback: boolean }

export function healthyOutcome(events: readonly Event[], until: number): HealthyOutcome {
  const within = events.filter((e) => e.at <= until);
  return {
    hold: within.some((e) => e.level >= LEVEL.hold),
    reduce: within.some((e) => e.level === LEVEL.reduce),
    rollback: within.some((e) => e.level === LEVEL.rollback),
  };
}

/** On a faulty canary: whether the judge did at least what the fault calls for, and after how many checks. */
export type FaultyOutcome = { readonly detected: false } | { readonly detected: true; readonly intervals: number };

/**
 * The first action at least as strong as `expected` after the fault started, and the checks it
 * took: those that closed after `onset` (when the fault became visible), up to and including
 * the deciding one. `ends` are the judge's check times.
 */
export function faultyOutcome(events: readonly Event[], expected: Expected, onset: number, ends: readonly number[]): FaultyOutcome {
  const first = events.find((e) => e.level >= LEVEL[expected] && e.at > onset);
  if (first === undefined) return { detected: false };
  return { detected: true, intervals: ends.filter((t) => t > onset && t <= first.at).length };
}

/** Checks that closed after `onset`: how far a run got. */
export const checksSince = (ends: readonly number[], onset: number): number => ends.filter((t) => t > onset).length;
