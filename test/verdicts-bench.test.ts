/** The verdict bench's pure parts (bench/verdicts-judge.ts, verdicts-scenarios.ts, verdicts-load.ts), as tables. */
import t from 'tap';
import { parsePlan } from '../src/rollout/plan.js';
import {
  controllerEvents, checksSince, faultyOutcome, FLAGGER_THRESHOLD, healthyOutcome, intervalsOf, LEVEL, referenceCheck, referenceEvents, wilson,
  type Answer, type Event, type IntervalObs,
} from '../bench/verdicts-judge.js';
import { clientAddresses } from '../bench/verdicts-load.js';
import { configFile, lognormalSigma, MODEL_LATENCY, SCENARIOS } from '../bench/verdicts-scenarios.js';

t.test('wilson: the 95% score interval, as scipy gives it', async (t) => {
  // python3 -c "from scipy.stats import binomtest; ci = binomtest(K, N).proportion_ci(confidence_level=0.95, method='wilson'); print(ci.low, ci.high)" (scipy 1.17.1)
  const cases: [k: number, n: number, lo: number, hi: number][] = [
    [0, 20, 0, 0.16112515805281935],
    [20, 20, 0.8388748419471808, 1],
    [5, 10, 0.236593090512564, 0.7634069094874361],
    [1, 10, 0.017876213095072896, 0.4041500267952385],
    [3, 20, 0.05236874589621662, 0.3604188647407569],
    [19, 20, 0.763868806553258, 0.9911185511992047],
    [1, 1, 0.20654931437723745, 1],
  ];
  for (const [k, n, lo, hi] of cases) {
    const [l, h] = wilson(k, n);
    t.ok(Math.abs(l - lo) < 1e-12 && Math.abs(h - hi) < 1e-12, `${k}/${n}: ${l}–${h}, want ${lo}–${hi}`);
  }
  t.same(wilson(0, 0), [0, 1], 'no runs say nothing');
});

const a = (end: number, upstream: string, ms: number, status = 200): Answer => ({ end, upstream, status, ms });

t.test('intervalsOf: answers cut at the check times, per upstream, by when they ended', async (t) => {
  const answers = [
    a(100, 'flask', 5), // at the first boundary: before the first interval
    a(101, 'flask', 7), a(150, 'fastapi', 9, 500), a(200, 'flask', 3, 503), // (100, 200]
    a(201, 'fastapi', 4, 404), a(250, '', 1, 0), a(260, 'other', 2), // (200, 300]: a 4xx is no error; no answer and other upstreams left out
    a(900, 'flask', 1), // after the last boundary
  ];
  const got = intervalsOf(answers, [100, 200, 300, 400], 'flask', 'fastapi');
  t.same(got, [
    { end: 200, baseline: { requests: 2, errors: 1, p99: 7 }, canary: { requests: 1, errors: 1, p99: 9 } },
    { end: 300, baseline: { requests: 0, errors: 0, p99: NaN }, canary: { requests: 1, errors: 0, p99: 4 } },
    { end: 400, baseline: { requests: 0, errors: 0, p99: NaN }, canary: { requests: 0, errors: 0, p99: NaN } },
  ]);
  t.same(intervalsOf(answers, [100], 'flask', 'fastapi'), [], 'one boundary closes no interval');
  const p99 = intervalsOf(Array.from({ length: 200 }, (_, i) => a(150, 'fastapi', 200 - i)), [100, 200], 'flask', 'fastapi')[0]!.canary.p99;
  t.equal(p99, 198, 'p99 by nearest rank over the sorted latencies (rank 198 of 1..200)');
});

const iv = (canary: [number, number, number], baseline: [number, number, number] = [300, 0, 20]): IntervalObs => ({
  end: 0,
  canary: { requests: canary[0], errors: canary[1], p99: canary[2] },
  baseline: { requests: baseline[0], errors: baseline[1], p99: baseline[2] },
});

