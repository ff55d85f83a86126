/** The shadow phase and the mismatch trigger: the plan's first step, its transitions, the check, a replay report standing in. */
import t from 'tap';
import { judge, mismatchCheck, type Evidence, type ShadowEvidence, type SideStats } from '../src/rollout/checks.js';
import { INITIAL, NotNow, onCheck, onCommand, onReplayStart, stepAt } from '../src/rollout/machine.js';
import { parsePlan } from '../src/rollout/plan.js';
import { replayOutcome, replayStandIn } from '../src/rollout/replay-report.js';
import { ShadowPhaseSwitch } from '../src/rollout/shadow-phase.js';
import { mismatchSample, SAMPLE_BODY, type ShadowLine } from '../src/shadow/shadow.js';
import { buildReport } from '../src/replay/report.js';
import { createLogger } from '../src/common/log.js';
import { formatSavedRollout, readSavedRollout } from '../src/rollout/saved.js';
import { writeFileSync } from 'node:fs';
import { Subscribers } from '../src/common/subscribers.js';
import { LocalEvidence } from '../src/rollout/evidence.js';
import type { ShadowFinished } from '../src/shadow/shadow.js';
import type { PollSample } from '../src/observe/poller.js';
import { MIN, runChecks, verdict } from './helpers/machine.js';
import { quietLists } from './helpers/net.js';
import { shadowFromAnswers, shadowQueries } from '../src/fleet/prometheus.js';
import { join } from 'node:path';

const UPSTREAMS = ['flask', 'fastapi'];
const plan = parsePlan(
  {
    settle: 0,
    confirm: 1,
    interval: '1m',
    window: '5m',
    steps: [{ shadow: 0.1, hold: '10m' }, { weight: 5, hold: '10m' }, { weight: 50, hold: '10m' }],
  },
  UPSTREAMS,
);
const approving = parsePlan({ settle: 0, confirm: 1, interval: '1m', window: '5m', steps: [{ shadow: 0.5, hold: '2m', approve: true }, { weight: 1, hold: '2m' }] }, UPSTREAMS);
const plain = parsePlan({ settle: 0, confirm: 1, interval: '1m', window: '5m', steps: [{ weight: 5, hold: '10m' }, { weight: 50, hold: '10m' }] }, UPSTREAMS);



t.test('start at the shadow phase: the canary at 0%, the shadow share said', async (t) => {
  const start = onCommand(plan, INITIAL, 'start', 0);
  t.match(start, { weight: 0, action: 'start', text: "rollout started: the shadow phase, 10% of the baseline's requests copied to the canary → canary to 0%", state: { phase: 'running', step: 0, weight: 0 } });
  t.equal(stepAt(plan, 0), 0, 'a canary at 0% resumes at the shadow phase');
  t.equal(stepAt(plan, 4), 1, 'a canary with traffic is at a canary step, the first at least: never the shadow phase');
  t.equal(stepAt(plan, 5), 1);
});

t.test('the shadow phase held with every check passing → shadow_pass to the first canary step', async (t) => {
  const start = onCommand(plan, INITIAL, 'start', 0).state;
  const { transitions, state } = runChecks(plan, start, Array(10).fill('pass'));
  t.same(transitions.slice(0, 9).map((tr) => tr.action), Array(9).fill(undefined), 'held for 9 minutes: nothing to say');
  t.match(transitions[9], { action: 'shadow_pass', weight: 5, text: 'shadow 10% held with every check passing → canary to 5%' });
  t.match(state, { phase: 'running', step: 1, weight: 5, heldMs: 0 });
  const next = runChecks(plan, state, Array(10).fill('pass'), 10 * MIN);
  t.match(next.transitions[9], { action: 'promote', weight: 50 }, 'a canary step after it promotes as ever');
});

t.test('inconclusive (too few pairs) holds the shadow phase; a miss starts its hold again', async (t) => {
  const start = onCommand(plan, INITIAL, 'start', 0).state;
  const a = runChecks(plan, start, ['pass', 'pass', 'inconclusive', 'inconclusive']);
  t.match(a.state, { step: 0, heldMs: 2 * MIN });
  const b = runChecks(plan, a.state, ['miss'], a.now);
  t.match(b.transitions[0], { action: 'hold', text: 'miss: the hold at shadow 10% starts again' });
  t.match(b.state, { step: 0, weight: 0, heldMs: 0, phase: 'running' });
});

