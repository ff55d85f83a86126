/** Checks of one's own: the plan's `checks`, each answer's judgement (table tests), and gathering them over real sockets. */
import t from 'tap';
import { gatherCustomChecks } from '../src/rollout/custom-calls.js';
import { cannotRun, fillQuery, judgeQuery, judgeWebhook, oneValue, parseCustomChecks, type CustomCheck, type QueryValue, type WebhookAnswer } from '../src/rollout/custom.js';
import { judge } from '../src/rollout/checks.js';
import { parsePlan } from '../src/rollout/plan.js';
import { startUpstream } from './helpers/net.js';

const UPSTREAMS = ['flask', 'fastapi'];

t.test('the plan: checks and summaryInterval, with their defaults', async (t) => {
  const plan = parsePlan({}, UPSTREAMS);
  t.same([plan.checks, plan.summaryIntervalMs], [[], 3_600_000], 'none; hourly (the seed\'s Communication Plan)');
  const custom = parsePlan(
    {
      summaryInterval: '15m',
      checks: [
        { name: 'acceptance', webhook: 'http://tests.example/acceptance' },
        { name: 'gc_pauses', query: 'sum(rate(gc{server_type="{canary}"}[{window}]))', max: 0.5, on: 'rollback', timeout: '2s' },
        { name: 'cpu', query: 'sum(rate(cpu{server_type="{canary}"}[{window}]))', maxIncrease: 0.2 },
      ],
    },
    UPSTREAMS,
  );
  t.equal(custom.summaryIntervalMs, 900_000);
  t.same(custom.checks, [
    { name: 'acceptance', on: 'miss', timeoutMs: 5000, kind: 'webhook', webhook: 'http://tests.example/acceptance' },
    { name: 'gc_pauses', on: 'rollback', timeoutMs: 2000, kind: 'query', query: 'sum(rate(gc{server_type="{canary}"}[{window}]))', max: 0.5 },
    { name: 'cpu', on: 'miss', timeoutMs: 5000, kind: 'query', query: 'sum(rate(cpu{server_type="{canary}"}[{window}]))', maxIncrease: 0.2 },
  ]);
  t.throws(() => parsePlan({ summaryInterval: 'hourly' }, UPSTREAMS), { message: /rollout.summaryInterval: "hourly" is not a duration/ });
});

