/** --workers: the real CLI with two worker processes behind one port, one primary owning the state. */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { startShadow, type Shadow } from '../src/shadow/shadow.js';
import { Registry } from 'prom-client';
import { createAdmin } from '../src/admin/server.js';
import { applyState, configFromJSON, configToJSON, PrimarySink, type ToPrimary, type WorkerState } from '../src/cluster.js';
import { MetricsUnavailable, createMetrics } from '../src/observe/metrics.js';
import { Recording } from '../src/record/recording.js';
import type { WeightStore } from '../src/weights/store.js';
import type { Share } from '../src/weights/shares.js';
import type { RouteRule } from '../src/weights/routes.js';
import { buildConfig } from '../src/config/config.js';
import { createRecorderMetrics } from '../src/record/writer.js';
import type { RecordLine } from '../src/record/line.js';
import { sampleSum } from './helpers/metrics.js';
import { send, silentLog, spawnCli, startUpstream, waitForLine } from './helpers/net.js';
import { sleep, until } from './helpers/wait.js';

/** The pids of a process's children (the workers of a primary). */
function children(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
  } catch {
    return []; // pgrep exits 1 when there are none
  }
}

t.test('workers: validated like any setting', async (t) => {
  t.equal(buildConfig({}).workers, 1, 'one process by default');
  t.equal(buildConfig({ workers: '3' }).workers, 3);
  t.ok(buildConfig({ workers: 'auto' }).workers >= 1, 'auto: one per CPU');
  for (const bad of ['0', '-1', '1.5', 'x', '257', 0]) {
    t.throws(() => buildConfig({ workers: bad }), { name: 'InputError', field: 'workers', message: /is not a number of workers from 1 to 256, or auto/ }, String(bad));
  }
  t.throws(() => buildConfig({ workers: 2, metricsOnTraffic: true }), { field: 'workers', message: /scrape the admin API \/metrics/ });
  t.equal(buildConfig({ workers: 1, metricsOnTraffic: true }).workers, 1);
});

