import type { MismatchSample } from '../shadow/shadow.js';
import type { RollbackThresholds, StepCriteria } from './plan.js';
import { binomialAtLeast, fisherGreater, histogramQuantile, mannWhitneyGreater, mannWhitneyGreaterBinned, quantile, type HistogramBucket, type MannWhitney } from './stats.js';

/**
 * Latencies in seconds: a sample, ascending (the proxy's own window), or a histogram's cumulative
 * buckets (the fleet's, from Prometheus). Both sides of a comparison come from one source.
 */
export type Latencies = readonly number[] | { readonly histogram: readonly HistogramBucket[] };

const count = (l: Latencies): number => ('histogram' in l ? (l.histogram.at(-1)?.count ?? 0) : l.length);
/** A quantile of latencies, either kind; NaN for none. */
export const latencyQuantile = (l: Latencies, q: number): number => ('histogram' in l ? histogramQuantile(l.histogram, q) : quantile(l, q));
const p99Of = (l: Latencies): number => latencyQuantile(l, 0.99);

function slowerTest(canary: Latencies, baseline: Latencies): MannWhitney {
  if ('histogram' in canary && 'histogram' in baseline) return mannWhitneyGreaterBinned(canary.histogram, baseline.histogram);
  if (!('histogram' in canary) && !('histogram' in baseline)) return mannWhitneyGreater(canary, baseline);
  throw new TypeError('a sample and a histogram cannot be compared');
}

/** What one upstream did in the window: as the proxy saw it, or as Prometheus saw the fleet. */
export interface SideStats {
  /** May be fractional from Prometheus (increase() extrapolates over the window). */
  readonly requests: number;
  /** 5xx answers: the upstream's own, and our 502/504 for it. */
  readonly errors: number;
  readonly latencies: Latencies;
}

/** Memory from DRUM's /stats/; undefined where the upstream does not report it. */
export interface MemoryEvidence {
  readonly baselineRss: number | undefined;
  readonly canaryRss: number | undefined;
  /** The canary's RSS growth per hour, fitted over the last hour of polls; undefined until there is enough. */
  readonly canaryGrowthPerHour: number | undefined;
  /** The canary's container_max_used reached container_limit; undefined where DRUM does not report them. */
  readonly canaryOom: boolean | undefined;
}

export interface Evidence {
  readonly baseline: SideStats;
  readonly canary: SideStats;
  readonly memory: MemoryEvidence;
  /** How long the canary has not answered /ping, in ms; 0 while it answers. */
  readonly canaryDownMs: number;
  /** Which server and model the canary is, from DRUM's /info/; undefined where unknown. */
  readonly canaryIdentity?: string | undefined;
  /** Why there are no numbers this time (Prometheus unreachable, say): the verdict is inconclusive. */
  readonly unavailable?: string;
  /** The live shadow's pairs to the canary in the window; undefined while it is off and compared none. */
  readonly shadow?: ShadowEvidence | undefined;
  /**
   * Requests cohort rules (routes:) took to the baseline and the canary in the window, by upstream:
   * not the split's, so not judged; counted so that the numbers explain themselves.
   */
  readonly routed?: Readonly<Record<string, number>> | undefined;
}

/** What the live shadow compared in the window: baseline and canary answering the same requests. */
export interface ShadowEvidence {
  /** Pairs compared, and of them those whose answers differ beyond the ignore list and the noise baseline. */
  readonly compared: number;
  readonly mismatches: number;
  /** Each side of the compared pairs (its status, its latency): the shadow phase judges these. */
  readonly baseline: SideStats;
  readonly canary: SideStats;
  /** A differing pair of the window (the last), or where to read one; undefined when none differs. */
  readonly sample?: MismatchSample | { readonly where: string } | undefined;
}

export type CheckName = 'error_rate' | 'p99' | 'memory' | 'rss_growth' | 'oom' | 'ping' | 'mismatch';

/**
 * A check's verdict. ok: within the step's criteria; miss: outside them, no rollback trigger;
 * reduce / rollback: a rollback trigger; inconclusive: cannot say — too few samples, or a number
 * that is no measurement (NaN, ±Inf, below zero); unavailable: no data at all (an upstream that
 * is not DRUM has no /stats/).
 */
export type CheckStatus = 'ok' | 'miss' | 'reduce' | 'rollback' | 'inconclusive' | 'unavailable';

