import { besideState, readKept } from '../common/atomic-file.js';
import { InputError } from '../common/input-error.js';
import { array, Corrupt, formatted, number, object, string, stringOrNull, word } from '../common/json-shape.js';
import type { CheckResult } from './checks.js';
import type { Decision, SavedRollout } from './controller.js';
import type { HookAnswer } from './hooks.js';
import type { Ledger, LedgerPoint, LedgerStep, LedgerUpstream, Ratio } from './ledger.js';
import { ACTIVE, PHASES, type DecisionAction, type Phase, type RolloutState } from './machine.js';
import type { RolloutPlan } from './plan.js';
import type { ReplayStandIn } from './replay-report.js';
import type { Verification } from './verify.js';

/** The rollout's own state file, beside the --state file: /data/state.json → /data/state.rollout.json. */
export function rolloutStatePath(statePath: string): string {
  return besideState(statePath, 'rollout.json');
}

export function formatSavedRollout(saved: SavedRollout): string {
  return `${JSON.stringify(saved, null, 2)}\n`;
}

const time = (value: unknown, where: string): number | null => (value === null ? null : number(value, where, 0));
const percent = (value: unknown, where: string): number => number(value, where, 0, 100);
const integer = (value: unknown, where: string, min: number): number => {
  if (!Number.isSafeInteger(value) || (value as number) < min) throw new Corrupt(`${where} must be a whole number, ${min} or more`);
  return value as number;
};

function rolloutState(value: unknown): RolloutState {
  const st = object(value, 'state');
  const phase = st['phase'] as Phase;
  if (!PHASES.includes(phase)) throw new Corrupt(`state.phase must be one of ${PHASES.join(', ')}, got ${JSON.stringify(phase)}`);
  const state: RolloutState = {
    phase,
    // An active rollout is at a step; one never started is at -1.
    step: integer(st['step'], 'state.step', ACTIVE.has(phase) ? 0 : -1),
    weight: percent(st['weight'], 'state.weight'),
    heldMs: number(st['heldMs'], 'state.heldMs', 0),
    lastCheckAt: time(st['lastCheckAt'], 'state.lastCheckAt'),
    reduceAt: time(st['reduceAt'], 'state.reduceAt'),
    note: stringOrNull(st['note'], 'state.note'),
    // Absent from files written before settle and confirm: nothing to skip, nothing failed.
    settling: st['settling'] === undefined ? 0 : integer(st['settling'], 'state.settling', 0),
    strikes: st['strikes'] === undefined ? 0 : integer(st['strikes'], 'state.strikes', 0),
    canary: st['canary'] === undefined ? null : stringOrNull(st['canary'], 'state.canary'),
    ...(st['failedStep'] === undefined ? {} : { failedStep: integer(st['failedStep'], 'state.failedStep', 0) }),
  };
  if (phase === 'reducing' && state.reduceAt === null) throw new Corrupt('state.reduceAt must be a time while reducing');
  return state;
}

/** The checks a decision was made on: shown as they were, so only their shape is checked. */
function check(value: unknown, where: string): CheckResult {
  const c = object(value, where);
  string(c['check'], `${where}.check`);
  string(c['status'], `${where}.status`);
  string(c['text'], `${where}.text`);
  // JSON has no Infinity: an infinite increase was written as null.
  for (const key of ['value', 'limit']) if (c[key] !== null) number(c[key], `${where}.${key}`);
  number(c['rollbackLimit'], `${where}.rollbackLimit`);
  return c as CheckResult;
}

/** A verification's items (rollout/verify.ts), each { name, ok: true|false|null, detail }. */
function verification(value: unknown, where: string): Verification {
  const v = object(value, where);
  const items = array(v['items'], `${where}.items`).map((raw, j) => {
    const item = object(raw, `${where}.items[${j}]`);
    if (item['ok'] !== null && typeof item['ok'] !== 'boolean') throw new Corrupt(`${where}.items[${j}].ok must be true, false or null, got ${JSON.stringify(item['ok'])}`);
    return { name: string(item['name'], `${where}.items[${j}].name`), ok: item['ok'], detail: string(item['detail'], `${where}.items[${j}].detail`) };
  });
  return { items };
}

function decision(value: unknown, i: number, list = 'decisions'): Decision {
  const where = `${list}[${i}]`;
  const d = object(value, where);
  // Words a newer version decides (or a phase it has) are kept as written, as the state file keeps sources.
  const action = word(d['action'], `${where}.action`, 'promote or rollback') as DecisionAction;
  const at = string(d['at'], `${where}.at`);
  if (Number.isNaN(Date.parse(at))) throw new Corrupt(`${where}.at must be a time, got ${JSON.stringify(at)}`);
  return {
    at,
    action,
    text: string(d['text'], `${where}.text`),
    from: percent(d['from'], `${where}.from`),
    to: percent(d['to'], `${where}.to`),
    phase: word(d['phase'], `${where}.phase`, 'running or paused') as Phase,
    step: integer(d['step'], `${where}.step`, -1),
    who: string(d['who'], `${where}.who`),
    reason: stringOrNull(d['reason'], `${where}.reason`),
    ...(d['checks'] === undefined ? {} : { checks: array(d['checks'], `${where}.checks`).map((c, j) => check(c, `${where}.checks[${j}]`)) }),
    // Shown as they were: only their shape (an object) is checked.
    ...(d['mismatch'] === undefined ? {} : { mismatch: object(d['mismatch'], `${where}.mismatch`) }),
    ...(d['replay'] === undefined ? {} : { replay: object(d['replay'], `${where}.replay`) as unknown as ReplayStandIn }),
    ...(d['dryRun'] === true ? { dryRun: true as const } : {}),
    // A hook's answer, shown as it was.
    ...(d['hook'] === undefined ? {} : { hook: object(d['hook'], `${where}.hook`) as unknown as HookAnswer }),
    ...(d['verification'] === undefined ? {} : { verification: verification(d['verification'], `${where}.verification`) }),
  };
}

