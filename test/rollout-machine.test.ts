/** The rollout's state machine: pure transitions, on an injected clock. */
import t from 'tap';
import type { VerdictAction } from '../src/rollout/checks.js';
import { INITIAL, onCheck, onCommand, onManualChange, onStartup, reducedWeight, stepAt, type Command, type CommandOptions, type RolloutState, type Transition } from '../src/rollout/machine.js';
import { parsePlan, type RolloutPlan } from '../src/rollout/plan.js';
import { MIN, runChecks, verdict } from './helpers/machine.js';

const UPSTREAMS = ['flask', 'fastapi'];
/** Three steps, one needing approval; holds of 10 minutes, checks every minute, reductions waiting 5 minutes. */
const plan: RolloutPlan = parsePlan(
  {
    // The machine as it was before settle and confirm; both have their own tests below.
    settle: 0,
    confirm: 1,
    interval: '1m',
    window: '5m',
    steps: [
      { weight: 5, hold: '10m' },
      { weight: 30, hold: '10m', approve: true },
      { weight: 60, hold: '10m' },
      { weight: 100, hold: '10m' },
    ],
    rollback: { reductionWait: '5m' },
  },
  UPSTREAMS,
);


t.test('reducedWeight: the seed gradual reduction, every step lowering the weight', async (t) => {
  const table: [number, number][] = [
    [100, 50], [75, 50], [50.01, 50], [50, 25], [35, 25], [25.01, 25], [25, 5], [10.01, 5], [10, 0], [5, 0], [1, 0], [0.5, 0],
  ];
  for (const [from, to] of table) t.equal(reducedWeight(from), to, `${from}% → ${to}%`);
});

t.test('stepAt: the last step not above the weight', async (t) => {
  const table: [number, number][] = [[0, 0], [4, 0], [5, 0], [29, 0], [30, 1], [59, 1], [60, 2], [99, 2], [100, 3]];
  for (const [weight, step] of table) t.equal(stepAt(plan, weight), step, `${weight}%`);
});

const run = (state: RolloutState, start: number, verdicts: readonly VerdictAction[]) => runChecks(plan, state, verdicts, start);

const started = (now = 0): RolloutState => onCommand(plan, INITIAL, 'start', now).state;

t.test('a healthy canary: the whole plan, with the approval, in simulated minutes', async (t) => {
  const start = onCommand(plan, INITIAL, 'start', 0);
  t.match(start, { weight: 5, action: 'start', state: { phase: 'running', step: 0, weight: 5, heldMs: 0 } });
  const first = run(start.state, 0, Array(10).fill('pass'));
  t.equal(first.transitions.filter((x) => x.action !== undefined).length, 1, 'one decision in ten checks');
  t.match(first.transitions.at(-1), { weight: 30, action: 'promote', state: { step: 1, weight: 30, heldMs: 0 } }, 'after 10 minutes of passes: the next step');
  const second = run(first.state, first.now, Array(10).fill('pass'));
  t.match(second.state, { phase: 'awaiting_approval', step: 1, weight: 30 });
  t.match(second.transitions.at(-1), { action: 'await_approval', text: /waiting for approval to go to 60%/ });
  t.equal(second.transitions.at(-1)!.weight, undefined, 'no weight change while waiting');
  const idle = run(second.state, second.now, Array(30).fill('pass'));
  t.match(idle.state, { phase: 'awaiting_approval', weight: 30 }, 'it waits, however long');
  const approved = onCommand(plan, idle.state, 'approve', idle.now);
  t.match(approved, { weight: 60, action: 'approve', state: { phase: 'running', step: 2 } });
  const third = run(approved.state, idle.now, Array(10).fill('pass'));
  t.match(third.state, { phase: 'running', step: 3, weight: 100 });
  const last = run(third.state, third.now, Array(10).fill('pass'));
  t.match(last.state, { phase: 'complete', weight: 100 });
  t.match(last.transitions.at(-1), { action: 'complete' });
  t.same(onCheck(plan, last.state, verdict('rollback'), last.now + MIN), { state: last.state }, 'a complete rollout no longer acts');
});

t.test('inconclusive windows hold the step and do not count toward the hold', async (t) => {
  const r = run(started(), 0, ['pass', 'pass', 'inconclusive', 'inconclusive', 'inconclusive', 'pass', 'pass']);
  t.equal(r.state.heldMs, 4 * MIN, 'only the minutes after a conclusive pass count');
  t.ok(r.transitions.every((x) => x.action === undefined), 'no decision');
});

