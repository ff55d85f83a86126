import { describeIdentity } from '../observe/health.js';
import type { Verdict } from './checks.js';
import type { Fresh } from './evidence.js';
import { InputError } from '../common/input-error.js';
import { describePlan, formatDuration, stepName, type RolloutPlan } from './plan.js';
import type { ReplayStandIn } from './replay-report.js';

/**
 * idle: never started. unmanaged: never started (no saved rollout state: the file removed, or
 * never written), yet the canary takes traffic — nothing watches it. running: at a step,
 * accumulating its hold. awaiting_approval: the step's hold is done and a person must approve
 * the next. reducing: stepping the canary down, waiting `reductionWait` between reductions.
 * paused: a person (or a recovery during a reduction) stopped it; the weight stays. Then the
 * ends: complete (the last step held), rolled_back (the checks sent the canary to 0%), aborted
 * (a person did).
 */
export type Phase = 'idle' | 'unmanaged' | 'running' | 'awaiting_approval' | 'reducing' | 'paused' | 'complete' | 'rolled_back' | 'aborted';

export const PHASES: readonly Phase[] = ['idle', 'unmanaged', 'running', 'awaiting_approval', 'reducing', 'paused', 'complete', 'rolled_back', 'aborted'];

/** Phases in which the rollout owns the weight and the watchdog acts. */
export const ACTIVE: ReadonlySet<Phase> = new Set(['running', 'awaiting_approval', 'reducing', 'paused']);

export interface RolloutState {
  readonly phase: Phase;
  /** Index into the plan's steps; -1 before the first start. */
  readonly step: number;
  /** The canary's percent as the rollout last set it (or found it; unmanaged: as it is). */
  readonly weight: number;
  /** Conclusive, passing time held at this step, in ms. */
  readonly heldMs: number;
  /** When the last check ran (ms since the epoch); null before the first. */
  readonly lastCheckAt: number | null;
  /** While reducing: when the next check of the reduced canary is due. */
  readonly reduceAt: number | null;
  /** Why it is paused, awaiting approval or ended, for people. */
  readonly note: string | null;
  /** Checks still to skip after the last weight change (the plan's `settle`). */
  readonly settling: number;
  /** Consecutive failing windows so far (a gradual trigger or a miss), toward the plan's `confirm`. */
  readonly strikes: number;
  /** Which server and model the canary was at the last check (DRUM's /info/); null before it is known. */
  readonly canary: string | null;
  /** The step a reduction or rollback began at (the one that failed): where `retry` goes back to. Absent before any. */
  readonly failedStep?: number;
}

export const INITIAL: RolloutState = { phase: 'idle', step: -1, weight: 0, heldMs: 0, lastCheckAt: null, reduceAt: null, note: null, settling: 0, strikes: 0, canary: null };

/**
 * The machine's answer: the new state and, when something happened, its decision — a changed
 * weight always has one, and always starts a fresh window; `fresh`: the next window starts again
 * without a weight change (after settling, or to confirm a failing window).
 */
export type Transition =
  | { readonly state: RolloutState; readonly weight?: undefined; readonly action?: undefined; readonly text?: undefined; readonly fresh?: Fresh; readonly gate?: undefined }
  | {
      readonly state: RolloutState;
      readonly fresh?: Fresh;
      /** The canary's new percent, when it changes. */
      readonly weight?: number;
      /** What happened: the decision log's action. */
      readonly action: DecisionAction;
      readonly text: string;
      /**
       * The hooks that must answer 2xx before this move is carried out (hooks.ts), the step they
       * are about, and the state to keep when one does not: the canary stays where it is.
       */
      readonly gate?: Gate;
    };

/** A move's hooks: `on` in the order called; `step` the step moved to (pre-step) or whose hold is done (confirm-step). */
export interface Gate {
  readonly on: readonly ('confirm-step' | 'pre-step')[];
  readonly held: RolloutState;
  readonly step: number;
}
/** A transition that decided something. */
type Decided = Extract<Transition, { readonly text: string }>;

