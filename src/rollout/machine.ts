import { describeIdentity } from '../observe/health.js';
import type { Verdict } from './checks.js';
import type { Fresh } from './evidence.js';
import { formatDuration, type RolloutPlan } from './plan.js';

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
}

export const INITIAL: RolloutState = { phase: 'idle', step: -1, weight: 0, heldMs: 0, lastCheckAt: null, reduceAt: null, note: null, settling: 0, strikes: 0, canary: null };

/**
 * The machine's answer: the new state and, when something happened, its decision — a changed
 * weight always has one, and always starts a fresh window; `fresh`: the next window starts again
 * without a weight change (after settling, or to confirm a failing window).
 */
export type Transition =
  | { readonly state: RolloutState; readonly weight?: undefined; readonly action?: undefined; readonly text?: undefined; readonly fresh?: Fresh }
  | {
      readonly state: RolloutState;
      readonly fresh?: Fresh;
      /** The canary's new percent, when it changes. */
      readonly weight?: number;
      /** What happened: the decision log's action. */
      readonly action: DecisionAction;
      readonly text: string;
    };
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
  let found = 0;
  plan.steps.forEach((s, i) => {
    if (s.weight <= weight) found = i;
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
    return { state: { ...checked, phase: 'rolled_back', weight: 0, reduceAt: null, note: verdict.text }, weight: 0, action: 'rollback', text: `${verdict.text} → canary to 0% at once` };
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
  return { state: { ...checked, heldMs: 0 }, action: 'hold', text: `${verdict.text}: the hold at ${fmt(checked.weight)} starts again` };
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
    const text = `${fmt(step.weight)} held with every check passing; waiting for approval to go to ${fmt(plan.steps[checked.step + 1]!.weight)}`;
    return { state: { ...checked, heldMs, phase: 'awaiting_approval', note: text }, action: 'await_approval', text };
  }
  return promote(plan, checked, `${fmt(step.weight)} held with every check passing`);
}

function promote(plan: RolloutPlan, state: RolloutState, why: string): Decided {
  const step = state.step + 1;
  const weight = plan.steps[step]!.weight;
  return { state: { ...moved(plan, state), phase: 'running', step, weight, heldMs: 0, note: null }, weight, action: 'promote', text: `${why} → canary to ${fmt(weight)}` };
}

function reduce(plan: RolloutPlan, state: RolloutState, verdict: Verdict, now: number): Decided {
  const weight = reducedWeight(state.weight);
  if (weight === 0) {
    return { state: { ...state, phase: 'rolled_back', weight: 0, reduceAt: null, note: verdict.text }, weight: 0, action: 'rollback', text: `${verdict.text} → canary to 0%` };
  }
  const next = { ...moved(plan, state), phase: 'reducing' as const, step: stepAt(plan, weight), weight, heldMs: 0, reduceAt: now + plan.rollback.reductionWaitMs, note: verdict.text };
  return { state: next, weight, action: 'reduce', text: `${verdict.text} → canary reduced to ${fmt(weight)}, checked again in ${formatDuration(plan.rollback.reductionWaitMs)}` };
}

/** A person's command, or the refusal (a 409) when it does not fit the state. */
export type Command = 'start' | 'pause' | 'resume' | 'approve' | 'abort';

export class NotNow extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotNow';
  }
}

export function onCommand(plan: RolloutPlan, state: RolloutState, command: Command, now: number): Transition {
  const { phase } = state;
  switch (command) {
    case 'start': {
      if (ACTIVE.has(phase)) throw new NotNow(`the rollout is already ${phase}; abort it first to start again`);
      const weight = plan.steps[0]!.weight;
      const text = `rollout started → canary to ${fmt(weight)}`;
      return { state: { ...moved(plan, INITIAL), phase: 'running', step: 0, weight, lastCheckAt: now }, weight, action: 'start', text };
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
      return { state: { ...state, phase: 'aborted', weight: 0, reduceAt: null, note: text }, weight: 0, action: 'abort', text };
    }
  }
}

/** Someone else changed the canary's weight (admin, file, environment): the person wins, the rollout pauses. */
export function onManualChange(state: RolloutState, weight: number, who: string): Transition {
  // Nobody's canary: the weight shown follows it; at 0% there is nothing left unmanaged.
  if (state.phase === 'unmanaged') return { state: unmanaged(weight) };
  if (!ACTIVE.has(state.phase) || weight === state.weight) return { state };
  const text = `weights changed by ${who}: canary ${fmt(state.weight)} → ${fmt(weight)}; the rollout ${state.phase === 'paused' ? 'stays paused' : 'pauses'} (resume to continue from there)`;
  return { state: { ...state, phase: 'paused', weight, reduceAt: null, note: text }, action: 'pause', text };
}
