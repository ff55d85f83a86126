import { InputError } from '../common/input-error.js';
import { isObject } from '../common/json-shape.js';
import { parsePercent, toPercent } from '../common/percent.js';
import { parseDuration } from '../common/units.js';
import { parseCustomChecks, type CustomCheck } from './custom.js';

/**
 * The rollout plan: the canary's steps, what each must meet before the next, and when to roll back.
 * Its defaults are the seed runbooks' (CANARY_DEPLOYMENT.md, ROLLBACK_PLAN.md); where they are vague
 * or disagree, the choice is said next to the value.
 */

/** What the canary must stay under, compared with the baseline, to move past a step. */
export interface StepCriteria {
  /** The canary's 5xx share, e.g. 0.001 for 0.1%. */
  readonly maxErrorRate: number;
  /** The canary's p99 over the baseline's, minus 1: 0.2 = 20% slower. */
  readonly maxP99Increase: number;
  /** The canary's memory over the baseline's, minus 1. */
  readonly maxMemoryIncrease: number;
}

export interface RolloutStep extends StepCriteria {
  /** The canary's share in percent, 0 < weight ≤ 100, at most two decimals. */
  readonly weight: number;
  readonly holdMs: number;
  /** A person must approve before the rollout moves past this step (the seed's phase prerequisites). */
  readonly approve: boolean;
  /**
   * The shadow phase (the first step only): the share of the baseline's requests the live shadow
   * copies to the canary, 0 < shadow ≤ 1, while the canary takes 0% (weight 0).
   */
  readonly shadow?: number;
}

export interface RollbackThresholds {
  readonly maxErrorRate: number; // immediate to 0%
  readonly maxP99Increase: number; // gradual reduction
  readonly maxMemoryIncrease: number; // gradual reduction
  readonly pingTimeoutMs: number; // immediate
  readonly maxRssGrowthPerHour: number; // immediate
  readonly reductionWaitMs: number;
  /** Shadow pairs whose answers differ (beyond the ignore list and the noise), as a share: over it, immediate. */
  readonly maxMismatchRate: number;
}

export interface RolloutPlan {
  readonly canary: string;
  readonly baseline: string;
  readonly intervalMs: number;
  readonly windowMs: number;
  readonly minRequests: number;
  /** Checks skipped after every weight change: the first interval measures the change itself (new connections, a cold canary). */
  readonly settle: number;
  /** Consecutive failing windows a gradual trigger or a step's miss needs before it acts; the immediate triggers act on one. */
  readonly confirm: number;
  /** The smallest p99 difference that counts as a regression, in ms. */
  readonly minP99DifferenceMs: number;
  readonly steps: readonly RolloutStep[];
  readonly rollback: RollbackThresholds;
  readonly notify: readonly NotifyTarget[];
  /** What a verification after a rollback replays and how long it waits (rollout/verify.ts). */
  readonly verify: VerifySettings;
  /** Called around the steps (hooks.ts); pre-step and confirm-step ones must answer 2xx before the canary moves. */
  readonly hooks: readonly RolloutHook[];
  /** Judge and decide as usual, say each decision as "would …", move no weight. */
  readonly dryRun: boolean;
  /** Checks of one's own (custom.ts), judged beside the built-in ones. */
  readonly checks: readonly CustomCheck[];
  /** How often an active rollout sends its summary notice (the seed's "hourly metric summaries"). */
  readonly summaryIntervalMs: number;
}

/** When a hook is called: before the canary moves to a step, when a step's hold is done (before the promotion), when the rollout ends, on a rollback. */
export type HookEvent = 'pre-step' | 'confirm-step' | 'post-rollout' | 'rollback';
export const HOOK_EVENTS: readonly HookEvent[] = ['pre-step', 'confirm-step', 'post-rollout', 'rollback'];

export interface RolloutHook {
  readonly name: string;
  readonly on: HookEvent;
  readonly url: string;
  /** The whole exchange must be done within it; a hook that takes longer has failed. */
  readonly timeoutMs: number;
}

/** How a webhook's events are written: the generic JSON (the event as it is), or a service's own format (rollout/formats.ts). */
export type NotifyFormat = 'json' | 'slack' | 'teams' | 'pagerduty';
export const NOTIFY_FORMATS: readonly NotifyFormat[] = ['json', 'slack', 'teams', 'pagerduty'];

