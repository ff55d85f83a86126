/** The canary controller on an injected clock: real store, real outcome stream, real metrics; whole plans in milliseconds. */
import { pino, type Logger } from 'pino';
import { Counter, Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { Outcomes, type Outcome } from '../src/observe/outcomes.js';
import { LocalEvidence, type EvidenceSource } from '../src/rollout/evidence.js';
import type { PollSample } from '../src/observe/poller.js';
import type { Evidence } from '../src/rollout/checks.js';
import { DECISIONS_LIMIT, RolloutController, type SavedRollout } from '../src/rollout/controller.js';
import { Notifier } from '../src/rollout/notify.js';
import { parsePlan, type RolloutPlan } from '../src/rollout/plan.js';
import type { VerifyBaseline, VerifyItem } from '../src/rollout/verify.js';
import { WeightStore } from '../src/weights/store.js';
import { ManualClock, settle } from './helpers/clock.js';
import { sampleSum } from './helpers/metrics.js';
import { quietLists, silentLog, startUpstream } from './helpers/net.js';
import { until } from './helpers/wait.js';

const UPSTREAMS = ['flask', 'fastapi'];
const MIN = 60_000;
const MiB = 2 ** 20;

const PLAN: RolloutPlan = parsePlan(
  {
    // Every check acts: settle and confirm have their own tests (rollout-machine).
    settle: 0,
    confirm: 1,
    interval: '1m',
    window: '5m',
    minRequests: 50,
    steps: [
      { weight: 5, hold: '3m', maxMemoryIncrease: 0.3 },
      { weight: 50, hold: '3m', approve: true },
      { weight: 100, hold: '3m' },
    ],
    rollback: { reductionWait: '2m' },
  },
  UPSTREAMS,
);

/**
 * A controller with its world: a clock moved by hand, traffic and polls fed in by the test.
 * advance() and minute() jump the clock, the loop's timer firing nothing: a test runs each tick
 * itself. clock.advance() moves it with the loop's timer firing, for the loop's own tests.
 */
function rig(
  t: Test,
  opts: {
    plan?: RolloutPlan; saved?: SavedRollout; canaryAt?: number; startAt?: number; log?: Logger; stateless?: boolean; evidence?: EvidenceSource; afterTick?: () => Promise<void>;
    verify?: VerifyBaseline; notifier?: Notifier;
  } = {},
) {
  const clock = new ManualClock(opts.startAt ?? 1_700_000_000_000);
  const plan = opts.plan ?? PLAN;
  const canaryAt = opts.canaryAt ?? 0;
  const at = new Date(clock.now).toISOString();
  const store = new WeightStore(
    UPSTREAMS,
    {
      state: { shares: [['fastapi', canaryAt * 100]], version: 1, updatedAt: at, source: 'startup' },
      history: [{ at, version: 1, source: 'startup', who: 'startup', reason: null, from: {}, to: {} }],
    },
    { now: () => new Date(clock.now), log: silentLog, subscriberErrors: quietLists.errors },
  );
  const outcomes = new Outcomes(quietLists);
  const pollListeners = new Set<(s: PollSample) => void>();
  const down = new Map<string, number>();
  const registry = new Registry();
  const saves: SavedRollout[] = [];
  const controller = new RolloutController({
    plan,
    store,
    upstreams: UPSTREAMS,
    evidence: opts.evidence ?? new LocalEvidence({
      plan,
      outcomes,
      poller: {
        subscribe: (_name, l) => {
          pollListeners.add(l);
          return () => pollListeners.delete(l);
        },
        downMs: (name) => down.get(name) ?? 0,
      },
      now: () => clock.now,
    }),
    registry,
    notifier: opts.notifier ?? new Notifier(plan.notify, { log: silentLog, failures: new Counter({ name: 'n_total', help: 'n', labelNames: ['reason'], registers: [] }) }),
    verify: opts.verify,
    log: opts.log ?? silentLog,
    now: () => clock.now,
    timers: clock,
    afterTick: opts.afterTick,
    saved: opts.saved,
    ...(opts.stateless === true ? {} : { save: (s: SavedRollout) => saves.push(s) }),
  });
  controller.start();
  t.teardown(() => controller.stop());
  let id = 0;
  /** `route`: a cohort rule that took these exchanges to `serverType`. */
  const traffic = (serverType: string, n: number, seconds: (i: number) => number, status: (i: number) => number = () => 200, route?: string): void => {
    for (let i = 0; i < n; i++) {
      const outcome: Outcome = {
        id: ++id, serverType, upstream: serverType, status: status(i), sentStatus: status(i), origin: 'upstream', method: 'POST', url: '/predict/',
        client: '10.0.0.1', seconds: seconds(i), clientGone: false, bytes: 20, requestComplete: true, route, routed: route !== undefined,
      };
      outcomes.publish(outcome);
    }
  };
  return {
    controller,
    store,
    registry,
    saves,
    canary: () => store.view().weights.fastapi,
    clock,
    advance: (ms: number) => (clock.now += ms),
    now: () => clock.now,
    traffic,
    /** A minute of traffic (both sides alike unless told), then the minute's check. */
    minute(canary: { n?: number; slow?: number; errors?: number } = {}, baseline = 200) {
      traffic('flask', baseline, (i) => 0.01 + (i % 10) / 1000);
      const errors = canary.errors ?? 0;
      traffic('fastapi', canary.n ?? 100, (i) => (0.01 + (i % 10) / 1000) * (canary.slow ?? 1), (i) => (i < errors ? 500 : 200));
      clock.now += MIN;
      return controller.tick();
    },
    poll: (sample: PollSample) => {
      for (const l of pollListeners) l(sample);
    },
    setDown: (name: string, ms: number) => down.set(name, ms),
  };
}

t.test('a healthy canary: 5% → 50% → approval → 100% → complete, every step in the store and the decision log', async (t) => {
  const r = rig(t);
  t.match(r.controller.view(), { phase: 'idle', nextCheckAt: null });
  t.equal(await r.controller.tick(), undefined, 'idle: nothing is checked');
  r.controller.command('start', 'alice', 'go');
  r.advance(MIN / 2);
  t.equal(r.controller.view().nextCheckAt, new Date(r.now() + MIN / 2).toISOString(), 'the timer fires every interval from the start');
  t.equal(r.canary(), 5);
  for (let i = 0; i < 3; i++) await r.minute();
  t.equal(r.canary(), 50, 'three passing minutes at 5%: 50%');
  for (let i = 0; i < 3; i++) await r.minute();
  t.match(r.controller.view(), { phase: 'awaiting_approval', weight: 50, step: { index: 1, of: 3, approve: true } });
  await r.minute();
  t.equal(r.canary(), 50, 'no promotion without approval');
  await t.rejects(r.controller.command('start', 'alice', null), { name: 'NotNow' });
  r.controller.command('approve', 'bob', 'looks good');
  t.equal(r.canary(), 100);
  // At 100% the baseline has no traffic left: p99 cannot be compared, the absolute checks judge.
  for (let i = 0; i < 2; i++) await r.minute({}, 0);
  t.match(r.controller.view(), { phase: 'running', weight: 100, lastVerdict: { action: 'pass', checks: [{}, { check: 'p99', status: 'unavailable' }] } });
  await r.minute({}, 0);
  t.equal(r.controller.view().phase, 'complete');
  t.same(
    r.controller.decisions.map((d) => [d.action, d.from, d.to, d.who]),
    [
      ['start', 0, 5, 'alice'],
      ['promote', 5, 50, 'rollout'],
      ['await_approval', 50, 50, 'rollout'],
      ['approve', 50, 100, 'bob'],
      ['complete', 100, 100, 'rollout'],
    ],
  );
  t.match(r.controller.decisions[1], { text: '5% held with every check passing → canary to 50%', checks: [{ check: 'error_rate', status: 'ok' }] });
  const history = r.store.history.slice(1).map((h) => [h.source, h.who, h.to.fastapi]);
  t.same(history, [['rollout', 'rollout (alice)', 5], ['rollout', 'rollout', 50], ['rollout', 'rollout (bob)', 100]], 'the audit trail names the rollout and who told it');
  const text = await r.registry.metrics();
  t.equal(sampleSum(text, 'drum_rollout_step_percent'), 100);
  t.equal(sampleSum(text, 'drum_rollout_state', { state: 'complete' }), 1);
  t.equal(sampleSum(text, 'drum_rollout_state', { state: 'running' }), 0);
  t.equal(sampleSum(text, 'drum_rollout_decisions_total', { action: 'promote' }), 1);
  t.equal(sampleSum(text, 'drum_canary_check', { check: 'error_rate' }), 0);
  t.equal(r.saves.at(-1)!.state.phase, 'complete', 'every transition saved');
});

t.test('a canary answering 5% errors is at 0% at the first check', async (t) => {
  const r = rig(t);
  r.controller.command('start', 'alice', null);
  const verdict = await r.minute({ errors: 5 });
  t.match(verdict, { action: 'rollback' });
  t.equal(r.canary(), 0);
  t.match(r.controller.decisions.at(-1), { action: 'rollback', from: 5, to: 0, text: /canary error rate 5% \(5 of 100\) over 1% with 99% confidence \(exact binomial test p=0\.0034\) → canary to 0% at once/ });
  t.equal(r.controller.view().phase, 'rolled_back');
});

t.test('a canary twice as slow is reduced step by step; recovered, it pauses', async (t) => {
  const r = rig(t, { canaryAt: 0 });
  r.controller.command('start', 'alice', null);
  for (let i = 0; i < 3; i++) await r.minute();
  t.equal(r.canary(), 50);
  const verdict = await r.minute({ slow: 2 });
  t.match(verdict, { action: 'reduce', checks: [{}, { check: 'p99', status: 'reduce' }] });
  t.equal(r.canary(), 25, '50% → 25%');
  await r.minute({ slow: 2 });
  t.equal(r.canary(), 25, 'it waits reductionWait before judging again');
  await r.minute({ slow: 2 });
  t.equal(r.canary(), 5, 'still slow: 25% → 5%');
  await r.minute();
  await r.minute();
  t.match(r.controller.view(), { phase: 'paused', weight: 5, note: /recovered at 5%/ });
  r.controller.command('resume', 'alice', null);
  t.match(r.controller.view(), { phase: 'running', weight: 5, step: { index: 0 } });
});

t.test('a manual weight change pauses the rollout, and the person wins', async (t) => {
  const r = rig(t);
  r.controller.command('start', 'alice', null);
  r.store.change([['fastapi', 2000]], { source: 'admin', who: 'carol', reason: 'by hand' });
  t.match(r.controller.view(), { phase: 'paused', weight: 20, note: /weights changed by carol: canary 5% → 20%/ });
  t.match(r.controller.decisions.at(-1), { action: 'pause', who: 'carol', reason: 'by hand' });
  for (let i = 0; i < 5; i++) await r.minute();
  t.equal(r.canary(), 20, 'paused: no promotion');
});

t.test('restored from the saved state, it carries on; a change made while it was down pauses it', async (t) => {
  const first = rig(t);
  first.controller.command('start', 'alice', null);
  await first.minute();
  const saved = first.saves.at(-1)!;
  const resumed = rig(t, { saved: { ...saved, state: { ...saved.state, lastCheckAt: 0 } }, canaryAt: 5 });
  t.match(resumed.controller.view(), { phase: 'running', weight: 5 });
  await resumed.minute();
  t.equal(resumed.controller.view().step!.heldMs, saved.state.heldMs + MIN, 'the time it was stopped does not count toward the hold');
  t.equal(resumed.controller.decisions.length, 1, 'the decision log came back');
  const moved = rig(t, { saved, canaryAt: 30 });
  t.match(moved.controller.view(), { phase: 'paused', weight: 30, note: /a change while stopped/ });
});

t.test(`the decision log keeps the last ${DECISIONS_LIMIT}`, async (t) => {
  const first = rig(t);
  first.controller.command('start', 'alice', null);
  const one = first.controller.decisions[0]!;
  const full = { ...first.saves.at(-1)!, decisions: Array.from({ length: DECISIONS_LIMIT }, (_, i) => ({ ...one, text: `old ${i}` })) };
  const r = rig(t, { saved: full, canaryAt: 1 });
  r.controller.command('abort', 'bob', null);
  t.equal(r.controller.decisions.length, DECISIONS_LIMIT);
  t.not(r.controller.decisions[0]!.text, 'old 0', 'the oldest went');
  t.equal(r.controller.decisions.at(-1)!.action, 'abort', 'the newest came');
});

t.test('stopped while reducing: the wait still left is waited after the restart', async (t) => {
  const first = rig(t, { canaryAt: 0 });
  first.controller.command('start', 'alice', null);
  for (let i = 0; i < 3; i++) await first.minute();
  await first.minute({ slow: 2 });
  t.match(first.controller.view(), { phase: 'reducing', weight: 25 });
  await first.minute({ slow: 2 });
  t.equal(first.canary(), 25, 'a minute of the two-minute wait');
  // Stopped after that check, and down for an hour: a minute of the wait is left. (The time from
  // the last check to the stop is not known watched either: as for a hold, it does not count.)
  await first.controller.stop();
  const resumed = rig(t, { saved: first.saves.at(-1)!, canaryAt: 25, startAt: first.now() + 60 * MIN });
  t.match(resumed.controller.view(), { phase: 'reducing', weight: 25, reduceAt: new Date(resumed.now() + MIN).toISOString() });
  resumed.advance(MIN / 2);
  await resumed.controller.tick();
  t.match(resumed.controller.view(), { phase: 'reducing', weight: 25 }, 'half a minute on (and the hour before it) is not the minute left');
  await resumed.minute({ slow: 2 });
  t.equal(resumed.canary(), 5, 'judged once the minute has passed with the process watching: still slow, 25% → 5%');
});

t.test('no saved rollout and a canary above 0%: unmanaged, at its weight; a person moves it, start takes it over', async (t) => {
  const lines: { level: number; msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as { level: number; msg: string }) });
  const r = rig(t, { canaryAt: 20, log });
  t.match(lines, [{ level: 40, msg: 'rollout: fastapi is at 20% with no saved rollout state: unmanaged, nothing watches it; start the rollout, or set its weight' }], 'where it is kept (--state): a warning');
  rig(t, { canaryAt: 20, log, stateless: true });
  t.match(lines[1], { level: 30, msg: /fastapi is at 20% with no saved rollout state/ }, 'without --state, static weights: said at info');
  t.match(r.controller.view(), { phase: 'unmanaged', weight: 20, step: null, nextCheckAt: null, note: /no rollout watches it/ });
  t.equal(await r.controller.tick(), undefined, 'nothing is checked');
  t.match(await r.registry.getSingleMetricAsString('drum_rollout_state'), /drum_rollout_state\{state="unmanaged"\} 1/);
  r.store.change([['fastapi', 3000]], { source: 'admin', who: 'carol', reason: null });
  t.match(r.controller.view(), { phase: 'unmanaged', weight: 30 });
  t.same(r.controller.decisions, [], 'not a decision of the rollout');
  await t.rejects(r.controller.command('start', 'alice', null), { name: 'NotNow', message: /^start would lower the canary from 30% to 5% \(step 1 of 3\); to do so, start with force \(--force\)/, details: { lowers: { from: 30, to: 5, step: 1 } } });
  t.match(r.controller.view(), { phase: 'unmanaged', weight: 30 }, 'refused: nothing changed');
  t.equal(r.canary(), 30);
  await r.controller.command('start', 'alice', null, { force: true });
  t.match(r.controller.view(), { phase: 'running', weight: 5, note: null });
  t.match(r.controller.decisions.at(-1), { action: 'start', from: 30, to: 5 }, 'from the weight the person set');
  t.equal(r.canary(), 5);
  const zero = rig(t, { canaryAt: 20 });
  zero.store.change([], { source: 'admin', who: 'carol', reason: null });
  t.match(zero.controller.view(), { phase: 'idle', weight: 0, note: null }, 'at 0%: nothing left unmanaged');
  t.match(rig(t, { canaryAt: 0 }).controller.view(), { phase: 'idle' });
});