export type DecisionAction =
  | 'start'
  | 'promote'
  | 'await_approval'
  | 'approve'
  | 'reduce'
  | 'rollback'
  | 'recovered'
  | 'pause'
  | 'resume'
  | 'abort'
  | 'complete'
  | 'hold'
  | 'suspect'
  | 'promote_full'
  | 'retry'
  | 'hook'
  /** The shadow phase held with every check passing (or a passing replay report stood in for it): the canary's first step. */
  | 'shadow_pass'
  // The baseline's checks after a rollback (rollout/verify.ts): they change no state.
  | 'verified'
  | 'verification_failed';

/**
 * The seed's gradual reduction (ROLLBACK_PLAN.md): over 50% → 50, 25–50 → 25, 10–25 → 5,
 * 1–10 → 0. Ranges are taken as (lower, upper], so every step lowers the weight: 50 → 25,
 * 25 → 5, 10 → 0.
 */
export function reducedWeight(weight: number): number {
  if (weight > 50) return 50;
  if (weight > 25) return 25;
  if (weight > 10) return 5;
  return 0;
}

/** The step to run at `weight`: the last whose weight is not above it (a reduced canary resumes there). */
export function stepAt(plan: RolloutPlan, weight: number): number {
  // A canary taking traffic is at a canary step, the first at least: the shadow phase is where a canary at 0% is.
  let found = weight > 0 ? plan.steps.findIndex((s) => s.shadow === undefined) : 0;
  plan.steps.forEach((s, i) => {
    if (s.shadow === undefined && s.weight <= weight) found = i;
  });
  return found;
}

const fmt = (weight: number): string => `${weight}%`;

const UNMANAGED_NOTE = 'the canary takes traffic and no rollout watches it (no saved rollout state); start the rollout, or set its weight';

/**
 * The state a controller starts from: the saved one, or none. Time spent stopped was not watched,
 * so it counts neither toward a hold (lastCheckAt moves to now) nor toward a reduction's wait
 * (reduceAt moves by as much; the last check is the last time known watched). Without a saved
 * state, a canary above 0% is unmanaged.
 */
export function onStartup(saved: RolloutState | undefined, canaryWeight: number, now: number): RolloutState {
  if (saved === undefined || saved.phase === 'unmanaged') return unmanaged(canaryWeight);
  if (!ACTIVE.has(saved.phase)) return saved;
  const stopped = saved.lastCheckAt === null ? 0 : Math.max(0, now - saved.lastCheckAt);
  return { ...saved, lastCheckAt: now, reduceAt: saved.reduceAt === null ? null : saved.reduceAt + stopped };
}

/** Nobody's canary at `weight`: unmanaged above 0%, else simply idle. */
const unmanaged = (weight: number): RolloutState => (weight > 0 ? { ...INITIAL, phase: 'unmanaged', weight, note: UNMANAGED_NOTE } : INITIAL);

/** A weight change: the next `settle` checks are skipped, and nothing failed yet at the new weight. */
const moved = (plan: RolloutPlan, state: RolloutState): RolloutState => ({ ...state, settling: plan.settle, strikes: 0 });

/**
 * A check of the window, every interval. Right after a weight change the check is skipped
 * (`settle`). The immediate triggers act on one window; a gradual trigger or a step's miss acts
 * only when `confirm` windows in a row fail, each after the one before on fresh exchanges — the
 * first is logged as a suspicion. `identity` is which server and model the canary is now
 * (DRUM's /info/, when known): a different one at a step restarts its hold — the time was
 * earned by another version.
 */
