import { isObject } from '../common/json-shape.js';
import type { CheckResult, CheckStatus } from '../rollout/checks.js';
import type { Decision, RolloutView } from '../rollout/controller.js';
import { verificationLines } from '../rollout/formats.js';
import { stepName } from '../rollout/plan.js';

/**
 * What the CLI prints for the admin API's answers (GET /rollout, /rollout/decisions, /recording,
 * /shadow): short summaries a person reads, each a pure function of the answer and the time it
 * is read at. `--json` prints the answer itself.
 */

/** When the summary is read: "in 3s" and "held" are counted from `now`; times are shown in `timeZone` (default: the machine's). */
export interface ReadAt {
  readonly now: number;
  readonly timeZone?: string | undefined;
}

/** A fleet controller's GET /rollout also has its replicas (src/fleet/app.ts). */
type Answer = RolloutView & { readonly fleet?: { readonly prometheus?: unknown; readonly replicas?: unknown } };

/** Whether GET /rollout answered with a rollout this CLI can read (an older admin API may not). */
export function isRolloutAnswer(json: unknown): json is Answer {
  return isObject(json) && typeof json.phase === 'string' && isObject(json.plan) && isObject(json.weights);
}

/** The decisions of GET /rollout/decisions that are decisions, and how many entries were not. */
export function decisionsOf(json: unknown): { readonly decisions: readonly Decision[]; readonly skipped: number } | undefined {
  if (!isObject(json) || !Array.isArray(json.decisions)) return undefined;
  const all = json.decisions as unknown[];
  const decisions = all.filter((d): d is Decision => isObject(d) && typeof d.at === 'string' && typeof d.action === 'string' && typeof d.text === 'string');
  return { decisions, skipped: all.length - decisions.length };
}

const UNITS: readonly (readonly [string, number])[] = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]];

/** A duration as a person reads it, to two units at most: 0s, 850ms, 4.2s, 3m 5s, 2h 10m, 5d 3h. */
export function roughDuration(ms: number): string {
  if (ms < 1000) return ms > 0 ? `${Math.round(ms)}ms` : '0s';
  if (ms < 60_000) return `${Math.floor(ms / 100) / 10}s`;
  const i = UNITS.findIndex(([, size]) => ms >= size);
  const [[big, bigSize], [small, smallSize]] = [UNITS[i]!, UNITS[i + 1]!];
  const whole = Math.floor(ms / bigSize);
  const rest = Math.floor((ms % bigSize) / smallSize);
  return rest === 0 ? `${whole}${big}` : `${whole}${big} ${rest}${small}`;
}

/** "in 4.2s", or "due now" for a time already past (a check under way). */
const inTime = (iso: string, at: ReadAt): string => {
  const left = Date.parse(iso) - at.now;
  return left > 0 ? `in ${roughDuration(left)}` : 'due now';
};

/** A time of day (24 h) in the reader's zone; with its date when not `now`'s day. */
export function clock(iso: string, at: ReadAt): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const { timeZone } = at;
  const day = (t: number): string => new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(t);
  const time = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).format(ms);
  return day(ms) === day(at.now) ? time : `${day(ms)} ${time}`;
}

const percent = (n: number): string => `${n}%`;
/** A sample rate (0..1) as a percentage: 0.01 → "1%". */
const rate = (r: number): string => `${Math.round(r * 1e6) / 1e4}%`;
const words = (phase: string): string => phase.replaceAll('_', ' ');
/** A label and its value, aligned. */
const row = (label: string, value: string): string => `${label.padEnd(14)}${value}`;

/** A check's verdict in a word: pass or fail (and what a failure triggers), or why there is none. */
const VERDICT: Readonly<Record<CheckStatus, string>> = {
  ok: 'pass',
  miss: 'fail',
  reduce: 'fail: reduce',
  rollback: 'fail: rollback',
  inconclusive: 'inconclusive',
  unavailable: 'not measured',
};

/** Each check on a line: its verdict, its name and its numbers. */
function checkLines(checks: readonly CheckResult[]): string[] {
  const width = Math.max(...checks.map((c) => c.check.length));
  return checks.map((c) => `  ${(VERDICT[c.status] ?? c.status).padEnd(16)}${c.check.padEnd(width + 2)}${c.text}`);
}

/** A decision on one line: when, what, the canary's weight from → to, why (with the person's reason). */
export function decisionLine(d: Decision, at: ReadAt): string {
  const person = d.who === 'rollout' ? '' : d.who;
  const reason = typeof d.reason === 'string' && d.reason !== '' ? d.reason : '';
  const by = person === '' && reason === '' ? '' : ` (${[person, reason].filter((s) => s !== '').join(': ')})`;
  const weights = `${percent(d.from).padStart(4)} → ${percent(d.to).padEnd(4)}`;
  return `${clock(d.at, at)}  ${d.action.padEnd(19)} ${weights}  ${d.text}${by}${d.dryRun === true ? ' [dry run]' : ''}`;
}

/** GET /rollout/decisions as lines, oldest first, each verification's items under its decision; the last `limit` when given. */
export function decisionsSummary(decisions: readonly Decision[], at: ReadAt, limit?: number): string {
  if (decisions.length === 0) return 'no decisions yet';
  const shown = limit === undefined || limit >= decisions.length ? decisions : decisions.slice(-limit);
  const lines = shown.flatMap((d) => [decisionLine(d, at), ...verificationLines(d.verification).map((l) => `          ${l}`)]);
  return (shown.length < decisions.length ? [`the last ${shown.length} of ${decisions.length} decisions`, ...lines] : lines).join('\n');
}

