import type { Comparison, Difference } from '../compare/answers.js';
import type { NoiseReport } from '../compare/noise.js';
import type { DrumMemory } from '../observe/health.js';
import { MIN_P99_SAMPLES, p99Check, SIGNIFICANCE, type SideStats } from '../rollout/checks.js';
import { DEFAULT_MIN_P99_DIFFERENCE, parseMinP99Difference } from '../rollout/plan.js';
import type { Skipped } from './input.js';

/**
 * The replay's output file: the seed's `summary` and `results` (scripts/shadow_replay_test.py
 * in CANARY_DEPLOYMENT.md), key for key and formatted as it formats them, so whatever reads
 * the seed's file reads ours; then what we add.
 */

/** One request, as the seed writes it (path … error), then ours (route … source). */
export interface ResultRow {
  readonly path: string;
  readonly flask_status: number;
  readonly fastapi_status: number;
  readonly flask_latency_ms: number;
  readonly fastapi_latency_ms: number;
  /** Null when the answers match (or there was an error). */
  readonly diff: string | null;
  /**
   * Null unless a backend gave no answer (unreachable, timeout). The seed counts only its own
   * exceptions here and takes an unreachable backend for status 0, so its "errors" stay 0.
   */
  readonly error: string | null;
  readonly method: string;
  /** The path without its query string. */
  readonly route: string;
  readonly kind: Comparison['kind'] | null;
  readonly differences: readonly Difference[];
  /** FILE:LINE of the record. */
  readonly source: string;
}

export interface Latency {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
}

export interface Summary {
  readonly total_requests: number;
  readonly errors: number;
  readonly response_mismatches: number;
  /** "99.50%", or "N/A" for no requests. */
  readonly match_rate: string;
  readonly flask_latency: Latency;
  readonly fastapi_latency: Latency;
  /** "12.3%" (positive: the canary is faster), or "N/A" where the baseline's is 0. */
  readonly latency_improvement: { readonly p50: string; readonly p99: string };
}

/** A criterion's verdict. inconclusive: too little to judge by; not measured: nothing to judge by (it fails nothing). */
export type Verdict = 'pass' | 'fail' | 'inconclusive' | 'not measured';

export interface Criterion {
  readonly name: string;
  readonly threshold: number;
  readonly value: number | null;
  readonly verdict: Verdict;
  /** true: pass, false: fail, null: neither (inconclusive or not measured). */
  readonly pass: boolean | null;
  readonly note?: string;
  readonly test?: P99Test;
}

/** How the p99 criterion was judged: the rollout's p99 check (src/rollout/checks.ts), its numbers. */
export interface P99Test {
  readonly test: 'one-sided Mann–Whitney U';
  /** The canary counts as slower only with p below this. */
  readonly significance: number;
  /** Latencies on each side (requests without an error). */
  readonly samples: { readonly baseline: number; readonly canary: number };
  /** Fewer on a side and the verdict is inconclusive. */
  readonly min_samples: number;
  /** A slower p99 counts only this far over the baseline's, besides the 20%. */
  readonly min_difference_ms: number;
  /** The rest is null when there were too few samples. */
  readonly p: number | null;
  /** Nearest-rank p99s, as the rollout takes them (the summary's are the seed's interpolated ones). */
  readonly p99_ms: { readonly baseline: number; readonly canary: number } | null;
  readonly difference_ms: number | null;
}

export interface RouteStats {
  readonly count: number;
  readonly mismatches: number;
  readonly errors: number;
  readonly flask_p99_ms: number;
  readonly fastapi_p99_ms: number;
}

/** DRUM's /stats/ memory of one backend before and after the replay, in bytes; null where it reports none. */
export interface MemorySides {
  readonly before: DrumMemory | null;
  readonly after: DrumMemory | null;
}

export interface Report {
  readonly summary: Summary;
  readonly criteria: readonly Criterion[];
  /** The noise sample's bookkeeping (--noise-sample): fields whose differences were noise; null without one. */
  readonly noise: NoiseReport | null;
  readonly memory: { readonly flask: MemorySides; readonly fastapi: MemorySides };
  readonly routes: Record<string, RouteStats>;
  readonly skipped: Skipped;
  /** Ctrl-C stopped the replay: the report covers only the requests that finished. */
  readonly interrupted: boolean;
  readonly results: readonly ResultRow[];
}

/** The seed's percentile: linear interpolation between closest ranks, 0 for no data. */
export function percentile(data: readonly number[], p: number): number {
  if (data.length === 0) return 0;
  const sorted = [...data].sort((a, b) => a - b);
  const k = (sorted.length - 1) * p;
  const f = Math.floor(k);
  const c = f + 1 < sorted.length ? f + 1 : f;
  return sorted[f]! + (sorted[c]! - sorted[f]!) * (k - f);
}

