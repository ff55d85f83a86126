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
    maxMismatchRate: 0,
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
    hooks: [],
    dryRun: false,
    verify: { requests: [], timeoutMs: 10_000 },
    checks: [],
    summaryIntervalMs: 3_600_000,
  };
  const nulls = { canary: null, interval: null, window: null, minRequests: null, settle: null, confirm: null, minP99Difference: null, steps: null, rollback: null, notify: null, hooks: null, dryRun: null, verify: null, checks: null, summaryInterval: null };
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
      rollback: { maxErrorRate: 0.05, maxP99Increase: 0.4, maxMemoryIncrease: 0.6, pingTimeout: '5s', maxRssGrowthPerHour: 0.2, reductionWait: '1m', maxMismatchRate: 0.001 },
      notify: [
        'https://hooks.example/T1/B2',
        'http://10.0.0.1:9000/alert',
        { url: 'https://hooks.slack.example/T1/B2/x', format: 'slack' },
        { url: 'https://teams.example/webhook', format: 'teams' },
        { url: 'http://10.0.0.1:9000/json' },
        { format: 'pagerduty', routingKey: 'R0123456789abcdef0123456789abcde' },
        { url: 'http://127.0.0.1:9/enqueue', format: 'pagerduty', routingKey: 'R0123456789abcdef0123456789abcdf' },
      ],
      hooks: [
        { name: 'load-test', on: 'pre-step', url: 'http://tests.example/load', timeout: '2m' },
        { name: 'acceptance', on: 'confirm-step', url: 'https://ci.example/accept' },
        { name: 'done', on: 'post-rollout', url: 'http://10.0.0.2:8080/done' },
        { name: 'page', on: 'rollback', url: 'http://10.0.0.2:8080/page', timeout: 1 },
      ],
      dryRun: true,
      verify: { requests: ['single.csv', 'recent.jsonl'], timeout: '3s' },
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
    rollback: { maxMismatchRate: 0.001, maxErrorRate: 0.05, maxP99Increase: 0.4, maxMemoryIncrease: 0.6, pingTimeoutMs: 5000, maxRssGrowthPerHour: 0.2, reductionWaitMs: 60_000 },
    notify: [
      { url: 'https://hooks.example/T1/B2', format: 'json' },
      { url: 'http://10.0.0.1:9000/alert', format: 'json' },
      { url: 'https://hooks.slack.example/T1/B2/x', format: 'slack' },
      { url: 'https://teams.example/webhook', format: 'teams' },
      { url: 'http://10.0.0.1:9000/json', format: 'json' },
      { url: 'https://events.pagerduty.com/v2/enqueue', format: 'pagerduty', routingKey: 'R0123456789abcdef0123456789abcde' },
      { url: 'http://127.0.0.1:9/enqueue', format: 'pagerduty', routingKey: 'R0123456789abcdef0123456789abcdf' },
    ],
    hooks: [
      { name: 'load-test', on: 'pre-step', url: 'http://tests.example/load', timeoutMs: 120_000 },
      { name: 'acceptance', on: 'confirm-step', url: 'https://ci.example/accept', timeoutMs: 10_000 },
      { name: 'done', on: 'post-rollout', url: 'http://10.0.0.2:8080/done', timeoutMs: 10_000 },
      { name: 'page', on: 'rollback', url: 'http://10.0.0.2:8080/page', timeoutMs: 1000 },
    ],
    dryRun: true,
    verify: { requests: ['single.csv', 'recent.jsonl'], timeoutMs: 3000 },
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
    ['unknown key', { stpes: [] }, 'rollout', 'unknown key "stpes"; known: canary, interval, window, minRequests, settle, confirm, minP99Difference, steps, rollback, notify, maxMismatchRate, hooks, dryRun, verify, checks, summaryInterval'],
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
    ['step unknown key', s({ weight: 1, hold: '1h', wait: '1h' }), 'rollout.steps[0]', 'unknown key "wait"; known: weight, hold, maxErrorRate, maxP99Increase, maxMemoryIncrease, approve, shadow'],
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
    ['rollback unknown key', { rollback: { oom: 0 } }, 'rollout.rollback', 'unknown key "oom"; known: maxErrorRate, maxP99Increase, maxMemoryIncrease, pingTimeout, maxRssGrowthPerHour, reductionWait, maxMismatchRate'],
    ['rollback error rate 1.5', { rollback: { maxErrorRate: 1.5 } }, 'rollout.rollback.maxErrorRate', '1.5 is not below 1; an error rate is a fraction, e.g. 0.01 for 1%'],
    ['rollback p99 0', { rollback: { maxP99Increase: 0 } }, 'rollout.rollback.maxP99Increase', '0 is not above 0'],
    ['rollback memory text', { rollback: { maxMemoryIncrease: '50%' } }, 'rollout.rollback.maxMemoryIncrease', '"50%" is not a number, e.g. 0.2 for 20%'],
    ['rollback RSS growth negative', { rollback: { maxRssGrowthPerHour: -1 } }, 'rollout.rollback.maxRssGrowthPerHour', '-1 is not above 0'],
    ['rollback ping timeout', { rollback: { pingTimeout: '30 s!' } }, 'rollout.rollback.pingTimeout', '"30 s!" is not a duration such as 120s, 500ms, 15m, 48h or 7d'],
    ['rollback reduction wait', { rollback: { reductionWait: -15 } }, 'rollout.rollback.reductionWait', '"-15" is not a duration such as 120s, 500ms, 15m, 48h or 7d'],
    // Webhooks.
    ['notify not a list', { notify: 'https://hooks.example/x' }, 'rollout.notify', 'must be a list of webhooks: a URL (the generic JSON), or { url, format: json|slack|teams|pagerduty, routingKey }'],
    ['notify not a URL', { notify: ['https://ok.example/', 'slack #canary'] }, 'rollout.notify[1]', '"slack #canary" is not a URL'],
    ['notify a list in a list', { notify: [['https://hooks.example/x']] }, 'rollout.notify[0]', 'must be a mapping of KEY: VALUE'],
    ['notify not http', { notify: ['mailto:oncall@example.com'] }, 'rollout.notify[0]', '"mailto:oncall@example.com" is not an http:// or https:// URL'],
    // The shadow phase.
    ['shadow not first', s({ weight: 1, hold: '1h' }, { shadow: 0.1, hold: '1h' }), 'rollout.steps[1].shadow', 'only the first step can be the shadow phase'],
    ['shadow alone', s({ shadow: 0.1, hold: '1h' }), 'rollout.steps[0].shadow', 'the shadow phase needs a canary step after it, e.g. { weight: 1, hold: 5d }'],
    ['shadow with a weight', s({ shadow: 0.1, weight: 1, hold: '1h' }, { weight: 1, hold: '1h' }), 'rollout.steps[0].weight', 'a shadow step has no weight: the canary takes 0% while the shadow copies requests to it'],
    ['shadow 0', s({ shadow: 0, hold: '1h' }, { weight: 1, hold: '1h' }), 'rollout.steps[0].shadow', '"0" is not a share of the baseline\'s requests above 0 and at most 1, e.g. 0.1 for 10%'],
    ['shadow over 1', s({ shadow: 10, hold: '1h' }, { weight: 1, hold: '1h' }), 'rollout.steps[0].shadow', '"10" is not a share of the baseline\'s requests above 0 and at most 1, e.g. 0.1 for 10%'],
    ['shadow as text', s({ shadow: '10%', hold: '1h' }, { weight: 1, hold: '1h' }), 'rollout.steps[0].shadow', '"10%" is not a share of the baseline\'s requests above 0 and at most 1, e.g. 0.1 for 10%'],
    ['shadow without a hold', s({ shadow: 0.1 }, { weight: 1, hold: '1h' }), 'rollout.steps[0].hold', 'needs a hold, how long the shadow phase lasts, e.g. 2d'],
    ['shadow approve', s({ shadow: 0.1, hold: '1h', approve: 'yes' }, { weight: 1, hold: '1h' }), 'rollout.steps[0].approve', '"yes" is not true or false'],
    ['shadow p99', s({ shadow: 0.1, hold: '1h', maxP99Increase: '20%' }, { weight: 1, hold: '1h' }), 'rollout.steps[0].maxP99Increase', '"20%" is not a number, e.g. 0.2 for 20%'],
    ['shadow error rate', s({ shadow: 0.1, hold: '1h', maxErrorRate: 2 }, { weight: 1, hold: '1h' }), 'rollout.steps[0].maxErrorRate', '2 is not below 1; an error rate is a fraction, e.g. 0.01 for 1%'],
    ['shadow memory', s({ shadow: 0.1, hold: '1h', maxMemoryIncrease: 0 }, { weight: 1, hold: '1h' }), 'rollout.steps[0].maxMemoryIncrease', '0 is not above 0'],
    // The mismatch trigger.
    ['mismatch rate negative', { rollback: { maxMismatchRate: -0.1 } }, 'rollout.rollback.maxMismatchRate', '"-0.1" is not a share from 0 (any difference) to below 1, e.g. 0.001'],
    ['mismatch rate 1', { maxMismatchRate: 1 }, 'rollout.maxMismatchRate', '"1" is not a share from 0 (any difference) to below 1, e.g. 0.001'],
    ['mismatch rate as text', { maxMismatchRate: '0.1%' }, 'rollout.maxMismatchRate', '"0.1%" is not a share from 0 (any difference) to below 1, e.g. 0.001'],
    ['mismatch rate twice', { maxMismatchRate: 0.01, rollback: { maxMismatchRate: 0.01 } }, 'rollout.maxMismatchRate', 'given twice: set it once, as rollout.rollback.maxMismatchRate or rollout.maxMismatchRate'],
    // Hooks and the dry run.
    ['hooks not a list', { hooks: { name: 'x' } }, 'rollout.hooks', 'must be a list of hooks, each { name, on: pre-step|confirm-step|post-rollout|rollback, url, timeout }'],
    ['a hook not a mapping', { hooks: ['http://x.example/'] }, 'rollout.hooks[0]', 'must be a mapping of KEY: VALUE'],
    ['a hook with an unknown key', { hooks: [{ name: 'a', on: 'pre-step', url: 'http://x.example/', timout: '1s' }] }, 'rollout.hooks[0]', 'unknown key "timout"; known: name, on, url, timeout'],
    ['a hook without a name', { hooks: [{ on: 'pre-step', url: 'http://x.example/' }] }, 'rollout.hooks[0].name', 'needs a name, a non-empty string (decisions name the hook by it)'],
    ['a hook with a blank name', { hooks: [{ name: ' ', on: 'pre-step', url: 'http://x.example/' }] }, 'rollout.hooks[0].name', 'needs a name, a non-empty string (decisions name the hook by it)'],
    ['a hook on no known event', { hooks: [{ name: 'a', on: 'pre-rollout', url: 'http://x.example/' }] }, 'rollout.hooks[0].on', '"pre-rollout" is not one of pre-step, confirm-step, post-rollout, rollback'],
    ['a hook without a URL', { hooks: [{ name: 'a', on: 'rollback' }] }, 'rollout.hooks[0].url', '"undefined" is not a URL'],
    ['a hook not http', { hooks: [{ name: 'a', on: 'rollback', url: 'ftp://x.example/' }] }, 'rollout.hooks[0].url', '"ftp://x.example/" is not an http:// or https:// URL'],
    ['a hook timeout', { hooks: [{ name: 'a', on: 'rollback', url: 'http://x.example/', timeout: 'soon' }] }, 'rollout.hooks[0].timeout', '"soon" is not a duration such as 120s, 500ms, 15m, 48h or 7d'],
    ['two hooks of one name', { hooks: [{ name: 'a', on: 'rollback', url: 'http://x.example/' }, { name: 'a', on: 'pre-step', url: 'http://y.example/' }] }, 'rollout.hooks[1].name', '"a" names another hook too; each needs its own name'],
    ['dryRun not a boolean', { dryRun: 'yes' }, 'rollout.dryRun', '"yes" is not true or false'],
    ['notify unknown key', { notify: [{ url: 'https://x.example/', channel: '#c' }] }, 'rollout.notify[0]', 'unknown key "channel"; known: url, format, routingKey'],
    ['notify unknown format', { notify: [{ url: 'https://x.example/', format: 'discord' }] }, 'rollout.notify[0].format', '"discord" is not one of json, slack, teams, pagerduty'],
    ['notify no url', { notify: [{ format: 'slack' }] }, 'rollout.notify[0].url', 'needs a url'],
    ['notify url not text', { notify: [{ url: 5, format: 'teams' }] }, 'rollout.notify[0].url', '"5" is not a URL'],
    ['notify routingKey off PagerDuty', { notify: [{ url: 'https://x.example/', format: 'slack', routingKey: 'k' }] }, 'rollout.notify[0].routingKey', 'is for format: pagerduty only'],
    ['notify PagerDuty without key', { notify: [{ format: 'pagerduty' }] }, 'rollout.notify[0].routingKey', "needs PagerDuty's integration key (Events API v2), 32 letters and digits"],
    ['notify PagerDuty short key', { notify: [{ format: 'pagerduty', routingKey: 'abc' }] }, 'rollout.notify[0].routingKey', "needs PagerDuty's integration key (Events API v2), 32 letters and digits"],
    ['notify PagerDuty bad url', { notify: [{ format: 'pagerduty', routingKey: 'R0123456789abcdef0123456789abcde', url: 'ftp://x' }] }, 'rollout.notify[0].url', '"ftp://x" is not an http:// or https:// URL'],
    // Verification after a rollback.
    ['verify not a mapping', { verify: ['a.csv'] }, 'rollout.verify', 'must be a mapping of KEY: VALUE'],
    ['verify unknown key', { verify: { request: ['a.csv'] } }, 'rollout.verify', 'unknown key "request"; known: requests, timeout'],
    ['verify requests not a list', { verify: { requests: 'a.csv' } }, 'rollout.verify.requests', 'must be a list of files: a .jsonl recording, or a body posted to /predict/ (.csv, .json)'],
    ['verify requests empty name', { verify: { requests: [''] } }, 'rollout.verify.requests', 'must be a list of files: a .jsonl recording, or a body posted to /predict/ (.csv, .json)'],
    ['verify timeout', { verify: { timeout: 'soon' } }, 'rollout.verify.timeout', '"soon" is not a duration such as 120s, 500ms, 15m, 48h or 7d'],
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