t.test('memory: a leak or an OOM rolls back at once; a fat canary is reduced; no /stats/ is unavailable, not a failure', async (t) => {
  const r = rig(t);
  r.controller.command('start', 'alice', null);
  await r.minute();
  t.match(r.controller.view().lastVerdict!.checks, [{}, {}, { check: 'memory', status: 'unavailable' }, { check: 'rss_growth', status: 'unavailable' }, { check: 'oom', status: 'unavailable' }]);
  const stats = (upstream: string, rss: number, extra: { containerMaxUsed?: number; containerLimit?: number } = {}) =>
    r.poll({ upstream, at: r.now(), kind: 'stats', memory: { rss: rss * MiB, containerMaxUsed: extra.containerMaxUsed, containerLimit: extra.containerLimit } });
  stats('flask', 100);
  stats('fastapi', 140);
  t.match(await r.minute(), { action: 'miss', text: /canary RSS 140 MB vs baseline 100 MB \(\+40%\) not under \+30%/ }, 'over the step limit (30%) but not the rollback one (50%): hold');

  const fat = rig(t);
  fat.controller.command('start', 'alice', null);
  fat.poll({ upstream: 'flask', at: fat.now(), kind: 'stats', memory: { rss: 100 * MiB, containerMaxUsed: undefined, containerLimit: undefined } });
  fat.poll({ upstream: 'fastapi', at: fat.now(), kind: 'stats', memory: { rss: 151 * MiB, containerMaxUsed: 100, containerLimit: 200 } });
  for (let i = 0; i < 3; i++) await fat.minute();
  t.match(fat.controller.decisions.at(-1), { action: 'rollback', text: /canary RSS 151 MB vs baseline 100 MB/ }, 'at 5%, the gradual reduction is to 0%');

  const oom = rig(t);
  oom.controller.command('start', 'alice', null);
  oom.poll({ upstream: 'fastapi', at: oom.now(), kind: 'stats', memory: { rss: 100 * MiB, containerMaxUsed: 512 * MiB, containerLimit: 512 * MiB } });
  t.match(await oom.minute(), { action: 'rollback', text: /container memory limit \(OOM\)/ });

  const leak = rig(t);
  leak.controller.command('start', 'alice', null);
  // Seventy minutes of polls: the fit reads the last hour only.
  for (let i = 0; i <= 70; i++) {
    leak.poll({ upstream: 'fastapi', at: leak.now(), kind: 'stats', memory: { rss: (100 + i) * MiB, containerMaxUsed: undefined, containerLimit: undefined } });
    leak.poll({ upstream: 'flask', at: leak.now(), kind: 'stats', memory: { rss: 100 * MiB, containerMaxUsed: undefined, containerLimit: undefined } });
    leak.poll({ upstream: 'fastapi', at: leak.now(), kind: 'ping', answered: true });
    leak.advance(MIN);
  }
  t.match(await leak.controller.tick(), { action: 'rollback', text: /canary RSS growing \d+(\.\d)?% per hour, over 10%/ }, '1 MB a minute on 110 MB an hour ago: over 50% an hour');
  leak.poll({ upstream: 'fastapi', at: leak.now(), kind: 'stats', memory: undefined });
});