/** One `notify:` entry: a URL alone is the generic JSON. */
export interface NotifyTarget {
  readonly url: string;
  readonly format: NotifyFormat;
  /** PagerDuty's integration key (Events API v2), sent in each event's body. */
  readonly routingKey?: string;
}

/** PagerDuty's Events API v2, where an entry with only a routingKey sends. */
export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';

export interface VerifySettings {
  /** Files of requests to replay (a .jsonl recording, or a body posted to /predict/); empty: the --record file's recent predictions. */
  readonly requests: readonly string[];
  /** Each request of the verification, at most this long. */
  readonly timeoutMs: number;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

// CANARY_DEPLOYMENT.md "Success Criteria for Each Step": the 1%, 5% and 10% columns.
const AT_1: StepCriteria = { maxErrorRate: 0.001, maxP99Increase: 0.3, maxMemoryIncrease: 0.5 };
const AT_5: StepCriteria = { maxErrorRate: 0.001, maxP99Increase: 0.25, maxMemoryIncrease: 0.4 };
const AT_10: StepCriteria = { maxErrorRate: 0.001, maxP99Increase: 0.2, maxMemoryIncrease: 0.3 };

const step = (weight: number, holdMs: number, criteria: StepCriteria, approve = false): RolloutStep =>
  Object.freeze({ weight, holdMs, approve, ...criteria });

/**
 * The seed's phases 2 to 5. The seed gives criteria only up to 10%; the later steps keep the
 * strictest (10%) ones. Approval sits on the last step of a phase, before 25%, 75% and 100%,
 * where the seed asks for sign-off or a successful phase.
 */
export const DEFAULT_STEPS: readonly RolloutStep[] = Object.freeze([
  // Phase 2 "2-3 weeks" for three steps: 5 days each, 15 days.
  step(1, 5 * DAY, AT_1),
  step(5, 5 * DAY, AT_5),
  step(10, 5 * DAY, AT_10, true), // Phase 3 prerequisites: a week within thresholds, team sign-off
  // Phase 3's schedule: 25% for 48 hours, 35% for 24, 50% for 72.
  step(25, 48 * HOUR, AT_10),
  step(35, 24 * HOUR, AT_10),
  step(50, 72 * HOUR, AT_10, true), // Phase 4 prerequisite: Phase 3 successful for 1 week
  // Phase 4 "1-2 weeks": 75% on day 1, 90% on day 3, then 90% for the rest of a week.
  step(75, 48 * HOUR, AT_10),
  step(90, 5 * DAY, AT_10, true),
  // Phase 5: "1 week observation" at 100% before Flask is decommissioned.
  step(100, 7 * DAY, AT_10),
]);

export const DEFAULT_ROLLBACK: RollbackThresholds = Object.freeze({
  // CANARY_DEPLOYMENT.md's CanaryThresholds and ROLLBACK_PLAN.md "Automatic Rollback Triggers":
  // error rate > 1% (immediate), p99 and memory > 50% more (gradual reduction).
  maxErrorRate: 0.01,
  maxP99Increase: 0.5,
  maxMemoryIncrease: 0.5,
  // ROLLBACK_PLAN.md "Critical Triggers": no /ping answer in 30 s, RSS growing > 10% an hour.
  pingTimeoutMs: 30 * SECOND,
  maxRssGrowthPerHour: 0.1,
  // ROLLBACK_PLAN.md "Gradual Reduction": 15 minutes between reductions.
  reductionWaitMs: 15 * MINUTE,
  // ROLLBACK_PLAN.md "Critical Triggers": Data Corruption, a prediction diff, "any difference".
  maxMismatchRate: 0,
});

const DEFAULT_INTERVAL = '30s';
const DEFAULT_WINDOW = '5m'; // the seed's evaluation_window
const DEFAULT_MIN_REQUESTS = 200;
const DEFAULT_SETTLE = 1;
const DEFAULT_CONFIRM = 2;
// Chosen from bench:verdicts' identical servers: a window's chance p99 difference reached
// several ms on a busy 2-core machine (the README's "How well it decides").
export const DEFAULT_MIN_P99_DIFFERENCE = '5ms';

const DEFAULT_SUMMARY_INTERVAL = '1h'; // CANARY_DEPLOYMENT.md "Communication Plan": hourly metric summaries

const PLAN_KEYS = ['canary', 'interval', 'window', 'minRequests', 'settle', 'confirm', 'minP99Difference', 'steps', 'rollback', 'notify', 'maxMismatchRate', 'hooks', 'dryRun', 'verify', 'checks', 'summaryInterval'];
const HOOK_KEYS = ['name', 'on', 'url', 'timeout'];
const DEFAULT_HOOK_TIMEOUT = '10s';
const STEP_KEYS = ['weight', 'hold', 'maxErrorRate', 'maxP99Increase', 'maxMemoryIncrease', 'approve', 'shadow'];
const ROLLBACK_KEYS = ['maxErrorRate', 'maxP99Increase', 'maxMemoryIncrease', 'pingTimeout', 'maxRssGrowthPerHour', 'reductionWait', 'maxMismatchRate'];
const NOTIFY_KEYS = ['url', 'format', 'routingKey'];
const VERIFY_KEYS = ['requests', 'timeout'];
const DEFAULT_VERIFY_TIMEOUT = '10s';

/**
 * The plan from the config file's `rollout:` value; undefined or null gives every default.
 * upstreams are the configured names in order, the first being the baseline.
 */
export function parsePlan(raw: unknown, upstreams: readonly string[]): RolloutPlan {
  if (upstreams.length < 2) {
    throw new InputError(`a rollout needs at least 2 upstreams, the baseline (the first) and a canary; found ${upstreams.length}`, 'upstreams');
  }
  // YAML nulls mean "default", as in the rest of the config file.
  const r = mapping(raw ?? {}, 'rollout', PLAN_KEYS);
  const baseline = upstreams[0]!;
  const intervalMs = parseDuration(r.interval ?? DEFAULT_INTERVAL, 'rollout.interval');
  const windowMs = parseDuration(r.window ?? DEFAULT_WINDOW, 'rollout.window');
  // A window shorter than the interval leaves requests between two checks that no check sees.
  if (windowMs < intervalMs) {
    throw new InputError(`${formatDuration(windowMs)} is shorter than the interval ${formatDuration(intervalMs)}`, 'rollout.window');
  }
  return {
    canary: parseCanary(r.canary ?? upstreams[1], upstreams),
    baseline,
    intervalMs,
    windowMs,
    minRequests: positiveInteger(r.minRequests ?? DEFAULT_MIN_REQUESTS, 'rollout.minRequests'),
    settle: wholeNumber(r.settle ?? DEFAULT_SETTLE, 'rollout.settle', 0),
    confirm: positiveInteger(r.confirm ?? DEFAULT_CONFIRM, 'rollout.confirm'),
    minP99DifferenceMs: parseMinP99Difference(r.minP99Difference ?? DEFAULT_MIN_P99_DIFFERENCE, 'rollout.minP99Difference'),
    steps: r.steps == null ? DEFAULT_STEPS : parseSteps(r.steps),
    rollback: parseRollback(r.rollback ?? {}, r.maxMismatchRate),
    notify: parseNotify(r.notify ?? []),
    hooks: parseHooks(r.hooks ?? []),
    dryRun: flag(r.dryRun ?? false, 'rollout.dryRun'),
    verify: parseVerify(r.verify ?? {}),
    checks: parseCustomChecks(r.checks),
    summaryIntervalMs: parseDuration(r.summaryInterval ?? DEFAULT_SUMMARY_INTERVAL, 'rollout.summaryInterval'),
  };
}

/** "1% 5d → 5% 5d → 10% 5d (approve) → 25% 48h → …", for logs. */
export function describePlan(plan: RolloutPlan): string {
  return plan.steps.map((s) => `${stepName(s)} ${formatDuration(s.holdMs)}${s.approve ? ' (approve)' : ''}`).join(' → ');
}

/** "5%", or "shadow 10%" for the shadow phase (the share copied; the canary takes 0%). */
export function stepName(step: Pick<RolloutStep, 'weight' | 'shadow'>): string {
  return step.shadow === undefined ? `${step.weight}%` : `shadow ${toPercent(Math.round(step.shadow * 10_000))}%`;
}

/**
 * A duration in the largest unit that states it exactly, so it reads back through parseDuration.
 * Hours up to 72h, as the seed counts its monitoring periods ("48 hours", "72 hours"); days beyond.
 */
export function formatDuration(ms: number): string {
  if (ms % DAY === 0 && ms > 3 * DAY) return `${ms / DAY}d`;
  const units: [string, number][] = [['h', HOUR], ['m', MINUTE], ['s', SECOND]];
  const unit = units.find(([, size]) => ms % size === 0);
  return unit === undefined ? `${ms}ms` : `${ms / unit[1]}${unit[0]}`;
}

function mapping(value: unknown, field: string, known: readonly string[]): Record<string, unknown> {
  if (!isObject(value)) throw new InputError('must be a mapping of KEY: VALUE', field);
  const unknown = Object.keys(value).find((k) => !known.includes(k));
  if (unknown !== undefined) throw new InputError(`unknown key "${unknown}"; known: ${known.join(', ')}`, field);
  return value as Record<string, unknown>;
}

function parseCanary(value: unknown, upstreams: readonly string[]): string {
  if (typeof value !== 'string' || !upstreams.includes(value)) {
    throw new InputError(`"${String(value)}" is not an upstream; they are: ${upstreams.join(', ')}`, 'rollout.canary');
  }
  if (value === upstreams[0]) throw new InputError(`"${value}" is the baseline (the first upstream); the canary must be another`, 'rollout.canary');
  return value;
}

/** rollout.minP99Difference, and replay's --min-p99-difference: a duration in ms, or 0 for no floor. */
export function parseMinP99Difference(value: unknown, field: string): number {
  return String(value).trim() === '0' ? 0 : parseDuration(value, field);
}

function wholeNumber(value: unknown, field: string, min: number): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new InputError(`"${String(value)}" is not a whole number${min === 0 ? '' : ' above 0'}`, field);
  return n;
}