export interface CheckResult {
  /** A built-in check's name, or a custom check's own (the plan's `checks`). */
  readonly check: CheckName | (string & {});
  readonly status: CheckStatus;
  /** The measured value (a rate, a relative increase, milliseconds); null when there is none. */
  readonly value: number | null;
  /** The step's limit (null for the rollback-only checks). */
  readonly limit: number | null;
  /** The rollback trigger's limit. */
  readonly rollbackLimit: number;
  /** One line a person reads, with the numbers. */
  readonly text: string;
  readonly [extra: string]: unknown;
}

/**
 * What the checks add up to, most severe first: rollback (canary to 0% now), reduce (the
 * gradual reduction), miss (criteria missed: hold, the hold starts again), inconclusive (too
 * few requests, or numbers that are no measurement: hold, the time does not count), pass.
 */
export type VerdictAction = 'rollback' | 'reduce' | 'inconclusive' | 'miss' | 'pass';

export interface Verdict {
  readonly action: VerdictAction;
  readonly checks: readonly CheckResult[];
  /** The checks that decided the action, joined; "all checks pass" for a pass. */
  readonly text: string;
}

/**
 * Below this many latencies a side, a nearest-rank p99 is the slowest request or close to it: a
 * canary that looks slower on so few is inconclusive, not a regression (replay's criterion is
 * inconclusive under the same count).
 */
export const MIN_P99_SAMPLES = 100;

/** A difference counts against the canary only at this significance (one-sided). */
export const SIGNIFICANCE = 0.01;

/**
 * A count, a size or a time: finite and not below zero. Prometheus answers NaN and ±Inf as
 * readily as numbers (0/0, a broken exporter), and every comparison with NaN is false: such a
 * value, taken as evidence, reads as neither too few nor over the limit — a pass.
 */
export const isMeasure = (x: number): boolean => Number.isFinite(x) && x >= 0;

/** Written as Prometheus writes it. */
const spell = (x: number): string => (Number.isNaN(x) ? 'NaN' : x === Infinity ? '+Inf' : x === -Infinity ? '-Inf' : String(x));

/**
 * The named inputs that are not measures, said for the verdict ("canary requests NaN"); undefined
 * when every one is. A check with any makes no judgement: inconclusive, never a pass.
 */
function notMeasures(inputs: Readonly<Record<string, number | undefined>>): string | undefined {
  const bad = Object.entries(inputs).filter(([, v]) => v !== undefined && !isMeasure(v));
  return bad.length === 0 ? undefined : bad.map(([name, v]) => `${name} ${spell(v!)}`).join(', ');
}

const noEvidence = (what: string, bad: string): string => `${what} unavailable (not a measurement: ${bad})`;

/** The first latency (or cumulative bucket count) that is not a measure. */
function badLatency(l: Latencies): number | undefined {
  return 'histogram' in l ? l.histogram.find((b) => !isMeasure(b.count))?.count : l.find((x) => !isMeasure(x));
}

const pct = (x: number, digits = 2): string => `${(x * 100).toFixed(digits).replace(/\.?0+$/, '')}%`;
// Counts from Prometheus are fractional (increase() extrapolates): shown whole.
const num = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (seconds: number): string => `${(seconds * 1000).toFixed(1)} ms`;

const pValue = (p: number): string => (p < 1e-4 ? p.toExponential(1) : p.toPrecision(2));
const rateOf = (side: SideStats): string => `${pct(side.requests === 0 ? 0 : side.errors / side.requests)} (${num(side.errors)} of ${num(side.requests)})`;

/**
 * Error rate: 5xx over requests, judged by exact tests so that one unlucky request decides
 * nothing. The immediate trigger fires once the canary's rate is over the rollback limit with
 * 99% confidence (a one-sided exact binomial test: 5 errors in 100 fire at 1%, 1 in 27 does not),
 * however few requests there are — a canary failing hard is not kept for want of traffic. The
 * step's criterion needs a full sample, a rate not under it, and a canary worse than the
 * baseline in the same window (one-sided Fisher exact test): a canary erring exactly as the
 * baseline does is not the canary's fault. At 100% there is no baseline; the rate must then be
 * over the criterion with the same confidence.
 */