t.test('a canary silent on /ping past the timeout: to 0% at once', async (t) => {
  const r = rig(t);
  r.controller.command('start', 'alice', null);
  r.setDown('fastapi', 31_000);
  t.match(await r.minute(), { action: 'rollback', text: /has not answered \/ping for 31 s/ });
});

t.test('too few canary requests: inconclusive, the hold does not advance', async (t) => {
  const r = rig(t);
  // Traffic while idle is not kept: the first step judges its own.
  r.traffic('fastapi', 500, () => 0.01);
  r.traffic('flask', 500, () => 0.01);
  r.controller.command('start', 'alice', null);
  for (let i = 0; i < 10; i++) t.match(await r.minute({ n: 4 }), { action: 'inconclusive' });
  t.equal(r.canary(), 5);
  t.equal(r.controller.view().step!.heldMs, 0);
});

t.test('a step the weights cannot take (another canary holds too much): refused, nothing changes, the tick logs it', async (t) => {
  const upstreams = ['flask', 'fastapi', 'canary2'];
  const at = new Date(0).toISOString();
  const store = new WeightStore(upstreams, { state: { shares: [['canary2', 6000]], version: 1, updatedAt: at, source: 'startup' }, history: [] }, { now: () => new Date(0), log: silentLog, subscriberErrors: quietLists.errors });
  const plan = parsePlan({ interval: '1m', minRequests: 1, settle: 0, confirm: 1, steps: [{ weight: 10, hold: '1m' }, { weight: 50, hold: '1m' }] }, upstreams);
  const lines: { msg: string; err?: string }[] = [];
  const log = (await import('pino')).pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string }) });
  const outcomes = new Outcomes(quietLists);
  const clock = new ManualClock(0);
  const controller = new RolloutController({
    plan, store, upstreams, registry: new Registry(), log,
    evidence: new LocalEvidence({ plan, outcomes, poller: { subscribe: () => () => undefined, downMs: () => 0 }, now: () => clock.now }),
    notifier: new Notifier(plan.notify, { log, failures: new Counter({ name: 'f_total', help: 'f', labelNames: ['reason'], registers: [] }) }),
    now: () => clock.now,
    timers: clock,
  });
  controller.start();
  t.teardown(() => controller.stop());
  controller.command('start', 'alice', null);
  t.equal(store.view().weights.fastapi, 10);
  for (const serverType of ['flask', 'fastapi']) for (let i = 0; i < 5; i++) outcomes.publish({ id: i, serverType, upstream: serverType, status: 200, sentStatus: 200, origin: 'upstream', method: 'GET', url: '/', client: '', seconds: 0.01, clientGone: false, bytes: 1, requestComplete: true });
  await clock.advance(60_000);
  t.match(controller.state, { phase: 'running', step: 0, weight: 10 }, 'not promoted');
  t.same(store.view().weights, { flask: 30, fastapi: 10, canary2: 60 });
  t.match(lines.at(-1), { msg: 'rollout: the check could not be carried out; holding', err: /over 100%/ });
});