export function onCheck(plan: RolloutPlan, state: RolloutState, verdict: Verdict, now: number, identity?: string): Transition {
  if (!ACTIVE.has(state.phase)) return { state };
  const elapsed = state.lastCheckAt === null ? 0 : Math.max(0, now - state.lastCheckAt);
  const checked = { ...state, lastCheckAt: now, canary: identity ?? state.canary };
  // The immediate triggers act in every active phase (a paused canary still takes traffic), and
  // while settling: a client's 5xx is no artefact of a cold start.
  if (verdict.action === 'rollback') {
    return { state: { ...checked, phase: 'rolled_back', weight: 0, reduceAt: null, note: verdict.text, failedStep: failedStep(state) }, weight: 0, action: 'rollback', text: `${verdict.text} → canary to 0% at once` };
  }
  // What the first interval after a change measures is partly the change: its latencies are not judged, the time not held.
  if (state.settling > 0) return { state: { ...checked, settling: state.settling - 1 }, fresh: 'latency' };
  if (state.canary !== null && checked.canary !== state.canary && (state.phase === 'running' || state.phase === 'awaiting_approval')) {
    const text = `the canary changed (${describeIdentity(state.canary)} → ${describeIdentity(checked.canary!)}, from its /info/): the hold at ${fmt(state.weight)} starts again`;
    return { state: { ...moved(plan, checked), phase: 'running', heldMs: 0, note: null }, fresh: 'all', action: 'hold', text };
  }
  if (state.phase === 'reducing' && now < state.reduceAt!) return { state: checked };
  // A paused canary still takes traffic: a gradual trigger acts on it too; a miss does not.
  const failing = verdict.action === 'reduce' || (verdict.action === 'miss' && (state.phase === 'running' || state.phase === 'awaiting_approval'));
  if (failing) {
    const strikes = state.strikes + 1;
    if (strikes < plan.confirm) {
      const text = `${verdict.text}: unconfirmed (${strikes} of ${plan.confirm} windows in a row); judged again on fresh exchanges`;
      // A reduced canary's wait for a full sample starts again with the fresh window.
      const suspected = state.phase === 'reducing' ? { ...checked, strikes, reduceAt: now } : { ...checked, strikes };
      return { state: suspected, fresh: 'all', action: 'suspect', text };
    }
    const confirmed = plan.confirm > 1 ? `${verdict.text} (failing ${strikes} windows in a row)` : verdict.text;
    return failed(plan, { ...checked, strikes }, { ...verdict, text: confirmed }, now);
  }
  return judged(plan, verdict.action === 'inconclusive' ? checked : { ...checked, strikes: 0 }, verdict, now, elapsed);
}

/** A confirmed failing window: reduce, or (a miss) the hold starts again. */
function failed(plan: RolloutPlan, checked: RolloutState, verdict: Verdict, now: number): Transition {
  if (verdict.action === 'reduce') return reduce(plan, checked, verdict, now);
  if (checked.phase === 'awaiting_approval') {
    const text = `${verdict.text}: no longer ready for approval; the hold at ${fmt(checked.weight)} starts again`;
    return { state: { ...checked, phase: 'running', heldMs: 0, note: null }, action: 'hold', text };
  }
  // Said once: a canary that keeps missing at a hold already back at zero changes nothing.
  if (checked.heldMs === 0) return { state: checked };
  return { state: { ...checked, heldMs: 0 }, action: 'hold', text: `${verdict.text}: the hold at ${stepName(plan.steps[checked.step]!)} starts again` };
}

/** A window that does not fail: a reduced canary recovers (or cannot be judged), a running one holds on. */
function judged(plan: RolloutPlan, checked: RolloutState, verdict: Verdict, now: number, elapsed: number): Transition {
  if (checked.phase === 'reducing') {
    if (verdict.action === 'inconclusive') {
      // Judged again once the reduced canary has a full sample; one that never gets one within a window is left to a person.
      if (now < checked.reduceAt! + plan.windowMs) return { state: checked };
      const note = `cannot judge the canary reduced to ${fmt(checked.weight)} (${verdict.text}); paused there, resume to continue`;
      return { state: { ...checked, phase: 'paused', reduceAt: null, note }, action: 'pause', text: note };
    }
    const note = `recovered at ${fmt(checked.weight)} after a reduction (${verdict.text}); resume to continue`;
    return { state: { ...checked, phase: 'paused', reduceAt: null, note }, action: 'recovered', text: note };
  }
  if (checked.phase !== 'running' || verdict.action === 'inconclusive') return { state: checked };
  const heldMs = checked.heldMs + elapsed;
  const step = plan.steps[checked.step]!;
  if (heldMs < step.holdMs) return { state: { ...checked, heldMs } };
  if (checked.step === plan.steps.length - 1) {
    const text = `${fmt(step.weight)} held for its whole hold with every check passing: rollout complete`;
    return { state: { ...checked, heldMs, phase: 'complete', note: text }, action: 'complete', text };
  }
  if (step.approve) {
    const text = `${stepName(step)} held with every check passing; waiting for approval to go to ${fmt(plan.steps[checked.step + 1]!.weight)}`;
    return { state: { ...checked, heldMs, phase: 'awaiting_approval', note: text }, action: 'await_approval', text };
  }
  const passed = promote(plan, { ...checked, heldMs }, `${stepName(step)} held with every check passing`);
  return step.shadow === undefined ? passed : { ...passed, action: 'shadow_pass' };
}