const isMismatch = (r: ResultRow): boolean => r.error === null && r.diff !== null;

/** The seed leaves requests with an error out of the latencies, on both sides. */
function latencies(rows: readonly ResultRow[]): { flask: number[]; fastapi: number[] } {
  const ok = rows.filter((r) => r.error === null);
  return { flask: ok.map((r) => r.flask_latency_ms), fastapi: ok.map((r) => r.fastapi_latency_ms) };
}

const latency = (data: readonly number[]): Latency => ({ p50: percentile(data, 0.5), p95: percentile(data, 0.95), p99: percentile(data, 0.99) });

/** The seed's `(1 - fastapi / flask) * 100` to one decimal, "N/A" when flask's is 0. */
function improvement(flask: number, fastapi: number): string {
  return flask ? `${((1 - fastapi / flask) * 100).toFixed(1)}%` : 'N/A';
}

export function summarize(rows: readonly ResultRow[]): Summary {
  const total = rows.length;
  const errors = rows.filter((r) => r.error !== null).length;
  const mismatches = rows.filter(isMismatch).length;
  const { flask, fastapi } = latencies(rows);
  const [b, c] = [latency(flask), latency(fastapi)];
  return {
    total_requests: total,
    errors,
    response_mismatches: mismatches,
    match_rate: total ? `${(((total - errors - mismatches) / total) * 100).toFixed(2)}%` : 'N/A',
    flask_latency: b,
    fastapi_latency: c,
    latency_improvement: { p50: improvement(b.p50, c.p50), p99: improvement(b.p99, c.p99) },
  };
}

/** The canary's p99 may be at most this much over the baseline's (the seed: "within 20%"). */
export const P99_INCREASE = 0.2;

/**
 * Fewer latencies a side than the rollout's MIN_P99_SAMPLES and the p99 criterion is
 * inconclusive: one slow request would decide it either way.
 */
export { MIN_P99_SAMPLES };

/** The rollout's default floor (rollout.minP99Difference), so that replay and rollout judge alike. */
export const DEFAULT_MIN_P99_DIFFERENCE_MS = parseMinP99Difference(DEFAULT_MIN_P99_DIFFERENCE, 'rollout.minP99Difference');

const pass = (ok: boolean): Pick<Criterion, 'verdict' | 'pass'> => ({ verdict: ok ? 'pass' : 'fail', pass: ok });
/** Nothing to judge by: said so, and neither a pass nor a fail. */
const notMeasured = (note: string): Pick<Criterion, 'value' | 'verdict' | 'pass' | 'note'> => ({ value: null, verdict: 'not measured', pass: null, note });

/**
 * The seed's "canary p99 within 20% of the baseline's", judged as the rollout judges its p99: the
 * canary fails only if it is slower by the one-sided Mann–Whitney test (p < 0.01) and its p99 is
 * over the baseline's by 20% and by at least the floor; with too few samples, inconclusive.
 */
export function p99Criterion(flask: readonly number[], fastapi: readonly number[], minDifferenceMs: number): Criterion {
  const side = (ms: readonly number[]): SideStats => ({ requests: ms.length, errors: 0, latencies: ms.map((x) => x / 1000).sort((a, b) => a - b) });
  const check = p99Check(side(fastapi), side(flask), P99_INCREASE, Infinity, MIN_P99_SAMPLES, minDifferenceMs / 1000);
  const judged = check.status === 'ok' || check.status === 'miss';
  // What the check adds to its result once it has compared the two.
  const measured = check as typeof check & { p: number; baselineP99: number; canaryP99: number; difference: number };
  const test: P99Test = {
    test: 'one-sided Mann–Whitney U',
    significance: SIGNIFICANCE,
    samples: { baseline: flask.length, canary: fastapi.length },
    min_samples: MIN_P99_SAMPLES,
    min_difference_ms: minDifferenceMs,
    p: judged ? measured.p : null,
    p99_ms: judged ? { baseline: measured.baselineP99 * 1000, canary: measured.canaryP99 * 1000 } : null,
    difference_ms: judged ? measured.difference * 1000 : null,
  };
  const base = { name: 'canary_p99_within_20_percent', threshold: 1 + P99_INCREASE, test };
  if (!judged) {
    return { ...base, value: null, verdict: 'inconclusive', pass: null, note: `${check.text} (the p99 of fewer than ${MIN_P99_SAMPLES} latencies is their slowest; --repeat N sends each request N times)` };
  }
  return { ...base, value: 1 + check.value!, ...pass(check.status === 'ok'), note: check.text };
}

/**
 * The seed's "No OOM events during replay": a backend whose container_max_used reached its
 * container_limit after the replay. Measured only where DRUM reports both; not measured is no pass.
 */