t.test('exchanges a cohort rule took are not judged: a failing beta cohort on the canary is no rollback, and the verdict counts them', async (t) => {
  const r = rig(t);
  r.controller.command('start', 'alice', null);
  // Every request the beta rule sends the canary fails; the split's are healthy.
  r.traffic('fastapi', 60, () => 0.5, () => 500, 'beta');
  r.traffic('flask', 7, () => 0.01, () => 200, 'pinned');
  const verdict = await r.minute();
  t.equal(verdict?.checks.find((c) => c.check === 'error_rate')?.status, 'ok', 'the canary judged on the split\'s 100 requests alone');
  t.not(verdict?.action, 'rollback');
  t.same(r.controller.view().lastVerdict?.routed, { flask: 7, fastapi: 60 }, 'GET /rollout says how many the rules took in the window');
  t.equal(r.canary(), 5, 'still at the first step');
});

t.test("a fleet controller's claim: this process's own rollout cannot start while it holds", async (t) => {
  const r = rig(t);
  t.equal(r.controller.view().controller, null, 'no claim');
  const view = r.controller.claim({ controller: 'http://controller:9902', who: 'controller', ttlMs: 30_000 });
  t.same(view.controller, { controller: 'http://controller:9902', who: 'controller', until: new Date(r.now() + 30_000).toISOString() });
  await t.rejects(r.controller.command('start', 'alice', null), { name: 'NotNow', message: "this fleet's rollout is run by the controller at http://controller:9902 (controller); start it there" });
  r.advance(29_999);
  await t.rejects(r.controller.command('start', 'alice', null), { name: 'NotNow' }, 'still held a millisecond before it lapses');
  r.advance(1);
  t.equal(r.controller.view().controller, null, 'lapsed: the controller stopped renewing it');
  r.controller.command('start', 'alice', null);
  t.throws(() => r.controller.claim({ controller: 'c', who: 'controller', ttlMs: 1000 }), { name: 'NotNow', message: 'an in-proxy rollout is running here; abort it before a fleet controller takes over' });
  t.equal(r.controller.view().controller, null);
});

t.test('with the default settle and confirm: the settling minute and a suspicion start fresh windows; GET /rollout says both', async (t) => {
  const plan: RolloutPlan = { ...PLAN, settle: 1, confirm: 2 };
  const r = rig(t, { plan });
  r.controller.command('start', 'alice', null);
  t.match(r.controller.view(), { plan: { settle: 1, confirm: 2, minP99DifferenceMs: 5 }, settling: 1, strikes: 0 });
  // The settling minute: a canary slow and failing at once is not judged on it (the change itself).
  // A slow settling minute (cold connections, say), with errors under the immediate trigger's confidence.
  r.traffic('flask', 200, () => 0.01);
  r.traffic('fastapi', 100, () => 0.5, (i) => (i < 2 ? 500 : 200));
  r.advance(MIN);
  t.match(await r.controller.tick(), { action: 'inconclusive', text: 'settling after a weight change: only the immediate triggers act (1 check left)', checks: [{ check: 'error_rate' }, { check: 'p99', status: 'reduce' }] });
  t.match(r.controller.view(), { phase: 'running', weight: 5, settling: 0 }, 'no decision on the settling minute');
  t.equal(r.controller.decisions.length, 1);
  // Its latencies are gone, its counts stay: the first judged window has 2 errors in 200 canary requests.
  t.match(await r.minute(), { action: 'pass', checks: [{ check: 'error_rate', n: 200, errors: 2 }, { check: 'p99', status: 'ok' }] }, 'the slow settling minute is not in the first judged p99');

  const failing = rig(t, { plan });
  failing.controller.command('start', 'alice', null);
  t.match(await failing.minute({ errors: 5 }), { action: 'rollback' }, '5% errors: at 0% on the settling check, one interval after the start');
  t.equal(failing.canary(), 0);
  const patient = rig(t, { plan: { ...plan, settle: 2 } });
  patient.controller.command('start', 'alice', null);
  t.match(await patient.minute(), { text: 'settling after a weight change: only the immediate triggers act (2 checks left)' });

  const slow = rig(t, { plan, canaryAt: 0 });
  slow.controller.command('start', 'alice', null);
  await slow.minute();
  await slow.minute();
  t.match(await slow.minute({ slow: 3 }), { action: 'reduce' });
  t.match(slow.controller.view(), { weight: 5, strikes: 1 });
  t.match(slow.controller.decisions.at(-1), { action: 'suspect', to: 5, text: /unconfirmed \(1 of 2 windows in a row\)/ });
  // The confirming window is fresh: one fast minute after the suspicion passes, whatever the slow one before it said.
  t.match(await slow.minute(), { action: 'pass' });
  t.match(slow.controller.view(), { weight: 5, strikes: 0 });
  await slow.minute({ slow: 3 });
  await slow.minute({ slow: 3 });
  t.equal(slow.canary(), 0, 'two slow windows in a row: 5% reduces to 0%');
  t.match(slow.controller.decisions.at(-1), { action: 'rollback', text: /failing 2 windows in a row/ });
});