t.test('two workers: one split, one recording, one /metrics, a clean stop', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'rec.jsonl');
  const flask = await startUpstream('flask');
  const fastapi = await startUpstream('fastapi');
  t.teardown(() => Promise.all([flask.close(), fastapi.close()]));
  const token = 'cluster-test-token-0123456789';
  const child = spawnCli(
    [
      'serve', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--workers', '2', '--poll-interval', '1h',
      '--upstream', `flask=${flask.url}`, '--upstream', `fastapi=${fastapi.url}`, '--weight', 'fastapi=50',
      '--record', file, '--record-sample', '1',
    ],
    { DRUM_SPLITTER_ADMIN_TOKEN: token, DRUM_RECORD_REQUESTS: undefined, DRUM_RECORD_SAMPLE_RATE: undefined },
  );
  let stdout = '';
  child.stdout!.on('data', (d) => (stdout += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const listening = JSON.parse(await waitForLine(child, /"msg":"listening"/, 30_000)) as { listen: string; admin: string; workers: number };
  t.equal(listening.workers, 2);
  const [workerA, workerB] = children(child.pid!);
  t.equal(children(child.pid!).length, 2, 'two worker processes');
  const url = `http://${listening.listen}`;
  const admin = `http://${listening.admin}`;
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

  // Each request on a new connection (the primary deals connections to the workers in turn),
  // from its own client address, so the split key differs.
  const burst = async (n: number, path = '/predict/'): Promise<string[]> => {
    const served: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await send(`${url}${path}?i=${i}`, { method: 'POST', body: `row ${i}`, localAddress: `127.0.0.${1 + i}` });
      t.equal(r.status, 200);
      served.push(String(r.headers['x-drum-splitter-upstream']));
    }
    return served;
  };
  const first = await burst(40);
  const before = (await send(`${admin}/metrics`)).body.toString();
  t.equal(sampleSum(before, 'drum_requests_total'), 40);
  t.ok(first.includes('flask') && first.includes('fastapi'), 'a 50% split reaches both upstreams');

  // A weight change in the primary reaches both workers.
  const put = await send(`${admin}/weights`, { method: 'PUT', headers: auth, body: JSON.stringify({ weights: { fastapi: 100 } }) });
  t.equal(put.status, 200);
  t.same(new Set(await burst(40)), new Set(['fastapi']), 'every worker moved everything to fastapi');

  // Recording switched off in the primary: no worker records.
  const off = await send(`${admin}/recording`, { method: 'PUT', headers: auth, body: JSON.stringify({ enabled: false }) });
  t.match(JSON.parse(off.body.toString()), { enabled: false });
  await burst(10);

  // /metrics adds up every worker, plus the primary's own (weights, recorder).
  const metrics = (await send(`${admin}/metrics`)).body.toString();
  t.equal(sampleSum(metrics, 'drum_requests_total'), 90, 'all 90 requests, whichever worker served them');
  t.equal(sampleSum(metrics, 'drum_requests_total', { server_type: 'fastapi' }), 40 + first.filter((u) => u === 'fastapi').length + 10);
  t.equal(sampleSum(metrics, 'drum_request_duration_seconds_count'), 90);
  t.equal(sampleSum(metrics, 'drum_split_weight_percent', { server_type: 'fastapi' }), 100, 'the weight gauge once, not per worker');
  t.equal(sampleSum(metrics, 'drum_requests_in_flight'), 0);

  // The shadow switched on in the primary reaches both workers: back on flask, every request is copied to fastapi.
  await send(`${admin}/weights`, { method: 'PUT', headers: auth, body: JSON.stringify({ weights: { fastapi: 0 } }) });
  const on = await send(`${admin}/shadow`, { method: 'PUT', headers: auth, body: JSON.stringify({ enabled: true, sampleRate: 1 }) });
  t.match(JSON.parse(on.body.toString()), { enabled: true, sampleRate: 1 });
  const copied = fastapi.seen.length;
  t.same(new Set(await burst(10)), new Set(['flask']));
  await until(() => fastapi.seen.length - copied === 10);
  t.ok(fastapi.seen.slice(copied).every((s) => s.headers['x-drum-splitter-shadow'] === '1'), 'ten copies, from whichever worker served each');
  await send(`${admin}/shadow`, { method: 'PUT', headers: auth, body: JSON.stringify({ enabled: false }) });
  await send(`${admin}/weights`, { method: 'PUT', headers: auth, body: JSON.stringify({ weights: { fastapi: 100 } }) });

  // A worker that dies is replaced; traffic goes on.
  let replaced = waitForLine(child, /"msg":"the new worker is listening"/, 30_000);
  process.kill(workerA!, 'SIGKILL');
  await replaced;
  t.equal(children(child.pid!).length, 2, 'a new worker took its place');
  t.ok(children(child.pid!).includes(workerB!), 'the other worker kept running');
  t.same(new Set(await burst(10)), new Set(['fastapi']), 'the new worker has the current split');
  t.match(stdout, /"msg":"a worker died; starting another"/);

  // A worker that cannot answer (stopped) fails the scrape: a smaller sum would read as a counter reset.
  const full = sampleSum((await send(`${admin}/metrics`)).body.toString(), 'drum_requests_total');
  const [stopped, other] = children(child.pid!);
  process.kill(stopped!, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(stopped!, 'SIGCONT'); // stopped, it could not even exit
    } catch {
      // it has exited
    }
  });
  let started = Date.now();
  const silent = await send(`${admin}/metrics`);
  t.equal(silent.status, 503, '/metrics fails while a worker does not answer');
  t.ok(Date.now() - started < 7000, 'once it has waited for it');
  t.match(JSON.parse(silent.body.toString()), { error: 'metrics_unavailable', message: /1 of 2 workers did not answer/, workers: 1 });
  process.kill(stopped!, 'SIGCONT');
  const back = await send(`${admin}/metrics`);
  t.equal(back.status, 200, 'it answers again');
  t.equal(sampleSum(back.body.toString(), 'drum_requests_total'), full, 'with the full counts');

  // A worker that dies while a scrape waits for it is not waited for: its counts are gone.
  process.kill(other!, 'SIGSTOP');
  started = Date.now();
  const scrape = send(`${admin}/metrics`);
  await sleep(300);
  replaced = waitForLine(child, /"msg":"the new worker is listening"/, 30_000);
  process.kill(other!, 'SIGKILL');
  t.equal((await scrape).status, 200, 'the scrape answers without the dead worker');
  t.ok(Date.now() - started < 3000, 'as soon as it died');
  await replaced;

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM: exit 0');
  t.same(children(child.pid!), [], 'no worker left behind');
  const lines = readFileSync(file, 'utf8').split('\n');
  t.equal(lines.pop(), '', 'the file ends with a whole line');
  const records = lines.map((l) => JSON.parse(l) as RecordLine);
  t.equal(records.length, 80, "one file: both workers' records of the 80 requests before recording was switched off");
  t.equal(new Set(records.map((r) => r.path)).size, 40, 'each path twice (two bursts)');
  t.ok(records.every((r) => r.body_hex === Buffer.from(`row ${/i=(\d+)/.exec(r.path)![1]}`).toString('hex')), 'each with its own body');
});