t.test('referenceCheck: Flagger\'s two builtin checks on one interval', async (t) => {
  const c = { maxErrorRate: 0.001, maxP99Increase: 0.2 };
  const cases: [string, IntervalObs, string | null][] = [
    ['healthy', iv([100, 0, 20]), null],
    ['no canary request: no values found, a failed check', iv([0, 0, NaN]), 'no canary requests (no values found)'],
    ['one 5xx in 100 is 1%, over 0.1%: no minimum sample, no test', iv([100, 1, 20]), 'success rate below 99.90%: 1 of 100 5xx'],
    ['1 in 1000 is the criterion, not over it', iv([1000, 1, 20]), null],
    ['p99 over the baseline\'s by more than 20%', iv([100, 0, 24.1]), 'p99 24.1 ms > 24.0 ms'],
    ['p99 20% over is not more', iv([100, 0, 24]), null],
    ['errors are checked first', iv([100, 5, 99]), 'success rate below 99.90%: 5 of 100 5xx'],
    ['no baseline traffic (100%): no p99 comparison', iv([100, 0, 99], [0, 0, NaN]), null],
  ];
  for (const [name, interval, want] of cases) t.equal(referenceCheck(interval, c), want, name);
});

t.test('referenceEvents: each failed check holds; the threshold-th, counted over the whole run, rolls back', async (t) => {
  const ends = [1, 2, 3, 4, 5, 6, 7, 8];
  const x = 'failed';
  t.equal(FLAGGER_THRESHOLD, 5, 'the threshold of Flagger\'s documented examples');
  t.same(referenceEvents([null, x, x, null, x, x, x, x], ends), [
    { at: 2, level: LEVEL.hold }, { at: 3, level: LEVEL.hold }, { at: 5, level: LEVEL.hold }, { at: 6, level: LEVEL.hold },
    { at: 7, level: LEVEL.hold }, { at: 7, level: LEVEL.rollback }, { at: 8, level: LEVEL.hold },
  ], 'not consecutive: passes in between do not reset the count');
  t.same(referenceEvents([x, x, null], ends, 2), [{ at: 1, level: LEVEL.hold }, { at: 2, level: LEVEL.hold }, { at: 2, level: LEVEL.rollback }], 'threshold 2');
  t.same(referenceEvents([null, null], ends), [], 'all passed');
});

t.test('controllerEvents: what the rollout did at each check', async (t) => {
  const events = controllerEvents(
    [{ at: 1, action: 'inconclusive' }, { at: 2, action: 'miss' }, { at: 3, action: 'pass' }, { at: 4, action: 'reduce' }, { at: 6, action: 'rollback' }],
    [{ at: 0, action: 'start' }, { at: 2, action: 'hold' }, { at: 3, action: 'promote' }, { at: 4, action: 'reduce' }, { at: 6, action: 'rollback' }, { at: 7, action: 'pause' }],
  );
  t.same(events, [{ at: 2, level: LEVEL.hold }, { at: 2, level: LEVEL.hold }, { at: 4, level: LEVEL.reduce }, { at: 6, level: LEVEL.rollback }], 'misses hold; reduce and rollback decisions move the canary; the rest is not an action on the canary');
  t.same(controllerEvents([{ at: 1000, action: 'pass' }, { at: 2000, action: 'reduce' }], [{ at: 2042, action: 'reduce' }]), [{ at: 2000, level: LEVEL.reduce }],
    'a decision a few ms after its verdict is timed by that check');
  t.same(controllerEvents([{ at: 1000, action: 'pass' }], [{ at: 2042, action: 'rollback' }]), [{ at: 2042, level: LEVEL.rollback }],
    'one whose check the poll did not see keeps its own time');
});

t.test('healthyOutcome: every action on a healthy canary is a false one, within the run\'s checks', async (t) => {
  const e = (at: number, level: Event['level']): Event => ({ at, level });
  const cases: [string, Event[], number, ReturnType<typeof healthyOutcome>][] = [
    ['nothing', [], Infinity, { hold: false, reduce: false, rollback: false }],
    ['a hold', [e(3, 1)], Infinity, { hold: true, reduce: false, rollback: false }],
    ['a reduction holds too', [e(3, 2)], Infinity, { hold: true, reduce: true, rollback: false }],
    ['a rollback', [e(3, 1), e(5, 3)], Infinity, { hold: true, reduce: false, rollback: true }],
    ['after the run\'s last check: not counted', [e(3, 1), e(13, 3)], 12, { hold: true, reduce: false, rollback: false }],
  ];
  for (const [name, events, until, want] of cases) t.same(healthyOutcome(events, until), want, name);
});