t.test("the canary's /info/ from the polls: a new version at a step restarts the hold, said in the decision log", async (t) => {
  const r = rig(t, { plan: { ...PLAN, steps: [{ ...PLAN.steps[0]!, holdMs: 10 * MIN }, ...PLAN.steps.slice(1)] } });
  const info = (upstream: string, identity: string | undefined): void => r.poll({ upstream, at: r.now(), kind: 'info', identity });
  const v1 = JSON.stringify(['fastapi', '1.16.5', 'python', { name: 'm' }]);
  r.controller.command('start', 'alice', null);
  info('fastapi', v1);
  await r.minute();
  await r.minute();
  t.match(r.controller.view(), { step: { heldMs: 2 * MIN } });
  info('flask', JSON.stringify(['flask', '9', 'python', null]));
  info('fastapi', undefined);
  await r.minute();
  t.match(r.controller.view(), { step: { heldMs: 3 * MIN } }, "the baseline's identity and an unreadable /info/ change nothing");
  info('fastapi', JSON.stringify(['fastapi', '1.16.6', 'python', { name: 'm' }]));
  await r.minute();
  t.match(r.controller.view(), { weight: 5, step: { heldMs: 0 } });
  t.match(r.controller.decisions.at(-1), { action: 'hold', from: 5, to: 5, text: 'the canary changed (fastapi 1.16.5 m → fastapi 1.16.6 m, from its /info/): the hold at 5% starts again' });
});

/** Evidence the test hands over when it likes: each gather waits for answer(), as a slow Prometheus would. */
function heldEvidence() {
  const gathers: { at: number; stopped: AbortSignal; answer: (e: Evidence) => void }[] = [];
  const source: EvidenceSource = {
    gather: (at, stopped) => new Promise<Evidence>((answer) => gathers.push({ at, stopped, answer })),
    reset: () => undefined,
  };
  return { source, gathers };
}
const side = (requests: number, errors: number) => ({ requests, errors, latencies: Array.from({ length: requests }, () => 0.01) });
const memory = { canaryRss: undefined, baselineRss: undefined, canaryGrowthPerHour: undefined, canaryOom: undefined };
const PASSING: Evidence = { baseline: side(200, 0), canary: side(100, 0), memory, canaryDownMs: 0 };
const FAILING: Evidence = { ...PASSING, canary: side(100, 50) };

t.test('the loop: a tick longer than the interval is never run twice at once; nextCheckAt is when the next gather starts', async (t) => {
  const held = heldEvidence();
  let after = 0;
  const r = rig(t, { evidence: held.source, afterTick: async () => void after++ });
  const t0 = r.now();
  r.controller.command('start', 'alice', null);
  t.equal(r.controller.view().nextCheckAt, new Date(t0 + MIN).toISOString());
  t.same(r.clock.pending(), [t0 + MIN], 'one timer, at the interval');

  await r.clock.advance(MIN);
  t.same(held.gathers.map((g) => g.at), [t0 + MIN], 'gathered when nextCheckAt said');
  t.equal(r.controller.view().nextCheckAt, new Date(t0 + MIN).toISOString(), 'a tick under way: the next check is the one that began then');
  await r.clock.advance(MIN);
  t.same(r.clock.pending(), [], 'no timer while the tick runs');
  t.equal(await r.controller.tick(), undefined, 'a tick asked for meanwhile is skipped');
  t.equal(held.gathers.length, 1, 'still one gather');
  t.equal(after, 0, 'afterTick waits for its tick');

  await r.clock.advance(MIN / 2);
  held.gathers[0]!.answer(PASSING);
  await settle();
  t.match(r.controller.view(), { lastVerdict: { action: 'pass', at: new Date(t0 + MIN).toISOString() } }, 'judged as of its gather');
  t.equal(after, 1, 'then afterTick');
  t.equal(r.controller.view().nextCheckAt, new Date(t0 + 3 * MIN).toISOString(), 'the boundary passed during the tick is skipped');
  t.same(r.clock.pending(), [t0 + 3 * MIN]);
  await r.clock.advance(MIN / 2);
  t.same(held.gathers.map((g) => g.at), [t0 + MIN, t0 + 3 * MIN], 'the next gather began when nextCheckAt said');
  held.gathers[1]!.answer(PASSING);
  await settle();
  t.same(r.clock.pending(), [t0 + 4 * MIN]);
});

t.test('the loop: a timer that fires before its time waits out the rest; the tick never begins before nextCheckAt', async (t) => {
  const held = heldEvidence();
  let now = 1_000_000;
  const fired: { fn: () => void; ms: number }[] = [];
  const controller = new RolloutController({
    plan: PLAN, store: new WeightStore(UPSTREAMS, { state: { shares: [], version: 1, updatedAt: new Date(0).toISOString(), source: 'startup' }, history: [] }, { now: () => new Date(now), log: silentLog, subscriberErrors: quietLists.errors }),
    upstreams: UPSTREAMS, registry: new Registry(), log: silentLog, evidence: held.source,
    notifier: new Notifier([], { log: silentLog, failures: new Counter({ name: 'early_total', help: 'f', labelNames: ['reason'], registers: [] }) }),
    now: () => now,
    // A timer the test fires itself, early.
    timers: { setTimeout: (fn, ms) => fired.push({ fn, ms }), clearTimeout: () => undefined },
  });
  controller.start();
  t.teardown(() => controller.stop());
  controller.command('start', 'alice', null);
  t.same(fired.map((f) => f.ms), [MIN]);
  const announced = controller.view().nextCheckAt;
  now += MIN - 1;
  fired[0]!.fn();
  t.same(fired.map((f) => f.ms), [MIN, 1], 'a millisecond early: set again for the millisecond left');
  t.equal(held.gathers.length, 0, 'no gather yet');
  t.equal(controller.view().nextCheckAt, announced, 'still announced for then');
  now += 1;
  fired[1]!.fn();
  t.same(held.gathers.map((g) => new Date(g.at).toISOString()), [announced], 'gathered at the time announced');
  held.gathers[0]!.answer(PASSING);
  await settle();
});

t.test('the loop: idle, it gathers (the fleet keeps its RSS history) and runs afterTick, judging nothing', async (t) => {
  const held = heldEvidence();
  let after = 0;
  const r = rig(t, { evidence: held.source, afterTick: async () => void after++ });
  await r.clock.advance(MIN);
  held.gathers[0]!.answer(FAILING);
  await settle();
  t.match(r.controller.view(), { phase: 'idle', lastVerdict: null, nextCheckAt: null });
  t.equal(after, 1);
  t.same(r.clock.pending(), [r.now() + MIN]);
});

t.test('the loop: close() during a tick waits for it, decides nothing on its numbers, and no tick starts after', async (t) => {
  const held = heldEvidence();
  let after = 0;
  const r = rig(t, { evidence: held.source, afterTick: async () => void after++ });
  r.controller.command('start', 'alice', null);
  await r.clock.advance(MIN);
  const [gather] = held.gathers;
  let closed = false;
  const stopping = r.controller.stop().then(() => (closed = true));
  await settle();
  t.ok(gather!.stopped.aborted, 'the gather is told to give up');
  t.notOk(closed, 'close() waits for the tick under way');
  t.same(r.clock.pending(), [], 'no timer left');
  gather!.answer(FAILING);
  await stopping;
  t.match(r.controller.view(), { phase: 'running', weight: 5, lastVerdict: null, nextCheckAt: null }, 'a 50% error rate, gathered as it stopped: not acted on');
  t.equal(after, 0, 'no afterTick once stopped');
  await r.clock.advance(10 * MIN);
  t.equal(await r.controller.tick(), undefined);
  t.equal(held.gathers.length, 1, 'no tick after');
});

