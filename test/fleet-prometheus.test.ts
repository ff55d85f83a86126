/**
 * The fleet's evidence from Prometheus: the queries, and the checks' verdicts on answers a real
 * Prometheus gave (test/fixtures/prometheus/answers.json, recorded by record.mjs beside it).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import t from 'tap';
import { evidenceFromAnswers, fleetQueries, parseAnswer, PrometheusEvidence, type Sample } from '../src/fleet/prometheus.js';
import { judge } from '../src/rollout/checks.js';
import { DEFAULT_ROLLBACK, DEFAULT_STEPS, parsePlan } from '../src/rollout/plan.js';
import { freePort } from './helpers/net.js';

type Answer = { status: string; data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] } };
const recorded = JSON.parse(readFileSync(new URL('./fixtures/prometheus/answers.json', import.meta.url), 'utf8')) as Record<'quiet' | 'traffic', Record<string, Answer>> & { error: unknown; matrix: unknown };
const plan = parsePlan({ canary: 'fastapi', interval: '1s', window: '20s', minRequests: 200 }, ['flask', 'fastapi']);
const samples = (answers: Record<string, Answer>): Record<string, Sample[]> => Object.fromEntries(Object.entries(answers).map(([k, a]) => [k, parseAnswer(a)]));

t.test("the queries: the seed's, counting over the step's window", async (t) => {
  t.same(fleetQueries({ baseline: 'flask', canary: 'fastapi' }, 300), {
    'requests:flask': 'sum(increase(drum_requests_total{server_type="flask"}[300s]))',
    'errors:flask': 'sum(increase(drum_requests_total{server_type="flask",status=~"5.."}[300s]))',
    'latency:flask': 'sum by (le) (increase(drum_request_duration_seconds_bucket{server_type="flask"}[300s]))',
    'rss:flask': 'avg(drum_memory_bytes{type="rss",server_type="flask"})',
    'requests:fastapi': 'sum(increase(drum_requests_total{server_type="fastapi"}[300s]))',
    'errors:fastapi': 'sum(increase(drum_requests_total{server_type="fastapi",status=~"5.."}[300s]))',
    'latency:fastapi': 'sum by (le) (increase(drum_request_duration_seconds_bucket{server_type="fastapi"}[300s]))',
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
  t.ok(Math.abs(traffic.baseline.requests - 5695.86) < 0.01 && traffic.baseline.errors === 0, 'flask: its count, no 5xx series means no errors');
  t.ok(Math.abs(traffic.canary.errors / traffic.canary.requests - 0.0497) < 0.001, 'fastapi: ~5% errors');
  t.same(traffic.memory, { canaryRss: 130 * 2 ** 20, baselineRss: 100 * 2 ** 20, canaryGrowthPerHour: undefined, canaryOom: undefined });
  t.equal(traffic.canaryDownMs, 0);
  const verdict = judge(traffic, step, DEFAULT_ROLLBACK, plan.minRequests);
  t.match(verdict, { action: 'rollback', text: /canary error rate 4\.97% \(95 of 1,918\) over 1%/ });
  t.match(verdict.checks.find((c) => c.check === 'p99'), { status: 'reduce', text: /canary p99 .* vs baseline .*Mann–Whitney p=/ }, 'slower, and significantly so, from the buckets');
  t.match(verdict.checks.find((c) => c.check === 'memory'), { status: 'ok', text: /canary RSS 130 MB vs baseline 100 MB \(\+30%\)/ }, 'under the first step\'s 50%');
  t.match(verdict.checks.find((c) => c.check === 'oom'), { status: 'unavailable' });

  // Before any traffic, the counting queries have no series: inconclusive, never a pass.
  const quiet = judge(evidenceFromAnswers(plan, samples(recorded.quiet), undefined), step, DEFAULT_ROLLBACK, plan.minRequests);
  t.match(quiet, { action: 'inconclusive', text: /0 canary requests, fewer than 200/ });
  t.match(judge(evidenceFromAnswers(plan, {}, 0.5), step, DEFAULT_ROLLBACK, plan.minRequests), { action: 'rollback', text: /RSS growing 50% per hour/ }, 'the growth is passed through');
  t.equal(evidenceFromAnswers(plan, { down: [{ metric: {}, value: 31 }] }, undefined).canaryDownMs, 31_000, 'down seconds as ms');
});

/** A stand-in Prometheus on a real socket: answers each query from the recording, or as told. */
async function fakePrometheus(answer: (query: string, time: string) => { status?: number; body: string }): Promise<Server & { url: string; queries: string[] }> {
  const queries: string[] = [];
  const server = createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    queries.push(u.searchParams.get('query')!);
    const a = answer(u.searchParams.get('query')!, u.searchParams.get('time')!);
    res.statusCode = a.status ?? 200;
    res.end(a.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return Object.assign(server, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, queries });
}