export function errorRateCheck(canary: SideStats, baseline: SideStats, step: number, rollback: number, minRequests: number): CheckResult {
  const { requests: n, errors } = canary;
  const bad = notMeasures({ 'canary requests': n, 'canary errors': errors, 'baseline requests': baseline.requests, 'baseline errors': baseline.errors });
  if (bad !== undefined) return { check: 'error_rate', value: null, limit: step, rollbackLimit: rollback, status: 'inconclusive', text: noEvidence('error rate', bad) };
  const rate = n === 0 ? 0 : errors / n;
  const base = { check: 'error_rate' as const, value: n === 0 ? null : rate, limit: step, rollbackLimit: rollback, n, errors };
  const measured = `canary error rate ${rateOf(canary)}`;
  const overRollback = binomialAtLeast(errors, n, rollback);
  if (overRollback < SIGNIFICANCE) {
    return { ...base, p: overRollback, status: 'rollback', text: `${measured} over ${pct(rollback)} with 99% confidence (exact binomial test p=${pValue(overRollback)})` };
  }
  if (n < minRequests) return { ...base, status: 'inconclusive', text: `${num(n)} canary requests, fewer than ${num(minRequests)}` };
  if (rate < step) return { ...base, status: 'ok', text: `${measured} under ${pct(step)}` };
  if (baseline.requests === 0) {
    const p = binomialAtLeast(errors, n, step);
    if (p < SIGNIFICANCE) return { ...base, p, status: 'miss', text: `${measured} over ${pct(step)} with 99% confidence (exact binomial test p=${pValue(p)}; no baseline traffic)` };
    return { ...base, p, status: 'ok', text: `${measured} not under ${pct(step)}, but not significantly over it (exact binomial test p=${pValue(p)}; no baseline traffic)` };
  }
  const p = fisherGreater(errors, n, baseline.errors, baseline.requests);
  const versus = `the baseline's ${rateOf(baseline)}; Fisher exact test p=${pValue(p)}`;
  if (p < SIGNIFICANCE) return { ...base, p, status: 'miss', text: `${measured} not under ${pct(step)}, and worse than ${versus}` };
  return { ...base, p, status: 'ok', text: `${measured} not under ${pct(step)}, but not worse than ${versus}` };
}

/**
 * p99 of each side from its own samples; the increase is canary/baseline − 1. It counts against
 * the canary only if it is both significant and large enough to matter: a one-sided Mann–Whitney
 * U test finds the canary slower (p < 0.01), and its p99 is over the baseline's by the criterion
 * and by at least `minDifference` seconds. The test takes a window's samples as independent,
 * which they are not quite — a pause of the process or of the machine slows a run of
 * consecutive requests together, and the test then credits them as many separate observations —
 * so a chance difference of a few milliseconds can come out "significant"; the absolute floor
 * keeps such a difference from counting, and the controller's confirmation (a second window of
 * fresh exchanges) keeps one unlucky window from acting.
 */
export function p99Check(canary: SideStats, baseline: SideStats, step: number, rollback: number, minRequests: number, minDifference: number): CheckResult {
  const base = { check: 'p99' as const, limit: step, rollbackLimit: rollback };
  const bad = notMeasures({ 'canary requests': canary.requests, 'baseline requests': baseline.requests, 'a canary latency': badLatency(canary.latencies), 'a baseline latency': badLatency(baseline.latencies) });
  if (bad !== undefined) return { ...base, value: null, status: 'inconclusive', text: noEvidence('p99', bad) };
  const n = Math.min(count(canary.latencies), count(baseline.latencies));
  // At 100% nothing is left to compare with; the absolute checks still judge the canary.
  if (baseline.requests === 0 && canary.requests >= minRequests) {
    return { ...base, value: null, status: 'unavailable', text: 'p99: the baseline takes no traffic to compare with' };
  }
  if (canary.requests < minRequests || baseline.requests < minRequests || n === 0) {
    return { ...base, value: null, status: 'inconclusive', text: `p99: ${num(canary.requests)} canary and ${num(baseline.requests)} baseline requests, fewer than ${num(minRequests)} each` };
  }
  const c = p99Of(canary.latencies);
  const b = p99Of(baseline.latencies);
  const increase = b > 0 ? c / b - 1 : c > 0 ? Infinity : 0;
  const difference = c - b;
  const test = slowerTest(canary.latencies, baseline.latencies);
  const sign = (x: number): string => (x >= 0 ? '+' : '');
  const measured = `canary p99 ${ms(c)} vs baseline ${ms(b)} (${sign(increase)}${pct(increase, 1)}, ${sign(difference)}${ms(difference)}; Mann–Whitney p=${pValue(test.p)}, n=${num(count(canary.latencies))}/${num(count(baseline.latencies))})`;
  const extra = { value: increase, canaryP99: c, baselineP99: b, difference, p: test.p };
  const counts = test.p < SIGNIFICANCE && difference >= minDifference;
  // A slower canary on too few latencies: neither a pass nor a regression yet.
  if (counts && increase >= step && n < MIN_P99_SAMPLES) {
    return { ...base, ...extra, status: 'inconclusive', text: `${measured}; fewer than ${MIN_P99_SAMPLES} latencies a side, so each p99 is little more than the slowest one: judged again with more` };
  }
  if (counts && increase > rollback) return { ...base, ...extra, status: 'reduce', text: `${measured} over +${pct(rollback, 1)}` };
  if (counts && increase >= step) return { ...base, ...extra, status: 'miss', text: `${measured} not under +${pct(step, 1)}` };
  if (increase < step) return { ...base, ...extra, status: 'ok', text: measured };
  const why = test.p >= SIGNIFICANCE ? 'not significant' : `under the ${ms(minDifference)} floor`;
  return { ...base, ...extra, status: 'ok', text: `${measured}; ${why}, so not a regression` };
}