t.test('the loop: a command while the evidence is gathered: those numbers are for a state that is gone, nothing is judged', async (t) => {
  const held = heldEvidence();
  const r = rig(t, { evidence: held.source });
  r.controller.command('start', 'alice', null);
  const ticked = r.controller.tick();
  r.controller.command('abort', 'bob', 'no');
  r.controller.command('start', 'alice', 'again');
  held.gathers[0]!.answer(FAILING);
  t.equal(await ticked, undefined);
  t.match(r.controller.view(), { phase: 'running', weight: 5, lastVerdict: null }, 'the new rollout is not rolled back on the old one\'s numbers');
  const next = r.controller.tick();
  held.gathers[1]!.answer(FAILING);
  t.match(await next, { action: 'rollback' }, 'the next tick judges');
});

t.test('the loop: afterTick failing is said, and the loop goes on', async (t) => {
  const lines: { msg: string; err?: string }[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string }) });
  let calls = 0;
  const r = rig(t, { log, stateless: true, afterTick: async () => { calls++; throw new Error('replicas unreachable'); } });
  await r.clock.advance(2 * MIN);
  t.equal(calls, 2);
  t.match(lines.filter((l) => l.err !== undefined), [{ msg: 'rollout: the work after the check failed', err: 'replicas unreachable' }, { err: 'replicas unreachable' }]);
});

/** One server for a plan's hooks: each path answers the status set for it (200 unless told), or nothing while `silent`. */
async function hookServer(t: Test) {
  const status = new Map<string, number>();
  const silent = new Set<string>();
  const before = new Map<string, () => void>();
  const server = await startUpstream('hooks', (req, res) => {
    before.get(req.url!)?.();
    if (silent.has(req.url!)) return;
    res.statusCode = status.get(req.url!) ?? 200;
    res.end('{}');
  });
  t.teardown(() => server.close());
  const bodies = (path: string) => server.seen.filter((s) => s.url === path).map((s) => JSON.parse(s.body.toString()) as Record<string, unknown>);
  return { url: server.url, status, silent, before, bodies, calls: () => server.seen.map((s) => s.url) };
}

const hooked = (url: string, hooks: { name: string; on: string; path: string; timeout?: string }[], extra: Record<string, unknown> = {}): RolloutPlan =>
  parsePlan(
    {
      settle: 0, confirm: 1, interval: '1m', window: '5m', minRequests: 50,
      steps: [{ weight: 5, hold: '2m' }, { weight: 50, hold: '2m', approve: true }, { weight: 100, hold: '2m' }],
      hooks: hooks.map(({ path, ...h }) => ({ ...h, url: `${url}${path}` })),
      ...extra,
    },
    UPSTREAMS,
  );

t.test('hooks: a pre-step hook that does not answer 2xx holds the step, said once, until it does; confirm-step is asked first', async (t) => {
  const h = await hookServer(t);
  const plan = hooked(h.url, [{ name: 'load-test', on: 'pre-step', path: '/pre' }, { name: 'acceptance', on: 'confirm-step', path: '/confirm' }]);
  const r = rig(t, { plan });
  await r.controller.command('start', 'alice', 'go');
  t.equal(r.canary(), 5);
  t.same(h.calls(), ['/pre'], 'the first step has its pre-step hook; no hold was done before it');
  t.same(r.controller.view().plan.hooks, [{ name: 'load-test', on: 'pre-step' }, { name: 'acceptance', on: 'confirm-step' }], 'GET /rollout names the hooks, not their URLs');
  t.match(h.bodies('/pre')[0], { hook: 'load-test', on: 'pre-step', rollout: { canary: 'fastapi', baseline: 'flask' }, phase: 'idle', dryRun: false, step: { index: 0, number: 1, of: 3, weight: 5 }, canary: { from: 0, to: 5 }, weights: { flask: 100, fastapi: 0 }, lastVerdict: null });
  h.status.set('/pre', 503);
  for (let i = 0; i < 2; i++) await r.minute();
  t.equal(r.canary(), 5, 'the hold is done, the hook answered 503: no move');
  t.match(r.controller.view(), { phase: 'running', step: { index: 0, heldMs: 2 * MIN }, note: /^pre-step hook "load-test" answered 503 after \d+ ms: the move to 50% is not made, the canary stays at 5% \(a miss; asked again at the next check\)$/ });
  t.match(r.controller.decisions.at(-1), { action: 'hook', from: 5, to: 5, phase: 'running', step: 0, who: 'rollout', hook: { hook: 'load-test', on: 'pre-step', ok: false, status: 503, error: null }, checks: [{ check: 'error_rate' }] });
  t.same(h.calls(), ['/pre', '/confirm', '/pre'], 'confirm-step, then pre-step');
  t.match(h.bodies('/confirm')[0], { on: 'confirm-step', phase: 'running', step: { index: 1, weight: 50 }, canary: { from: 5, to: 50 }, lastVerdict: { action: 'pass' } });
  await r.minute();
  t.equal(r.controller.decisions.filter((d) => d.action === 'hook').length, 1, 'the same answer again: not said again');
  t.equal(r.controller.view().step!.heldMs, 3 * MIN, 'the hold done is kept (and goes on)');
  h.status.set('/pre', 500);
  await r.minute();
  t.match(r.controller.decisions.at(-1), { action: 'hook', text: /answered 500/ }, 'another answer: said');
  h.status.delete('/pre');
  await r.minute();
  t.equal(r.canary(), 50, 'answered 200: the move is made');
  t.match(r.controller.decisions.at(-1), { action: 'promote', to: 50 });
  // The approval is gated as the promotion was; a command refused by a hook is a 409 with the hook's answer.
  for (let i = 0; i < 2; i++) await r.minute();
  t.equal(r.controller.view().phase, 'awaiting_approval');
  h.status.set('/confirm', 409);
  await t.rejects(r.controller.command('approve', 'bob', 'ok'), { name: 'NotNow', message: /^confirm-step hook "acceptance" answered 409 after \d+ ms: the move to 100% is not made, the canary stays at 50% \(a miss; asked again when the command is given again\)$/, details: { hook: { status: 409 } } });
  t.match(r.controller.view(), { phase: 'awaiting_approval', weight: 50 });
  t.match(r.controller.decisions.at(-1), { action: 'hook', who: 'bob', reason: 'ok' });
  h.status.delete('/confirm');
  await r.controller.command('approve', 'bob', 'ok');
  t.equal(r.canary(), 100);
  t.equal(sampleSum(await r.registry.metrics(), 'drum_rollout_decisions_total', { action: 'hook' }), 3);
});