const numberOrNull = (value: unknown, where: string): number | null => (value === null ? null : number(value, where));

function ratio(value: unknown, where: string): Ratio {
  const r = object(value, where);
  return { last: numberOrNull(r['last'], `${where}.last`), max: numberOrNull(r['max'], `${where}.max`) };
}

function upstream(value: unknown, where: string): LedgerUpstream {
  const u = object(value, where);
  return {
    requests: number(u['requests'], `${where}.requests`, 0),
    errors: number(u['errors'], `${where}.errors`, 0),
    p50: numberOrNull(u['p50'], `${where}.p50`),
    p99: numberOrNull(u['p99'], `${where}.p99`),
    rss: numberOrNull(u['rss'], `${where}.rss`),
  };
}

function ledgerStep(value: unknown, i: number): LedgerStep {
  const where = `ledger.steps[${i}]`;
  const s = object(value, where);
  const upstreams = object(s['upstreams'], `${where}.upstreams`);
  return {
    step: integer(s['step'], `${where}.step`, 0),
    weight: percent(s['weight'], `${where}.weight`),
    startedAt: number(s['startedAt'], `${where}.startedAt`, 0),
    endedAt: time(s['endedAt'], `${where}.endedAt`),
    upstreams: Object.fromEntries(Object.entries(upstreams).map(([name, u]) => [name, upstream(u, `${where}.upstreams.${name}`)])),
    p99Ratio: ratio(s['p99Ratio'], `${where}.p99Ratio`),
    memoryRatio: ratio(s['memoryRatio'], `${where}.memoryRatio`),
    checks: integer(s['checks'], `${where}.checks`, 0),
    decisions: array(s['decisions'], `${where}.decisions`).map((d, j) => decision(d, j, `${where}.decisions`)),
    omitted: integer(s['omitted'], `${where}.omitted`, 0),
  };
}

function point(value: unknown, i: number): LedgerPoint {
  const where = `ledger.points[${i}]`;
  const p = object(value, where);
  return {
    at: number(p['at'], `${where}.at`, 0),
    weight: percent(p['weight'], `${where}.weight`),
    p99Ratio: numberOrNull(p['p99Ratio'], `${where}.p99Ratio`),
    memoryRatio: numberOrNull(p['memoryRatio'], `${where}.memoryRatio`),
    errorRate: numberOrNull(p['errorRate'], `${where}.errorRate`),
  };
}

/** The report's ledger, checked as the rest is; its window is not read back: a restart counts afresh. */
function ledger(value: unknown): Ledger {
  const l = object(value, 'ledger');
  return {
    startedAt: time(l['startedAt'], 'ledger.startedAt'),
    endedAt: time(l['endedAt'], 'ledger.endedAt'),
    steps: array(l['steps'], 'ledger.steps').map(ledgerStep),
    points: array(l['points'], 'ledger.points').map(point),
    window: { since: 0, lastAt: null, seen: {} },
  };
}

/**
 * The saved rollout; undefined if there is none yet. A file that cannot be read, is not ours,
 * has an entry that is not what we write (each checked, the decisions too, as the state file's
 * are), or is at a step the plan no longer has stops start-up with one line naming the entry —
 * never a silent restart of the rollout.
 */
export function readSavedRollout(path: string, plan: RolloutPlan): SavedRollout | undefined {
  const text = readKept(path, 'rollout state');
  if (text === undefined) return undefined;
  let saved: SavedRollout;
  try {
    const file = formatted(text, 1);
    const decisions = array(file['decisions'], 'decisions').map((d, i) => decision(d, i));
    saved = { format: 1, state: rolloutState(file['state']), decisions, ...(file['ledger'] === undefined ? {} : { ledger: ledger(file['ledger']) }) };
  } catch (err) {
    throw new InputError(`rollout state ${path} is corrupt: ${(err as Error).message}; fix or remove it`, '--state');
  }
  const s = saved.state;
  const last = s.phase === 'awaiting_approval' ? plan.steps.length - 2 : plan.steps.length - 1;
  if (s.step > last) {
    throw new InputError(`rollout state ${path} is ${s.phase} at step ${s.step + 1}, which the plan (${plan.steps.length} steps) cannot continue; remove it to start over`, '--state');
  }
  return saved;
}
