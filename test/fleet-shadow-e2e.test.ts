/**
 * The fleet's shadow phase and mismatch trigger end to end: two proxy replicas sharing one
 * config, Debian's Prometheus scraping them every second, real upstreams and traffic, and the
 * controller switching the replicas' shadow and judging their drum_shadow_* counters.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { request } from 'undici';
import { startApp, type RunningApp } from '../src/app.js';
import { readConfigFile } from '../src/config/config.js';
import { startController } from '../src/fleet/app.js';
import { FleetShadow, replicaMismatch } from '../src/fleet/shadow.js';
import { pino } from 'pino';
import { freePort, silentLog, startUpstream, steadyTraffic, type UpstreamHandler } from './helpers/net.js';
import { prometheusMissing, startPrometheus } from './helpers/prometheus.js';
import { until } from './helpers/wait.js';

const TOKEN = 'fleet-shadow-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

const json = async (url: string, method: 'GET' | 'POST' = 'GET', body?: unknown): Promise<Record<string, unknown>> => {
  const res = await request(url, { method, headers: auth, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return (await res.body.json()) as Record<string, unknown>;
};

const predicting = (prediction: () => number): UpstreamHandler => (_req, res) => {
  setTimeout(() => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ predictions: [prediction()] }));
  }, 2);
};

t.test('the fleet: the replicas shadow for the phase, it passes on their counters; a mismatch rolls every replica back, the pair read from one', { skip: prometheusMissing }, async (t) => {
  let corrupted = false;
  const flask = await startUpstream('flask', predicting(() => 1));
  const fastapi = await startUpstream('fastapi', predicting(() => (corrupted ? 2 : 1)));
  const path = join(t.testdir({}), 'drum.yaml');
  writeFileSync(path, JSON.stringify({
    upstreams: { flask: flask.url, fastapi: fastapi.url },
    shadowSample: 0.3,
    rollout: { interval: '1s', window: '4s', minRequests: 20, settle: 0, steps: [{ shadow: 1, hold: '2s' }, { weight: 10, hold: '1h' }] },
  }));
  const ports = await Promise.all([0, 1].map(async () => [await freePort(), await freePort()] as const));
  const replicas: RunningApp[] = await Promise.all(ports.map(([listen, admin]) =>
    startApp({ file: { path, settings: readConfigFile(path) }, flags: { listen: `127.0.0.1:${listen}`, admin: `127.0.0.1:${admin}` } }, { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log: silentLog })));
  const admins = ports.map(([, admin]) => `http://127.0.0.1:${admin}`);
  const prom = await startPrometheus(t, ports.map(([, admin]) => `127.0.0.1:${admin}`));
  await prom.eventually('count(up{job="drum-splitter"} == 1)', (r) => Object.values(r)[0] === 2);
  const traffic = steadyTraffic((i) => `http://127.0.0.1:${ports[i % 2]![0]}/predict/?i=${i}`, { clients: 4, pauseMs: 5 });
  const controller = await startController(
    { file: readConfigFile(path), prometheus: prom.url, proxies: admins, admin: '127.0.0.1:0', token: TOKEN },
    { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log: silentLog },
  );
  t.teardown(async () => {
    await traffic.stop();
    await controller.close();
    await Promise.all(replicas.map((r) => r.close()));
    await Promise.all([flask.close(), fastapi.close()]);
  });
  const control = `http://127.0.0.1:${controller.adminAddress.port}`;
  const shadows = async (): Promise<unknown[]> => Promise.all(admins.map(async (a) => json(`${a}/shadow`)));

  t.match(await json(`${control}/rollout/start`, 'POST', {}), { phase: 'running', weight: 0 });
  await until(async () => (await shadows()).every((s) => (s as { sampleRate: number }).sampleRate === 1), 5000, 50);
  t.pass('every replica shadows all of its baseline requests for the phase');

  await until(() => controller.rollout.decisions.some((d) => d.action === 'shadow_pass'), 40_000, 100).catch((err: Error) => {
    throw new Error(`${err.message}; last verdict: ${JSON.stringify(controller.rollout.view().lastVerdict)}`);
  });
  const pass = controller.rollout.decisions.find((d) => d.action === 'shadow_pass')!;
  t.match(pass, { from: 0, to: 10 });
  t.match(pass.checks!.find((c) => c.check === 'mismatch'), { status: 'ok', value: 0 });
  t.match(pass.checks!.find((c) => c.check === 'p99'), { status: 'ok' }, "the replicas' pair latencies from Prometheus");
  await until(async () => (await shadows()).every((s) => (s as { sampleRate: number }).sampleRate === 0.3), 5000, 50);
  t.pass("every replica's shadow is back as its config had it");
  await until(async () => replicas.every((r) => r.store.view().weights.fastapi === 10), 5000, 50);

  corrupted = true;
  const at = Date.now();
  await until(() => controller.rollout.state.phase === 'rolled_back', 20_000, 50);
  t.comment(`rolled back ${((Date.now() - at) / 1000).toFixed(1)} s after the first different prediction`);
  // The rollback, whether or not the baseline's verification has followed it yet.
  const rollback = controller.rollout.decisions.filter((d) => d.action === 'rollback').at(-1)!;
  t.match(rollback, { action: 'rollback', to: 0, text: /^prediction mismatch: / });
  t.match(rollback.mismatch, { request: { path: /^\/predict\/\?i=\d+$/ }, baseline: { body: { text: '{"predictions":[1]}' } }, canary: { upstream: 'fastapi', body: { text: '{"predictions":[2]}' } } });
  await until(async () => replicas.every((r) => r.store.view().weights.fastapi === 0), 5000, 50);
  t.pass('every replica at 0%');
});

t.test('replicaMismatch: where to look when no replica has a differing pair to show', async (t) => {
  const none = await replicaMismatch(['http://127.0.0.1:1'], { token: undefined, timeoutMs: 500 });
  t.same(none, { where: 'no replica answered with one: GET /shadow (lastMismatch) on the replicas (http://127.0.0.1:1), or their --shadow-log' });
});

t.test('FleetShadow: a replica that will not switch is said once, and put back once it takes it', async (t) => {
  let refusing = true;
  const puts: unknown[] = [];
  const replica = await startUpstream('replica', (req, res, body) => {
    res.setHeader('content-type', 'application/json');
    if (req.method === 'PUT') puts.push(JSON.parse(body.toString()));
    if (req.method === 'PUT' && refusing) {
      res.statusCode = 503;
      res.end('{"error":"unavailable","message":"draining"}');
      return;
    }
    res.end(JSON.stringify({ enabled: false, sampleRate: 0 }));
  }, { readBody: true });
  t.teardown(() => replica.close());
  const lines: { msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { msg: string }) });
  let changes = 0;
  const sw = new FleetShadow({ token: undefined, timeoutMs: 1000, log, changed: () => changes++ });
  sw.set(0.5);
  sw.set(0.5);
  t.equal(changes, 1, 'a reconcile asked for once per change');
  await sw.sync([replica.url, 'http://127.0.0.1:1']);
  await sw.sync([replica.url, 'http://127.0.0.1:1']);
  const warned = lines.filter((l) => /cannot switch its live shadow/.test(l.msg)).map((l) => l.msg).sort();
  t.same(warned, ['replica http://127.0.0.1:1: cannot switch its live shadow for the shadow phase', `replica ${replica.url}: cannot switch its live shadow for the shadow phase`].sort(), 'each said once');
  sw.set(undefined);
  await sw.sync([]);
  t.match(puts.at(-1), { enabled: false, sampleRate: 0, reason: 'the shadow phase is over: back as it was' });
  refusing = false;
  await sw.sync([]);
  await sw.sync([]);
  t.equal(puts.filter((p) => (p as { enabled: boolean }).enabled === false).length, 2, 'put back until it took, then no more');
});