/** To the next step; its confirm-step and pre-step hooks first, the hold done kept while they do not answer. */
function promote(plan: RolloutPlan, state: RolloutState, why: string): Decided {
  const step = state.step + 1;
  const weight = plan.steps[step]!.weight;
  return {
    state: { ...moved(plan, state), phase: 'running', step, weight, heldMs: 0, note: null },
    weight,
    action: 'promote',
    text: `${why} → canary to ${fmt(weight)}`,
    gate: { on: ['confirm-step', 'pre-step'], held: state, step },
  };
}

/** Where a run of reductions (or a rollback) began: kept through the reductions, for retry. */
const failedStep = (state: RolloutState): number => (state.phase === 'reducing' && state.failedStep !== undefined ? state.failedStep : state.step);

function reduce(plan: RolloutPlan, state: RolloutState, verdict: Verdict, now: number): Decided {
  const weight = reducedWeight(state.weight);
  if (weight === 0) {
    return { state: { ...state, phase: 'rolled_back', weight: 0, reduceAt: null, note: verdict.text, failedStep: failedStep(state) }, weight: 0, action: 'rollback', text: `${verdict.text} → canary to 0%` };
  }
  const next = { ...moved(plan, state), phase: 'reducing' as const, step: stepAt(plan, weight), weight, heldMs: 0, reduceAt: now + plan.rollback.reductionWaitMs, note: verdict.text, failedStep: failedStep(state) };
  return { state: next, weight, action: 'reduce', text: `${verdict.text} → canary reduced to ${fmt(weight)}, checked again in ${formatDuration(plan.rollback.reductionWaitMs)}` };
}

/** A person's command, or the refusal (a 409) when it does not fit the state. */
export type Command = 'start' | 'pause' | 'resume' | 'approve' | 'abort' | 'retry' | 'promote';

export class NotNow extends Error {
  /** Fields the 409's body carries besides the message, for a client to act on (the console's confirmation). */
  readonly details: Readonly<Record<string, unknown>>;
  constructor(message: string, details: Readonly<Record<string, unknown>> = {}) {
    super(message);
    this.name = 'NotNow';
    this.details = details;
  }
}

/** What start, retry and promote take besides the command. */
export interface CommandOptions {
  /** The canary's percent in the weights now (a person may have set it); default: the state's. */
  readonly current?: number;
  /** start, retry: the step to go to, counted from 1 (GET /rollout's step.index + 1). */
  readonly atStep?: number;
  /** start: the step that holds the canary's current weight, the last not above it. */
  readonly fromCurrent?: boolean;
  /** start, retry: even when it lowers the canary. */
  readonly force?: boolean;
  /** promote: to 100% now. */
  readonly full?: boolean;
}

