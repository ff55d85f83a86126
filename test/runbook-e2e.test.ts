/**
 * The seeds' whole runbook in one plan, end to end on real processes: `serve` as its own process
 * in front of two DRUM stand-ins, real traffic, a hook server and Slack, Teams and PagerDuty
 * receivers on 127.0.0.1. The shadow phase passes, the canary takes its steps with a pre-step
 * hook holding one until it answers, a canary that starts answering other predictions is rolled
 * back at once with the differing pair in the decision, the baseline is verified item by item,
 * every notice is valid against its service's schema, and the report renders in Chromium.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { request } from 'undici';
import { createStandin, type Faults } from '../src/cli/standin.js';
import { serveCli } from './helpers/cli.js';
import { runCli, startUpstream, steadyTraffic } from './helpers/net.js';
import { openFile, withoutChromium } from './helpers/chromium.js';
import { until } from './helpers/wait.js';
import { schemaErrors } from './helpers/webhooks.js';

const TOKEN = 'runbook-e2e-token-0123456789';
const ENV = { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN };
const KEY = 'R0123456789abcdef0123456789abcde';

interface Decision { action: string; from: number; to: number; text: string; mismatch?: Record<string, unknown>; hook?: Record<string, unknown>; verification?: { items: { name: string; ok: boolean | null }[] } }

t.test('shadow phase → 20% → (a pre-step hook holds 50% until it answers) → 50%; other predictions: rolled back at once, verified; every notice schema-valid; the report drawn', async (t) => {
  const faults: Faults = { errorRate: 0, addedLatencyMs: 0, extraMemoryMb: 0, predictionShift: 0 };
  const flask = createStandin('flask');
  const fastapi = createStandin('fastapi', faults);
  const [flaskUrl, fastapiUrl] = await Promise.all([flask.listen({ host: '127.0.0.1', port: 0 }), fastapi.listen({ host: '127.0.0.1', port: 0 })]);
  // The load test before 50%: failing until the test lets it pass.
  let loadTestPasses = false;
  const hooks = await startUpstream('hooks', (_req, res, body) => {
    const { step } = JSON.parse(body.toString()) as { step: { weight: number } };
    res.statusCode = step.weight === 50 && !loadTestPasses ? 503 : 200;
    res.end('{}');
  });
  const receivers = await Promise.all(['slack', 'teams', 'pagerduty'].map((name) => startUpstream(name)));
  const [slack, teams, pagerduty] = receivers as [typeof hooks, typeof hooks, typeof hooks];
  t.teardown(() => Promise.all([flask.close(), fastapi.close(), hooks.close(), ...receivers.map((r) => r.close())]));

  // --state outside the testdir: serve writes the report beside it after the test's files are gone.
  const stateDir = mkdtempSync(join(tmpdir(), 'drum-runbook-'));
  const dir = t.testdir({ 'batch.csv': 'x1,x2\n1,2\n3,4\n' });
  const config = join(dir, 'drum.yaml');
  writeFileSync(config, JSON.stringify({
    upstreams: { flask: flaskUrl, fastapi: fastapiUrl },
    // Every request from 127.0.0.1: split on the query string, as a client id would be.
    key: '$arg_i',
    // The operator's own shadow at the canary steps: it keeps the prediction-mismatch trigger watching.
    shadowSample: 0.5,
    rollout: {
      interval: '150ms', window: '1s', minRequests: 20, settle: 0, confirm: 1,
      steps: [{ shadow: 1, hold: '600ms' }, { weight: 20, hold: '600ms' }, { weight: 50, hold: '1h' }],
      hooks: [{ name: 'load-test', on: 'pre-step', url: `${hooks.url}/load-test`, timeout: '2s' }],
      notify: [
        { url: `${slack.url}/services/T0/B0/secret`, format: 'slack' },
        { url: teams.url, format: 'teams' },
        { url: `${pagerduty.url}/v2/enqueue`, format: 'pagerduty', routingKey: KEY },
      ],
      verify: { requests: [join(dir, 'batch.csv')] },
    },
  }));
  const served = serveCli(t, ['--config', config, '--listen', '127.0.0.1:0', '--state', join(stateDir, 'state.json')], ENV);
  const { listen, admin } = await served.listening;
  const traffic = steadyTraffic((i) => `http://${listen}/predict/?i=${i}`);
  t.teardown(async () => {
    await traffic.stop();
    served.child().kill('SIGTERM');
    await served.exited();
    rmSync(stateDir, { recursive: true, force: true });
  });
  const get = async (path: string): Promise<Record<string, unknown>> => (await (await request(`http://${admin}${path}`)).body.json()) as Record<string, unknown>;
  const decisions = async (): Promise<Decision[]> => (await get('/rollout/decisions')).decisions as Decision[];
  const canary = async (): Promise<number> => ((await get('/weights')).weights as Record<string, number>).fastapi!;

  const started = await runCli(['rollout', 'start', '--admin-url', `http://${admin}`, '--reason', 'the runbook'], ENV);
  t.equal(started.code, 0, started.stderr);
  t.match(await get('/shadow'), { enabled: true, sampleRate: 1 }, 'the shadow phase: every baseline request copied to the canary');
  t.equal(await canary(), 0, 'the canary takes no traffic of its own');

  // The phase passes on the shadow's pairs; 20% follows; the load test holds 50%.
  await until(async () => (await decisions()).some((d) => d.action === 'hook'), 20_000, 50);
  const held = await decisions();
  t.same(held.slice(0, 2).map((d) => [d.action, d.from, d.to]), [['start', 0, 0], ['shadow_pass', 0, 20]]);
  t.match(held.find((d) => d.action === 'hook'), { text: /^pre-step hook "load-test" answered 503 .*: the move to 50% is not made, the canary stays at 20%/, hook: { hook: 'load-test', status: 503 } });
  t.match(await get('/shadow'), { enabled: true, sampleRate: 0.5 }, "after the phase, the operator's own shadow again");
  await new Promise((r) => setTimeout(r, 600));
  t.equal(await canary(), 20, 'held at 20% while the hook fails');
  loadTestPasses = true;
  await until(async () => (await canary()) === 50, 10_000, 50);
  t.match((await decisions()).at(-1), { action: 'promote', from: 20, to: 50 });

  // Data corruption: the canary answers other numbers, fast and 200.
  faults.predictionShift = 1;
  const corruptedAt = Date.now();
  await until(async () => (await get('/rollout')).phase === 'rolled_back', 10_000, 50);
  t.comment(`rolled back ${Date.now() - corruptedAt} ms after the first other prediction`);
  t.equal(await canary(), 0);
  await until(async () => (await decisions()).some((d) => d.action === 'verified' || d.action === 'verification_failed'), 20_000, 50);
  const log = await decisions();
  const rollback = log.find((d) => d.action === 'rollback')!;
  t.match(rollback, { from: 50, to: 0, text: /^prediction mismatch: / });
  t.match(rollback.mismatch, { request: { path: /^\/predict\/\?i=\d+$/ }, baseline: { body: { text: '{"predictions":[1]}' } }, canary: { upstream: 'fastapi', body: { text: '{"predictions":[2]}' } } }, 'the differing request and both answers');
  const verified = log.at(-1)!;
  t.equal(verified.action, 'verified', verified.text);
  t.same(verified.verification!.items.map((i) => [i.name, i.ok]), [['ping', true], ['health', true], ['info', true], ['predict_single', true], ['predict_batch', true], ['stats', true]]);

  // Every notice, in each service's format, valid against its documented schema.
  await until(() => pagerduty.seen.length >= 3 && slack.seen.length >= log.length, 10_000);
  for (const [format, receiver] of [['slack', slack], ['teams', teams], ['pagerduty', pagerduty]] as const) {
    for (const seen of receiver.seen) t.same(schemaErrors(format, JSON.parse(seen.body.toString())), [], `${format}: ${seen.body.toString().slice(0, 60)}`);
  }
  const paged = pagerduty.seen.map((s) => JSON.parse(s.body.toString()) as { event_action: string; dedup_key: string });
  t.match(paged.find((p) => p.event_action === 'trigger'), { dedup_key: 'drum-splitter/fastapi/rollout', payload: { severity: 'error', summary: /prediction mismatch/ } }, 'the rollback pages');
  t.ok(slack.seen.some((s) => /prediction mismatch/.test(s.body.toString())), 'Slack hears of the mismatch');

  // The report, written beside --state when the rollout ended (again once verified), drawn by Chromium.
  const html = join(stateDir, 'state.rollout-report.html');
  await until(() => existsSync(html) && readFileSync(html, 'utf8').includes('verified'), 10_000);
  t.test('the report renders in chromium', { skip: withoutChromium() }, async (t) => {
    const { page, problems } = await openFile(t, html);
    const drawn = await page.evaluate(() => ({
      weightLength: (document.querySelector('#weight-chart path.series') as SVGPathElement | null)?.getTotalLength() ?? 0,
      text: document.body.innerText,
    }));
    t.ok(drawn.weightLength > 100, `the weight line is drawn (${drawn.weightLength.toFixed(0)} px)`);
    t.match(drawn.text, /shadow_pass/);
    t.match(drawn.text, /prediction mismatch/);
    t.match(drawn.text, /verified/);
    t.same(problems, [], 'no console errors, nothing fetched');
  });
});
