import type { Evidence, Latencies, SideStats, Verdict } from './checks.js';
import { latencyQuantile } from './checks.js';
import type { Decision } from './controller.js';

/**
 * The rollout's ledger: what each period at one step and weight saw, for the summary report
 * (GET /rollout/report) and the hourly summary. Pure accumulation from each tick's evidence and
 * verdict and each decision; saved with the rollout state so a restart keeps it.
 *
 * Counts: the evidence is a window over the step so far (all of it until the window is full,
 * then its last `windowMs`). Until it is full, a tick adds what the window grew by (exact); after,
 * the window's rate times the time since the last tick (an estimate).
 */

/** One upstream over one period: counts added up, the latest latencies and memory seen. */
export interface LedgerUpstream {
  readonly requests: number;
  readonly errors: number;
  /** Seconds, from the last window that had any; null before. */
  readonly p50: number | null;
  readonly p99: number | null;
  /** Bytes, the last reported; null when unknown. */
  readonly rss: number | null;
}

/** A measured ratio over a period: the last and the highest. */
export interface Ratio {
  readonly last: number | null;
  readonly max: number | null;
}

/** A period at one step and weight. */
export interface LedgerStep {
  /** Index into the plan's steps. */
  readonly step: number;
  readonly weight: number;
  readonly startedAt: number;
  /** null while it lasts. */
  readonly endedAt: number | null;
  readonly upstreams: Readonly<Record<string, LedgerUpstream>>;
  /** Canary p99 over baseline p99, from the p99 check. */
  readonly p99Ratio: Ratio;
  /** Canary RSS over baseline RSS. */
  readonly memoryRatio: Ratio;
  readonly checks: number;
  /** The decisions made during this period (a promotion ends the period it was made in), the newest MAX_PERIOD_DECISIONS. */
  readonly decisions: readonly Decision[];
  /** Earlier decisions of this period no longer kept (a canary missing for days: a suspicion every other window). */
  readonly omitted: number;
}

/** One tick, for the charts. */
export interface LedgerPoint {
  readonly at: number;
  readonly weight: number;
  readonly p99Ratio: number | null;
  readonly memoryRatio: number | null;
  /** The canary's error rate in the window. */
  readonly errorRate: number | null;
}

export interface Ledger {
  readonly startedAt: number | null;
  readonly endedAt: number | null;
  readonly steps: readonly LedgerStep[];
  readonly points: readonly LedgerPoint[];
  /** Where the window began (the last full reset) and what it held at the last tick, per upstream. */
  readonly window: { readonly since: number; readonly lastAt: number | null; readonly seen: Readonly<Record<string, { readonly requests: number; readonly errors: number }>> };
}

/** Points kept for the charts: past this, every other one goes (the older half's resolution halves). */
export const MAX_POINTS = 2000;
/** Periods kept: a rollout paused and moved by hand many times still fits. */
export const MAX_STEPS = 500;
/** Decisions kept per period: the state file stays small however long a step misses. */
export const MAX_PERIOD_DECISIONS = 100;

export const EMPTY_LEDGER: Ledger = { startedAt: null, endedAt: null, steps: [], points: [], window: { since: 0, lastAt: null, seen: {} } };

const NO_RATIO: Ratio = { last: null, max: null };

/** A new rollout: a fresh ledger, its first period open. */
export function ledgerStarted(at: number, step: number, weight: number): Ledger {
  return { startedAt: at, endedAt: null, steps: [open(at, step, weight)], points: [], window: { since: at, lastAt: null, seen: {} } };
}

const open = (at: number, step: number, weight: number): LedgerStep => ({ step, weight, startedAt: at, endedAt: null, upstreams: {}, p99Ratio: NO_RATIO, memoryRatio: NO_RATIO, checks: 0, decisions: [], omitted: 0 });

/** The evidence's window started again (a new weight, or a failing window confirmed on fresh exchanges). */
export function ledgerReset(ledger: Ledger, at: number): Ledger {
  return { ...ledger, window: { since: at, lastAt: null, seen: {} } };
}

