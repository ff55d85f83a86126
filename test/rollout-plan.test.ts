/** The rollout plan: the seed runbooks' defaults, and the config file's `rollout:` section. */
import t from 'tap';
import { InputError } from '../src/common/input-error.js';
import { DEFAULT_ROLLBACK, DEFAULT_STEPS, describePlan, parsePlan, type RolloutStep } from '../src/rollout/plan.js';

const UPSTREAMS = ['flask', 'fastapi'];
const H = 3_600_000;
const D = 24 * H;

/** A step as a row: weight, hold, error rate, p99 increase, memory increase, approve. */
const row = (s: RolloutStep) => [s.weight, s.holdMs, s.maxErrorRate, s.maxP99Increase, s.maxMemoryIncrease, s.approve];

/** What parsePlan throws for `raw`, as [field, message]. */
function failure(raw: unknown, upstreams: readonly string[] = UPSTREAMS): [string | undefined, string] {
  try {
    parsePlan(raw, upstreams);
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    return [err.field, err.message];
  }
  throw new Error(`accepted: ${JSON.stringify(raw)}`);
}

t.test('the default steps: the seed phases 2 to 5, with its criteria and our hold times', async (t) => {
  t.strictSame(DEFAULT_STEPS.map(row), [
    // Phase 2 "2-3 weeks": 5 days a step; "Success Criteria for Each Step" per column.
    [1, 5 * D, 0.001, 0.3, 0.5, false],
    [5, 5 * D, 0.001, 0.25, 0.4, false],
    [10, 5 * D, 0.001, 0.2, 0.3, true],
    // Phase 3's schedule, with the 10% criteria from here on.
    [25, 48 * H, 0.001, 0.2, 0.3, false],
    [35, 24 * H, 0.001, 0.2, 0.3, false],
    [50, 72 * H, 0.001, 0.2, 0.3, true],
    // Phase 4, then Phase 5's week of observation.
    [75, 48 * H, 0.001, 0.2, 0.3, false],
    [90, 5 * D, 0.001, 0.2, 0.3, true],
    [100, 7 * D, 0.001, 0.2, 0.3, false],
  ]);
  t.equal(DEFAULT_STEPS.reduce((ms, s) => ms + s.holdMs, 0), 35 * D, 'five weeks of holds, besides waiting for approvals');
  t.ok(Object.isFrozen(DEFAULT_STEPS) && DEFAULT_STEPS.every(Object.isFrozen), 'shared defaults cannot be changed by a user of one plan');
});

t.test('the default rollback thresholds: the seed rollback triggers', async (t) => {
  t.strictSame(DEFAULT_ROLLBACK, {
    maxErrorRate: 0.01,
    maxP99Increase: 0.5,
    maxMemoryIncrease: 0.5,
    pingTimeoutMs: 30_000,
    maxRssGrowthPerHour: 0.1,
    reductionWaitMs: 15 * 60_000,
  });
  t.ok(Object.isFrozen(DEFAULT_ROLLBACK));
});

t.test('no rollout section, an empty one or YAML nulls: every default', async (t) => {
  const want = {
    canary: 'fastapi',
    baseline: 'flask',
    intervalMs: 30_000,
    windowMs: 300_000,
    minRequests: 200,
    settle: 1,
    confirm: 2,
    minP99DifferenceMs: 5,
    steps: DEFAULT_STEPS,
    rollback: DEFAULT_ROLLBACK,
    notify: [],
    checks: [],
    summaryIntervalMs: 3_600_000,
  };
  const nulls = { canary: null, interval: null, window: null, minRequests: null, settle: null, confirm: null, minP99Difference: null, steps: null, rollback: null, notify: null, checks: null, summaryInterval: null };
  for (const raw of [undefined, null, {}, nulls]) t.strictSame(parsePlan(raw, UPSTREAMS), want, JSON.stringify(raw));
  t.equal(parsePlan(undefined, ['a', 'b', 'c']).canary, 'b', 'the canary is the first upstream after the baseline');
});