t.test('the first check after a restore with no check time counts nothing; a clock going back counts nothing', async (t) => {
  const restored: RolloutState = { ...INITIAL, phase: 'running', step: 0, weight: 5, heldMs: 3 * MIN };
  t.equal(onCheck(plan, restored, verdict('pass'), 10 * MIN).state.heldMs, 3 * MIN);
  t.equal(onCheck(plan, { ...restored, lastCheckAt: 10 * MIN }, verdict('pass'), 9 * MIN).state.heldMs, 3 * MIN);
});

t.test('a missed criterion: hold, and the hold starts again', async (t) => {
  const r = run(started(), 0, ['pass', 'pass', 'pass', 'miss']);
  t.equal(r.state.heldMs, 0);
  t.match(r.transitions.at(-1), { action: 'hold', text: /the hold at 5% starts again/ });
  const again = run(r.state, r.now, ['miss']);
  t.equal(again.transitions[0]!.action, undefined, 'a second miss with nothing held says nothing new');
});

t.test('an immediate trigger: to 0% at once, from any active phase', async (t) => {
  const running = run(started(), 0, ['pass', 'rollback']);
  t.match(running.transitions.at(-1), { weight: 0, action: 'rollback', state: { phase: 'rolled_back', weight: 0 } });
  const paused = onCommand(plan, started(), 'pause', 0).state;
  t.match(onCheck(plan, paused, verdict('rollback'), MIN), { weight: 0, action: 'rollback' }, 'a paused canary still takes traffic');
});

t.test('a gradual reduction: step down, wait, check again; recovered → paused', async (t) => {
  const at60: RolloutState = { ...INITIAL, phase: 'running', step: 2, weight: 60, lastCheckAt: 0 };
  const r1 = onCheck(plan, at60, verdict('reduce', 'p99 +80%'), MIN);
  t.match(r1, { weight: 50, action: 'reduce', state: { phase: 'reducing', weight: 50, step: 1, reduceAt: MIN + 5 * MIN } });
  t.match(r1.text, /p99 \+80% → canary reduced to 50%, checked again in 5m/);
  const waiting = run(r1.state, MIN, ['reduce', 'reduce', 'reduce']);
  t.ok(waiting.transitions.every((x) => x.action === undefined), 'nothing during the wait');
  const r2 = onCheck(plan, waiting.state, verdict('reduce'), MIN + 5 * MIN);
  t.match(r2, { weight: 25, action: 'reduce', state: { phase: 'reducing', weight: 25 } }, 'still bad after the wait: next reduction');
  const r3 = onCheck(plan, r2.state, verdict('pass'), r2.state.reduceAt!);
  t.match(r3, { action: 'recovered', state: { phase: 'paused', weight: 25 } });
  t.equal(r3.weight, undefined, 'recovered: the weight stays');
  const resumed = onCommand(plan, r3.state, 'resume', r3.state.lastCheckAt!);
  t.match(resumed, { weight: 5, action: 'resume', state: { phase: 'running', step: 0, weight: 5 } }, 'resumes at the step at or under 25%');
  t.match(resumed.text, /resumed at 5% \(the step at or under 25%, or the first\)/);
});

t.test('after a reduction, a canary too small to judge is waited for one window, then left paused to a person', async (t) => {
  const reducing: RolloutState = { ...INITIAL, phase: 'reducing', step: 0, weight: 5, reduceAt: 10 * MIN, lastCheckAt: 9 * MIN };
  t.equal(onCheck(plan, reducing, verdict('inconclusive'), 10 * MIN).action, undefined, 'the wait is over, the sample is not: wait');
  t.equal(onCheck(plan, reducing, verdict('inconclusive'), 14 * MIN).action, undefined, 'still within a window after the wait');
  t.match(onCheck(plan, reducing, verdict('inconclusive'), 15 * MIN), { action: 'pause', state: { phase: 'paused', weight: 5 }, text: /cannot judge the canary reduced to 5%/ });
});

t.test('pause and resume on the same step keeps the time held', async (t) => {
  const held = run(started(), 0, ['pass', 'pass', 'pass', 'pass']);
  const paused = onCommand(plan, held.state, 'pause', held.now).state;
  const resumed = onCommand(plan, paused, 'resume', held.now + 60 * MIN);
  t.match(resumed, { state: { phase: 'running', step: 0, heldMs: 4 * MIN }, text: 'resumed at 5%' });
  t.equal(onCheck(plan, resumed.state, verdict('pass'), held.now + 61 * MIN).state.heldMs, 5 * MIN, 'the paused hour did not count');
});