const finite = (x: number | null | undefined): number | null => (x === null || x === undefined || !Number.isFinite(x) ? null : x);

function ratio(r: Ratio, value: number | null): Ratio {
  if (value === null) return r;
  return { last: value, max: r.max === null ? value : Math.max(r.max, value) };
}

/** The window's count added since the last tick: its growth while it covers the whole period, its rate's share after. */
function added(now: number, before: number, at: number, lastAt: number | null, since: number, windowMs: number): number {
  if (!(now >= 0)) return 0;
  if (at - since <= windowMs) return Math.max(0, now - before);
  const elapsed = at - (lastAt ?? since);
  return (now * Math.max(0, elapsed)) / windowMs;
}

/** A check's number by name from the verdict, when it measured one. */
const checkNumber = (verdict: Verdict, check: string, key: string): number | null => finite(verdict.checks.find((c) => c.check === check)?.[key] as number | undefined);

/**
 * One tick's evidence and verdict added to the open period. The ratios are the p99 check's
 * canaryP99/baselineP99 and the memory check's increase plus one; p50 and p99 are each side's
 * own, from the window.
 */
export function ledgerTicked(ledger: Ledger, at: number, evidence: Evidence, verdict: Verdict, sides: { readonly baseline: string; readonly canary: string }, windowMs: number): Ledger {
  const current = ledger.steps.at(-1);
  if (current === undefined || current.endedAt !== null || evidence.unavailable !== undefined) return ledger;
  const { window } = ledger;
  const seen: Record<string, { requests: number; errors: number }> = {};
  const upstreams: Record<string, LedgerUpstream> = { ...current.upstreams };
  const rss = { [sides.baseline]: evidence.memory.baselineRss, [sides.canary]: evidence.memory.canaryRss };
  for (const [name, stats] of [[sides.baseline, evidence.baseline], [sides.canary, evidence.canary]] as const) {
    const before = window.seen[name] ?? { requests: 0, errors: 0 };
    const u = upstreams[name] ?? { requests: 0, errors: 0, p50: null, p99: null, rss: null };
    seen[name] = { requests: stats.requests, errors: stats.errors };
    upstreams[name] = {
      requests: u.requests + added(stats.requests, before.requests, at, window.lastAt, window.since, windowMs),
      errors: u.errors + added(stats.errors, before.errors, at, window.lastAt, window.since, windowMs),
      p50: quantileOr(stats.latencies, 0.5, u.p50),
      p99: quantileOr(stats.latencies, 0.99, u.p99),
      rss: finite(rss[name]) ?? u.rss,
    };
  }
  const c = checkNumber(verdict, 'p99', 'canaryP99');
  const b = checkNumber(verdict, 'p99', 'baselineP99');
  const p99 = c !== null && b !== null && b > 0 ? c / b : null;
  const memoryIncrease = checkNumber(verdict, 'memory', 'value');
  const memory = memoryIncrease === null ? null : memoryIncrease + 1;
  const step: LedgerStep = { ...current, upstreams, checks: current.checks + 1, p99Ratio: ratio(current.p99Ratio, p99), memoryRatio: ratio(current.memoryRatio, memory) };
  const point: LedgerPoint = { at, weight: current.weight, p99Ratio: p99, memoryRatio: memory, errorRate: errorRateOf(evidence.canary) };
  return { ...ledger, steps: [...ledger.steps.slice(0, -1), step], points: thinned([...ledger.points, point]), window: { ...window, lastAt: at, seen } };
}

function quantileOr(l: Latencies, q: number, previous: number | null): number | null {
  return finite(latencyQuantile(l, q)) ?? previous;
}

const errorRateOf = (side: SideStats): number | null => (side.requests > 0 && Number.isFinite(side.errors / side.requests) ? side.errors / side.requests : null);