t.test('workers: a replacement runs with the settings the primary has, not the config file as it is now', async (t) => {
  const dir = t.testdir();
  const config = join(dir, 'drum.yaml');
  const up = await startUpstream('flask');
  t.teardown(() => up.close());
  writeFileSync(config, `upstreams:\n  flask: ${up.url}\nworkers: 2\npollInterval: 1h\nlisten: 127.0.0.1:0\nadmin: 127.0.0.1:0\n`);
  const child = spawnCli(['serve', '--config', config]);
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const listening = JSON.parse(await waitForLine(child, /"msg":"listening"/, 30_000)) as { listen: string; admin: string };
  const [dead] = children(child.pid!);
  // Edited into something no process could start with.
  writeFileSync(config, 'upstreams: [not, a, mapping\n');
  const replaced = waitForLine(child, /"msg":"the new worker is listening"/, 30_000);
  process.kill(dead!, 'SIGKILL');
  await replaced;
  t.equal(children(child.pid!).length, 2, 'a replacement is running');
  for (let i = 0; i < 20; i++) t.equal((await send(`http://${listening.listen}/predict/`, { method: 'POST', body: 'x' })).status, 200);
  const started = Date.now();
  const scrape = await send(`http://${listening.admin}/metrics`);
  t.equal(scrape.status, 200);
  t.ok(Date.now() - started < 2000, 'promptly: no worker to wait for');
  t.equal(sampleSum(scrape.body.toString(), 'drum_requests_total'), 20, "both workers' counts");
  child.kill('SIGTERM');
  t.equal(await exited, 0);
});

t.test('workers: an address in use stops them all, and the primary, with exit 1', async (t) => {
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => holder.close(r)));
  const port = (holder.address() as AddressInfo).port;
  const child = spawnCli(['serve', '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0', '--workers', '2', '--upstream', 'a=http://127.0.0.1:1']);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  t.equal(code, 1);
  t.match(stderr, `drum-splitter: address in use: bind EADDRINUSE 127.0.0.1:${port}`, "a worker's reason");
  t.match(stderr, /drum-splitter: worker \d+ exited with code 1 before listening/, "and the primary's");
  t.same(children(child.pid!), [], 'no worker left behind');
});