t.test('reductions down to 0% end the rollout', async (t) => {
  const at10: RolloutState = { ...INITIAL, phase: 'running', step: 0, weight: 10, lastCheckAt: 0 };
  t.match(onCheck(plan, at10, verdict('reduce'), MIN), { weight: 0, action: 'rollback', state: { phase: 'rolled_back' } });
});

t.test('approval steps and paused rollouts do not promote', async (t) => {
  const awaiting: RolloutState = { ...INITIAL, phase: 'awaiting_approval', step: 1, weight: 30, lastCheckAt: 0 };
  t.match(onCheck(plan, awaiting, verdict('miss', 'error rate 0.5%'), MIN), { action: 'hold', state: { phase: 'running', heldMs: 0 }, text: /error rate 0.5%: no longer ready for approval; the hold at 30% starts again/ });
  t.equal(onCheck(plan, awaiting, verdict('inconclusive'), MIN).action, undefined, 'too little traffic to say: it keeps waiting');
  t.match(onCheck(plan, awaiting, verdict('reduce'), MIN), { weight: 25, action: 'reduce' }, 'but a regression is acted on');
  const paused = onCommand(plan, started(), 'pause', 0).state;
  t.same(run(paused, 0, Array(20).fill('pass')).state.phase, 'paused');
});

t.test('commands that do not fit the state are refused (409), changing nothing', async (t) => {
  const running = started();
  const rolledBack: RolloutState = { ...running, phase: 'rolled_back', weight: 0 };
  const table: [string, RolloutState, Command, RegExp][] = [
    ['start while running', running, 'start', /already running/],
    ['approve while running', running, 'approve', /nothing waits for approval/],
    ['resume while running', running, 'resume', /nothing to resume/],
    ['pause before any start', INITIAL, 'pause', /nothing to pause: the rollout is idle/],
    ['abort when rolled back', rolledBack, 'abort', /nothing to abort/],
  ];
  for (const [name, state, command, message] of table) t.throws(() => onCommand(plan, state, command, 0), { name: 'NotNow', message }, name);
  t.match(onCommand(plan, rolledBack, 'start', 0), { weight: 5, action: 'start' }, 'a rolled-back rollout can start over');
  t.match(onCommand(plan, running, 'abort', 0), { weight: 0, action: 'abort', state: { phase: 'aborted' } });
  const pausedAt5 = onCommand(plan, running, 'pause', 0).state;
  t.match(onCommand(plan, pausedAt5, 'resume', 0), { action: 'resume', text: 'resumed at 5%' });
  t.equal(onCommand(plan, pausedAt5, 'resume', 0).weight, undefined, 'at a step weight already: no change');
});

t.test('a manual weight change pauses a running rollout; the person wins', async (t) => {
  const running = started();
  const tr = onManualChange(running, 20, 'alice');
  t.match(tr, { action: 'pause', state: { phase: 'paused', weight: 20 } });
  t.match(tr.text, /weights changed by alice: canary 5% → 20%; the rollout pauses/);
  t.equal(tr.weight, undefined, 'the rollout does not undo it');
  t.match(onManualChange(tr.state, 30, 'bob'), { action: 'pause', state: { phase: 'paused', weight: 30 }, text: /weights changed by bob: canary 20% → 30%; the rollout stays paused/ }, 'already paused: the change is still a decision, with who made it');
  t.same(onManualChange(running, 5, 'alice'), { state: running }, 'the same weight: no change');
  t.same(onManualChange(INITIAL, 50, 'alice'), { state: INITIAL }, 'no rollout: nothing to pause');
});

