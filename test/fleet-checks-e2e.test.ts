/**
 * The fleet controller's own PromQL checks end to end: a proxy replica, Debian's Prometheus
 * scraping it every second, real upstreams and traffic, the controller asking Prometheus for the
 * plan's `checks` beside its built-in queries.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { request } from 'undici';
import { startApp } from '../src/app.js';
import { readConfigFile } from '../src/config/config.js';
import { startController } from '../src/fleet/app.js';
import type { CheckResult } from '../src/rollout/checks.js';
import { behaving, freePort, silentLog, startUpstream, steadyTraffic } from './helpers/net.js';
import { prometheusMissing, startPrometheus } from './helpers/prometheus.js';
import { until } from './helpers/wait.js';

const TOKEN = 'fleet-checks-token-0123456789';

t.test('a PromQL check over its max holds the step; a maxIncrease check reads both sides; a webhook check answers too; all beside the built-in checks', { skip: prometheusMissing }, async (t) => {
  const flask = await startUpstream('flask', behaving(2));
  const fastapi = await startUpstream('fastapi', behaving(2));
  const smoke = await startUpstream('smoke', (_req, res) => res.end('{"pass": true, "value": 1, "why": "smoke tests pass"}'));
  const path = join(t.testdir({}), 'drum.yaml');
  const checks = [
    { name: 'smoke', webhook: smoke.url },
    // Any canary traffic at all is over this max: the step cannot pass while it takes any.
    { name: 'canary_requests', query: 'sum(increase(drum_requests_total{server_type="{canary}"}[{window}]))', max: 0 },
    // Mean latency, canary over baseline: alike here.
    {
      name: 'mean_latency',
      query: 'sum(rate(drum_request_duration_seconds_sum{server_type="{canary}"}[{window}])) / sum(rate(drum_request_duration_seconds_count{server_type="{canary}"}[{window}]))',
      maxIncrease: 5,
    },
  ];
  writeFileSync(path, JSON.stringify({ upstreams: { flask: flask.url, fastapi: fastapi.url }, rollout: { interval: '1s', window: '4s', minRequests: 20, steps: [{ weight: 20, hold: '1500ms' }, { weight: 50, hold: '1h' }], checks } }));
  const [listen, admin] = [await freePort(), await freePort()];
  const replica = await startApp({ file: { path, settings: readConfigFile(path) }, flags: { listen: `127.0.0.1:${listen}`, admin: `127.0.0.1:${admin}` } }, { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log: silentLog });
  const prom = await startPrometheus(t, [`127.0.0.1:${admin}`]);
  await prom.eventually('count(up{job="drum-splitter"} == 1)', (r) => Object.values(r)[0] === 1);
  const traffic = steadyTraffic((i) => `http://127.0.0.1:${listen}/predict/${i % 400}`, { clients: 4, pauseMs: 5 });
  const controller = await startController(
    { file: readConfigFile(path), prometheus: prom.url, proxies: [`http://127.0.0.1:${admin}`], admin: '127.0.0.1:0', token: TOKEN },
    { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log: silentLog },
  );
  t.teardown(async () => {
    await traffic.stop();
    await controller.close();
    await replica.close();
    await Promise.all([flask.close(), fastapi.close(), smoke.close()]);
  });
  const control = `http://127.0.0.1:${controller.adminAddress.port}`;
  const res = await request(`${control}/rollout/start`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
  t.equal(res.statusCode, 200);
  await res.body.dump();
  const checkNamed = (name: string): CheckResult | undefined => controller.rollout.view().lastVerdict?.checks.find((c) => c.check === name);
  await until(() => checkNamed('canary_requests')?.status === 'miss' && checkNamed('mean_latency')?.status === 'ok', 30_000);
  t.match(checkNamed('canary_requests'), { custom: 'query', limit: 0, text: /^canary_requests: [\d.]+ over max 0$/ });
  t.ok(checkNamed('canary_requests')!.value! > 0, `${checkNamed('canary_requests')!.value} canary requests in the window`);
  t.match(checkNamed('mean_latency'), { custom: 'query', limit: 5, canaryValue: Number, baselineValue: Number, text: /^mean_latency: canary [\d.e-]+ vs baseline [\d.e-]+ \([+-][\d.]+%\) within \+500.0%$/ });
  t.match(checkNamed('smoke'), { custom: 'webhook', status: 'ok', value: 1, text: 'smoke: passes (value 1, smoke tests pass)' });
  t.match(JSON.parse(smoke.seen[0]!.body.toString()), { check: 'smoke', canary: 'fastapi', baseline: 'flask', weight: 20 }, 'the controller POSTs the rollout\'s context');
  t.same(controller.rollout.view().lastVerdict!.checks.map((c) => c.check), ['error_rate', 'p99', 'memory', 'rss_growth', 'oom', 'ping', 'smoke', 'canary_requests', 'mean_latency']);
  await new Promise((r) => setTimeout(r, 3000));
  t.equal(controller.store.view().weights.fastapi, 20, 'held at 20% for twice its hold: the check fails');
  const metrics = await (await request(`${control}/metrics`)).body.text();
  t.match(metrics, /drum_canary_check\{check="canary_requests"\} [1-9]/);
  t.match(metrics, /drum_canary_check\{check="mean_latency"\} -?[\d.e-]+/);
  const report = (await (await request(`${control}/rollout/report`)).body.json()) as { steps: { weight: number; decisions: { action: string; checks?: CheckResult[] }[] }[] };
  t.match(report.steps.at(-1)!.decisions.find((d) => d.action === 'suspect')?.checks?.find((c) => c.check === 'canary_requests'), { status: 'miss' }, 'in the report\'s decisions');
});