t.test('faultyOutcome: detected when the judge did at least what the fault calls for, counted in checks from its start', async (t) => {
  const ends = [10, 20, 30, 40, 50, 60];
  const e = (at: number, level: Event['level']): Event => ({ at, level });
  const cases: [string, Event[], Parameters<typeof faultyOutcome>[1], number, ReturnType<typeof faultyOutcome>][] = [
    ['rolled back at the second check', [e(20, 3)], 'rollback', 0, { detected: true, intervals: 2 }],
    ['a hold is not a rollback', [e(10, 1), e(20, 1)], 'rollback', 0, { detected: false }],
    ['a reduction is not a rollback', [e(20, 2)], 'rollback', 0, { detected: false }],
    ['a rollback is more than a reduction', [e(10, 1), e(30, 3)], 'reduce', 0, { detected: true, intervals: 3 }],
    ['a miss is the hold a step criterion calls for', [e(40, 1)], 'hold', 0, { detected: true, intervals: 4 }],
    ['counted from when the fault could be seen (ping: pingTimeout after it stopped)', [e(50, 3)], 'rollback', 25, { detected: true, intervals: 3 }],
    ['an action before then is not a detection', [e(20, 3)], 'rollback', 25, { detected: false }],
    ['nothing', [], 'hold', 0, { detected: false }],
  ];
  for (const [name, events, expected, onset, want] of cases) t.same(faultyOutcome(events, expected, onset, ends), want, name);
  t.equal(checksSince(ends, 25), 4, 'checks closed after a time');
});

t.test('the corpus: every scenario\'s plan is one this build\'s rollout takes; the judge\'s settings pass through', async (t) => {
  for (const s of SCENARIOS) {
    const file = configFile(s, 'http://127.0.0.1:1', 'http://127.0.0.1:2', {});
    const plan = parsePlan(file.rollout, ['flask', 'fastapi']);
    t.same(plan.steps.map((p) => p.weight), s.plan.steps.map((p) => p.weight), `${s.name}: its steps`);
    t.equal(plan.minRequests, s.plan.minRequests, `${s.name}: minRequests`);
    t.equal(s.truth === 'faulty', s.notMeasurable !== undefined || s.fault !== undefined, `${s.name}: a faulty scenario has a fault`);
  }
  const rollout = configFile(SCENARIOS[0]!, 'a', 'b', { settle: 0, confirm: 3, minP99Difference: '5ms' }).rollout as Record<string, unknown>;
  t.same([rollout.settle, rollout.confirm, rollout.minP99Difference], [0, 3, '5ms'], 'BENCH_SETTLE, BENCH_CONFIRM, BENCH_P99_FLOOR into the plan');
  t.notOk('settle' in (configFile(SCENARIOS[0]!, 'a', 'b', {}).rollout as object), 'unset: not written, the build\'s default judges');
  const shadow = SCENARIOS.find((s) => s.shadowSample !== undefined)!;
  t.equal(configFile(shadow, 'a', 'b', {}).shadowSample, shadow.shadowSample, 'the shadow scenario turns the shadow on');
});

t.test('lognormalSigma: the service time\'s p99 is the one asked for', async (t) => {
  const sigma = lognormalSigma(MODEL_LATENCY.medianMs, MODEL_LATENCY.p99Ms);
  t.ok(Math.abs(sigma - 0.6629400443287164) < 1e-12, `σ ${sigma}`);
  t.ok(Math.abs(Math.exp(Math.log(4) + sigma * 2.3263478740408408) - 18.7) < 1e-9, 'exp(μ + σ·z99) = p99');
});

t.test('clientAddresses: distinct loopback addresses, 250 to a /24', async (t) => {
  const got = clientAddresses(1000);
  t.equal(new Set(got).size, 1000);
  t.same([got[0], got[249], got[250], got[999]], ['127.0.1.1', '127.0.1.250', '127.0.2.1', '127.0.4.250']);
});