t.test('at start-up: time stopped counts toward neither a hold nor a reduction wait; no saved state and a canary above 0% is unmanaged', async (t) => {
  const reducing: RolloutState = { ...INITIAL, phase: 'reducing', step: 0, weight: 5, heldMs: 0, lastCheckAt: 10 * MIN, reduceAt: 13 * MIN, note: 'p99' };
  const running: RolloutState = { ...INITIAL, phase: 'running', step: 0, weight: 5, heldMs: 4 * MIN, lastCheckAt: 10 * MIN };
  const never: RolloutState = { ...running, lastCheckAt: null };
  const complete: RolloutState = { ...INITIAL, phase: 'complete', step: 3, weight: 100, lastCheckAt: 10 * MIN, note: 'done' };
  const table: [name: string, saved: RolloutState | undefined, canary: number, now: number, expected: object][] = [
    ['reducing, stopped an hour: the 3 minutes left are still to wait', reducing, 5, 70 * MIN, { phase: 'reducing', lastCheckAt: 70 * MIN, reduceAt: 73 * MIN }],
    ['reducing, restarted at once', reducing, 5, 10 * MIN, { reduceAt: 13 * MIN }],
    ['reducing, a clock gone back: nothing added', reducing, 5, 9 * MIN, { lastCheckAt: 9 * MIN, reduceAt: 13 * MIN }],
    ['running: the hour is not held', running, 5, 70 * MIN, { phase: 'running', heldMs: 4 * MIN, lastCheckAt: 70 * MIN, reduceAt: null }],
    ['running, never checked', never, 5, 70 * MIN, { lastCheckAt: 70 * MIN, reduceAt: null }],
    ['an ended rollout is as saved', complete, 100, 70 * MIN, complete],
    ['saved idle, the canary set by hand: as saved', INITIAL, 20, 70 * MIN, INITIAL],
    ['no saved state, the canary at 0%: idle', undefined, 0, 70 * MIN, INITIAL],
    ['no saved state, the canary at 20%: unmanaged', undefined, 20, 70 * MIN, { phase: 'unmanaged', step: -1, weight: 20, heldMs: 0, lastCheckAt: null, reduceAt: null, note: /no rollout watches it/ }],
    ['saved unmanaged: as the canary is now', { ...INITIAL, phase: 'unmanaged', weight: 20 }, 35, 70 * MIN, { phase: 'unmanaged', weight: 35 }],
    ['saved unmanaged, the canary at 0% now: idle', { ...INITIAL, phase: 'unmanaged', weight: 20 }, 0, 70 * MIN, INITIAL],
  ];
  for (const [name, saved, canary, now, expected] of table) t.match(onStartup(saved, canary, now), expected, name);
  const later = onCheck(plan, onStartup(reducing, 5, 70 * MIN), verdict('reduce'), 72 * MIN);
  t.equal(later.action, undefined, 'two minutes after the restart the reduced canary is still waited for');
  t.match(onCheck(plan, later.state, verdict('reduce'), 73 * MIN), { action: 'rollback', weight: 0 }, 'then judged: at 5% the next reduction is 0%');
});

t.test('unmanaged: its weight follows a person; at 0% it is idle; start takes it over, the other commands are refused', async (t) => {
  const unmanaged = onStartup(undefined, 20, 0);
  t.same(onManualChange(unmanaged, 30, 'alice'), { state: { ...unmanaged, weight: 30 } }, 'no decision: the rollout decided nothing');
  t.same(onManualChange(unmanaged, 0, 'alice'), { state: INITIAL });
  t.match(onCheck(plan, unmanaged, verdict('rollback'), MIN), { state: unmanaged }, 'nothing judged');
  t.throws(() => onCommand(plan, unmanaged, 'start', MIN), { name: 'NotNow', message: /^start would lower the canary from 20% to 5%/ }, 'the first step is under the weight it had: said');
  t.match(onCommand(plan, unmanaged, 'start', MIN, { force: true }), { weight: 5, action: 'start', state: { phase: 'running', step: 0, weight: 5, note: null } }, 'forced: the first step, from the weight it had');
  for (const command of ['pause', 'resume', 'approve', 'abort'] as const) {
    t.throws(() => onCommand(plan, unmanaged, command, MIN), { name: 'NotNow', message: /the rollout is unmanaged/ }, command);
  }
});

/** The same plan with the defaults: one settling check after each change, two failing windows in a row to act. */
const careful: RolloutPlan = { ...plan, settle: 1, confirm: 2 };

function runCareful(state: RolloutState, start: number, verdicts: readonly VerdictAction[]): { state: RolloutState; transitions: Transition[]; now: number } {
  const transitions: Transition[] = [];
  let now = start;
  for (const v of verdicts) {
    now += MIN;
    const tr = onCheck(careful, state, verdict(v, `${v} window`), now);
    transitions.push(tr);
    state = tr.state;
  }
  return { state, transitions, now };
}