/** How many of the last decisions `rollout status` shows. */
export const STATUS_DECISIONS = 5;

/**
 * GET /rollout, with the last decisions (GET /rollout/decisions), as `rollout status` prints
 * it: the canary and its phase, the step (n of N, its weight, time held of its hold), the
 * weights, the next check, the last verdict with each check on a line, the last decisions, the
 * plan. A fleet controller's answer adds its replicas.
 */
export function statusSummary(r: Answer, decisions: readonly Decision[], at: ReadAt): string {
  const { plan, step } = r;
  const lines = [row('canary', `${plan.canary} (baseline ${plan.baseline})${plan.dryRun ? ', a dry run: the weights do not move' : ''}`), row('phase', words(r.phase))];
  if (r.controller !== null) lines.push(row('run by', `the fleet controller ${r.controller.controller} (token "${r.controller.who}"), its claim until ${clock(r.controller.until, at)}`));
  if (step === null) {
    lines.push(row('step', 'none'));
  } else {
    const then = step.approve ? ', then a person approves' : '';
    lines.push(row('step', `${step.index + 1} of ${step.of}: ${stepName(step)}, held ${roughDuration(step.heldMs)} of ${roughDuration(step.holdMs)}${then}`));
  }
  lines.push(row('weights', Object.entries(r.weights).map(([name, w]) => `${name} ${percent(w)}`).join(', ')));
  lines.push(row('next check', r.nextCheckAt === null ? 'none' : inTime(r.nextCheckAt, at)));
  if (r.reduceAt !== null) lines.push(row('reduced', `judged again ${inTime(r.reduceAt, at)}`));
  if (r.note !== null) lines.push(row('note', r.note));
  const v = r.lastVerdict;
  lines.push(row('last verdict', v === null ? 'none yet' : `${v.action} at ${clock(v.at, at)}: ${v.text}`));
  if (v !== null && v.checks.length > 0) lines.push(...checkLines(v.checks));
  const routed = Object.entries(v?.routed ?? {}).filter(([, n]) => n > 0);
  if (routed.length > 0) lines.push(row('not judged', `${routed.map(([name, n]) => `${n} to ${name}`).join(' and ')} in the window, taken by cohort rules`));
  const verification = r.lastVerification;
  if (verification !== null) {
    lines.push(row('verification', `${words(verification.action)} at ${clock(verification.at, at)}`));
    lines.push(...verificationLines(verification).map((l) => `  ${l}`));
  }
  const recent = decisions.slice(-STATUS_DECISIONS);
  const count = recent.length < decisions.length ? `the last ${recent.length} of ${decisions.length} (all: drum-splitter rollout decisions)` : String(decisions.length);
  lines.push(row('decisions', recent.length === 0 ? 'none yet' : count));
  lines.push(...recent.map((d) => `  ${decisionLine(d, at)}`));
  lines.push(row('plan', plan.steps));
  lines.push(...fleetLines(r.fleet));
  return lines.join('\n');
}

/** A fleet controller's replicas: each one's status and what it did last. */
function fleetLines(fleet: Answer['fleet']): string[] {
  if (!isObject(fleet) || !Array.isArray(fleet.replicas)) return [];
  const replicas = fleet.replicas.filter(isObject);
  const from = typeof fleet.prometheus === 'string' ? `, judged from ${fleet.prometheus}` : '';
  return [
    row('fleet', `${replicas.length} replica${replicas.length === 1 ? '' : 's'}${from}`),
    ...replicas.map((p) => `  ${String(p.status).padEnd(14)}${String(p.url)}  ${String(p.detail ?? '')}`.trimEnd()),
  ];
}

/** GET /recording as one line. */
export function recordingSummary(v: { readonly enabled: boolean; readonly sampleRate: number; readonly file: string | null; readonly paths: readonly string[] }): string {
  if (v.file === null) return 'recording off; with no --record file, it cannot be switched on';
  const what = `${rate(v.sampleRate)} of the requests to ${v.paths.join(', ')}`;
  return v.enabled ? `recording on: ${what}, written to ${v.file}` : `recording off (on: ${what}, written to ${v.file})`;
}

/** What GET /shadow tells of the live shadow (src/shadow/shadow.ts ShadowView). */
export interface ShadowAnswer {
  readonly enabled: boolean;
  readonly sampleRate: number;
  readonly upstream: string | null;
  readonly paths: readonly string[];
  readonly inflight: number;
  readonly counts: { readonly match: number; readonly mismatch: number; readonly error: number; readonly dropped: number };
  readonly matchRate: number | null;
}

/** GET /shadow: what is copied where, and what the copies came to. */
export function shadowSummary(v: ShadowAnswer): string {
  if (v.upstream === null) return 'shadow off; with one upstream, there is none to copy to';
  const what = `${rate(v.sampleRate)} of the baseline's requests to ${v.paths.join(', ')} copied to ${v.upstream}`;
  const { match, mismatch, error, dropped } = v.counts;
  const compared = match + mismatch;
  const matched = v.matchRate === null ? '' : ` (${Math.round(v.matchRate * 10_000) / 100}% match)`;
  // Off at 0 (as the rollout's shadow phase leaves it): switching it on takes a rate.
  const off = v.sampleRate > 0 ? `shadow off (on: ${what})` : `shadow off; to copy to ${v.upstream}: drum-splitter shadow on --sample RATE`;
  return [
    v.enabled ? `shadow on: ${what}` : off,
    `compared ${compared}: ${mismatch} differ${matched}; ${error} failed, ${dropped} dropped, ${v.inflight} in flight`,
  ].join('\n');
}
