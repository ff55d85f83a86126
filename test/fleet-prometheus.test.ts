/**
 * The fleet's evidence from Prometheus: the queries, and the checks' verdicts on answers a real
 * Prometheus gave (test/fixtures/prometheus/answers.json, recorded by record.mjs beside it).
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { startApp } from '../src/app.js';
import { readConfigFile } from '../src/config/config.js';
import { startController } from '../src/fleet/app.js';
import { evidenceFromAnswers, fleetQueries, parseAnswer, PrometheusEvidence, type Sample } from '../src/fleet/prometheus.js';
import { judge } from '../src/rollout/checks.js';
import { DEFAULT_ROLLBACK, DEFAULT_STEPS, parsePlan } from '../src/rollout/plan.js';
import { freePort, silentLog, startUpstream } from './helpers/net.js';
import { fakePrometheus, healthy, prometheusAnswering, recorded, type Answer, type Odd } from './helpers/prometheus.js';
import { until } from './helpers/wait.js';

const plan = parsePlan({ canary: 'fastapi', interval: '1s', window: '20s', minRequests: 200 }, ['flask', 'fastapi']);
const samples = (answers: Record<string, Answer>): Record<string, Sample[]> => Object.fromEntries(Object.entries(answers).map(([k, a]) => [k, parseAnswer(a)]));

t.test("the queries: the seed's, counting over the step's window", async (t) => {
  t.same(fleetQueries({ baseline: 'flask', canary: 'fastapi' }, 300), {
    'requests:flask': 'sum(increase(drum_requests_total{server_type="flask",route=""}[300s]))',
    'errors:flask': 'sum(increase(drum_requests_total{server_type="flask",route="",status=~"5.."}[300s]))',
    'latency:flask': 'sum by (le) (increase(drum_request_duration_seconds_bucket{server_type="flask",route=""}[300s]))',
    'routed:flask': 'sum(increase(drum_requests_total{server_type="flask",route!=""}[300s]))',
    'rss:flask': 'avg(drum_memory_bytes{type="rss",server_type="flask"})',
    'requests:fastapi': 'sum(increase(drum_requests_total{server_type="fastapi",route=""}[300s]))',
    'errors:fastapi': 'sum(increase(drum_requests_total{server_type="fastapi",route="",status=~"5.."}[300s]))',
    'latency:fastapi': 'sum by (le) (increase(drum_request_duration_seconds_bucket{server_type="fastapi",route=""}[300s]))',
    'routed:fastapi': 'sum(increase(drum_requests_total{server_type="fastapi",route!=""}[300s]))',
    'rss:fastapi': 'avg(drum_memory_bytes{type="rss",server_type="fastapi"})',
    down: 'min(drum_upstream_down_seconds{server_type="fastapi"})',
  });
  t.match(fleetQueries({ baseline: 'a', canary: 'b' }, 0.2)['requests:a'], /\[1s\]/, 'at least a second');
  t.match(fleetQueries({ baseline: 'a"b', canary: 'c' }, 60)['rss:a"b'], /server_type="a\\"b"/, 'a name is quoted as a PromQL string');
});

t.test('answers: a vector, or a clear error', async (t) => {
  t.same(parseAnswer(recorded.traffic['rss:flask']), [{ metric: {}, value: 104857600 }]);
  t.throws(() => parseAnswer(recorded.error), /Prometheus answered an error: invalid parameter "query": 1:33: parse error: unclosed left parenthesis/);
  t.throws(() => parseAnswer(recorded.matrix), /Prometheus answered a matrix, not a vector/);
  t.throws(() => parseAnswer(null), /Prometheus answered an error: null/);
  t.throws(() => parseAnswer({ status: 'success' }), /answered a undefined, not a vector/);
  t.same(parseAnswer({ status: 'success', data: { resultType: 'vector', result: [{ value: [1, '2'] }] } }), [{ metric: {}, value: 2 }], 'a series without labels');
});

t.test('verdicts on recorded answers', async (t) => {
  const step = DEFAULT_STEPS[0]!;
  // Traffic: flask healthy; fastapi failing 1 in 20 and slower — both replicas' counts summed.
  const traffic = evidenceFromAnswers(plan, samples(recorded.traffic), undefined);
  t.ok(Math.abs(traffic.baseline.requests - 7427.70) < 0.01 && traffic.baseline.errors === 0, 'flask: its count, no 5xx series means no errors');
  t.ok(Math.abs(traffic.canary.errors / traffic.canary.requests - 0.05) < 0.001, 'fastapi: ~5% errors');
  t.same(traffic.memory, { canaryRss: 130 * 2 ** 20, baselineRss: 100 * 2 ** 20, canaryGrowthPerHour: undefined, canaryOom: undefined });
  t.equal(traffic.canaryDownMs, 0);
  const verdict = judge(traffic, step, DEFAULT_ROLLBACK, { minRequests: plan.minRequests, minP99Difference: 0 });
  t.match(verdict, { action: 'rollback', text: /canary error rate 5% \(121 of 2,414\) over 1%/ });
  t.match(verdict.checks.find((c) => c.check === 'p99'), { status: 'reduce', text: /canary p99 .* vs baseline .*Mann–Whitney p=/ }, 'slower, and significantly so, from the buckets');
  t.match(verdict.checks.find((c) => c.check === 'memory'), { status: 'ok', text: /canary RSS 130 MB vs baseline 100 MB \(\+30%\)/ }, 'under the first step\'s 50%');
  t.match(verdict.checks.find((c) => c.check === 'oom'), { status: 'unavailable' });

  // Before any traffic, the counting queries have no series: inconclusive, never a pass.
  const quiet = judge(evidenceFromAnswers(plan, samples(recorded.quiet), undefined), step, DEFAULT_ROLLBACK, { minRequests: plan.minRequests, minP99Difference: 0 });
  t.match(quiet, { action: 'inconclusive', text: /0 canary requests, fewer than 200/ });
  t.match(judge(evidenceFromAnswers(plan, {}, 0.5), step, DEFAULT_ROLLBACK, { minRequests: plan.minRequests, minP99Difference: 0 }), { action: 'rollback', text: /RSS growing 50% per hour/ }, 'the growth is passed through');
  t.equal(evidenceFromAnswers(plan, { down: [{ metric: {}, value: 31 }] }, undefined).canaryDownMs, 31_000, 'down seconds as ms');
});

t.test('requests cohort rules took: counted apart by upstream (route!=""), none without series', async (t) => {
  t.same(evidenceFromAnswers(plan, samples(recorded.traffic), undefined).routed, { flask: 0, fastapi: 0 });
  t.same(evidenceFromAnswers(plan, { 'routed:fastapi': [{ metric: {}, value: 12.5 }] }, undefined).routed, { flask: 0, fastapi: 12.5 });
});

t.test('answers that are no measurement (NaN, +Inf, -Inf, negative): inconclusive and said, never a pass', async (t) => {
  const step = DEFAULT_STEPS[0]!;
  const judged = (answers: Record<string, Answer>) => judge(evidenceFromAnswers(plan, samples(answers), undefined), step, DEFAULT_ROLLBACK, { minRequests: plan.minRequests, minP99Difference: 0 });
  t.match(judged(healthy), { action: 'pass' }, 'the healthy answers pass');
  // Prometheus's spelling, as the verdict says it.
  const spelt: Record<Odd, string> = { NaN: 'NaN', '+Inf': '\\+Inf', '-Inf': '-Inf', negative: '-\\d[\\d.e+]*' };
  // Each answer made odd on its own, the others healthy: the check that reads it says so.
  const table: [key: string, says: (x: string) => string][] = [
    ['requests:fastapi', (x) => `error rate unavailable \\(not a measurement: canary requests ${x}\\)`],
    ['errors:fastapi', (x) => `error rate unavailable \\(not a measurement: canary errors ${x}\\)`],
    ['latency:fastapi', (x) => `p99 unavailable \\(not a measurement: a canary latency ${x}\\)`],
    ['requests:flask', (x) => `p99 unavailable \\(not a measurement: baseline requests ${x}\\)`],
    ['latency:flask', (x) => `p99 unavailable \\(not a measurement: a baseline latency ${x}\\)`],
    ['rss:fastapi', (x) => `memory unavailable \\(not a measurement: canary RSS ${x}\\)`],
    ['rss:flask', (x) => `memory unavailable \\(not a measurement: baseline RSS ${x}\\)`],
    // A canary whose silence is not a number is not a canary that answers.
    ['down', (x) => `/ping unavailable \\(not a measurement: canary silent for ${x} s\\)`],
  ];
  for (const odd of Object.keys(recorded.odd) as Odd[]) {
    for (const [key, says] of table) {
      t.match(judged({ ...healthy, [key]: recorded.odd[odd][key]! }), { action: 'inconclusive', text: new RegExp(says(spelt[odd])) }, `${key} answered ${odd}`);
    }
    // Every query answered so (the reproduction with NaN): nothing passes, all of it said.
    const all = judged(recorded.odd[odd]);
    t.match(all, { action: 'inconclusive', text: /^error rate unavailable .*; p99 unavailable .*; memory unavailable .*; \/ping unavailable / }, `every answer ${odd}`);
    t.same(all.checks.filter((c) => c.status === 'ok').map((c) => c.check), [], `${odd}: no check reads it as ok`);
  }
  // An odd canary count does not hide a rollback the other numbers show.
  t.match(judged({ ...recorded.traffic, down: recorded.odd.NaN.down! }), { action: 'rollback', text: /^canary error rate [\d.]+% \([\d,]+ of [\d,]+\) over 1% with 99% confidence \(exact binomial test p=[\d.e-]+\)$/ });
  t.same(parseAnswer(recorded.odd['+Inf'].down), [{ metric: {}, value: Infinity }], '+Inf is read as Infinity, not as NaN');
  t.same(parseAnswer(recorded.odd['-Inf'].down), [{ metric: {}, value: -Infinity }]);
});

t.test('PrometheusEvidence: gather asks for the step so far; an outage is inconclusive and said once', async (t) => {
  // The step began 10 s ago, in a 20 s window: its queries read those 10 s.
  const byQuery = new Map(Object.entries(fleetQueries(plan, 10)).map(([k, q]) => [q, recorded.traffic[k]!]));
  let mode: 'ok' | 'error' | 'html' = 'ok';
  const prom = await fakePrometheus((q) => {
    if (mode === 'error') return { status: 400, body: JSON.stringify(recorded.error) };
    if (mode === 'html') return { status: 502, body: '<html>bad gateway</html>' };
    return { body: JSON.stringify(byQuery.get(q) ?? { status: 'success', data: { resultType: 'vector', result: [] } }) };
  });
  t.teardown(() => prom.close());
  const lines: { msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string }) });
  const at = 1_700_000_000_000;
  let now = at - 10_000;
  const source = new PrometheusEvidence({ url: prom.url, plan, timeoutMs: 2000, log, now: () => now });
  const running = new AbortController().signal;

  source.reset();
  now = at;
  const first = await source.gather(at, running);
  t.equal(prom.queries.length, 11, 'asked when gathered, each query once');
  t.ok(prom.queries.every((q) => q.includes('[10s]') || !q.includes('[')), 'the window is the step so far');
  t.match(judge(first, DEFAULT_STEPS[0]!, DEFAULT_ROLLBACK, { minRequests: 200, minP99Difference: 0 }), { action: 'rollback' });
  // Settled 4 s in: the latencies' window starts then, the counts' stays the step's.
  now = at - 6_000;
  source.reset('latency');
  prom.queries.length = 0;
  await source.gather(at, running);
  t.ok(prom.queries.filter((q) => q.includes('_bucket')).every((q) => q.includes('[6s]')), 'latencies since the settling');
  t.ok(prom.queries.filter((q) => q.includes('drum_requests_total')).every((q) => q.includes('[10s]')), 'counts since the step began');
  prom.queries.length = 0;

  for (const [m, why] of [['error', /Prometheus answered an error: invalid parameter/], ['html', /HTTP 502, not JSON: <html>bad gateway/]] as const) {
    mode = m;
    await source.gather(at + 1000, running);
    const failed = await source.gather(at + 2000, running);
    t.match(failed, { unavailable: why });
    t.match(judge(failed, DEFAULT_STEPS[0]!, DEFAULT_ROLLBACK, { minRequests: 200, minP99Difference: 0 }), { action: 'inconclusive', checks: [] });
  }
  t.equal(lines.filter((l) => /Prometheus unreachable or failing/.test(l.msg)).length, 1, 'said once for the whole outage');
  mode = 'ok';
  t.equal((await source.gather(at + 3000, running)).unavailable, undefined);
  t.equal(lines.at(-1)!.msg, 'rollout: Prometheus answers again');
});

t.test('PrometheusEvidence: nobody listening', async (t) => {
  const port = await freePort();
  const source = new PrometheusEvidence({ url: `http://127.0.0.1:${port}`, plan, timeoutMs: 500, log: pino({ level: 'silent' }), now: Date.now });
  t.match(await source.gather(Date.now(), new AbortController().signal), { unavailable: new RegExp(`Prometheus at http://127.0.0.1:${port}: .*ECONNREFUSED`) });
});

t.test('PrometheusEvidence: a stop while the queries are out ends the gather at once, and is no outage', async (t) => {
  const held: import('node:http').ServerResponse[] = [];
  const silent = createServer((_req, res) => void held.push(res));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const res of held) res.destroy();
    silent.close();
  });
  const lines: { msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string }) });
  const source = new PrometheusEvidence({ url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, plan, timeoutMs: 60_000, log, now: Date.now });
  const stop = new AbortController();
  const gathered = source.gather(Date.now(), stop.signal);
  await until(() => held.length === 11);
  const stopped = performance.now();
  stop.abort();
  t.match(await gathered, { unavailable: 'the controller is stopping', canary: { requests: 0 } });
  t.ok(performance.now() - stopped < 1000, 'not held until the timeout');
  t.same(lines, [], 'nothing said of Prometheus');
});

t.test('through the rollout: a canary is not promoted on NaN answers, and is on numbers', async (t) => {
  const TOKEN = 'fleet-prometheus-token-0123456789';
  const [flask, fastapi] = await Promise.all([startUpstream('flask'), startUpstream('fastapi')]);
  const replica = await startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`] } }, { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log: silentLog });
  t.teardown(() => Promise.all([replica.close(), flask.close(), fastapi.close()]));
  let answers = recorded.odd.NaN;
  const prom = await prometheusAnswering(plan, () => answers);
  t.teardown(() => prom.close());
  const path = join(t.testdir({}), 'drum.yaml');
  const steps = [{ weight: 5, hold: '300ms' }, { weight: 50, hold: '1h' }];
  writeFileSync(path, JSON.stringify({ upstreams: { flask: flask.url, fastapi: fastapi.url }, rollout: { interval: '100ms', window: '1s', minRequests: 200, steps } }));
  const c = await startController({ file: readConfigFile(path), prometheus: prom.url, proxies: [`http://127.0.0.1:${replica.adminAddress.port}`], admin: '127.0.0.1:0', token: TOKEN }, { env: {}, log: silentLog });
  t.teardown(() => c.close());
  c.rollout.command('start', 'test', null);
  // Ten checks (eleven queries each), over three times the hold.
  await until(() => prom.queries.length >= 110, 10_000);
  t.match(c.rollout.view(), { phase: 'running', weight: 5, step: { index: 0, heldMs: 0 }, lastVerdict: { action: 'inconclusive', text: /^error rate unavailable \(not a measurement: canary requests NaN, canary errors NaN, baseline requests NaN\);.*\/ping unavailable/ } });
  t.equal(replica.store.view().weights.fastapi, 5, 'the replica holds 5%');
  answers = healthy;
  await until(() => c.rollout.view().weight === 50, 5000);
  await until(() => replica.store.view().weights.fastapi === 50, 5000);
  t.same(c.rollout.decisions.map((d) => d.action), ['start', 'promote'], 'promoted once the answers are numbers');
});