const positiveInteger = (value: unknown, field: string): number => wholeNumber(value, field, 1);

function parseSteps(value: unknown): RolloutStep[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new InputError('must be a non-empty list of steps, each { weight, hold, ... }', 'rollout.steps');
  }
  const steps: RolloutStep[] = [];
  // The first step's omitted criteria are the seed's 1% ones; later steps' are the step before's.
  let previous: StepCriteria = AT_1;
  let previousHundredths = 0;
  for (const [i, item] of value.entries()) {
    const field = `rollout.steps[${i}]`;
    const s = mapping(item, field, STEP_KEYS);
    if (s.shadow != null) {
      steps.push(shadowStep(s, field, i, value.length));
      continue;
    }
    if (s.weight == null) throw new InputError("needs a weight, the canary's percent at this step", `${field}.weight`);
    // In hundredths, as nginx's split_clients counts, so the comparison is exact.
    const hundredths = parsePercent(s.weight, `${field}.weight`);
    if (hundredths === 0) throw new InputError('must be above 0%; the rollout starts from 0% by itself', `${field}.weight`);
    if (hundredths <= previousHundredths) {
      throw new InputError(`${toPercent(hundredths)}% is not above the step before's ${toPercent(previousHundredths)}%`, `${field}.weight`);
    }
    if (s.hold == null) throw new InputError('needs a hold, how long to stay at this step, e.g. 48h', `${field}.hold`);
    const holdMs = parseDuration(s.hold, `${field}.hold`);
    const criteria: StepCriteria = {
      maxErrorRate: s.maxErrorRate == null ? previous.maxErrorRate : errorRate(s.maxErrorRate, `${field}.maxErrorRate`),
      maxP99Increase: s.maxP99Increase == null ? previous.maxP99Increase : increase(s.maxP99Increase, `${field}.maxP99Increase`),
      maxMemoryIncrease: s.maxMemoryIncrease == null ? previous.maxMemoryIncrease : increase(s.maxMemoryIncrease, `${field}.maxMemoryIncrease`),
    };
    const approve = flag(s.approve ?? false, `${field}.approve`);
    steps.push(step(toPercent(hundredths), holdMs, criteria, approve));
    previous = criteria;
    previousHundredths = hundredths;
  }
  return steps;
}

