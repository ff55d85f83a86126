/**
 * End to end on real processes: `serve` from dist/ with a rollout plan, DRUM stand-ins and webhook
 * receivers on 127.0.0.1. A canary answering 500s is rolled back; the baseline is verified item by
 * item; Slack, Teams and PagerDuty receive payloads valid against their documented schemas.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { request } from 'undici';
import { createStandin } from '../src/cli/standin.js';
import { serveCli } from './helpers/cli.js';
import { runCli, startUpstream, steadyTraffic } from './helpers/net.js';
import { until } from './helpers/wait.js';
import { schemaErrors } from './helpers/webhooks.js';

const TOKEN = 'verify-e2e-token-0123456789';
const KEY = 'R0123456789abcdef0123456789abcde';

t.test('a rollback verified item by item; every receiver gets its format, schema-valid', async (t) => {
  const flask = createStandin('flask');
  const fastapi = createStandin('fastapi', { errorRate: 1, addedLatencyMs: 0, extraMemoryMb: 0 });
  const [flaskUrl, fastapiUrl] = await Promise.all([flask.listen({ host: '127.0.0.1', port: 0 }), fastapi.listen({ host: '127.0.0.1', port: 0 })]);
  const receivers = await Promise.all(['json', 'slack', 'teams', 'pagerduty'].map((name) => startUpstream(name)));
  const [json, slack, teams, pagerduty] = receivers;
  t.teardown(() => Promise.all([flask.close(), fastapi.close(), ...receivers.map((r) => r!.close())]));

  const dir = t.testdir({ 'batch.csv': 'x1,x2\n1,2\n3,4\n' });
  const config = join(dir, 'drum.yaml');
  writeFileSync(config, JSON.stringify({
    upstreams: { flask: flaskUrl, fastapi: fastapiUrl },
    rollout: {
      interval: '200ms', window: '1s', minRequests: 20, settle: 0, confirm: 1,
      steps: [{ weight: 50, hold: '1m' }],
      notify: [
        json!.url,
        { url: `${slack!.url}/services/T0/B0/secret`, format: 'slack' },
        { url: teams!.url, format: 'teams' },
        { url: `${pagerduty!.url}/v2/enqueue`, format: 'pagerduty', routingKey: KEY },
      ],
      verify: { requests: [join(dir, 'batch.csv')], timeout: '5s' },
    },
  }));
  const served = serveCli(t, ['--config', config, '--listen', '127.0.0.1:0'], { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN });
  const { listen, admin } = await served.listening;
  const traffic = steadyTraffic((i) => `http://${listen}/predict/?i=${i}`);
  let stopping: Promise<void> | undefined;
  const stopTraffic = (): Promise<void> => (stopping ??= traffic.stop());
  t.teardown(stopTraffic);

  const started = await runCli(['rollout', 'start', '--admin-url', admin, '--reason', 'e2e'], { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN });
  t.equal(started.code, 0, started.stderr);
  const decisions = async () => ((await (await request(`http://${admin}/rollout/decisions`)).body.json()) as { decisions: Record<string, unknown>[] }).decisions;
  await until(async () => (await decisions()).some((d) => d.action === 'verified' || d.action === 'verification_failed'), 20_000, 50);
  await stopTraffic();

  const log = await decisions();
  t.same(log.map((d) => d.action), ['start', 'rollback', 'verified']);
  const verified = log[2]!;
  t.match(verified, { from: 0, to: 0, phase: 'rolled_back', text: 'the baseline flask verified after the rollback: ping, health, info, predict_single, predict_batch, stats ok' });
  t.match((verified.verification as { items: unknown[] }).items, [
    { name: 'ping', ok: true, detail: 'GET /ping → 200' },
    { name: 'health', ok: true, detail: 'GET /health/ → 200' },
    { name: 'info', ok: true, detail: /^GET \/info\/: flask stand-in/ },
    { name: 'predict_single', ok: true, detail: /^POST \/predict\/ → 200 \(1 row, .*batch\.csv \(its first row\)\)$/ },
    { name: 'predict_batch', ok: true, detail: /^POST \/predict\/ → 200 \(2 rows, .*batch\.csv\)$/ },
    { name: 'stats', ok: true, detail: /^GET \/stats\/: drum_rss \d+ MiB$/ },
  ]);
  const status = (await (await request(`http://${admin}/rollout`)).body.json()) as Record<string, unknown>;
  t.match(status, { phase: 'rolled_back', lastVerification: { action: 'verified', items: { length: 6 } } }, 'GET /rollout shows the last verification');

  // Every event reaches every receiver (PagerDuty: only the incident and its end).
  await until(() => json!.seen.length === 3 && slack!.seen.length === 3 && teams!.seen.length === 3 && pagerduty!.seen.length === 3, 10_000);
  const parsed = (r: typeof json) => r!.seen.map((s) => JSON.parse(s.body.toString('utf8')) as Record<string, unknown>);
  t.same(parsed(json).map((e) => e.action), ['start', 'rollback', 'verified'], 'the generic JSON: the events as they are');
  t.match(parsed(json)[2], { verification: { items: { length: 6 } } });
  for (const [format, receiver] of [['slack', slack], ['teams', teams], ['pagerduty', pagerduty]] as const) {
    for (const body of parsed(receiver)) t.same(schemaErrors(format, body), [], `${format}: ${JSON.stringify(body).slice(0, 80)}`);
  }
  t.equal(slack!.seen[0]!.url, '/services/T0/B0/secret');
  t.match(parsed(slack)[2], { text: /verified after the rollback/, blocks: [{ type: 'header' }, {}, {}, { text: { text: /^\*Verification of the baseline\*\n✔ ping: GET \/ping → 200\n/ } }] });
  t.match(parsed(teams)[1], { '@type': 'MessageCard', themeColor: 'D32F2F', title: 'drum-splitter rollout: Rollback (fastapi)' });
  t.same(parsed(pagerduty).map((p) => [p.event_action, p.dedup_key]), [
    ['resolve', 'drum-splitter/fastapi/rollout'],
    ['trigger', 'drum-splitter/fastapi/rollout'],
    ['resolve', 'drum-splitter/fastapi/baseline'],
  ], 'a resolve at the start (nothing open), the rollback opens the incident, the verification closes the baseline one');
  t.match(parsed(pagerduty)[1], { routing_key: KEY, payload: { severity: 'error', source: 'drum-splitter/fastapi', summary: /canary error rate/ } });
  t.equal(pagerduty!.seen[0]!.url, '/v2/enqueue');

  served.child().kill('SIGTERM');
  t.same(await served.exited(), [0, null]);
});
