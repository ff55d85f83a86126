import { InputError } from '../common/input-error.js';
import { isObject, parseJson } from '../common/json-shape.js';
import { parseDuration } from '../common/units.js';
import type { CheckName, CheckResult, CheckStatus } from './checks.js';

/**
 * Checks of one's own (the plan's `checks`), judged beside the built-in ones: a webhook that
 * answers {"pass": bool, "value": n, "why": "..."}, or (the fleet controller) a PromQL query with
 * a limit. Gathering is I/O (here, and the fleet's Prometheus); each answer's judgement is pure.
 */

/** What a failing custom check does: count as a step's miss (the hold starts again), or roll back at once. */
export type CustomOn = 'miss' | 'rollback';

interface Common {
  readonly name: string;
  readonly on: CustomOn;
  readonly timeoutMs: number;
}

export type CustomCheck =
  | (Common & { readonly kind: 'webhook'; readonly webhook: string })
  | (Common & { readonly kind: 'query'; readonly query: string; readonly max: number; readonly maxIncrease?: undefined })
  | (Common & { readonly kind: 'query'; readonly query: string; readonly maxIncrease: number; readonly max?: undefined });

const BUILT_IN: readonly CheckName[] = ['error_rate', 'p99', 'memory', 'rss_growth', 'oom', 'ping', 'mismatch'];
const KEYS = ['name', 'webhook', 'query', 'max', 'maxIncrease', 'timeout', 'on'];
const DEFAULT_TIMEOUT = '5s';

/** rollout.checks: a list of { name, webhook | query (with max or maxIncrease), timeout?, on? }. */
export function parseCustomChecks(value: unknown): CustomCheck[] {
  if (value == null) return [];
  if (!Array.isArray(value)) throw new InputError('must be a list of checks, each { name, webhook: URL } or { name, query: PromQL, max | maxIncrease }', 'rollout.checks');
  const names = new Set<string>();
  return value.map((item, i) => {
    const field = `rollout.checks[${i}]`;
    if (!isObject(item)) throw new InputError('must be a mapping: { name, webhook: URL } or { name, query: PromQL, max | maxIncrease }', field);
    const c = item as Record<string, unknown>;
    const unknown = Object.keys(c).find((k) => !KEYS.includes(k));
    if (unknown !== undefined) throw new InputError(`unknown key "${unknown}"; known: ${KEYS.join(', ')}`, field);
    const name = c.name;
    if (typeof name !== 'string' || !/^[a-z][a-z0-9_]{0,62}$/.test(name)) throw new InputError(`"${String(name)}" is not a name: a-z, 0-9 and _, starting with a letter (it is a metric label)`, `${field}.name`);
    if ((BUILT_IN as readonly string[]).includes(name)) throw new InputError(`"${name}" is a built-in check's name`, `${field}.name`);
    if (names.has(name)) throw new InputError(`"${name}" is named twice`, `${field}.name`);
    names.add(name);
    const on = c.on ?? 'miss';
    if (on !== 'miss' && on !== 'rollback') throw new InputError(`"${String(on)}" is not miss or rollback`, `${field}.on`);
    const common: Common = { name, on, timeoutMs: parseDuration(c.timeout ?? DEFAULT_TIMEOUT, `${field}.timeout`) };
    if ((c.webhook === undefined) === (c.query === undefined)) throw new InputError('needs one of webhook (a URL) or query (PromQL)', field);
    if (c.webhook !== undefined) {
      if (c.max !== undefined || c.maxIncrease !== undefined) throw new InputError('max and maxIncrease are for query checks; a webhook answers pass itself', field);
      return { ...common, kind: 'webhook', webhook: httpUrl(c.webhook, `${field}.webhook`) };
    }
    if (typeof c.query !== 'string' || c.query.trim() === '') throw new InputError('must be a PromQL expression', `${field}.query`);
    if ((c.max === undefined) === (c.maxIncrease === undefined)) throw new InputError('needs one of max (the canary\'s value stays at or under it) or maxIncrease (canary over baseline, minus 1)', field);
    if (c.max !== undefined) return { ...common, kind: 'query', query: c.query, max: finiteNumber(c.max, `${field}.max`) };
    return { ...common, kind: 'query', query: c.query, maxIncrease: finiteNumber(c.maxIncrease, `${field}.maxIncrease`) };
  });
}

function httpUrl(value: unknown, field: string): string {
  if (typeof value !== 'string' || !URL.canParse(value)) throw new InputError(`"${String(value)}" is not a URL`, field);
  const url = new URL(value);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InputError(`"${value}" is not an http:// or https:// URL`, field);
  return url.href;
}

function finiteNumber(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new InputError(`"${String(value)}" is not a number`, field);
  return value;
}

/**
 * Why this process cannot run the plan: a query check where there is no Prometheus (serve);
 * undefined when it can. serve still reads such a plan — the replicas and their fleet controller
 * share one config file — but does not start a rollout on it.
 */
export function cannotRun(checks: readonly CustomCheck[], query: CustomCheckDeps['query']): string | undefined {
  const check = query === undefined ? checks.find((c) => c.kind === 'query') : undefined;
  return check === undefined ? undefined : `the plan's check "${check.name}" is a PromQL query, and this process has no Prometheus: drum-splitter controller runs this plan`;
}

/** The failing status a check's `on` asks for. */
const failing = (check: CustomCheck): CheckStatus => check.on;