/** The seed's Phase 1 criterion: the canary's p99 within 20% of the baseline's. */
const SHADOW_P99_INCREASE = 0.2;

/**
 * `{ shadow: 0.1, hold: 2d, approve?, ...criteria }`: the seed's Phase 1 before the canary takes
 * traffic. First and not last; no weight (the canary takes 0%). Omitted criteria are the seed's
 * 1% ones, the p99's its Phase 1 "within 20%"; the next step's defaults are not taken from it.
 */
function shadowStep(s: Record<string, unknown>, field: string, index: number, count: number): RolloutStep {
  if (index > 0) throw new InputError('only the first step can be the shadow phase', `${field}.shadow`);
  if (count < 2) throw new InputError('the shadow phase needs a canary step after it, e.g. { weight: 1, hold: 5d }', `${field}.shadow`);
  if (s.weight != null) throw new InputError('a shadow step has no weight: the canary takes 0% while the shadow copies requests to it', `${field}.weight`);
  const share = s.shadow;
  if (typeof share !== 'number' || !(share > 0 && share <= 1)) {
    throw new InputError(`"${String(share)}" is not a share of the baseline's requests above 0 and at most 1, e.g. 0.1 for 10%`, `${field}.shadow`);
  }
  if (s.hold == null) throw new InputError('needs a hold, how long the shadow phase lasts, e.g. 2d', `${field}.hold`);
  const approve = s.approve ?? false;
  if (typeof approve !== 'boolean') throw new InputError(`"${String(approve)}" is not true or false`, `${field}.approve`);
  return Object.freeze({
    weight: 0,
    shadow: share,
    holdMs: parseDuration(s.hold, `${field}.hold`),
    approve,
    maxErrorRate: s.maxErrorRate == null ? AT_1.maxErrorRate : errorRate(s.maxErrorRate, `${field}.maxErrorRate`),
    maxP99Increase: s.maxP99Increase == null ? SHADOW_P99_INCREASE : increase(s.maxP99Increase, `${field}.maxP99Increase`),
    maxMemoryIncrease: s.maxMemoryIncrease == null ? AT_1.maxMemoryIncrease : increase(s.maxMemoryIncrease, `${field}.maxMemoryIncrease`),
  });
}