t.test('settle: after every weight change only the immediate triggers act; the latencies start again, the time is not held', async (t) => {
  const start = onCommand(careful, INITIAL, 'start', 0);
  t.match(start.state, { settling: 1, strikes: 0 });
  // A reduction at the first check is the change itself talking (cold connections): skipped.
  const first = runCareful(start.state, 0, ['reduce']);
  t.same(first.transitions[0], { state: { ...start.state, lastCheckAt: MIN, settling: 0 }, fresh: 'latency' }, 'no decision; the latencies start again, the counts go on');
  t.match(runCareful(start.state, 0, ['rollback']).transitions[0], { action: 'rollback', weight: 0 }, "an immediate trigger acts while settling: a client's 5xx is no artefact of a cold start");
  const held = runCareful(first.state, first.now, Array(10).fill('pass'));
  t.match(held.transitions.at(-1), { action: 'promote', weight: 30 }, 'ten passing minutes after the settling one');
  t.equal(held.state.settling, 1, 'the promotion settles again');
  t.equal(runCareful(held.state, held.now, ['pass']).state.heldMs, 0, 'the settling minute is not held');
  const reduced = runCareful(held.state, held.now, ['pass', 'reduce', 'reduce']);
  t.match(reduced.transitions.at(-1), { action: 'reduce', weight: 25, state: { settling: 1, strikes: 0 } }, 'a reduction settles too');
  const resumed = onCommand(careful, { ...reduced.state, phase: 'paused', weight: 20 }, 'resume', reduced.now);
  t.match(resumed, { weight: 5, state: { settling: 1 } }, 'set by hand to 20%, it resumes at the 5% step: a change');
  t.equal(onCommand(careful, { ...held.state, phase: 'paused', settling: 0, strikes: 1 }, 'resume', held.now).state.settling, 0, 'resumed at its own weight: nothing moved, nothing to settle; the strike forgotten');
});

t.test('confirm: a gradual trigger or a miss acts on the second failing window in a row, the first logged as a suspicion', async (t) => {
  const ready = runCareful(onCommand(careful, INITIAL, 'start', 0).state, 0, ['pass', 'pass', 'pass']).state;
  t.match(ready, { settling: 0, heldMs: 2 * MIN });
  const once = runCareful(ready, 3 * MIN, ['reduce']);
  t.match(once.transitions[0], { fresh: 'all', action: 'suspect', text: 'reduce window: unconfirmed (1 of 2 windows in a row); judged again on fresh exchanges', state: { strikes: 1, weight: 5, heldMs: 2 * MIN } });
  t.equal(once.transitions[0]!.weight, undefined, 'nothing moves on one window');
  t.match(runCareful(once.state, once.now, ['pass']).state, { strikes: 0, heldMs: 3 * MIN }, 'a passing window clears the suspicion, and the hold goes on');
  t.match(runCareful(once.state, once.now, ['inconclusive']).state, { strikes: 1 }, 'an inconclusive one neither clears nor confirms it');
  const twice = runCareful(once.state, once.now, ['reduce']);
  t.match(twice.transitions[0], { action: 'rollback', weight: 0, text: 'reduce window (failing 2 windows in a row) → canary to 0%' }, 'confirmed: 5% reduces to 0%');

  const missed = runCareful(ready, 3 * MIN, ['miss', 'miss', 'miss']);
  t.match(missed.transitions.map((x) => x.action), ['suspect', 'hold', undefined], 'a miss suspected, confirmed (the hold starts again), then nothing new to say');
  t.match(missed.transitions[1], { text: 'miss window (failing 2 windows in a row): the hold at 5% starts again', state: { heldMs: 0 } });
  t.equal(missed.transitions[2]!.fresh, undefined, 'once confirmed, a failing run needs no fresh window');
  const mixed = runCareful(ready, 3 * MIN, ['miss', 'reduce']);
  t.match(mixed.transitions[1], { action: 'rollback', text: /failing 2 windows in a row/ }, 'a miss then a reduction: two failing windows, the worse acts');
  t.match(runCareful(ready, 3 * MIN, ['rollback']).transitions[0], { action: 'rollback', text: 'rollback window → canary to 0% at once' }, 'an immediate trigger needs no confirmation');

  const reducing = { ...ready, phase: 'reducing' as const, weight: 25, reduceAt: 3 * MIN };
  // The window is 5 minutes: inconclusive for 4 after the suspicion, still waiting; then confirmed.
  const suspected = runCareful(reducing, 3 * MIN, ['reduce', 'inconclusive', 'inconclusive', 'inconclusive', 'inconclusive', 'reduce']);
  t.match(suspected.transitions.map((x) => x.action), ['suspect', undefined, undefined, undefined, undefined, 'reduce'], 'a reduced canary suspected waits a whole window for its fresh sample, counted from the suspicion');
  t.equal(suspected.transitions[0]!.state.reduceAt, 4 * MIN);
  const paused = { ...ready, phase: 'paused' as const };
  t.match(runCareful(paused, 3 * MIN, ['miss']).transitions[0], { state: { strikes: 0 } }, 'a paused canary: a miss is not acted on, not counted');
  t.match(runCareful(paused, 3 * MIN, ['reduce']).transitions[0], { action: 'suspect' }, 'a gradual trigger is, a paused canary still taking traffic');
  const waiting = { ...ready, phase: 'awaiting_approval' as const };
  const unready = runCareful(waiting, 3 * MIN, ['miss', 'miss']);
  t.match(unready.transitions.map((x) => x.action), ['suspect', 'hold']);
  t.match(unready.state, { phase: 'running', heldMs: 0 });
});