t.test('the shadow phase: a first step { shadow, hold, ... }, the canary at 0%, the seed Phase 1 p99 criterion', async (t) => {
  const plan = parsePlan({ steps: [{ shadow: 0.1, hold: '2d', approve: true }, { weight: 1, hold: '5d' }, { weight: 5, hold: '5d', maxP99Increase: 0.25 }] }, UPSTREAMS);
  t.strictSame(plan.steps[0], { weight: 0, shadow: 0.1, holdMs: 2 * 24 * H, approve: true, maxErrorRate: 0.001, maxP99Increase: 0.2, maxMemoryIncrease: 0.5 });
  t.ok(Object.isFrozen(plan.steps[0]));
  t.strictSame(plan.steps.map(row), [
    [0, 2 * 24 * H, 0.001, 0.2, 0.5, true],
    [1, 5 * 24 * H, 0.001, 0.3, 0.5, false], // the seed's 1% criteria, not the shadow phase's
    [5, 5 * 24 * H, 0.001, 0.25, 0.5, false],
  ]);
  const own = parsePlan({ steps: [{ shadow: 1, hold: '1h', maxErrorRate: 0.01, maxP99Increase: 0.1, maxMemoryIncrease: 0.3 }, { weight: 1, hold: '1h' }] }, UPSTREAMS);
  t.strictSame(own.steps[0], { weight: 0, shadow: 1, holdMs: H, approve: false, maxErrorRate: 0.01, maxP99Increase: 0.1, maxMemoryIncrease: 0.3 });
  t.equal(describePlan(plan), 'shadow 10% 48h (approve) → 1% 5d → 5% 5d');
  t.equal(describePlan(own), 'shadow 100% 1h → 1% 1h');
});

t.test('maxMismatchRate: default 0 (any difference), as rollback.maxMismatchRate or rollout.maxMismatchRate', async (t) => {
  t.equal(parsePlan(undefined, UPSTREAMS).rollback.maxMismatchRate, 0);
  t.equal(parsePlan({ rollback: { maxMismatchRate: 0.01 } }, UPSTREAMS).rollback.maxMismatchRate, 0.01);
  t.equal(parsePlan({ maxMismatchRate: 0.002 }, UPSTREAMS).rollback.maxMismatchRate, 0.002);
  t.equal(parsePlan({ maxMismatchRate: 0, rollback: { maxMismatchRate: null } }, UPSTREAMS).rollback.maxMismatchRate, 0, 'a YAML null is no value');
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