/** rollback.maxMismatchRate, also taken as rollout.maxMismatchRate (`top`); given in both places, it must be once. */
function mismatchRate(inRollback: unknown, top: unknown): number {
  if (inRollback != null && top != null) throw new InputError('given twice: set it once, as rollout.rollback.maxMismatchRate or rollout.maxMismatchRate', 'rollout.maxMismatchRate');
  const [value, field] = top != null ? [top, 'rollout.maxMismatchRate'] : [inRollback, 'rollout.rollback.maxMismatchRate'];
  if (value == null) return DEFAULT_ROLLBACK.maxMismatchRate;
  // 0 is the default and the seed's "any difference".
  if (typeof value !== 'number' || !(value >= 0 && value < 1)) throw new InputError(`"${String(value)}" is not a share from 0 (any difference) to below 1, e.g. 0.001`, field);
  return value;
}

function parseRollback(value: unknown, topMismatchRate?: unknown): RollbackThresholds {
  const r = mapping(value, 'rollout.rollback', ROLLBACK_KEYS);
  const d = DEFAULT_ROLLBACK;
  return {
    maxMismatchRate: mismatchRate(r.maxMismatchRate, topMismatchRate),
    maxErrorRate: r.maxErrorRate == null ? d.maxErrorRate : errorRate(r.maxErrorRate, 'rollout.rollback.maxErrorRate'),
    maxP99Increase: r.maxP99Increase == null ? d.maxP99Increase : increase(r.maxP99Increase, 'rollout.rollback.maxP99Increase'),
    maxMemoryIncrease: r.maxMemoryIncrease == null ? d.maxMemoryIncrease : increase(r.maxMemoryIncrease, 'rollout.rollback.maxMemoryIncrease'),
    pingTimeoutMs: r.pingTimeout == null ? d.pingTimeoutMs : parseDuration(r.pingTimeout, 'rollout.rollback.pingTimeout'),
    maxRssGrowthPerHour: r.maxRssGrowthPerHour == null ? d.maxRssGrowthPerHour : increase(r.maxRssGrowthPerHour, 'rollout.rollback.maxRssGrowthPerHour'),
    reductionWaitMs: r.reductionWait == null ? d.reductionWaitMs : parseDuration(r.reductionWait, 'rollout.rollback.reductionWait'),
  };
}

/** A growth over the baseline as a fraction (0.2 = 20% more); above 1 is allowed, it is "more than double". */
function increase(value: unknown, field: string): number {
  // Numbers only: "20%" or "0.2" as text would leave it unclear whether 20 meant 20% or 20×.
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new InputError(`"${String(value)}" is not a number, e.g. 0.2 for 20%`, field);
  if (value <= 0) throw new InputError(`${value} is not above 0`, field);
  return value;
}