t.test("a canary whose /info/ changes at a step (a new image behind the same URL) starts its hold again", async (t) => {
  const v1 = JSON.stringify(['fastapi', '1.16.5', 'python', { name: 'churn' }]);
  const v2 = JSON.stringify(['fastapi', '1.16.6', 'python', { name: 'churn' }]);
  let state = onCommand(careful, INITIAL, 'start', 0).state;
  state = onCheck(careful, state, verdict('pass'), MIN, v1).state;
  t.match(state, { canary: v1, heldMs: 0 }, 'first seen: recorded, nothing said');
  state = onCheck(careful, state, verdict('pass'), 2 * MIN, v1).state;
  state = onCheck(careful, state, verdict('pass'), 3 * MIN).state;
  t.match(state, { canary: v1, heldMs: 2 * MIN }, 'an /info/ not read this time: the last known stands');
  state = onCheck(careful, state, verdict('pass'), 4 * MIN, v1).state;
  t.equal(state.heldMs, 3 * MIN);
  const changed = onCheck(careful, state, verdict('pass'), 5 * MIN, v2);
  t.match(changed, {
    action: 'hold',
    fresh: 'all',
    text: 'the canary changed (fastapi 1.16.5 churn → fastapi 1.16.6 churn, from its /info/): the hold at 5% starts again',
    state: { phase: 'running', heldMs: 0, canary: v2, settling: 1 },
  });
  t.equal(changed.weight, undefined, 'the weight stays');
  const waiting = onCheck(careful, { ...state, phase: 'awaiting_approval' }, verdict('pass'), 5 * MIN, v2);
  t.match(waiting, { action: 'hold', state: { phase: 'running', heldMs: 0 } }, 'a step waiting for approval is no longer ready');
  t.match(onCheck(careful, { ...state, phase: 'paused' }, verdict('pass'), 5 * MIN, v2), { action: undefined, state: { canary: v2, phase: 'paused' } }, 'paused: the new identity noted, nothing held to restart');
  t.match(onCheck(careful, state, verdict('rollback'), 5 * MIN, v2), { action: 'rollback' }, 'an immediate trigger still comes first');
});