/** DRUM's drum_rss, canary over baseline. */
export function memoryCheck(memory: MemoryEvidence, step: number, rollback: number): CheckResult {
  const base = { check: 'memory' as const, limit: step, rollbackLimit: rollback };
  const { canaryRss: c, baselineRss: b } = memory;
  const bad = notMeasures({ 'canary RSS': c, 'baseline RSS': b });
  if (bad !== undefined) return { ...base, value: null, status: 'inconclusive', text: noEvidence('memory', bad) };
  if (c === undefined || b === undefined || b <= 0) return { ...base, value: null, status: 'unavailable', text: 'memory: no DRUM /stats/ from both upstreams' };
  const increase = c / b - 1;
  const measured = `canary RSS ${Math.round(c / 2 ** 20)} MB vs baseline ${Math.round(b / 2 ** 20)} MB (${increase >= 0 ? '+' : ''}${pct(increase, 1)})`;
  if (increase > rollback) return { ...base, value: increase, status: 'reduce', text: `${measured} over +${pct(rollback, 1)}` };
  if (increase >= step) return { ...base, value: increase, status: 'miss', text: `${measured} not under +${pct(step, 1)}` };
  return { ...base, value: increase, status: 'ok', text: measured };
}

/** A leak: the canary's RSS growing faster than the limit per hour (immediate rollback). */
export function rssGrowthCheck(memory: MemoryEvidence, rollback: number): CheckResult {
  const base = { check: 'rss_growth' as const, limit: null, rollbackLimit: rollback };
  const g = memory.canaryGrowthPerHour;
  if (g === undefined || !Number.isFinite(g)) return { ...base, value: null, status: 'unavailable', text: 'RSS growth: not enough /stats/ polls yet' };
  const measured = `canary RSS growing ${pct(g, 1)} per hour`;
  if (g > rollback) return { ...base, value: g, status: 'rollback', text: `${measured}, over ${pct(rollback, 1)}` };
  return { ...base, value: g, status: 'ok', text: measured };
}

/** DRUM reports container_max_used reaching container_limit: the canary ran out of memory. */
export function oomCheck(memory: MemoryEvidence): CheckResult {
  const base = { check: 'oom' as const, limit: 0, rollbackLimit: 0 };
  if (memory.canaryOom === undefined) return { ...base, value: null, status: 'unavailable', text: 'OOM: the canary does not report its container limit' };
  if (memory.canaryOom) return { ...base, value: 1, status: 'rollback', text: 'canary reached its container memory limit (OOM)' };
  return { ...base, value: 0, status: 'ok', text: 'no OOM' };
}

/** Deadlock: no answer to /ping for the timeout (immediate rollback). */
export function pingCheck(downMs: number, timeoutMs: number): CheckResult {
  // Not a time: whether the canary answers is unknown, which must not read as "it answers".
  if (!isMeasure(downMs)) return { check: 'ping', value: null, limit: null, rollbackLimit: timeoutMs / 1000, status: 'inconclusive', text: noEvidence('/ping', `canary silent for ${spell(downMs / 1000)} s`) };
  const base = { check: 'ping' as const, value: downMs / 1000, limit: null, rollbackLimit: timeoutMs / 1000 };
  if (downMs >= timeoutMs) return { ...base, status: 'rollback', text: `canary has not answered /ping for ${Math.round(downMs / 1000)} s (limit ${timeoutMs / 1000} s)` };
  return { ...base, status: 'ok', text: downMs === 0 ? 'canary answers /ping' : `canary silent for ${Math.round(downMs / 1000)} s` };
}