t.test('a rollback verdict at the shadow phase ends the rollout there', async (t) => {
  const start = onCommand(plan, INITIAL, 'start', 0).state;
  const tr = onCheck(plan, start, verdict('rollback', 'prediction mismatch: 1 of 300 shadow pairs differ'), MIN);
  t.match(tr, { action: 'rollback', weight: 0, state: { phase: 'rolled_back', weight: 0 } });
  const reduce = onCheck(plan, start, verdict('reduce', 'p99 over +50%'), MIN);
  t.match(reduce, { action: 'rollback', state: { phase: 'rolled_back' } }, 'a gradual trigger has nothing to reduce from 0%');
});

t.test('approve: the shadow phase waits for a person before the first canary step', async (t) => {
  const start = onCommand(approving, INITIAL, 'start', 0).state;
  const { transitions, state } = runChecks(approving, start, ['pass', 'pass']);
  t.match(transitions[1], { action: 'await_approval', text: 'shadow 50% held with every check passing; waiting for approval to go to 1%' });
  const approved = onCommand(approving, state, 'approve', 3 * MIN);
  t.match(approved, { action: 'approve', weight: 1, state: { step: 1, phase: 'running' } });
});

const REPORT = (criteria: { name: string; verdict: string; value: number | null }[], extra: Record<string, unknown> = {}) => ({
  summary: { total_requests: 500, errors: 0, response_mismatches: 0, match_rate: '100.00%' },
  criteria,
  interrupted: false,
  results: [],
  ...extra,
});
const PASSING = REPORT([
  { name: 'match_rate', verdict: 'pass', value: 1 },
  { name: 'canary_p99_within_20_percent', verdict: 'pass', value: 1.0312345 },
  { name: 'error_responses_match', verdict: 'pass', value: null },
  { name: 'no_oom', verdict: 'not measured', value: null },
]);

t.test('replayStandIn: a passing report, its numbers; anything else refused with one line naming replayReport', async (t) => {
  const r = replayStandIn(PASSING);
  t.same(r, {
    requests: 500,
    mismatches: 0,
    errors: 0,
    matchRate: '100.00%',
    criteria: PASSING.criteria,
    text: '500 requests, match rate 100.00%, 0 mismatches, 0 errors; match_rate pass (1), canary_p99_within_20_percent pass (1.031), error_responses_match pass, no_oom not measured',
  });
  const bad = 'replayReport: not a drum-splitter replay report';
  const cases: [string, unknown, string][] = [
    ['not an object', [1], `${bad} (not a JSON object); give the --output file of drum-splitter replay`],
    ['no summary', { criteria: [] }, `${bad} (no "summary"); give the --output file of drum-splitter replay`],
    ['summary without numbers', { summary: { total_requests: '5' }, criteria: [] }, `${bad} ("summary" lacks total_requests, response_mismatches, errors or match_rate); give the --output file of drum-splitter replay`],
    ['no criteria', { ...PASSING, criteria: [] }, `${bad} (no "criteria"); give the --output file of drum-splitter replay`],
    ['criteria not a list', { ...PASSING, criteria: 'pass' }, `${bad} (no "criteria"); give the --output file of drum-splitter replay`],
    ['a criterion without a verdict', { ...PASSING, criteria: [{ name: 'match_rate' }] }, `${bad} (a criterion without a name and a verdict); give the --output file of drum-splitter replay`],
    ['an unknown verdict', { ...PASSING, criteria: [{ name: 'match_rate', verdict: 'ok' }] }, `${bad} (a criterion without a name and a verdict); give the --output file of drum-splitter replay`],
    ['a criterion not an object', { ...PASSING, criteria: ['pass'] }, `${bad} (a criterion without a name and a verdict); give the --output file of drum-splitter replay`],
    ['interrupted', { ...PASSING, interrupted: true }, 'replayReport: the replay was interrupted: its report covers only part of the recording; replay it whole'],
    ['failing', REPORT([{ name: 'match_rate', verdict: 'fail', value: 0.98 }, { name: 'no_oom', verdict: 'pass', value: 0 }]), 'replayReport: the replay report is failing (match_rate fail (0.98), no_oom pass (0)): only a passing one stands in for the shadow phase'],
    ['inconclusive', REPORT([{ name: 'canary_p99_within_20_percent', verdict: 'inconclusive', value: null }]), 'replayReport: the replay report is inconclusive (canary_p99_within_20_percent inconclusive): only a passing one stands in for the shadow phase'],
  ];
  for (const [name, raw, message] of cases) t.throws(() => replayStandIn(raw), { name: 'InputError', message, field: 'replayReport' }, name);
});