t.test('every setting given', async (t) => {
  const plan = parsePlan(
    {
      canary: 'c',
      interval: '10s',
      window: 60,
      minRequests: '50',
      settle: 2,
      confirm: '3',
      minP99Difference: '20ms',
      steps: [{ weight: '2.5%', hold: '1h', maxErrorRate: 0.002, maxP99Increase: 1.5, maxMemoryIncrease: 2, approve: true }],
      rollback: { maxErrorRate: 0.05, maxP99Increase: 0.4, maxMemoryIncrease: 0.6, pingTimeout: '5s', maxRssGrowthPerHour: 0.2, reductionWait: '1m' },
      notify: ['https://hooks.example/T1/B2', 'http://10.0.0.1:9000/alert'],
      checks: [{ name: 'acceptance', webhook: 'http://tests.example/run' }],
      summaryInterval: '30m',
    },
    ['a', 'b', 'c'],
  );
  t.strictSame(plan, {
    canary: 'c',
    baseline: 'a',
    intervalMs: 10_000,
    windowMs: 60_000,
    minRequests: 50,
    settle: 2,
    confirm: 3,
    minP99DifferenceMs: 20,
    steps: [{ weight: 2.5, holdMs: H, approve: true, maxErrorRate: 0.002, maxP99Increase: 1.5, maxMemoryIncrease: 2 }],
    rollback: { maxErrorRate: 0.05, maxP99Increase: 0.4, maxMemoryIncrease: 0.6, pingTimeoutMs: 5000, maxRssGrowthPerHour: 0.2, reductionWaitMs: 60_000 },
    notify: ['https://hooks.example/T1/B2', 'http://10.0.0.1:9000/alert'],
    checks: [{ name: 'acceptance', on: 'miss', timeoutMs: 5000, kind: 'webhook', webhook: 'http://tests.example/run' }],
    summaryIntervalMs: 1_800_000,
  });
  t.equal(parsePlan({ window: '30s' }, UPSTREAMS).windowMs, 30_000, 'a window as long as the interval is enough');
  t.equal(parsePlan({ minRequests: 1 }, UPSTREAMS).minRequests, 1);
  t.equal(parsePlan({ settle: 0 }, UPSTREAMS).settle, 0, 'no settling: the first check after a change judges');
  t.equal(parsePlan({ minP99Difference: 0 }, UPSTREAMS).minP99DifferenceMs, 0, 'no floor: significance and the relative criterion alone');
  t.equal(parsePlan({ minP99Difference: '0' }, UPSTREAMS).minP99DifferenceMs, 0);
});

t.test('weights: numbers or text, with or without %, up to two decimals, rising to at most 100', async (t) => {
  const weights = (...ws: unknown[]) => parsePlan({ steps: ws.map((weight) => ({ weight, hold: '1h' })) }, UPSTREAMS).steps.map((s) => s.weight);
  t.strictSame(weights(0.01, '5', '37.55%', 99.99, '100%'), [0.01, 5, 37.55, 99.99, 100]);
  t.strictSame(weights(' 7 '), [7]);
});

t.test('a step without criteria takes the step before it; the first, the seed 1% criteria', async (t) => {
  const plan = parsePlan(
    {
      steps: [
        { weight: 1, hold: '1h' },
        { weight: 2, hold: '1h', maxP99Increase: 0.1 },
        { weight: 3, hold: '1h', maxErrorRate: 0.0005, maxP99Increase: null },
        { weight: 4, hold: '1h', maxMemoryIncrease: 0.2, approve: false },
        { weight: 5, hold: '1h', approve: true },
        { weight: 6, hold: '1h', approve: null },
      ],
    },
    UPSTREAMS,
  );
  t.strictSame(plan.steps.map(row), [
    [1, H, 0.001, 0.3, 0.5, false],
    [2, H, 0.001, 0.1, 0.5, false],
    [3, H, 0.0005, 0.1, 0.5, false],
    [4, H, 0.0005, 0.1, 0.2, false],
    [5, H, 0.0005, 0.1, 0.2, true],
    [6, H, 0.0005, 0.1, 0.2, false],
  ]);
});