/**
 * Data corruption (ROLLBACK_PLAN.md "Critical Triggers": a prediction diff, any difference): the
 * shadow's pairs whose answers differ beyond the ignore list and the noise baseline — a field
 * found to be noise is no difference. Immediate rollback once their share is over the limit with
 * 99% confidence, as the error rate's trigger (exact binomial test); at the default limit 0 one
 * difference is enough. `minCompared`: pairs needed before it passes (the shadow phase's
 * criterion); at a canary step it is a trigger only, and passes on any number.
 */
export function mismatchCheck(s: ShadowEvidence, rollback: number, minCompared: number): CheckResult {
  const base = { check: 'mismatch' as const, limit: rollback, rollbackLimit: rollback };
  const bad = notMeasures({ 'shadow pairs': s.compared, 'shadow mismatches': s.mismatches });
  if (bad !== undefined) return { ...base, value: null, status: 'inconclusive', text: noEvidence('mismatch', bad) };
  const { compared, mismatches } = s;
  const value = compared === 0 ? null : mismatches / compared;
  const measured = `${num(mismatches)} of ${num(compared)} shadow pairs differ beyond the ignore list and the noise (${pct(value ?? 0)})`;
  const p = binomialAtLeast(mismatches, compared, rollback);
  if (p < SIGNIFICANCE) {
    const confidence = rollback === 0 ? 'any difference' : `over ${pct(rollback)} with 99% confidence (exact binomial test p=${pValue(p)})`;
    return { ...base, value, p, status: 'rollback', text: `prediction mismatch: ${measured}: ${confidence}`, ...(s.sample === undefined ? {} : { mismatch: s.sample }) };
  }
  if (compared < minCompared) return { ...base, value, status: 'inconclusive', text: `${num(compared)} shadow pairs compared, fewer than ${num(minCompared)}` };
  return { ...base, value, status: 'ok', text: measured };
}

// A measured miss outranks a check that could not measure: an inconclusive p99 must not hide an error rate over the criterion.
const SEVERITY = ['rollback', 'reduce', 'miss', 'inconclusive'] as const satisfies readonly CheckStatus[];

/** What every check needs besides the step's criteria and the rollback thresholds. */
export interface JudgeOptions {
  /** Requests each side needs before a step criterion or the p99 is judged. */
  readonly minRequests: number;
  /** The smallest p99 difference, in seconds, that counts as a regression. */
  readonly minP99Difference: number;
  /** The shadow phase: the mismatch check needs minRequests pairs to pass. */
  readonly shadowStep?: boolean;
}

/**
 * Every check over one window, and what they add up to (the most severe status any check has).
 * `custom`: the plan's own checks' results (custom.ts), judged beside the built-in ones.
 */
export function judge(e: Evidence, step: StepCriteria, rollback: RollbackThresholds, opts: JudgeOptions, custom: readonly CheckResult[] = []): Verdict {
  if (e.unavailable !== undefined) return { action: 'inconclusive', checks: [...custom], text: e.unavailable };
  const { minRequests } = opts;
  const checks = [
    errorRateCheck(e.canary, e.baseline, step.maxErrorRate, rollback.maxErrorRate, minRequests),
    p99Check(e.canary, e.baseline, step.maxP99Increase, rollback.maxP99Increase, minRequests, opts.minP99Difference),
    memoryCheck(e.memory, step.maxMemoryIncrease, rollback.maxMemoryIncrease),
    rssGrowthCheck(e.memory, rollback.maxRssGrowthPerHour),
    oomCheck(e.memory),
    pingCheck(e.canaryDownMs, rollback.pingTimeoutMs),
    ...(e.shadow === undefined ? [] : [mismatchCheck(e.shadow, rollback.maxMismatchRate, opts.shadowStep === true ? minRequests : 0)]),
    ...custom,
  ];
  for (const status of SEVERITY) {
    const deciding = checks.filter((c) => c.status === status);
    if (deciding.length > 0) {
      return { action: status, checks, text: deciding.map((c) => c.text).join('; ') };
    }
  }
  return { action: 'pass', checks, text: 'all checks pass' };
}