t.test('workers: records past the queue bound are dropped and counted where they are', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'rec.jsonl');
  const up = await startUpstream('flask');
  t.teardown(() => up.close());
  const child = spawnCli(
    // On IPv6 loopback this time, with responses recorded too.
    ['serve', '--listen', '[::1]:0', '--admin', '127.0.0.1:0', '--workers', '2', '--poll-interval', '1h', '--upstream', `flask=${up.url}`, '--record', file, '--record-sample', '1', '--record-queue', '4KB', '--record-memory', '10MB', '--record-responses'],
    { DRUM_RECORD_REQUESTS: undefined, DRUM_RECORD_SAMPLE_RATE: undefined },
  );
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const listening = JSON.parse(await waitForLine(child, /"msg":"listening"/, 30_000)) as { listen: string; admin: string };
  const body = 'x'.repeat(1500);
  const n = 300;
  const port = /:(\d+)$/.exec(listening.listen)![1];
  const replies = await Promise.all(Array.from({ length: n }, () => send(`http://[::1]:${port}/predict/`, { method: 'POST', body })));
  t.ok(replies.every((r) => r.status === 200), 'traffic unaffected');
  let metrics = '';
  const records = (): number => sampleSum(metrics, 'drum_recorder_records_total');
  const dropped = (): number => sampleSum(metrics, 'drum_recorder_dropped_total', { reason: 'queue_full' });
  // Every worker's records reach the primary, or are counted as dropped where they were.
  await until(async () => {
    metrics = (await send(`http://${listening.admin}/metrics`)).body.toString();
    return records() + dropped() >= n;
  });
  t.ok(dropped() > 0, `some dropped (${dropped()})`);
  t.equal(records() + dropped(), n, 'every sampled request is a record or a counted drop, once');
  child.kill('SIGTERM');
  t.equal(await exited, 0);
  t.equal(readFileSync(file, 'utf8').split('\n').length - 1, records(), 'the file has the records counted');
});

t.test('admin /metrics: 503 when the workers cannot all be counted; any other failure is a 500', async (t) => {
  const metrics = createMetrics();
  const admin = (text: () => Promise<string>): ReturnType<typeof createAdmin> =>
    createAdmin({ server: 'proxy', store: {} as WeightStore, upstreams: [], tokens: new Map(), recording: {} as Recording, shadow: {} as Shadow, probe: async () => ({}), notSaved: () => [], metrics: { ...metrics, text }, log: silentLog });
  const silent = await admin(() => Promise.reject(new MetricsUnavailable('2 of 3 workers did not answer within 5000 ms; a smaller sum would read as a counter reset', 2))).inject({ method: 'GET', url: '/metrics' });
  t.equal(silent.statusCode, 503);
  t.same(silent.json(), { error: 'metrics_unavailable', message: '2 of 3 workers did not answer within 5000 ms; a smaller sum would read as a counter reset', workers: 2 });
  const broken = await admin(() => Promise.reject(new Error('boom'))).inject({ method: 'GET', url: '/metrics' });
  t.equal(broken.statusCode, 500);
  const fine = await admin(async () => 'x_total 1\n').inject({ method: 'GET', url: '/metrics' });
  t.equal(fine.statusCode, 200);
  t.equal(fine.headers['content-type'], metrics.registry.contentType);
  t.equal(fine.body, 'x_total 1\n');
});

t.test('configToJSON / configFromJSON: what a worker starts with is the primary\'s config exactly', async (t) => {
  const config = {
    ...buildConfig({
      upstreams: { flask: 'http://127.0.0.1:8080/base/', fastapi: { url: 'https://[::1]:8081', requestBuffering: false } },
      weights: ['fastapi=12.5'], overrideHeader: 'X-Force', state: '/tmp/state.json', record: '/tmp/rec.jsonl', recordRotateBytes: '1MB', workers: 2,
      shadowSample: 0.5, shadowLog: '/tmp/shadow.jsonl', shadowIgnore: '$.t',
    }),
    record: { ...buildConfig({}).record, file: '/var/log/drum/recorded_requests.jsonl', enabled: true, sampleRate: 0.5 },
  };
  const back = configFromJSON(JSON.parse(JSON.stringify(configToJSON(config))) as ReturnType<typeof configToJSON>);
  t.same(back, config);
  t.ok(back.upstreams.every((u) => u.url instanceof URL), 'URLs again');
  for (const raw of [{}, { upstreams: ['flask=http://127.0.0.1:8080'] }]) {
    t.same(configFromJSON(JSON.parse(JSON.stringify(configToJSON(buildConfig(raw)))) as ReturnType<typeof configToJSON>), buildConfig(raw), 'undefined settings stay undefined');
  }
});