/** A share of requests, so below 1: 0.01 is 1%. */
function errorRate(value: unknown, field: string): number {
  const n = increase(value, field);
  if (n >= 1) throw new InputError(`${n} is not below 1; an error rate is a fraction, e.g. 0.01 for 1%`, field);
  return n;
}

function parseNotify(value: unknown): NotifyTarget[] {
  if (!Array.isArray(value)) throw new InputError('must be a list of webhooks: a URL (the generic JSON), or { url, format: json|slack|teams|pagerduty, routingKey }', 'rollout.notify');
  return value.map((item, i) => {
    const field = `rollout.notify[${i}]`;
    if (typeof item === 'string') return { url: webhookUrl(item, field), format: 'json' };
    const o = mapping(item, field, NOTIFY_KEYS);
    const format = o.format ?? 'json';
    if (!NOTIFY_FORMATS.includes(format as NotifyFormat)) throw new InputError(`"${String(format)}" is not one of ${NOTIFY_FORMATS.join(', ')}`, `${field}.format`);
    if (format !== 'pagerduty') {
      if (o.routingKey != null) throw new InputError('is for format: pagerduty only', `${field}.routingKey`);
      if (o.url == null) throw new InputError('needs a url', `${field}.url`);
      return { url: webhookUrl(o.url, `${field}.url`), format: format as NotifyFormat };
    }
    // PagerDuty's integration keys are 32 characters; a wrong one is refused by PagerDuty only when an incident is due.
    if (typeof o.routingKey !== 'string' || !/^[A-Za-z0-9]{32}$/.test(o.routingKey)) {
      throw new InputError("needs PagerDuty's integration key (Events API v2), 32 letters and digits", `${field}.routingKey`);
    }
    return { url: webhookUrl(o.url ?? PAGERDUTY_EVENTS_URL, `${field}.url`), format: 'pagerduty', routingKey: o.routingKey };
  });
}

function flag(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw new InputError(`"${String(value)}" is not true or false`, field);
  return value;
}

function parseHooks(value: unknown): RolloutHook[] {
  if (!Array.isArray(value)) throw new InputError(`must be a list of hooks, each { name, on: ${HOOK_EVENTS.join('|')}, url, timeout }`, 'rollout.hooks');
  const hooks = value.map((item, i): RolloutHook => {
    const field = `rollout.hooks[${i}]`;
    const h = mapping(item, field, HOOK_KEYS);
    if (typeof h.name !== 'string' || h.name.trim() === '') throw new InputError('needs a name, a non-empty string (decisions name the hook by it)', `${field}.name`);
    if (!HOOK_EVENTS.includes(h.on as HookEvent)) throw new InputError(`"${String(h.on)}" is not one of ${HOOK_EVENTS.join(', ')}`, `${field}.on`);
    return { name: h.name, on: h.on as HookEvent, url: webhookUrl(h.url, `${field}.url`), timeoutMs: parseDuration(h.timeout ?? DEFAULT_HOOK_TIMEOUT, `${field}.timeout`) };
  });
  const names = hooks.map((h) => h.name);
  const twice = names.findIndex((n, i) => names.indexOf(n) !== i);
  if (twice !== -1) throw new InputError(`"${names[twice]!}" names another hook too; each needs its own name`, `rollout.hooks[${twice}].name`);
  return hooks;
}

function webhookUrl(item: unknown, field: string): string {
  if (typeof item !== 'string' || !URL.canParse(item)) throw new InputError(`"${String(item)}" is not a URL`, field);
  const url = new URL(item);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InputError(`"${item}" is not an http:// or https:// URL`, field);
  return url.href;
}

function parseVerify(value: unknown): VerifySettings {
  const v = mapping(value, 'rollout.verify', VERIFY_KEYS);
  const requests = v.requests ?? [];
  if (!Array.isArray(requests) || requests.some((f) => typeof f !== 'string' || f === '')) {
    throw new InputError('must be a list of files: a .jsonl recording, or a body posted to /predict/ (.csv, .json)', 'rollout.verify.requests');
  }
  return { requests: requests as string[], timeoutMs: parseDuration(v.timeout ?? DEFAULT_VERIFY_TIMEOUT, 'rollout.verify.timeout') };
}