t.test("replayOutcome is the replay's own outcome: a report the replay writes reads back alike", async (t) => {
  t.equal(replayOutcome([{ verdict: 'pass' }, { verdict: 'not measured' }]), 'pass');
  t.equal(replayOutcome([{ verdict: 'inconclusive' }, { verdict: 'pass' }]), 'inconclusive');
  t.equal(replayOutcome([{ verdict: 'inconclusive' }, { verdict: 'fail' }]), 'fail');
  const memory = { flask: { before: null, after: null }, fastapi: { before: null, after: null } };
  const row = { path: '/predict/', flask_status: 200, fastapi_status: 200, flask_latency_ms: 5, fastapi_latency_ms: 5, diff: null, error: null, method: 'POST', route: '/predict/', kind: null, differences: [], source: 'r.jsonl:1' };
  const written = JSON.parse(JSON.stringify(buildReport(Array(150).fill(row), { count: 0, reasons: {} } as never, false, memory)));
  t.match(replayStandIn(written), { requests: 150, matchRate: '100.00%' }, 'a passing replay report, as the replay writes it');
});

t.test('onReplayStart: the shadow phase skipped, the report in the start decision; a plan without one starts as usual', async (t) => {
  const r = replayStandIn(PASSING);
  const tr = onReplayStart(plan, INITIAL, r, 0);
  t.match(tr, { action: 'start', weight: 5, state: { phase: 'running', step: 1, weight: 5, heldMs: 0 } });
  t.equal(tr.text, `rollout started; the shadow phase is passed by the replay report: ${r.text} → canary to 5%`);
  const p = onReplayStart(plain, INITIAL, r, 0);
  t.match(p, { action: 'start', weight: 5, state: { step: 0 } });
  t.equal(p.text, `rollout started → canary to 5% (replay report: ${r.text})`);
  const running = onCommand(plan, INITIAL, 'start', 0).state;
  t.throws(() => onReplayStart(plan, running, r, 0), NotNow, 'a running rollout is not started again');
  // A canary already at the first canary step: the report's start lowers nothing (the shadow phase's 0% is skipped).
  t.match(onReplayStart(plan, INITIAL, r, 0, { current: 5 }), { action: 'start', weight: 5 });
  t.throws(() => onReplayStart(plan, INITIAL, r, 0, { current: 20 }), { message: /^start would lower the canary from 20% to 5% \(step 2 of / }, 'above it: refused as any start');
  t.match(onReplayStart(plan, INITIAL, r, 0, { current: 20, force: true }), { weight: 5 }, 'forced');
  t.throws(() => onReplayStart(plain, INITIAL, r, 0, { current: 20 }), { message: /^start would lower the canary from 20% to 5% \(step 1 of / }, 'a plan without a shadow phase: at its first step');
  t.match(onReplayStart(plain, INITIAL, r, 0, { current: 20, fromCurrent: true }), { weight: 5 }, 'from the current step: lowering to it is what was asked');
});

const side = (requests: number, latencies: number[] = []): SideStats => ({ requests, errors: 0, latencies });
const shadow = (compared: number, mismatches: number, sample?: ShadowEvidence['sample']): ShadowEvidence => ({ compared, mismatches, baseline: side(compared), canary: side(compared), ...(sample === undefined ? {} : { sample }) });

t.test('mismatchCheck: any difference at the default 0; over a rate, with 99% confidence; few pairs', async (t) => {
  const where = { where: 'GET /shadow on the replicas' };
  const table: [string, ShadowEvidence, number, number, string, number | null, string][] = [
    ['none', shadow(300, 0), 0, 0, 'ok', 0, '0 of 300 shadow pairs differ beyond the ignore list and the noise (0%)'],
    ['one at 0', shadow(300, 1, where), 0, 0, 'rollback', 1 / 300, 'prediction mismatch: 1 of 300 shadow pairs differ beyond the ignore list and the noise (0.33%): any difference'],
    ['one at 0, few pairs', shadow(2, 1), 0, 100, 'rollback', 0.5, 'prediction mismatch: 1 of 2 shadow pairs differ beyond the ignore list and the noise (50%): any difference'],
    ['within a rate', shadow(1000, 2), 0.01, 0, 'ok', 0.002, '2 of 1,000 shadow pairs differ beyond the ignore list and the noise (0.2%)'],
    ['over a rate, not significantly', shadow(100, 2), 0.01, 0, 'ok', 0.02, '2 of 100 shadow pairs differ beyond the ignore list and the noise (2%)'],
    ['significantly over a rate', shadow(100, 10), 0.01, 0, 'rollback', 0.1, 'prediction mismatch: 10 of 100 shadow pairs differ beyond the ignore list and the noise (10%): over 1% with 99% confidence (exact binomial test p=7.6e-8)'],
    ['too few pairs for the shadow phase', shadow(20, 0), 0, 100, 'inconclusive', 0, '20 shadow pairs compared, fewer than 100'],
    ['none compared', shadow(0, 0), 0, 100, 'inconclusive', null, '0 shadow pairs compared, fewer than 100'],
    ['none compared at a canary step', shadow(0, 0), 0, 0, 'ok', null, '0 of 0 shadow pairs differ beyond the ignore list and the noise (0%)'],
    ['NaN from Prometheus', shadow(NaN, 0), 0, 0, 'inconclusive', null, 'mismatch unavailable (not a measurement: shadow pairs NaN)'],
  ];
  for (const [name, s, limit, min, status, value, text] of table) {
    const c = mismatchCheck(s, limit, min);
    t.match(c, { check: 'mismatch', status, value, text, limit, rollbackLimit: limit }, name);
  }
  t.same(mismatchCheck(shadow(300, 1, where), 0, 0).mismatch, where, 'the differing pair (or where it is) goes with the rollback');
  t.notOk('mismatch' in mismatchCheck(shadow(300, 1), 0, 0), 'none known: none said');
});

const evidence = (s?: ShadowEvidence): Evidence => ({
  baseline: side(0),
  canary: side(0),
  memory: { baselineRss: undefined, canaryRss: undefined, canaryGrowthPerHour: undefined, canaryOom: undefined },
  canaryDownMs: 0,
  ...(s === undefined ? {} : { shadow: s }),
});

t.test('judge: the mismatch check only while the shadow has pairs or is on; a rollback outranks everything', async (t) => {
  const opts = { minRequests: 100, minP99Difference: 0.005 };
  t.notOk(judge(evidence(), plan.steps[1]!, plan.rollback, opts).checks.some((c) => c.check === 'mismatch'), 'no shadow: no mismatch check');
  const v = judge(evidence(shadow(300, 1)), plan.steps[1]!, plan.rollback, opts);
  t.match(v, { action: 'rollback', text: /^prediction mismatch: 1 of 300/ });
  const few = judge(evidence(shadow(20, 0)), plan.steps[0]!, plan.rollback, { ...opts, shadowStep: true });
  t.match(few.checks.find((c) => c.check === 'mismatch'), { status: 'inconclusive' }, 'the shadow phase needs minRequests pairs');
  const canaryStep = judge(evidence(shadow(20, 0)), plan.steps[1]!, plan.rollback, opts);
  t.match(canaryStep.checks.find((c) => c.check === 'mismatch'), { status: 'ok' }, 'at a canary step it is a trigger only');
});

const line = (body: Buffer, canaryBody = '{"predictions":[2]}'): ShadowLine => ({
  timestamp: 1_700_000_000.5,
  method: 'POST',
  path: '/predict/',
  headers: {},
  body_hex: body.toString('hex'),
  content_type: 'text/csv',
  baseline: { upstream: 'flask', status: 200, latency_ms: 3, body_hex: Buffer.from('{"predictions":[1]}').toString('hex') },
  shadow: { upstream: 'fastapi', status: 200, latency_ms: 4, body_hex: Buffer.from(canaryBody).toString('hex') },
  kind: 'json',
  differences: Array.from({ length: 12 }, (_, i) => ({ field: `$.predictions[${i}]`, baseline: 1, shadow: 2 })) as never,
});

t.test('mismatchSample: the request and both answers, bodies as text (or hex), cut at 2 KB; ten differences', async (t) => {
  const s = mismatchSample(line(Buffer.from('a,b\n1,2\n')));
  t.same(s.request, { method: 'POST', path: '/predict/', contentType: 'text/csv', body: { text: 'a,b\n1,2\n', bytes: 8, truncated: false } });
  t.same(s.baseline, { upstream: 'flask', status: 200, body: { text: '{"predictions":[1]}', bytes: 19, truncated: false } });
  t.same(s.canary, { upstream: 'fastapi', status: 200, body: { text: '{"predictions":[2]}', bytes: 19, truncated: false } });
  t.equal(s.at, '2023-11-14T22:13:20.500Z');
  t.equal(s.differences.length, 10);
  const big = mismatchSample(line(Buffer.alloc(SAMPLE_BODY + 10, 0x61)));
  t.same(big.request.body, { text: 'a'.repeat(SAMPLE_BODY), bytes: SAMPLE_BODY + 10, truncated: true });
  const binary = mismatchSample(line(Buffer.from([0xff, 0x00, 0x10])));
  t.same(binary.request.body, { hex: 'ff0010', bytes: 3, truncated: false });
});

t.test('ShadowPhaseSwitch: on at the share, put back as it was; a refusal logged, not thrown', async (t) => {
  const changes: unknown[] = [];
  const shadowState = {
    enabled: false,
    sampleRate: 0,
    change(patch: { enabled?: boolean; sampleRate?: number }) {
      changes.push(patch);
      Object.assign(this, patch);
    },
  };
  const sw = new ShadowPhaseSwitch(shadowState, createLogger('silent'));
  sw.set(undefined);
  t.same(changes, [], 'nothing to put back');
  sw.set(0.1);
  sw.set(0.1);
  t.same(changes, [{ enabled: true, sampleRate: 0.1 }], 'switched once');
  sw.set(undefined);
  t.same(changes.at(-1), { enabled: false, sampleRate: 0 }, 'back off');
  shadowState.enabled = true;
  shadowState.sampleRate = 0.01;
  sw.set(0.2);
  sw.set(undefined);
  t.same(changes.slice(-2), [{ enabled: true, sampleRate: 0.2 }, { enabled: true, sampleRate: 0.01 }], "a person's own rate comes back");
  const refusing = new ShadowPhaseSwitch({ enabled: false, sampleRate: 0, change() { throw new Error('no shadow upstream'); } }, createLogger('silent'));
  t.doesNotThrow(() => refusing.set(0.1));
});

t.test("a decision's mismatch and replay are kept across a restart; a file with them not objects is refused", async (t) => {
  const path = join(t.testdir({}), 'state.rollout.json');
  const base = { at: '2026-01-02T03:04:05.000Z', from: 10, to: 0, phase: 'rolled_back' as const, step: 1, who: 'rollout', reason: null };
  const mismatch = mismatchSample(line(Buffer.from('a\n1\n')));
  const replay = replayStandIn(PASSING);
  const saved = {
    format: 1 as const,
    state: { ...INITIAL, phase: 'rolled_back' as const, step: 1 },
    decisions: [{ ...base, action: 'start' as const, text: 'started', replay }, { ...base, action: 'rollback' as const, text: 'prediction mismatch', mismatch }],
  };
  writeFileSync(path, formatSavedRollout(saved));
  t.same(readSavedRollout(path, plan), JSON.parse(JSON.stringify(saved)));
  writeFileSync(path, formatSavedRollout({ ...saved, decisions: [{ ...saved.decisions[1]!, mismatch: 'a diff' as never }] }));
  t.throws(() => readSavedRollout(path, plan), { message: /decisions\[0\]\.mismatch/ });
  writeFileSync(path, formatSavedRollout({ ...saved, decisions: [{ ...saved.decisions[0]!, replay: [] as never }] }));
  t.throws(() => readSavedRollout(path, plan), { message: /decisions\[0\]\.replay/ });
});

t.test("LocalEvidence: the shadow's pairs and mismatches in the window, while it judges; drops and errors are no pairs", async (t) => {
  let now = 1_000_000;
  let judging = false;
  const results = new Subscribers<ShadowFinished>('shadow', quietLists);
  const shadowState = { enabled: false };
  const evidence = new LocalEvidence({
    plan, // interval 1m, window 5m
    outcomes: new Subscribers('outcomes', quietLists),
    poller: Object.assign(new Subscribers<PollSample>('polls', quietLists), { downMs: () => 0 }),
    now: () => now,
    shadow: { subscribe: (name, fn) => results.subscribe(name, fn), get enabled() { return shadowState.enabled; } },
  });
  evidence.start(() => judging);
  const pair = { baselineStatus: 200, shadowStatus: 200, baselineSeconds: 0.002, shadowSeconds: 0.003 };
  results.publish({ result: 'match', line: undefined, pair });
  t.equal((await evidence.gather(now)).shadow, undefined, 'idle: nothing collected; the shadow off and no pairs: no shadow evidence');
  shadowState.enabled = true;
  t.match((await evidence.gather(now)).shadow, { compared: 0, mismatches: 0 }, 'on: the mismatch check has its zero');
  judging = true;
  results.publish({ result: 'match', line: undefined, pair });
  results.publish({ result: 'dropped', line: undefined, pair: undefined });
  results.publish({ result: 'error', line: undefined, pair: undefined });
  results.publish({ result: 'mismatch', line: line(Buffer.from('a\n1\n')), pair: { ...pair, shadowStatus: 500 } });
  shadowState.enabled = false;
  const e = (await evidence.gather(now)).shadow!;
  t.match(e, { compared: 2, mismatches: 1, baseline: { requests: 2, errors: 0, latencies: [0.002, 0.002] }, canary: { requests: 2, errors: 1, latencies: [0.003, 0.003] }, sample: { canary: { status: 200 } } }, 'off, with pairs in the window: still evidence');
  now += 5 * MIN + 1;
  t.match((await evidence.gather(now)).shadow, { compared: 2, mismatches: 1, sample: undefined }, 'its bucket still in the window, the mismatch itself older: counted, not shown');
  now += MIN;
  t.equal((await evidence.gather(now)).shadow, undefined, 'a window later: gone');
  shadowState.enabled = true;
  results.publish({ result: 'mismatch', line: line(Buffer.from('a\n1\n')), pair });
  evidence.reset('latency');
  t.match((await evidence.gather(now)).shadow, { compared: 1, mismatches: 1, baseline: { latencies: [] }, sample: { request: { path: '/predict/' } } }, 'a settled change drops the latencies only');
  evidence.reset();
  t.match((await evidence.gather(now)).shadow, { compared: 0, mismatches: 0, sample: undefined }, 'a new step: nothing');
  evidence.stop();
});

t.test("the fleet's shadow evidence: drum_shadow_* from Prometheus; none compared, none", async (t) => {
  const names = { baseline: 'flask', canary: 'fastapi' };
  t.same(shadowQueries(names, 300, 30), {
    'shadow:compared': 'sum(increase(drum_shadow_requests_total{result=~"match|mismatch"}[300s]))',
    'shadow:mismatches': 'sum(increase(drum_shadow_requests_total{result="mismatch"}[300s]))',
    'shadow_latency:flask': 'sum by (le) (increase(drum_shadow_duration_seconds_bucket{server_type="flask"}[30s]))',
    'shadow_latency:fastapi': 'sum by (le) (increase(drum_shadow_duration_seconds_bucket{server_type="fastapi"}[30s]))',
  });
  t.equal(shadowFromAnswers(names, {}), undefined, 'no series: the shadow is off');
  t.equal(shadowFromAnswers(names, { 'shadow:compared': [{ metric: {}, value: 0 }] }), undefined, 'none compared');
  t.same(shadowFromAnswers(names, { 'shadow:compared': [{ metric: {}, value: 40.5 }] }), {
    compared: 40.5,
    mismatches: 0,
    baseline: { requests: 40.5, errors: 0, latencies: { histogram: [] } },
    canary: { requests: 40.5, errors: 0, latencies: { histogram: [] } },
  }, 'no mismatch series: none; no buckets: an empty histogram');
  const answers = {
    'shadow:compared': [{ metric: {}, value: 100 }],
    'shadow:mismatches': [{ metric: {}, value: 2 }],
    'shadow_latency:fastapi': [{ metric: { le: '+Inf' }, value: 100 }, { metric: { le: '0.005' }, value: 90 }],
  };
  t.match(shadowFromAnswers(names, answers), { mismatches: 2, canary: { latencies: { histogram: [{ le: 0.005, count: 90 }, { le: Infinity, count: 100 }] } } });
});