t.test("applyState: a worker's switches go through change(), the check and the hook the admin API's do", async (t) => {
  const registry = new Registry();
  const recording = new Recording(buildConfig({}).record, { metrics: createRecorderMetrics(registry), log: silentLog, sink: { write: () => true, close: async () => {} } });
  const shares: (readonly Share[])[] = [];
  const rules: (readonly RouteRule[])[] = [];
  const proxy = { setShares: (s: readonly Share[]) => void shares.push(s), setRoutes: (r: readonly RouteRule[]) => void rules.push(r), recording };
  let told = 0;
  const beta: RouteRule = { name: 'beta', match: { header: { 'x-beta': '1' } }, upstream: 'fastapi' };
  const state = (shadow: WorkerState['shadow']): WorkerState => ({ shares: [['fastapi', 500]], routes: [beta], recording: { enabled: true, sampleRate: 0.25 }, shadow });
  const two = buildConfig({ upstreams: ['flask=http://127.0.0.1:1', 'fastapi=http://127.0.0.1:2'] });
  const shadow = startShadow(two, { registry, log: silentLog, onChange: () => told++ });
  t.teardown(() => shadow.close());
  applyState(proxy, shadow.shadow, state({ enabled: true, sampleRate: 0.5 }));
  t.same(shares, [[['fastapi', 500]]]);
  t.same(rules, [[beta]], 'the cohort rules too');
  t.match(recording.view(), { enabled: true, sampleRate: 0.25 });
  t.match(shadow.shadow.view(), { enabled: true, sampleRate: 0.5 });
  t.equal(told, 1, 'the shadow changed through change(), which told its hook');
  t.throws(() => applyState(proxy, shadow.shadow, state({ enabled: true, sampleRate: 0 })), { name: 'InputError', field: 'sampleRate' }, 'on at a rate of 0: refused as PUT /shadow refuses it');
  t.match(shadow.shadow.view(), { enabled: true, sampleRate: 0.5 }, 'unchanged');
  const one = startShadow(buildConfig({ upstreams: ['flask=http://127.0.0.1:1'] }), { registry: new Registry(), log: silentLog });
  t.throws(() => applyState(proxy, one.shadow, state({ enabled: true, sampleRate: 1 })), { name: 'InputError', field: 'enabled' }, 'no shadow upstream: refused');
  t.equal(one.shadow.enabled, false);
  await one.close();
});

t.test('PrimarySink: a bound on the bytes on their way to the primary; a failed send is counted', async (t) => {
  const registry = new Registry();
  const metrics = createRecorderMetrics(registry);
  const pending: ((err: Error | null) => void)[] = [];
  const sent: ToPrimary[] = [];
  const sink = new PrimarySink(5000, metrics, (msg, done) => {
    sent.push(msg);
    pending.push(done);
  });
  const line = (bytes: number, response = false): RecordLine => ({
    timestamp: 1, method: 'POST', path: '/predict/', headers: {}, body_hex: 'ab'.repeat(bytes), content_type: '', id: 'x',
    upstream: 'flask', status: 200, latency_ms: 1, body_truncated: false,
    ...(response ? { response: { status: 200, body_hex: 'cd'.repeat(bytes), body_truncated: false } } : {}),
  });
  t.equal(sink.write(line(1000)), true, 'about 3 KB on its way');
  t.equal(sink.write(line(500)), false, 'another 2 KB would pass 5 KB: dropped');
  t.equal(sink.write(line(10)), true, 'a small one fits');
  t.equal(sink.write(line(400, true)), false, 'a response counts too');
  pending.shift()!(null);
  pending.shift()!(new Error('channel closed'));
  await sink.close();
  t.equal(sink.write(line(10_000)), true, 'nothing on its way: even a line over the bound goes');
  pending.shift()!(null);
  await sink.close();
  t.same(sent.map((m) => (m.drum === 'record' ? m.line.body_hex.length : -1)), [2000, 20, 20_000]);
  const dropped = await registry.getSingleMetric('drum_recorder_dropped_total')!.get();
  t.same(Object.fromEntries(dropped.values.map((v) => [v.labels.reason, v.value])), { queue_full: 2, write_error: 0, closed: 1, memory: 0 });
});