t.test('hooks: no answer within the timeout, or none at all, is a failure; a start refused by one starts nothing', async (t) => {
  const h = await hookServer(t);
  h.silent.add('/slow');
  const slow = rig(t, { plan: hooked(h.url, [{ name: 'slow', on: 'pre-step', path: '/slow', timeout: '100ms' }]) });
  await t.rejects(slow.controller.command('start', 'alice', null), { name: 'NotNow', message: /^pre-step hook "slow" failed \(no answer within 100ms\) after \d+ ms: the move to 5% is not made, the canary stays at 0%/ });
  t.match(slow.controller.view(), { phase: 'idle', weight: 0 });
  t.equal(slow.canary(), 0);
  const gone = rig(t, { plan: hooked('http://127.0.0.1:1', [{ name: 'gone', on: 'pre-step', path: '/x' }]) });
  await t.rejects(gone.controller.command('start', 'alice', null), { name: 'NotNow', message: /^pre-step hook "gone" failed \(.*ECONNREFUSED.*\) after \d+ ms/ });
  t.match(gone.controller.decisions, [{ action: 'hook', hook: { status: null, error: /ECONNREFUSED/ } }]);
});

t.test('hooks: a rollout that moves while its hooks are asked keeps that move', async (t) => {
  const h = await hookServer(t);
  const r = rig(t, { plan: hooked(h.url, [{ name: 'pre', on: 'pre-step', path: '/pre' }]) });
  await r.controller.command('start', 'alice', null);
  // A person pauses while the promotion's hook is asked: the promotion is dropped.
  h.before.set('/pre', () => void r.controller.command('pause', 'bob', null));
  await r.minute();
  await r.minute();
  t.match(r.controller.view(), { phase: 'paused', weight: 5 });
  t.same(r.controller.decisions.map((d) => d.action), ['start', 'pause']);
  // And a command whose hook is asked while the rollout moves is refused.
  h.before.set('/pre', () => void r.controller.command('abort', 'bob', null));
  await t.rejects(r.controller.command('promote', 'carol', 'now', { full: true }), { name: 'NotNow', message: 'the rollout changed while its hooks were asked; read it again' });
  t.match(r.controller.view(), { phase: 'aborted', weight: 0 });
});

t.test('hooks: post-rollout when the rollout ends, rollback on a rollback or an abort; their answers gate nothing', async (t) => {
  const h = await hookServer(t);
  h.status.set('/rollback', 500);
  const lines: { level: number; msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as { level: number; msg: string }) });
  const plan = hooked(h.url, [{ name: 'report', on: 'post-rollout', path: '/post' }, { name: 'page', on: 'rollback', path: '/rollback' }]);
  const r = rig(t, { plan, log });
  await r.controller.command('start', 'alice', null);
  await r.minute({ errors: 5 });
  t.match(r.controller.view(), { phase: 'rolled_back', weight: 0 }, 'the failing hook changed nothing');
  await r.controller.told();
  t.same(h.calls().sort(), ['/post', '/rollback']);
  t.match(h.bodies('/post')[0], { on: 'post-rollout', phase: 'rolled_back', step: { index: 0 }, canary: { from: 0, to: 0 }, lastVerdict: { action: 'rollback' } });
  t.match(lines.find((l) => /rollback hook "page" answered 500/.test(l.msg)), { level: 40, msg: /\(it gates nothing\)$/ });
  t.match(lines.find((l) => /post-rollout hook "report" answered 200/.test(l.msg)), { level: 30 });
  await r.controller.command('retry', 'alice', null);
  await r.controller.command('abort', 'alice', null);
  await r.controller.told();
  t.equal(h.calls().length, 4, 'an abort: both again');
  const done = rig(t, { plan: hooked(h.url, [{ name: 'report', on: 'post-rollout', path: '/post' }], { steps: [{ weight: 100, hold: '1m' }] }) });
  await done.controller.command('start', 'alice', null);
  await done.minute({}, 0);
  await done.controller.told();
  t.equal(done.controller.view().phase, 'complete');
  t.match(h.bodies('/post').at(-1), { phase: 'complete' });
});

t.test('dryRun: every check and decision as usual, said as "would"; the weights never move, and a person\'s change pauses nothing', async (t) => {
  const notified: Record<string, unknown>[] = [];
  const sink = await startUpstream('sink', (_req, res, body) => {
    notified.push(JSON.parse(body.toString()) as Record<string, unknown>);
    res.end();
  });
  t.teardown(() => sink.close());
  const plan = parsePlan({ settle: 0, confirm: 1, interval: '1m', window: '5m', minRequests: 50, dryRun: true, notify: [sink.url], steps: [{ weight: 5, hold: '2m' }, { weight: 50, hold: '2m' }] }, UPSTREAMS);
  const r = rig(t, { plan, canaryAt: 20 });
  t.match(r.controller.view(), { phase: 'unmanaged', plan: { dryRun: true } });
  await r.controller.command('start', 'alice', null);
  t.match(r.controller.view(), { phase: 'running', weight: 5, weights: { fastapi: 20 } }, 'no refusal: nothing would be lowered');
  for (let i = 0; i < 2; i++) await r.minute();
  t.match(r.controller.view(), { phase: 'running', step: { index: 1 }, weight: 50 }, 'the state moves on');
  r.store.change([['fastapi', 1000]], { source: 'admin', who: 'carol', reason: null });
  t.equal(r.controller.view().phase, 'running', 'a person\'s change: the weights are theirs');
  await r.minute({ errors: 5 });
  t.match(r.controller.view(), { phase: 'rolled_back', weight: 0 });
  t.equal(r.canary(), 10, 'the weights never moved');
  t.same(r.store.history.map((e) => e.source), ['startup', 'admin'], 'the store changed only by the person');
  t.same(r.controller.decisions.map((d) => [d.action, d.dryRun, d.text.slice(0, 6)]), [['start', true, 'would:'], ['promote', true, 'would:'], ['rollback', true, 'would:']]);
  await until(() => notified.length === 3);
  t.match(notified, [{ action: 'start', dryRun: true, text: /^drum-splitter rollout \(fastapi\): would: rollout started → canary to 5%$/ }, { action: 'promote' }, { action: 'rollback' }]);
  // Restarted at an active step, a dry run does not take the weights for a person's change.
  const saved = { format: 1 as const, state: { ...r.controller.state, phase: 'running' as const, step: 0, weight: 5, lastCheckAt: r.now() }, decisions: [] };
  t.match(rig(t, { plan, saved, canaryAt: 30 }).controller.view(), { phase: 'running', weight: 5, weights: { fastapi: 30 } });
});

/** A verification of the baseline the test answers by hand: each call waits for its items. */
function verifier() {
  const calls: { canary: string | null; signal: AbortSignal; answer: (items: readonly VerifyItem[]) => void; fail: (err: Error) => void }[] = [];
  const verify: VerifyBaseline = (canary, signal) => new Promise((answer, fail) => calls.push({ canary, signal, answer, fail }));
  return { calls, verify };
}
const ITEMS: VerifyItem[] = [
  { name: 'ping', ok: true, detail: 'GET /ping → 200' },
  { name: 'predict_batch', ok: null, detail: 'no multi-row CSV prediction to replay' },
];