t.test('a bad check is refused, naming its field', async (t) => {
  const cases: [unknown, RegExp][] = [
    [{ name: 'x' }, /rollout.checks: must be a list/],
    [['x'], /rollout.checks\[0\]: must be a mapping/],
    [[{ name: 'a', webhook: 'http://x/', url: 'y' }], /rollout.checks\[0\]: unknown key "url"/],
    [[{ webhook: 'http://x/' }], /rollout.checks\[0\].name: "undefined" is not a name/],
    [[{ name: 'Bad-Name', webhook: 'http://x/' }], /rollout.checks\[0\].name: "Bad-Name" is not a name/],
    [[{ name: 'p99', webhook: 'http://x/' }], /rollout.checks\[0\].name: "p99" is a built-in check's name/],
    [[{ name: 'mismatch', webhook: 'http://x/' }], /rollout.checks\[0\].name: "mismatch" is a built-in check's name/],
    [[{ name: 'a', webhook: 'http://x/' }, { name: 'a', webhook: 'http://y/' }], /rollout.checks\[1\].name: "a" is named twice/],
    [[{ name: 'a', webhook: 'http://x/', on: 'reduce' }], /rollout.checks\[0\].on: "reduce" is not miss or rollback/],
    [[{ name: 'a', webhook: 'http://x/', timeout: 'soon' }], /rollout.checks\[0\].timeout: "soon" is not a duration/],
    [[{ name: 'a' }], /rollout.checks\[0\]: needs one of webhook \(a URL\) or query \(PromQL\)/],
    [[{ name: 'a', webhook: 'http://x/', query: 'up' }], /needs one of webhook/],
    [[{ name: 'a', webhook: 'http://x/', max: 1 }], /max and maxIncrease are for query checks/],
    [[{ name: 'a', webhook: 'not a url' }], /rollout.checks\[0\].webhook: "not a url" is not a URL/],
    [[{ name: 'a', webhook: 'ftp://x/' }], /rollout.checks\[0\].webhook: "ftp:\/\/x\/" is not an http:\/\/ or https:\/\/ URL/],
    [[{ name: 'a', query: ' ', max: 1 }], /rollout.checks\[0\].query: must be a PromQL expression/],
    [[{ name: 'a', query: 7, max: 1 }], /rollout.checks\[0\].query: must be a PromQL expression/],
    [[{ name: 'a', query: 'up' }], /rollout.checks\[0\]: needs one of max .* or maxIncrease/],
    [[{ name: 'a', query: 'up', max: 1, maxIncrease: 1 }], /needs one of max/],
    [[{ name: 'a', query: 'up', max: '1' }], /rollout.checks\[0\].max: "1" is not a number/],
    [[{ name: 'a', query: 'up', maxIncrease: Infinity }], /rollout.checks\[0\].maxIncrease: "Infinity" is not a number/],
  ];
  for (const [checks, message] of cases) t.throws(() => parseCustomChecks(checks), { message }, JSON.stringify(checks));
  t.same(parseCustomChecks(null), [], 'YAML null: none');
});

t.test('a plan with a query check runs only where there is Prometheus; webhook checks run anywhere', async (t) => {
  const checks = parseCustomChecks([{ name: 'hook', webhook: 'http://x/' }, { name: 'cpu', query: 'up', max: 1 }]);
  const query = async (): Promise<{ value: number }[]> => [];
  t.equal(cannotRun(checks, undefined), 'the plan\'s check "cpu" is a PromQL query, and this process has no Prometheus: drum-splitter controller runs this plan');
  t.equal(cannotRun(checks, query), undefined);
  t.equal(cannotRun(checks.slice(0, 1), undefined), undefined);
});

const [hook, rollbackHook] = parseCustomChecks([{ name: 'acceptance', webhook: 'http://x/' }, { name: 'smoke', webhook: 'http://y/', on: 'rollback' }]) as [CustomCheck, CustomCheck];

t.test('a webhook\'s answer judged: pass, fail (a miss or a rollback), or inconclusive with why', async (t) => {
  const cases: [CustomCheck, WebhookAnswer, { status: string; value: number | null; text: RegExp }][] = [
    [hook, { status: 200, body: '{"pass": true, "value": 0.97, "why": "97% of acceptance tests pass"}' }, { status: 'ok', value: 0.97, text: /^acceptance: passes \(value 0.97, 97% of acceptance tests pass\)$/ }],
    [hook, { status: 200, body: '{"pass": true}' }, { status: 'ok', value: null, text: /^acceptance: passes$/ }],
    [hook, { status: 200, body: '{"pass": false, "value": 12, "why": ""}' }, { status: 'miss', value: 12, text: /^acceptance: fails \(value 12\)$/ }],
    [rollbackHook, { status: 200, body: '{"pass": false, "why": "checkout broken"}' }, { status: 'rollback', value: null, text: /^smoke: fails \(checkout broken\)$/ }],
    [hook, { status: 200, body: '{"pass": "yes"}' }, { status: 'inconclusive', value: null, text: /^acceptance: answered \{"pass": "yes"\}, not \{"pass": true\|false/ }],
    [hook, { status: 200, body: '' }, { status: 'inconclusive', value: null, text: /answered nothing, not/ }],
    [hook, { status: 200, body: '[true]' }, { status: 'inconclusive', value: null, text: /answered \[true\], not/ }],
    [hook, { status: 200, body: 'x'.repeat(300) }, { status: 'inconclusive', value: null, text: /answered x{200}…, not/ }],
    [hook, { status: 503, body: 'down for maintenance' }, { status: 'inconclusive', value: null, text: /^acceptance: answered HTTP 503: down for maintenance$/ }],
    [hook, { error: 'connect ECONNREFUSED 127.0.0.1:9' }, { status: 'inconclusive', value: null, text: /^acceptance: no answer \(connect ECONNREFUSED 127.0.0.1:9\)$/ }],
  ];
  for (const [check, answer, want] of cases) t.match(judgeWebhook(check, answer), { check: check.name, custom: 'webhook', ...want }, JSON.stringify(answer));
  t.match(judgeWebhook(rollbackHook, { status: 200, body: '{"pass": false, "value": "high"}' }), { status: 'rollback', value: null, rollbackLimit: 0 }, 'a value that is no number: none');
});

const [maxCheck, increaseCheck] = parseCustomChecks([
  { name: 'queue', query: 'q{server_type="{canary}"}', max: 10 },
  { name: 'cpu', query: 'cpu{server_type="{canary}"}', maxIncrease: 0.2, on: 'rollback' },
]) as [Extract<CustomCheck, { kind: 'query' }>, Extract<CustomCheck, { kind: 'query' }>];

t.test('a query\'s answer judged: max on the canary, maxIncrease canary over baseline', async (t) => {
  const v = (value: number): QueryValue => ({ value });
  const cases: [Extract<CustomCheck, { kind: 'query' }>, QueryValue, QueryValue | undefined, { status: string; value: number | null; text: RegExp }][] = [
    [maxCheck, v(10), undefined, { status: 'ok', value: 10, text: /^queue: 10 within max 10$/ }],
    [maxCheck, v(11), undefined, { status: 'miss', value: 11, text: /^queue: 11 over max 10$/ }],
    [maxCheck, { error: 'no series' }, undefined, { status: 'inconclusive', value: null, text: /^queue: canary: no series$/ }],
    [increaseCheck, v(1.2), v(1), { status: 'ok', value: 1.2 / 1 - 1, text: /^cpu: canary 1.2 vs baseline 1 \(\+20.0%\) within \+20.0%$/ }],
    [increaseCheck, v(1.5), v(1), { status: 'rollback', value: 0.5, text: /over \+20.0%$/ }],
    [increaseCheck, v(0.5), v(1), { status: 'ok', value: -0.5, text: /\(-50.0%\)/ }],
    [increaseCheck, v(1), { error: 'timeout' }, { status: 'inconclusive', value: null, text: /^cpu: baseline: timeout$/ }],
    [increaseCheck, v(1), undefined, { status: 'inconclusive', value: null, text: /^cpu: baseline: not asked$/ }],
    [increaseCheck, v(1), v(0), { status: 'inconclusive', value: null, text: /^cpu: baseline 0: no increase over it can be measured$/ }],
  ];
  for (const [check, canary, baseline, want] of cases) t.match(judgeQuery(check, canary, baseline), { check: check.name, custom: 'query', ...want }, `${check.name} ${JSON.stringify([canary, baseline])}`);
  t.match(judgeQuery(increaseCheck, v(2), v(1)), { limit: 0.2, rollbackLimit: 0.2, canaryValue: 2, baselineValue: 1 });
  t.same(oneValue([]), { error: 'no series (nothing scraped yet, or a selector that matches nothing)' });
  t.same(oneValue([{ value: 1 }, { value: 2 }]), { error: '2 series; the query must give one (aggregate with sum(), avg() or max())' });
  t.same(oneValue([{ value: NaN }]), { error: 'the value is NaN' });
  t.same(oneValue([{ value: 3 }]), { value: 3 });
  t.equal(fillQuery('a{s="{canary}"} / b{s="{baseline}"} + c{s="{canary}"}', { canary: 'fastapi', baseline: 'flask' }), 'a{s="fastapi"} / b{s="flask"} + c{s="fastapi"}');
  t.equal(fillQuery('a{s="{canary}"} / b{s="{baseline}"}', { canary: 'fastapi', baseline: 'flask' }, true), 'a{s="flask"} / b{s="fastapi"}', 'swapped: the baseline\'s side');
});

t.test('custom results judged beside the built-in checks: the most severe decides', async (t) => {
  const e = { canary: { requests: 0, errors: 0, latencies: [] }, baseline: { requests: 0, errors: 0, latencies: [] }, memory: { canaryRss: undefined, baselineRss: undefined, canaryGrowthPerHour: undefined, canaryOom: undefined }, canaryDownMs: 0 };
  const failing = judgeWebhook(rollbackHook, { status: 200, body: '{"pass": false, "why": "broken"}' });
  const v = judge(e, { maxErrorRate: 0.01, maxP99Increase: 0.2, maxMemoryIncrease: 0.3 }, { maxErrorRate: 0.01, maxP99Increase: 0.5, maxMemoryIncrease: 0.5, pingTimeoutMs: 30_000, maxRssGrowthPerHour: 0.1, reductionWaitMs: 1, maxMismatchRate: 0 }, { minRequests: 10, minP99Difference: 0.005 }, [failing]);
  t.match(v, { action: 'rollback', text: 'smoke: fails (broken)' });
  t.equal(v.checks.at(-1), failing);
  const down = judge({ ...e, unavailable: 'Prometheus down' }, { maxErrorRate: 0.01, maxP99Increase: 0.2, maxMemoryIncrease: 0.3 }, { maxErrorRate: 0.01, maxP99Increase: 0.5, maxMemoryIncrease: 0.5, pingTimeoutMs: 30_000, maxRssGrowthPerHour: 0.1, reductionWaitMs: 1, maxMismatchRate: 0 }, { minRequests: 10, minP99Difference: 0.005 }, [failing]);
  t.match(down, { action: 'inconclusive', text: 'Prometheus down', checks: [failing] }, 'no evidence: inconclusive, the custom results still shown');
});

const CONTEXT = { canary: 'fastapi', baseline: 'flask', phase: 'running', step: 1, weight: 5, heldMs: 60_000, at: '2026-01-01T00:00:00.000Z', windowMs: 300_000 };

t.test('gathered over real sockets: the context POSTed, each answer judged, a silent one timed out', async (t) => {
  const pass = await startUpstream('pass', (_req, res) => res.end('{"pass": true, "value": 1}'));
  const slow = await startUpstream('slow', () => {});
  t.teardown(() => Promise.all([pass.close(), slow.close()]));
  const checks = parseCustomChecks([
    { name: 'ok', webhook: pass.url },
    { name: 'silent', webhook: slow.url, timeout: '200ms' },
    { name: 'gone', webhook: 'http://127.0.0.1:9/' },
    { name: 'queue', query: 'q{s="{canary}"}[{window}]', max: 5 },
    { name: 'cpu', query: 'cpu{s="{canary}"}', maxIncrease: 0.5 },
    { name: 'broken', query: 'broken', max: 1 },
  ]);
  const asked: string[] = [];
  const query = async (q: string): Promise<{ value: number }[]> => {
    asked.push(q);
    if (q === 'broken') throw new Error('Prometheus answered an error: parse error');
    return [{ value: q.includes('fastapi') ? 4 : 2 }];
  };
  const results = await gatherCustomChecks(checks, CONTEXT, 0, new AbortController().signal, { query });
  t.same(results.map((r) => [r.check, r.status]), [['ok', 'ok'], ['silent', 'inconclusive'], ['gone', 'inconclusive'], ['queue', 'ok'], ['cpu', 'miss'], ['broken', 'inconclusive']]);
  t.match(results[1]!.text, /^silent: no answer \(no answer within 200 ms\)$/);
  t.match(results[2]!.text, /^gone: no answer \(.*ECONNREFUSED/);
  t.match(results[5]!.text, /^broken: canary: Prometheus answered an error: parse error$/);
  t.same(asked.sort(), ['broken', 'cpu{s="fastapi"}', 'cpu{s="flask"}', 'q{s="fastapi"}[{window}]'], '{window} left to the evidence source');
  t.same(JSON.parse(pass.seen[0]!.body.toString()), { check: 'ok', ...CONTEXT }, 'the rollout\'s context');
  t.equal(pass.seen[0]!.headers['content-type'], 'application/json');
  const without = await gatherCustomChecks(checks.slice(3, 4), CONTEXT, 0, new AbortController().signal, {});
  t.match(without, [{ status: 'inconclusive', text: 'queue: query checks need Prometheus (drum-splitter controller)' }]);
});