/** Over MAX_POINTS: every other point of the older half goes, so recent ones keep their detail. */
function thinned(points: LedgerPoint[]): LedgerPoint[] {
  if (points.length <= MAX_POINTS) return points;
  const half = Math.floor(points.length / 2);
  return [...points.slice(0, half).filter((_, i) => i % 2 === 0), ...points.slice(half)];
}

/**
 * A decision added to the open period; when the weight or step changed, that period ends and the
 * next opens; when the rollout ended (`active` false), the ledger ends. A start opens a new ledger.
 */
export function ledgerDecided(ledger: Ledger, decision: Decision, active: boolean, at: number): Ledger {
  // A start, or a retry after a rollback: a new rollout, a new ledger.
  if (decision.action === 'start' || decision.action === 'retry') {
    const started = ledgerStarted(at, decision.step, decision.to);
    return withDecision(started, decision);
  }
  if (ledger.startedAt === null) return ledger;
  // After the end, only the baseline's verification that follows a rollback: the report's last word.
  if (ledger.endedAt !== null) return decision.action === 'verified' || decision.action === 'verification_failed' ? withDecision(ledger, decision) : ledger;
  const recorded = withDecision(ledger, decision);
  const current = recorded.steps.at(-1)!;
  const moved = current.weight !== decision.to || current.step !== decision.step;
  const closed = moved || !active ? [...recorded.steps.slice(0, -1), { ...current, endedAt: at }] : recorded.steps;
  if (!active) return { ...recorded, steps: closed, endedAt: at };
  if (!moved) return recorded;
  const steps = [...closed, open(at, decision.step, decision.to)];
  const next = { ...recorded, steps: steps.length > MAX_STEPS ? steps.slice(-MAX_STEPS) : steps };
  // A new weight starts the evidence's window again (the controller resets it with every weight change).
  return current.weight === decision.to ? next : ledgerReset(next, at);
}

function withDecision(ledger: Ledger, decision: Decision): Ledger {
  const current = ledger.steps.at(-1)!;
  const all = [...current.decisions, decision];
  const over = Math.max(0, all.length - MAX_PERIOD_DECISIONS);
  return { ...ledger, steps: [...ledger.steps.slice(0, -1), { ...current, decisions: all.slice(over), omitted: current.omitted + over }] };
}

/** What one upstream did since `before` (the ledger's totals then): for the hourly summary. */
export interface UpstreamSummary {
  readonly requests: number;
  /** Errors over requests; null without requests. */
  readonly errorRate: number | null;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly rss: number | null;
}

/** Each upstream's totals over the whole ledger. */
export function ledgerTotals(ledger: Ledger): Record<string, { requests: number; errors: number }> {
  const totals: Record<string, { requests: number; errors: number }> = {};
  for (const step of ledger.steps) {
    for (const [name, u] of Object.entries(step.upstreams)) {
      const t = (totals[name] ??= { requests: 0, errors: 0 });
      t.requests += u.requests;
      t.errors += u.errors;
    }
  }
  return totals;
}

/**
 * The hourly summary's numbers: each upstream's requests and error rate since the last summary
 * (`before`, the totals then), and its latest p50, p99 and RSS.
 */
export function summarize(ledger: Ledger, before: Readonly<Record<string, { requests: number; errors: number }>>, names: readonly string[]): Record<string, UpstreamSummary> {
  const totals = ledgerTotals(ledger);
  const latest = ledger.steps.at(-1)?.upstreams ?? {};
  const out: Record<string, UpstreamSummary> = {};
  for (const name of names) {
    const now = totals[name] ?? { requests: 0, errors: 0 };
    const was = before[name] ?? { requests: 0, errors: 0 };
    const requests = Math.max(0, now.requests - was.requests);
    const errors = Math.max(0, now.errors - was.errors);
    const u = latest[name];
    out[name] = { requests: Math.round(requests), errorRate: requests > 0 ? errors / requests : null, p50: u?.p50 ?? null, p99: u?.p99 ?? null, rss: u?.rss ?? null };
  }
  return out;
}