export const result = (check: CustomCheck, status: CheckStatus, value: number | null, limit: number | null, text: string, extra: Record<string, unknown> = {}): CheckResult => ({
  check: check.name,
  custom: check.kind,
  status,
  value,
  limit,
  rollbackLimit: check.on === 'rollback' ? (limit ?? 0) : 0,
  text: `${check.name}: ${text}`,
  ...extra,
});

/** A webhook check's answer: what came back (status and body), or why nothing did. */
export type WebhookAnswer = { readonly status: number; readonly body: string } | { readonly error: string };

const cut = (text: string): string => (text.length > 200 ? `${text.slice(0, 200)}…` : text);

/**
 * A webhook check's verdict from its answer: a 2xx with {"pass": true|false, "value"?: n, "why"?:
 * "..."}. pass false fails it (a miss, or a rollback with on: rollback); anything else — no
 * answer, another status, not that JSON — is inconclusive, said with why: a check that cannot
 * answer holds the step, it neither passes nor fails the canary.
 */
export function judgeWebhook(check: CustomCheck, answer: WebhookAnswer): CheckResult {
  if ('error' in answer) return result(check, 'inconclusive', null, null, `no answer (${answer.error})`);
  if (answer.status < 200 || answer.status > 299) return result(check, 'inconclusive', null, null, `answered HTTP ${answer.status}: ${cut(answer.body)}`);
  const body = parseJson(answer.body);
  if (!isObject(body) || typeof (body as { pass?: unknown }).pass !== 'boolean') {
    return result(check, 'inconclusive', null, null, `answered ${cut(answer.body) || 'nothing'}, not {"pass": true|false, "value": n, "why": "..."}`);
  }
  const { pass, value, why } = body as { pass: boolean; value?: unknown; why?: unknown };
  const n = typeof value === 'number' && Number.isFinite(value) ? value : null;
  const said = [n === null ? undefined : `value ${n}`, typeof why === 'string' && why !== '' ? cut(why) : undefined].filter((x) => x !== undefined).join(', ');
  const text = `${pass ? 'passes' : 'fails'}${said === '' ? '' : ` (${said})`}`;
  return result(check, pass ? 'ok' : failing(check), n, null, text, typeof why === 'string' ? { why } : {});
}

/** A PromQL answer reduced to what a check reads: its one value, or why there is none. */
export type QueryValue = { readonly value: number } | { readonly error: string };

/** A query's one value from its samples: none or several series is no answer (say sum() or a selector). */
export function oneValue(samples: readonly { readonly value: number }[]): QueryValue {
  if (samples.length === 0) return { error: 'no series (nothing scraped yet, or a selector that matches nothing)' };
  if (samples.length > 1) return { error: `${samples.length} series; the query must give one (aggregate with sum(), avg() or max())` };
  const { value } = samples[0]!;
  return Number.isFinite(value) ? { value } : { error: `the value is ${String(value)}` };
}

/**
 * A query check's verdict: with max, the canary's value must stay at or under it; with
 * maxIncrease, canary over baseline minus 1 must. An error or a value that is no number is
 * inconclusive.
 */
export function judgeQuery(check: Extract<CustomCheck, { kind: 'query' }>, canary: QueryValue, baseline?: QueryValue): CheckResult {
  if ('error' in canary) return result(check, 'inconclusive', null, null, `canary: ${canary.error}`);
  if (check.max !== undefined) {
    const over = canary.value > check.max;
    return result(check, over ? failing(check) : 'ok', canary.value, check.max, `${canary.value} ${over ? 'over' : 'within'} max ${check.max}`, { canaryValue: canary.value });
  }
  if (baseline === undefined || 'error' in baseline) return result(check, 'inconclusive', null, null, `baseline: ${baseline === undefined ? 'not asked' : baseline.error}`);
  if (baseline.value <= 0) return result(check, 'inconclusive', null, null, `baseline ${baseline.value}: no increase over it can be measured`);
  const increase = canary.value / baseline.value - 1;
  const over = increase > check.maxIncrease;
  const shown = `${increase >= 0 ? '+' : ''}${(increase * 100).toFixed(1)}%`;
  return result(check, over ? failing(check) : 'ok', increase, check.maxIncrease, `canary ${canary.value} vs baseline ${baseline.value} (${shown}) ${over ? 'over' : 'within'} +${(check.maxIncrease * 100).toFixed(1)}%`, {
    canaryValue: canary.value,
    baselineValue: baseline.value,
  });
}

/**
 * The PromQL with {canary} and {baseline} set to the upstreams' names, as given or (`swapped`)
 * the other way round, for a maxIncrease check's baseline side. {window} is the evidence
 * source's to set: the step's own window.
 */
export function fillQuery(query: string, sides: { readonly canary: string; readonly baseline: string }, swapped = false): string {
  const [canary, baseline] = swapped ? [sides.baseline, sides.canary] : [sides.canary, sides.baseline];
  return query.replaceAll('{canary}', canary).replaceAll('{baseline}', baseline);
}

/** What a webhook check is told: the rollout as it is, and the built-in checks' verdict of this tick. */
export interface CheckContext {
  readonly canary: string;
  readonly baseline: string;
  readonly phase: string;
  readonly step: number;
  readonly weight: number;
  readonly heldMs: number;
  readonly at: string;
  readonly windowMs: number;
}

export interface CustomCheckDeps {
  /** A PromQL instant query at `at` ({window} set by the source); absent where there is no Prometheus (serve). */
  readonly query?: ((promql: string, at: number, stopped: AbortSignal) => Promise<readonly { readonly value: number }[]>) | undefined;
}