export function onCommand(plan: RolloutPlan, state: RolloutState, command: Command, now: number, opts: CommandOptions = {}): Transition {
  const { phase } = state;
  switch (command) {
    case 'start': {
      if (ACTIVE.has(phase)) throw new NotNow(`the rollout is already ${phase}; abort it first to start again`);
      if (opts.fromCurrent === true && opts.atStep !== undefined) throw new InputError('give a step (atStep) or the current one (fromCurrent), not both', 'fromCurrent');
      const current = opts.current ?? state.weight;
      const step = opts.fromCurrent === true ? stepAt(plan, current) : chosenStep(plan, opts.atStep, 0);
      const at = step === 0 ? '' : ` at step ${step + 1} of ${plan.steps.length}`;
      const from = opts.fromCurrent === true ? ` (the step at or under the canary's ${fmt(current)}, or the first)` : '';
      // --from-current asks for the step under the canary: lowering it to that step is what was asked.
      return begin(plan, state, step, now, 'start', `rollout started${at}${from}`, opts.fromCurrent === true ? { ...opts, force: true } : opts, current);
    }
    case 'retry': {
      if (phase !== 'rolled_back' && phase !== 'aborted') throw new NotNow(`nothing to retry: the rollout is ${phase}; retry follows a rollback or an abort`);
      // A plan changed since may have fewer steps: its last, then.
      const step = chosenStep(plan, opts.atStep, Math.min(state.failedStep ?? Math.max(0, state.step), plan.steps.length - 1));
      return begin(plan, state, step, now, 'retry', `rollout retried at step ${step + 1} of ${plan.steps.length}`, opts, opts.current ?? state.weight);
    }
    case 'promote': {
      if (opts.full !== true) throw new NotNow('promote takes full: true (to 100% now); to go on by one step waiting for approval, approve');
      if (!ACTIVE.has(phase)) throw new NotNow(`nothing to promote: the rollout is ${phase}; start it (at a step, if need be) first`);
      const last = plan.steps.length - 1;
      // A plan ending at 100% keeps watching the canary through its last hold (the seed's week of observation); one ending below has no step left at 100%.
      const watched = plan.steps[last]!.weight === 100;
      const text = `promoted fully at ${fmt(state.weight)} → canary to 100%${watched ? `, the last step's hold (${formatDuration(plan.steps[last]!.holdMs)}) still watched` : ': rollout complete'}`;
      const next: RolloutState = watched
        ? { ...moved(plan, state), phase: 'running', step: last, weight: 100, heldMs: 0, lastCheckAt: now, reduceAt: null, note: null }
        : { ...moved(plan, state), phase: 'complete', step: last, weight: 100, lastCheckAt: now, reduceAt: null, note: text };
      return { state: next, weight: 100, action: 'promote_full', text, gate: { on: ['pre-step'], held: state, step: last } };
    }
    case 'pause': {
      if (phase !== 'running' && phase !== 'awaiting_approval' && phase !== 'reducing') throw new NotNow(`nothing to pause: the rollout is ${phase}`);
      const text = `paused at ${fmt(state.weight)}`;
      return { state: { ...state, phase: 'paused', reduceAt: null, note: text }, action: 'pause', text };
    }
    case 'resume': {
      if (phase !== 'paused') throw new NotNow(`nothing to resume: the rollout is ${phase}`);
      const step = stepAt(plan, state.weight);
      const weight = plan.steps[step]!.weight;
      const text = `resumed at ${fmt(weight)}${weight === state.weight ? '' : ` (the step at or under ${fmt(state.weight)}, or the first)`}`;
      // Back on the step it was paused at, the time already held stands.
      const heldMs = step === state.step && weight === state.weight ? state.heldMs : 0;
      const resumed = weight === state.weight ? { ...state, strikes: 0 } : moved(plan, state);
      return { state: { ...resumed, phase: 'running', step, weight, heldMs, lastCheckAt: now, note: null }, ...(weight === state.weight ? {} : { weight }), action: 'resume', text };
    }
    case 'approve': {
      if (phase !== 'awaiting_approval') throw new NotNow(`nothing waits for approval: the rollout is ${phase}`);
      return { ...promote(plan, { ...state, lastCheckAt: now }, `approved at ${fmt(state.weight)}`), action: 'approve' };
    }
    case 'abort': {
      if (!ACTIVE.has(phase)) throw new NotNow(`nothing to abort: the rollout is ${phase}`);
      const text = `aborted at ${fmt(state.weight)} → canary to 0%`;
      return { state: { ...state, phase: 'aborted', weight: 0, reduceAt: null, note: text, failedStep: failedStep(state) }, weight: 0, action: 'abort', text };
    }
  }
}

/**
 * A start with a passing replay report (`rollout start --replay-report`): the report stands in for
 * the shadow phase, which is skipped — the rollout starts at the first canary step, its decision
 * the report's numbers. A plan without a shadow phase starts as usual, the report recorded.
 */