t.test('start at a step (counted from 1), or at the step under the current weight; lowering a canary needs force', async (t) => {
  // plan: 5 → 30 (approve) → 60 → 100.
  const table: [string, RolloutState, CommandOptions, { step: number; weight: number; text: RegExp }][] = [
    ['the first step', INITIAL, {}, { step: 0, weight: 5, text: /^rollout started → canary to 5%$/ }],
    ['--at-step 3', INITIAL, { atStep: 3 }, { step: 2, weight: 60, text: /^rollout started at step 3 of 4 → canary to 60%$/ }],
    ['--at-step 1, as the first', INITIAL, { atStep: 1 }, { step: 0, weight: 5, text: /^rollout started → canary to 5%$/ }],
    ['--from-current at 40% by hand: the 30% step, down to it', { ...INITIAL, phase: 'unmanaged', weight: 40 }, { fromCurrent: true }, { step: 1, weight: 30, text: /^rollout started at step 2 of 4 \(the step at or under the canary's 40%, or the first\) → canary to 30%$/ }],
    ['--from-current at 0%: the first step', INITIAL, { fromCurrent: true }, { step: 0, weight: 5, text: /or the first\) → canary to 5%/ }],
    ['--from-current after a complete rollout: the last step held again', { ...INITIAL, phase: 'complete', step: 3, weight: 100 }, { fromCurrent: true, current: 100 }, { step: 3, weight: 100, text: /step 4 of 4/ }],
    ['--at-step 2 over a canary at 10% by hand: up, no force needed', { ...INITIAL, phase: 'unmanaged', weight: 10 }, { atStep: 2 }, { step: 1, weight: 30, text: /step 2 of 4/ }],
    ['forced over a complete rollout at 100%', { ...INITIAL, phase: 'complete', step: 3, weight: 100 }, { force: true }, { step: 0, weight: 5, text: /^rollout started → canary to 5%$/ }],
    ['a person set 10% after an abort: the weights say so, not the state', { ...INITIAL, phase: 'aborted', weight: 0 }, { current: 10, atStep: 3 }, { step: 2, weight: 60, text: /step 3 of 4/ }],
  ];
  for (const [name, state, opts, want] of table) {
    const tr = onCommand(plan, state, 'start', 7, opts);
    t.match(tr, { weight: want.weight, action: 'start', text: want.text, state: { phase: 'running', step: want.step, weight: want.weight, heldMs: 0, lastCheckAt: 7 } }, name);
    t.same(tr.gate, { on: ['pre-step'], held: state, step: want.step }, `${name}: its pre-step hooks first; refused, the state stays`);
  }
  const refused: [string, RolloutState, CommandOptions, RegExp, object][] = [
    ['a canary at 10% by hand, a first step of 5%', { ...INITIAL, phase: 'unmanaged', weight: 10 }, {}, /^start would lower the canary from 10% to 5% \(step 1 of 4\); to do so, start with force \(--force\); to carry on from the canary's weight, start from the current step \(--from-current\)$/, { lowers: { from: 10, to: 5, step: 1 } }],
    ['a complete rollout at 100%: the issue\'s console Start', { ...INITIAL, phase: 'complete', step: 3, weight: 100 }, {}, /from 100% to 5%/, { lowers: { from: 100, to: 5, step: 1 } }],
    ['--at-step 2 under a canary at 70% by hand', { ...INITIAL, phase: 'aborted', weight: 0 }, { current: 70, atStep: 2 }, /from 70% to 30% \(step 2 of 4\)/, { lowers: { from: 70, to: 30, step: 2 } }],
  ];
  for (const [name, state, opts, message, details] of refused) t.throws(() => onCommand(plan, state, 'start', 7, opts), { name: 'NotNow', message, details }, name);
  for (const atStep of [0, 5, 1.5, -1]) t.throws(() => onCommand(plan, INITIAL, 'start', 7, { atStep }), { name: 'InputError', field: 'atStep', message: `${atStep} is not a step of the plan: 1 to 4 (5% 10m → 30% 10m (approve) → 60% 10m → 100% 10m)` }, `atStep ${atStep}`);
  t.throws(() => onCommand(plan, INITIAL, 'start', 7, { atStep: 2, fromCurrent: true }), { name: 'InputError', field: 'fromCurrent', message: 'give a step (atStep) or the current one (fromCurrent), not both' });
});

t.test('retry after a rollback or an abort: back at the step that failed (kept through the reductions), or at a step', async (t) => {
  const at60: RolloutState = { ...INITIAL, phase: 'running', step: 2, weight: 60, lastCheckAt: 0 };
  const immediate = onCheck(plan, at60, verdict('rollback', 'errors'), MIN).state;
  t.match(immediate, { phase: 'rolled_back', weight: 0, step: 2, failedStep: 2 });
  // 60 → 50 (the 30% step) → 25 (the 5% step) → 5 → 0: the step that failed stays the 60% one.
  let state = onCheck(plan, at60, verdict('reduce', 'slow'), MIN).state;
  t.match(state, { phase: 'reducing', weight: 50, step: 1, failedStep: 2 });
  for (let i = 2; state.phase === 'reducing'; i++) state = onCheck(plan, state, verdict('reduce', 'slow'), i * 10 * MIN).state;
  t.match(state, { phase: 'rolled_back', weight: 0, step: 0, failedStep: 2 }, 'reduced to 0%: the step it began at is kept');
  const aborted = onCommand(plan, { ...at60, phase: 'reducing', weight: 25, step: 0, failedStep: 2, reduceAt: 5 }, 'abort', MIN).state;
  t.match(aborted, { phase: 'aborted', failedStep: 2 }, 'aborted while reducing: where the reductions began');
  t.match(onCommand(plan, at60, 'abort', MIN).state, { phase: 'aborted', failedStep: 2 });
  const table: [string, RolloutState, CommandOptions, number][] = [
    ['after an immediate rollback', immediate, {}, 2],
    ['after the reductions', state, {}, 2],
    ['after an abort', aborted, {}, 2],
    ['--at-step 1', state, { atStep: 1 }, 0],
    ['a state saved before failedStep: its step', { ...INITIAL, phase: 'rolled_back', step: 1 }, {}, 1],
    ['a plan with fewer steps since: its last', { ...INITIAL, phase: 'rolled_back', step: 7, failedStep: 7 }, {}, 3],
  ];
  for (const [name, from, opts, step] of table) {
    const weight = plan.steps[step]!.weight;
    const tr = onCommand(plan, from, 'retry', 3 * MIN, opts);
    t.match(tr, { action: 'retry', weight, text: `rollout retried at step ${step + 1} of 4 → canary to ${weight}%`, state: { phase: 'running', step, weight, heldMs: 0, lastCheckAt: 3 * MIN } }, name);
    t.equal(tr.state.failedStep, undefined, `${name}: a fresh run`);
    t.match(tr.gate, { on: ['pre-step'], step }, name);
  }
  t.throws(() => onCommand(plan, { ...immediate, phase: 'rolled_back' }, 'retry', MIN, { current: 70 }), { name: 'NotNow', message: /^retry would lower the canary from 70% to 60% .*; to do so, retry with force \(--force\); .* or at a step \(--at-step N\)$/ }, 'set by hand since: said, as start');
  for (const phase of ['idle', 'running', 'paused', 'complete', 'unmanaged'] as const) {
    t.throws(() => onCommand(plan, { ...at60, phase }, 'retry', MIN), { name: 'NotNow', message: `nothing to retry: the rollout is ${phase}; retry follows a rollback or an abort` }, phase);
  }
});

t.test('promote --full: 100% now; a plan ending at 100% holds its last step still watched, one ending below is complete', async (t) => {
  const short = parsePlan({ settle: 0, confirm: 1, interval: '1m', steps: [{ weight: 5, hold: '10m' }, { weight: 50, hold: '1h' }] }, UPSTREAMS);
  const awaiting: RolloutState = { ...INITIAL, phase: 'awaiting_approval', step: 1, weight: 30, heldMs: 10 * MIN, lastCheckAt: 0 };
  const full = onCommand(plan, awaiting, 'promote', MIN, { full: true });
  t.match(full, { weight: 100, action: 'promote_full', text: "promoted fully at 30% → canary to 100%, the last step's hold (10m) still watched", state: { phase: 'running', step: 3, weight: 100, heldMs: 0, note: null } });
  t.same(full.gate, { on: ['pre-step'], held: awaiting, step: 3 });
  const reducing: RolloutState = { ...INITIAL, phase: 'reducing', step: 0, weight: 5, reduceAt: 10 * MIN, lastCheckAt: 0, failedStep: 1 };
  t.match(onCommand(short, reducing, 'promote', MIN, { full: true }), { weight: 100, state: { phase: 'complete', step: 1, weight: 100, reduceAt: null, note: 'promoted fully at 5% → canary to 100%: rollout complete' } });
  t.match(onCommand(plan, { ...awaiting, phase: 'paused' }, 'promote', MIN, { full: true }), { weight: 100, state: { phase: 'running' } }, 'paused too');
  t.throws(() => onCommand(plan, awaiting, 'promote', MIN), { name: 'NotNow', message: 'promote takes full: true (to 100% now); to go on by one step waiting for approval, approve' });
  for (const phase of ['idle', 'unmanaged', 'complete', 'rolled_back', 'aborted'] as const) {
    t.throws(() => onCommand(plan, { ...awaiting, phase }, 'promote', MIN, { full: true }), { name: 'NotNow', message: `nothing to promote: the rollout is ${phase}; start it (at a step, if need be) first` }, phase);
  }
});

t.test('a promotion after a hold, and an approval, ask confirm-step then pre-step hooks; the state kept if they fail has the hold done', async (t) => {
  const r = run(started(), 0, Array(10).fill('pass'));
  const promotion = r.transitions.at(-1)!;
  t.match(promotion, { action: 'promote', gate: { on: ['confirm-step', 'pre-step'], step: 1, held: { phase: 'running', step: 0, weight: 5, heldMs: 10 * MIN, lastCheckAt: 10 * MIN } } });
  const awaiting: RolloutState = { ...INITIAL, phase: 'awaiting_approval', step: 1, weight: 30, heldMs: 10 * MIN, lastCheckAt: 0 };
  t.match(onCommand(plan, awaiting, 'approve', MIN), { action: 'approve', gate: { on: ['confirm-step', 'pre-step'], step: 2, held: { ...awaiting, lastCheckAt: MIN } } });
  for (const tr of [onCommand(plan, started(), 'pause', MIN), onCheck(plan, { ...INITIAL, phase: 'running', step: 3, weight: 100, lastCheckAt: 0 }, verdict('pass'), 10 * MIN)]) {
    t.equal(tr.gate, undefined, `${tr.action ?? 'nothing'}: no hooks`);
  }
});