t.test('each mistake: an InputError naming the field and saying what is wrong', async (t) => {
  const s = (...steps: unknown[]) => ({ steps });
  const cases: [string, unknown, string, string][] = [
    // The section and its keys.
    ['not a mapping', 'yes', 'rollout', 'must be a mapping of KEY: VALUE'],
    ['a list', [], 'rollout', 'must be a mapping of KEY: VALUE'],
    ['unknown key', { stpes: [] }, 'rollout', 'unknown key "stpes"; known: canary, interval, window, minRequests, settle, confirm, minP99Difference, steps, rollback, notify, checks, summaryInterval'],
    ['settle negative', { settle: -1 }, 'rollout.settle', '"-1" is not a whole number'],
    ['settle fraction', { settle: 0.5 }, 'rollout.settle', '"0.5" is not a whole number'],
    ['confirm zero', { confirm: 0 }, 'rollout.confirm', '"0" is not a whole number above 0'],
    ['minP99Difference not a duration', { minP99Difference: 'fast' }, 'rollout.minP99Difference', '"fast" is not a duration such as 120s, 500ms, 15m, 48h or 7d'],
    // The canary.
    ['canary not an upstream', { canary: 'django' }, 'rollout.canary', '"django" is not an upstream; they are: flask, fastapi'],
    ['canary not a name', { canary: 1 }, 'rollout.canary', '"1" is not an upstream; they are: flask, fastapi'],
    ['canary the baseline', { canary: 'flask' }, 'rollout.canary', '"flask" is the baseline (the first upstream); the canary must be another'],
    // Timing and sample size.
    ['bad interval', { interval: 'soon' }, 'rollout.interval', '"soon" is not a duration such as 120s, 500ms, 15m, 48h or 7d'],
    ['zero interval', { interval: 0 }, 'rollout.interval', '"0" is not a duration such as 120s, 500ms, 15m, 48h or 7d'],
    ['bad window', { window: '5 minutes' }, 'rollout.window', '"5 minutes" is not a duration such as 120s, 500ms, 15m, 48h or 7d'],
    ['window under the interval', { interval: '1m', window: '45s' }, 'rollout.window', '45s is shorter than the interval 1m'],
    ['minRequests zero', { minRequests: 0 }, 'rollout.minRequests', '"0" is not a whole number above 0'],
    ['minRequests fraction', { minRequests: 2.5 }, 'rollout.minRequests', '"2.5" is not a whole number above 0'],
    ['minRequests negative text', { minRequests: '-3' }, 'rollout.minRequests', '"-3" is not a whole number above 0'],
    ['minRequests not a number', { minRequests: true }, 'rollout.minRequests', '"true" is not a whole number above 0'],
    // The steps as a whole.
    ['steps not a list', { steps: { weight: 1 } }, 'rollout.steps', 'must be a non-empty list of steps, each { weight, hold, ... }'],
    ['steps empty', { steps: [] }, 'rollout.steps', 'must be a non-empty list of steps, each { weight, hold, ... }'],
    ['step not a mapping', s(5), 'rollout.steps[0]', 'must be a mapping of KEY: VALUE'],
    ['step unknown key', s({ weight: 1, hold: '1h', wait: '1h' }), 'rollout.steps[0]', 'unknown key "wait"; known: weight, hold, maxErrorRate, maxP99Increase, maxMemoryIncrease, approve'],
    // Weights.
    ['no weight', s({ hold: '1h' }), 'rollout.steps[0].weight', "needs a weight, the canary's percent at this step"],
    ['zero weight', s({ weight: 0, hold: '1h' }), 'rollout.steps[0].weight', 'must be above 0%; the rollout starts from 0% by itself'],
    ['negative weight', s({ weight: -5, hold: '1h' }), 'rollout.steps[0].weight', '"-5" is not a percentage from 0 to 100 with at most two decimals'],
    ['weight over 100', s({ weight: 100.5, hold: '1h' }), 'rollout.steps[0].weight', '100.5 is over 100%'],
    ['three decimals', s({ weight: 1, hold: '1h' }, { weight: '2.125%', hold: '1h' }), 'rollout.steps[1].weight', '"2.125%" is not a percentage from 0 to 100 with at most two decimals'],
    ['weight not a number', s({ weight: true, hold: '1h' }), 'rollout.steps[0].weight', 'must be a number of percent'],
    ['weight repeated', s({ weight: 5, hold: '1h' }, { weight: '5%', hold: '1h' }), 'rollout.steps[1].weight', "5% is not above the step before's 5%"],
    ['weight falling', s({ weight: 10, hold: '1h' }, { weight: 25, hold: '1h' }, { weight: 12.5, hold: '1h' }), 'rollout.steps[2].weight', "12.5% is not above the step before's 25%"],
    // Holds.
    ['no hold', s({ weight: 1, hold: '1h' }, { weight: 5 }), 'rollout.steps[1].hold', 'needs a hold, how long to stay at this step, e.g. 48h'],
    ['bad hold', s({ weight: 1, hold: 'a week' }), 'rollout.steps[0].hold', '"a week" is not a duration such as 120s, 500ms, 15m, 48h or 7d'],
    // A step's criteria.
    ['error rate 1', s({ weight: 1, hold: '1h', maxErrorRate: 1 }), 'rollout.steps[0].maxErrorRate', '1 is not below 1; an error rate is a fraction, e.g. 0.01 for 1%'],
    ['error rate 0', s({ weight: 1, hold: '1h', maxErrorRate: 0 }), 'rollout.steps[0].maxErrorRate', '0 is not above 0'],
    ['error rate as text', s({ weight: 1, hold: '1h', maxErrorRate: '0.1%' }), 'rollout.steps[0].maxErrorRate', '"0.1%" is not a number, e.g. 0.2 for 20%'],
    ['p99 negative', s({ weight: 1, hold: '1h', maxP99Increase: -0.2 }), 'rollout.steps[0].maxP99Increase', '-0.2 is not above 0'],
    ['p99 infinite', s({ weight: 1, hold: '1h', maxP99Increase: Infinity }), 'rollout.steps[0].maxP99Increase', '"Infinity" is not a number, e.g. 0.2 for 20%'],
    ['memory NaN', s({ weight: 1, hold: '1h', maxMemoryIncrease: NaN }), 'rollout.steps[0].maxMemoryIncrease', '"NaN" is not a number, e.g. 0.2 for 20%'],
    ['approve not a boolean', s({ weight: 1, hold: '1h', approve: 'yes' }), 'rollout.steps[0].approve', '"yes" is not true or false'],
    // Rollback thresholds.
    ['rollback not a mapping', { rollback: 0.01 }, 'rollout.rollback', 'must be a mapping of KEY: VALUE'],
    ['rollback unknown key', { rollback: { oom: 0 } }, 'rollout.rollback', 'unknown key "oom"; known: maxErrorRate, maxP99Increase, maxMemoryIncrease, pingTimeout, maxRssGrowthPerHour, reductionWait'],
    ['rollback error rate 1.5', { rollback: { maxErrorRate: 1.5 } }, 'rollout.rollback.maxErrorRate', '1.5 is not below 1; an error rate is a fraction, e.g. 0.01 for 1%'],
    ['rollback p99 0', { rollback: { maxP99Increase: 0 } }, 'rollout.rollback.maxP99Increase', '0 is not above 0'],
    ['rollback memory text', { rollback: { maxMemoryIncrease: '50%' } }, 'rollout.rollback.maxMemoryIncrease', '"50%" is not a number, e.g. 0.2 for 20%'],
    ['rollback RSS growth negative', { rollback: { maxRssGrowthPerHour: -1 } }, 'rollout.rollback.maxRssGrowthPerHour', '-1 is not above 0'],
    ['rollback ping timeout', { rollback: { pingTimeout: '30 s!' } }, 'rollout.rollback.pingTimeout', '"30 s!" is not a duration such as 120s, 500ms, 15m, 48h or 7d'],
    ['rollback reduction wait', { rollback: { reductionWait: -15 } }, 'rollout.rollback.reductionWait', '"-15" is not a duration such as 120s, 500ms, 15m, 48h or 7d'],
    // Webhooks.
    ['notify not a list', { notify: 'https://hooks.example/x' }, 'rollout.notify', 'must be a list of webhook URLs (http or https)'],
    ['notify not a URL', { notify: ['https://ok.example/', 'slack #canary'] }, 'rollout.notify[1]', '"slack #canary" is not a URL'],
    ['notify not text', { notify: [['https://hooks.example/x']] }, 'rollout.notify[0]', '"https://hooks.example/x" is not a URL'],
    ['notify not http', { notify: ['mailto:oncall@example.com'] }, 'rollout.notify[0]', '"mailto:oncall@example.com" is not an http:// or https:// URL'],
  ];
  for (const [name, raw, field, message] of cases) {
    t.strictSame(failure(raw), [field, `${field}: ${message}`], name);
  }
  t.strictSame(
    failure(undefined, ['flask']),
    ['upstreams', 'upstreams: a rollout needs at least 2 upstreams, the baseline (the first) and a canary; found 1'],
    'one upstream',
  );
});

t.test('describePlan: the steps in one line, holds in the units a user writes', async (t) => {
  t.equal(
    describePlan(parsePlan(undefined, UPSTREAMS)),
    '1% 5d → 5% 5d → 10% 5d (approve) → 25% 48h → 35% 24h → 50% 72h (approve) → 75% 48h → 90% 5d (approve) → 100% 7d',
  );
  const holds = ['4d', '3d', '90m', '2h', '15m', '120s', '30s', '1500ms', 0.25];
  const plan = parsePlan({ steps: holds.map((hold, i) => ({ weight: (i + 1) * 10, hold })) }, UPSTREAMS);
  t.equal(describePlan(plan), '10% 4d → 20% 72h → 30% 90m → 40% 2h → 50% 15m → 60% 2m → 70% 30s → 80% 1500ms → 90% 250ms');
});