export function oomCriterion(memory: Report['memory']): Criterion {
  const reported = [memory.flask.after, memory.fastapi.after].filter((m) => m !== null && m.containerLimit !== undefined && m.containerMaxUsed !== undefined);
  if (reported.length === 0) return { name: 'no_oom', threshold: 0, ...notMeasured('no container limits in /stats/') };
  const ooms = reported.filter((m) => m!.containerMaxUsed! >= m!.containerLimit!).length;
  return { name: 'no_oom', threshold: 0, value: ooms, ...pass(ooms === 0) };
}

/** The seed's Phase 1 success criteria, each with its number. */
export function criteria(rows: readonly ResultRow[], memory: Report['memory'], minP99DifferenceMs = DEFAULT_MIN_P99_DIFFERENCE_MS): Criterion[] {
  const total = rows.length;
  const matched = rows.filter((r) => r.error === null && r.diff === null).length;
  const { flask, fastapi } = latencies(rows);
  const errorAnswers = rows.filter((r) => r.error === null && (r.flask_status >= 400 || r.fastapi_status >= 400));
  const errorMatched = errorAnswers.filter((r) => r.diff === null).length;
  return [
    total === 0
      ? { name: 'match_rate', threshold: 1, value: null, ...pass(false), note: 'no requests replayed' }
      : { name: 'match_rate', threshold: 1, value: matched / total, ...pass(matched === total), note: `${matched} of ${total} requests match` },
    p99Criterion(flask, fastapi, minP99DifferenceMs),
    // No error answer on either side: nothing to compare, which is not a match.
    errorAnswers.length === 0
      ? { name: 'error_responses_match', threshold: 1, ...notMeasured('no error answers to compare') }
      : {
          name: 'error_responses_match',
          threshold: 1,
          value: errorMatched / errorAnswers.length,
          ...pass(errorMatched === errorAnswers.length),
          note: `${errorMatched} of ${errorAnswers.length} error answers match`,
        },
    oomCriterion(memory),
  ];
}

/** What the criteria add up to (the rollout reads a report's by the same rule: rollout start --replay-report). */
export { replayOutcome as outcome } from '../rollout/replay-report.js';

/** Per path without query string, in order of first appearance. */
export function routeStats(rows: readonly ResultRow[]): Record<string, RouteStats> {
  const byRoute = new Map<string, ResultRow[]>();
  for (const r of rows) {
    const list = byRoute.get(r.route);
    if (list === undefined) byRoute.set(r.route, [r]);
    else list.push(r);
  }
  const out: Record<string, RouteStats> = {};
  for (const [route, list] of byRoute) {
    const { flask, fastapi } = latencies(list);
    out[route] = {
      count: list.length,
      mismatches: list.filter(isMismatch).length,
      errors: list.filter((r) => r.error !== null).length,
      flask_p99_ms: percentile(flask, 0.99),
      fastapi_p99_ms: percentile(fastapi, 0.99),
    };
  }
  return out;
}

export interface ReportOptions {
  /** The p99 floor (--min-p99-difference); default the rollout's. */
  readonly minP99DifferenceMs?: number;
  readonly noise?: NoiseReport | null;
}

export function buildReport(rows: readonly ResultRow[], skipped: Skipped, interrupted: boolean, memory: Report['memory'], opts: ReportOptions = {}): Report {
  return {
    summary: summarize(rows),
    criteria: criteria(rows, memory, opts.minP99DifferenceMs),
    noise: opts.noise ?? null,
    memory,
    routes: routeStats(rows),
    skipped,
    interrupted,
    results: rows,
  };
}

/** Requests that differed in the same way: the same route and method, statuses, and fields differing in the same kind. */
export interface MismatchGroup {
  readonly count: number;
  /** How many different sets of values the differences had among them (1: every one identical). */
  readonly variants: number;
  /** The first of them. */
  readonly example: ResultRow;
}

/**
 * The mismatches grouped, most frequent first (ties in order of first appearance): a changed
 * answer usually changes every request of its kind alike, and one entry with a count reads
 * better than the same difference listed a hundred times.
 */
export function mismatchGroups(rows: readonly ResultRow[]): MismatchGroup[] {
  const groups = new Map<string, { count: number; values: Set<string>; example: ResultRow }>();
  for (const r of rows.filter(isMismatch)) {
    const key = JSON.stringify([r.method, r.route, r.flask_status, r.fastapi_status, r.kind, r.differences.map((d) => [d.field, d.kind])]);
    const values = JSON.stringify(r.differences.map((d) => [d.path, d.baseline, d.canary]));
    const group = groups.get(key);
    if (group === undefined) groups.set(key, { count: 1, values: new Set([values]), example: r });
    else {
      group.count++;
      group.values.add(values);
    }
  }
  // Array.prototype.sort is stable: equal counts keep their first appearance's order.
  return [...groups.values()].map((g) => ({ count: g.count, variants: g.values.size, example: g.example })).sort((a, b) => b.count - a.count);
}
