/** The rollout state machine driven by hand: a verdict of one action, checks a minute apart. */
import type { Verdict, VerdictAction } from '../../src/rollout/checks.js';
import { onCheck, type RolloutState, type Transition } from '../../src/rollout/machine.js';
import type { RolloutPlan } from '../../src/rollout/plan.js';

export const MIN = 60_000;

/** A verdict with no checks: the machine reads only its action and text. */
export const verdict = (action: VerdictAction, text: string = action): Verdict => ({ action, checks: [], text });

/** Runs checks every minute from `state` (the first a minute after `start`) with the verdicts given, returning every transition. */
export function runChecks(plan: RolloutPlan, state: RolloutState, verdicts: readonly VerdictAction[], start = 0): { state: RolloutState; transitions: Transition[]; now: number } {
  const transitions: Transition[] = [];
  let now = start;
  for (const v of verdicts) {
    now += MIN;
    const tr = onCheck(plan, state, verdict(v), now);
    transitions.push(tr);
    state = tr.state;
  }
  return { state, transitions, now };
}