t.test('a rollback: the baseline is verified after it, a decision with each item, in the log, the saved state and the webhook', async (t) => {
  const hook = await startUpstream('hook');
  t.teardown(() => hook.close());
  const notifier = new Notifier([hook.url], { log: silentLog, failures: new Counter({ name: 'v_total', help: 'v', labelNames: ['reason'], registers: [] }) });
  const v = verifier();
  const r = rig(t, { verify: v.verify, notifier });
  r.controller.command('start', 'alice', null);
  r.poll({ upstream: 'fastapi', at: r.now(), kind: 'info', identity: '["fastapi","1.0",null,null]' });
  await r.minute({ errors: 5 });
  t.equal(r.controller.decisions.at(-1)!.action, 'rollback');
  t.equal(v.calls.length, 1, 'one verification, started by the rollback');
  t.equal(v.calls[0]!.canary, '["fastapi","1.0",null,null]', "with the canary's identity, which the baseline's must differ from");
  v.calls[0]!.answer(ITEMS);
  await until(() => r.controller.decisions.at(-1)!.action === 'verified');
  t.match(r.controller.decisions.at(-1), {
    action: 'verified', from: 0, to: 0, phase: 'rolled_back', who: 'rollout',
    text: 'the baseline flask verified after the rollback: ping ok; skipped: predict_batch',
    verification: { items: ITEMS },
  });
  t.same(r.saves.at(-1)!.decisions.at(-1)!.verification, { items: ITEMS }, 'saved with its items');
  t.equal(r.controller.view().phase, 'rolled_back', 'the state is as the rollback left it');
  t.match(r.controller.view().lastVerification, { action: 'verified', text: /^the baseline flask verified/, items: ITEMS }, 'GET /rollout shows it');
  await notifier.flush();
  const sent = hook.seen.map((s) => JSON.parse(s.body.toString()) as Record<string, unknown>);
  t.match(sent.at(-1), { action: 'verified', from: 0, to: 0, verification: { items: ITEMS } });
  t.notOk('next' in sent.at(-1)!, 'nothing comes next of a rolled-back rollout');
  t.same(sent[0]!.next, { weight: 50, inMs: 3 * MIN, approve: false }, "the start's notice says what comes next, and when");
  t.equal(sampleSum(await r.registry.metrics(), 'drum_rollout_decisions_total', { action: 'verified' }), 1);
});

t.test("an abort, or a person's weights to 0%: verified too; failed items fail it; moves that leave the canary traffic verify nothing", async (t) => {
  const v = verifier();
  const warned: string[] = [];
  const r = rig(t, { verify: v.verify, log: pino({ level: 'warn' }, { write: (l: string) => warned.push(l) }) });
  t.equal(r.controller.view().lastVerification, null);
  r.controller.command('start', 'alice', null);
  t.equal(v.calls.length, 0, 'a start verifies nothing');
  r.controller.command('abort', 'alice', 'enough');
  t.equal(v.calls.length, 1);
  t.equal(v.calls[0]!.canary, null, 'no /info/ of the canary known');
  v.calls[0]!.answer([{ name: 'health', ok: false, detail: 'GET /health/ → 503' }, ...ITEMS]);
  await until(() => r.controller.decisions.at(-1)!.action === 'verification_failed');
  t.match(r.controller.decisions.at(-1), { text: 'the baseline flask failed its verification after the rollback: health (GET /health/ → 503); skipped: predict_batch', verification: { items: { length: 3 } } });
  t.match(JSON.parse(warned.at(-1)!), { level: 40, action: 'verification_failed', msg: /^rollout: the baseline flask failed its verification/ }, 'a failed verification is a warning');

  r.controller.command('start', 'alice', null);
  r.store.change([['fastapi', 2000]], { source: 'admin', who: 'carol', reason: 'up' });
  t.equal(v.calls.length, 1, "a person's change that leaves the canary traffic: nothing to verify");
  r.store.change([], { source: 'admin', who: 'carol', reason: 'weights rollback' });
  t.equal(r.controller.decisions.at(-1)!.action, 'pause');
  t.equal(v.calls.length, 2, "a person's rollback (the weights to 0%) is verified");
  v.calls[1]!.answer(ITEMS);
  await until(() => r.controller.decisions.at(-1)!.action === 'verified');
});

t.test("a start that lands on the shadow phase's 0%, a dry run's would-be abort: no rollback, nothing verified", async (t) => {
  const v = verifier();
  const shadowFirst = parsePlan({ settle: 0, confirm: 1, interval: '1m', window: '5m', minRequests: 50, steps: [{ shadow: 0.1, hold: '2m' }, { weight: 5, hold: '2m' }] }, UPSTREAMS);
  const r = rig(t, { plan: shadowFirst, canaryAt: 10, verify: v.verify });
  await r.controller.command('start', 'alice', null, { force: true });
  t.match(r.controller.view(), { phase: 'running', weight: 0, step: { index: 0, shadow: 0.1 } });
  t.equal(r.canary(), 0);
  t.equal(v.calls.length, 0, 'a start is no rollback');
  const dry = parsePlan({ settle: 0, confirm: 1, interval: '1m', window: '5m', minRequests: 50, dryRun: true, steps: [{ weight: 5, hold: '2m' }] }, UPSTREAMS);
  const d = rig(t, { plan: dry, verify: v.verify });
  await d.controller.command('start', 'alice', null);
  await d.controller.command('abort', 'alice', null);
  t.match(d.controller.decisions.at(-1), { action: 'abort', dryRun: true });
  t.equal(v.calls.length, 0, "a dry run's would-be abort verifies nothing");
});

t.test('a verification that cannot run is logged; stopped meanwhile, it decides nothing and stop() waits for it', async (t) => {
  const logged: string[] = [];
  const v = verifier();
  const r = rig(t, { verify: v.verify, log: pino({ level: 'error' }, { write: (l: string) => logged.push(l) }) });
  r.controller.command('start', 'alice', null);
  r.controller.command('abort', 'alice', null);
  v.calls[0]!.fail(new Error('boom'));
  await until(() => logged.length === 1);
  t.match(JSON.parse(logged[0]!), { err: 'boom', msg: 'rollout: the verification of the baseline could not run' });
  t.equal(r.controller.decisions.at(-1)!.action, 'abort');

  r.controller.command('start', 'alice', null);
  r.controller.command('abort', 'alice', null);
  let stopped = false;
  const stopping = r.controller.stop().then(() => (stopped = true));
  t.ok(v.calls[1]!.signal.aborted, 'told to give up');
  await new Promise((resolve) => setImmediate(resolve));
  t.notOk(stopped, 'stop() waits for the verification');
  v.calls[1]!.answer(ITEMS);
  await stopping;
  t.equal(r.controller.decisions.at(-1)!.action, 'abort', 'no decision after stop');
});