export function onReplayStart(plan: RolloutPlan, state: RolloutState, replay: ReplayStandIn, now: number, opts: CommandOptions = {}): Transition {
  const numbers = `replay report: ${replay.text}`;
  // Where it would start without the report; the shadow phase skipped, whether it lowers the canary is judged at the step after.
  const started = onCommand(plan, state, 'start', now, { ...opts, force: true }) as Decided;
  if (plan.steps[started.state.step]!.shadow === undefined) {
    refuseLowering(plan, 'start', started.state.step, opts.current ?? state.weight, opts.fromCurrent === true ? { ...opts, force: true } : opts);
    return { ...started, text: `${started.text} (${numbers})` };
  }
  refuseLowering(plan, 'start', started.state.step + 1, opts.current ?? state.weight, opts);
  // The first canary step's pre-step hooks are asked; there is no shadow hold to confirm.
  const passed = promote(plan, started.state, `rollout started; the shadow phase is passed by the ${numbers}`);
  return { ...passed, action: 'start', gate: { on: ['pre-step'], held: state, step: passed.state.step } };
}

/** A step counted from 1, as people and the console count them; `fallback` (from 0) when none is given. */
function chosenStep(plan: RolloutPlan, atStep: number | undefined, fallback: number): number {
  if (atStep === undefined) return fallback;
  if (!Number.isSafeInteger(atStep) || atStep < 1 || atStep > plan.steps.length) {
    throw new InputError(`${atStep} is not a step of the plan: 1 to ${plan.steps.length} (${describePlan(plan)})`, 'atStep');
  }
  return atStep - 1;
}

/**
 * start and retry: running at `step`, its pre-step hooks first. Refused when it would lower a
 * canary above the step (set by hand, or left at 100% by a complete rollout) unless forced.
 */
function begin(plan: RolloutPlan, held: RolloutState, step: number, now: number, action: 'start' | 'retry', said: string, opts: CommandOptions, current: number): Decided {
  const weight = plan.steps[step]!.weight;
  refuseLowering(plan, action, step, current, opts);
  const state: RolloutState = { ...moved(plan, INITIAL), phase: 'running', step, weight, lastCheckAt: now };
  const { shadow } = plan.steps[step]!;
  const what = shadow === undefined ? '' : `: the shadow phase, ${stepName(plan.steps[step]!).slice('shadow '.length)} of the baseline's requests copied to the canary`;
  return { state, weight, action, text: `${said}${what} → canary to ${fmt(weight)}`, gate: { on: ['pre-step'], held, step } };
}

/** A start or retry that would take the canary below `current` to `step`'s weight: refused unless forced. */
function refuseLowering(plan: RolloutPlan, action: 'start' | 'retry', step: number, current: number, opts: CommandOptions): void {
  const weight = plan.steps[step]!.weight;
  if (weight >= current || opts.force === true) return;
  throw new NotNow(
    `${action} would lower the canary from ${fmt(current)} to ${fmt(weight)} (step ${step + 1} of ${plan.steps.length}); ` +
      `to do so, ${action} with force (--force); to carry on from the canary's weight, start from the current step (--from-current)${action === 'start' ? '' : ' or at a step (--at-step N)'}`,
    { lowers: { from: current, to: weight, step: step + 1 } },
  );
}

/** Someone else changed the canary's weight (admin, file, environment): the person wins, the rollout pauses. */
export function onManualChange(state: RolloutState, weight: number, who: string): Transition {
  // Nobody's canary: the weight shown follows it; at 0% there is nothing left unmanaged.
  if (state.phase === 'unmanaged') return { state: unmanaged(weight) };
  if (!ACTIVE.has(state.phase) || weight === state.weight) return { state };
  const text = `weights changed by ${who}: canary ${fmt(state.weight)} → ${fmt(weight)}; the rollout ${state.phase === 'paused' ? 'stays paused' : 'pauses'} (resume to continue from there)`;
  return { state: { ...state, phase: 'paused', weight, reduceAt: null, note: text }, action: 'pause', text };
}