t.test('PrometheusEvidence: refresh, then the check reads it; an outage is inconclusive and said once', async (t) => {
  const byQuery = new Map(Object.entries(fleetQueries(plan, 20)).map(([k, q]) => [q, recorded.traffic[k]!]));
  let mode: 'ok' | 'error' | 'html' = 'ok';
  const prom = await fakePrometheus((q) => {
    if (mode === 'error') return { status: 400, body: JSON.stringify(recorded.error) };
    if (mode === 'html') return { status: 502, body: '<html>bad gateway</html>' };
    return { body: JSON.stringify(byQuery.get(q) ?? { status: 'success', data: { resultType: 'vector', result: [] } }) };
  });
  t.teardown(() => prom.close());
  const lines: { msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string }) });
  const source = new PrometheusEvidence({ url: prom.url, plan, timeoutMs: 2000, log });
  source.start();
  t.match(source.gather(), { unavailable: 'no answer from Prometheus for this step yet' });

  const at = 1_700_000_000_000;
  source.reset(at - 20_000);
  await source.refresh(at);
  t.ok(prom.queries.every((q) => q.includes('[20s]') || !q.includes('[')), 'the window is the step so far');
  t.match(judge(source.gather(), DEFAULT_STEPS[0]!, DEFAULT_ROLLBACK, 200), { action: 'rollback' });

  for (const [m, why] of [['error', /Prometheus answered an error: invalid parameter/], ['html', /HTTP 502, not JSON: <html>bad gateway/]] as const) {
    mode = m;
    await source.refresh(at + 1000);
    await source.refresh(at + 2000);
    t.match(source.gather(), { unavailable: why });
    t.match(judge(source.gather(), DEFAULT_STEPS[0]!, DEFAULT_ROLLBACK, 200), { action: 'inconclusive', checks: [] });
  }
  t.equal(lines.filter((l) => /Prometheus unreachable or failing/.test(l.msg)).length, 1, 'said once for the whole outage');
  mode = 'ok';
  await source.refresh(at + 3000);
  t.equal(lines.at(-1)!.msg, 'rollout: Prometheus answers again');
  t.equal(source.gather().unavailable, undefined);

  // A step change while a refresh is on its way: that refresh read the old step and is dropped.
  const pending = source.refresh(at + 4000);
  source.reset(at + 4000);
  await pending;
  t.match(source.gather(), { unavailable: 'no answer from Prometheus for this step yet' });
  source.stop();
});

t.test('PrometheusEvidence: nobody listening', async (t) => {
  const port = await freePort();
  const source = new PrometheusEvidence({ url: `http://127.0.0.1:${port}`, plan, timeoutMs: 500, log: pino({ level: 'silent' }) });
  await source.refresh(Date.now());
  t.match(source.gather(), { unavailable: new RegExp(`Prometheus at http://127.0.0.1:${port}: .*ECONNREFUSED`) });
});
