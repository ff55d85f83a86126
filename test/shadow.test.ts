/** The live shadow: copies of the baseline's requests to the shadow upstream, compared, on real sockets. */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import t, { type Test } from 'tap';
import { startApp, type RunningApp } from '../src/app.js';
import type { RawSettings } from '../src/config/config.js';
import { DEFAULT_TOLERANCE } from '../src/compare/answers.js';
import { createShadowMetrics, DOWN_PAUSE_MS, Shadow, type ShadowLine, type ShadowView } from '../src/shadow/shadow.js';
import { createBackend } from '../src/proxy/forward.js';
import { Registry } from 'prom-client';
import { ShadowLog } from '../src/shadow/log.js';
import { openRecordings, type ReplayRecord } from '../src/replay/input.js';
import { pino } from 'pino';
import { freePort, send, silentLog, startUpstream, type Reply, type TestUpstream, type UpstreamHandler } from './helpers/net.js';
import { until } from './helpers/wait.js';

const TOKEN = 'ops-token-0123456789';

/** JSON answering {"y": x} for a body {"x": x}; `twist` changes the answer for some x. */
const model =
  (twist: (x: number) => number = (x) => x): UpstreamHandler =>
  (_req, res, body) => {
    const x = body.length === 0 ? 0 : (JSON.parse(body.toString()) as { x: number }).x;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ y: twist(x) }));
  };

/** What an upstream saw of the traffic (its /ping and /stats/ polls left out). */
const traffic = (u: TestUpstream): TestUpstream['seen'] => u.seen.filter((s) => s.url.startsWith('/predict'));

interface Setup extends RunningApp {
  admin_: string;
  traffic: string;
  flask: TestUpstream;
  fastapi: TestUpstream;
}

async function app(t: Test, settings: RawSettings, handlers: { flask?: UpstreamHandler; fastapi?: UpstreamHandler; fastapiUrl?: string } = {}): Promise<Setup> {
  const flask = await startUpstream('flask', handlers.flask ?? model());
  const fastapi = await startUpstream('fastapi', handlers.fastapi ?? model());
  const running = await startApp(
    { flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: [`flask=${flask.url}`, `fastapi=${handlers.fastapiUrl ?? fastapi.url}`], ...settings } },
    { env: {}, log: silentLog },
  );
  t.teardown(async () => {
    await running.close();
    await Promise.all([flask.close(), fastapi.close()]);
  });
  return Object.assign(running, { admin_: `http://127.0.0.1:${running.adminAddress.port}`, traffic: `http://127.0.0.1:${running.proxy.address.port}`, flask, fastapi });
}

const predict = (a: Setup, x: number, path = '/predict/'): Promise<Reply> =>
  send(a.traffic + path, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer model-key' }, body: JSON.stringify({ x }) });
const view = async (a: Setup): Promise<ShadowView> => JSON.parse((await send(`${a.admin_}/shadow`)).body.toString()) as ShadowView;
const put = (a: Setup, json: unknown, token?: string): Promise<Reply> =>
  send(`${a.admin_}/shadow`, { method: 'PUT', headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) }, body: JSON.stringify(json) });
const finished = (v: ShadowView): number => v.counts.match + v.counts.mismatch + v.counts.error + v.counts.dropped;
const settled = (a: Setup, n: number): Promise<void> => until(async () => finished(await view(a)) >= n && (await view(a)).inflight === 0);
const metric = async (a: Setup, line: string): Promise<number> => {
  const text = (await send(`${a.admin_}/metrics`)).body.toString();
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? NaN : Number(found.slice(line.length + 1));
};

t.test('copies of the baseline requests go to the shadow, marked; the client gets the primary answer; mismatches are counted and logged', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shadow-'));
  const log = join(dir, 'mismatches.jsonl');
  // The canary answers odd inputs differently.
  const a = await app(t, { shadowSample: '1', shadowLog: log }, { fastapi: model((x) => (x % 2 === 1 ? x + 1 : x)) });
  for (let x = 1; x <= 4; x++) {
    const r = await predict(a, x);
    t.same(JSON.parse(r.body.toString()), { y: x }, 'the primary answer');
    t.equal(r.headers['x-drum-splitter-upstream'], 'flask');
  }
  await settled(a, 4);
  const v = await view(a);
  t.match(v, { enabled: true, sampleRate: 1, upstream: 'fastapi', counts: { match: 2, mismatch: 2, error: 0, dropped: 0 }, matchRate: 0.5, log });
  t.equal(traffic(a.fastapi).length, 4, 'each request copied once');
  t.ok(traffic(a.fastapi).every((s) => s.headers['x-drum-splitter-shadow'] === '1'), 'copies carry X-Drum-Splitter-Shadow: 1');
  t.ok(traffic(a.flask).every((s) => s.headers['x-drum-splitter-shadow'] === undefined), 'the primary does not');
  t.same(traffic(a.fastapi).map((s) => s.body.toString()), traffic(a.flask).map((s) => s.body.toString()), 'the same bodies');
  t.equal(traffic(a.fastapi)[0]!.headers.authorization, 'Bearer model-key', 'the copy carries the real headers');
  t.equal(await metric(a, 'drum_shadow_requests_total{result="mismatch"}'), 2);
  t.equal(await metric(a, 'drum_shadow_requests_total{result="match"}'), 2);
  t.equal(await metric(a, 'drum_shadow_duration_seconds_count{server_type="flask"}'), 4, 'paired latency, the primary side');
  t.equal(await metric(a, 'drum_shadow_duration_seconds_count{server_type="fastapi"}'), 4, 'and the shadow side');

  await a.close();
  t.equal(statSync(log).mode & 0o777, 0o600);
  const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ShadowLine);
  t.equal(lines.length, 2, 'only the mismatches');
  t.match(lines[0], {
    method: 'POST',
    path: '/predict/',
    body_hex: Buffer.from('{"x":1}').toString('hex'),
    content_type: 'application/json',
    baseline: { upstream: 'flask', status: 200, body_hex: Buffer.from('{"y":1}').toString('hex') },
    shadow: { upstream: 'fastapi', status: 200, body_hex: Buffer.from('{"y":2}').toString('hex') },
    kind: 'json',
    differences: [{ path: '$.y', baseline: 1, canary: 2, kind: 'changed' }],
  });
  t.equal(lines[0]!.headers.authorization, '[REDACTED]', 'the log redacts as the recording does');
  const recordings = await openRecordings([log], true);
  const records: ReplayRecord[] = [];
  for await (const r of recordings.records()) records.push(r);
  await recordings.close();
  t.same(records.map((r) => Buffer.from(r.body).toString()), ['{"x":1}', '{"x":3}'], 'and drum-splitter replay takes the log as its input');
  t.same(recordings.skipped.counts, { malformed: 0, truncated: 0 });
});

t.test('only the baseline share, only the shadow paths, only the sampled share', async (t) => {
  const a = await app(t, { shadowSample: '1', shadowPaths: ['/predict/'], overrideHeader: 'x-upstream' });
  await predict(a, 1, '/ping');
  await send(`${a.traffic}/predict/`, { method: 'POST', headers: { 'x-upstream': 'fastapi' }, body: '{"x":1}' });
  await predict(a, 2);
  await send(`${a.traffic}/predict/?q=1`);
  await send(`${a.traffic}/predict/`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: '' });
  await settled(a, 3);
  t.same(
    traffic(a.fastapi).map((s) => [s.method, s.url, s.headers['x-drum-splitter-shadow'], s.headers['content-length']]),
    [['POST', '/predict/', undefined, '7'], ['POST', '/predict/', '1', '7'], ['GET', '/predict/?q=1', '1', undefined], ['POST', '/predict/', '1', '0']],
    'the canary request itself, then the copies (a GET without a body too)',
  );

  t.equal((await put(a, { enabled: false })).status, 200, 'switched off');
  await predict(a, 3);
  t.equal(traffic(a.fastapi).length, 4, 'no more copies');
  t.match(await view(a), { enabled: false, sampleRate: 1 });
});

t.test('a slow, failing or absent shadow changes nothing for the client', async (t) => {
  t.test('slow: the client has its answer while the copy still waits', async (t) => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const a = await app(t, { shadowSample: '1' }, { fastapi: (req, res, body) => void held.then(() => model()(req, res, body)) });
    const r = await predict(a, 1);
    t.equal(r.status, 200);
    t.same(JSON.parse(r.body.toString()), { y: 1 });
    t.equal((await view(a)).inflight, 1, 'the copy is still out');
    release();
    await settled(a, 1);
    t.match((await view(a)).counts, { match: 1 });
  });

  t.test('down: counted as an error, then copies dropped for a second rather than a connection tried for each', async (t) => {
    const a = await app(t, { shadowSample: '1' }, { fastapiUrl: `http://127.0.0.1:${await freePort()}` });
    t.equal((await predict(a, 1)).status, 200);
    await settled(a, 1);
    t.equal((await predict(a, 2)).status, 200);
    await settled(a, 2);
    t.match((await view(a)).counts, { error: 1, dropped: 1, match: 0 });
    t.equal(await metric(a, 'drum_shadow_requests_total{result="error"}'), 1);
    t.equal(await metric(a, 'drum_shadow_errors_total{reason="unreachable"}'), 1);
    t.equal(await metric(a, 'drum_shadow_dropped_total{reason="down"}'), 1);
  });

  t.test('reset: counted as an error (failed)', async (t) => {
    const a = await app(t, { shadowSample: '1' }, { fastapi: (_req, res) => res.destroy() });
    t.equal((await predict(a, 1)).status, 200);
    await settled(a, 1);
    t.match((await view(a)).counts, { error: 1 });
    t.equal(await metric(a, 'drum_shadow_errors_total{reason="failed"}'), 1);
    t.equal(await metric(a, 'drum_shadow_errors_total{reason="timeout"}'), 0);
  });

  t.test('trickling a byte a second: cut at --shadow-timeout (the whole copy), its slot freed; later copies still sent and compared', async (t) => {
    // Never idle for --timeout (1.5 s), so only a limit on the whole copy ends it.
    let calls = 0;
    const trickle: UpstreamHandler = (req, res, body) => {
      if (!req.url!.startsWith('/predict') || ++calls > 2) return model()(req, res, body);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{');
      const tick = setInterval(() => res.write(' '), 1000);
      res.on('close', () => clearInterval(tick));
    };
    const a = await app(t, { shadowSample: '1', shadowMaxInflight: '2', timeout: '1500ms' }, { fastapi: trickle });
    t.equal((await a.shadow.view()).timeoutMs, 1500, 'the default: --timeout, under 10 s');
    const start = Date.now();
    t.equal((await predict(a, 1)).status, 200);
    t.equal((await predict(a, 2)).status, 200);
    t.equal((await view(a)).inflight, 2, 'both slots taken');
    await until(async () => (await view(a)).counts.error === 2, 5000);
    t.ok(Date.now() - start >= 1400, `cut after ${Date.now() - start} ms, at --shadow-timeout`);
    t.match(await view(a), { inflight: 0, counts: { error: 2, dropped: 0 } }, 'the slots are free');
    t.equal(await metric(a, 'drum_shadow_errors_total{reason="timeout"}'), 2);

    t.equal((await predict(a, 3)).status, 200);
    t.equal((await predict(a, 4)).status, 200);
    await settled(a, 4);
    t.match((await view(a)).counts, { match: 2, error: 2, dropped: 0 });
    t.equal(await metric(a, 'drum_shadow_dropped_total{reason="inflight"}'), 0, 'none dropped for want of a slot');
    t.equal(traffic(a.fastapi).length, 4, 'every copy was sent');
  });

  t.test('silent: shutdown does not wait for it; the copy cut is dropped', async (t) => {
    const a = await app(t, { shadowSample: '1' }, { fastapi: () => {} });
    t.equal((await predict(a, 1)).status, 200);
    await until(async () => traffic(a.fastapi).length === 1);
    const start = Date.now();
    await a.close();
    t.ok(Date.now() - start < 5000, `closed in ${Date.now() - start} ms, not after --timeout (120 s)`);
    t.match(a.shadow.view(), { inflight: 0, counts: { dropped: 1, error: 0 } });
  });

  t.test('failing: its 500 is a mismatch, not the client error', async (t) => {
    const a = await app(t, { shadowSample: '1' }, { fastapi: (_req, res) => res.writeHead(500).end('boom') });
    t.equal((await predict(a, 1)).status, 200);
    await settled(a, 1);
    t.match((await view(a)).counts, { mismatch: 1 });
  });
});

/** {"y": x + shift(x), "id": random, "time": ms}: a random id and a timestamp in every answer. */
const stamped =
  (shift: (x: number) => number): UpstreamHandler =>
  (_req, res, body) => {
    // The app's own /ping and /stats/ polls have no body.
    const x = body.length === 0 ? 0 : (JSON.parse(body.toString()) as { x: number }).x;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ y: x + shift(x), id: Math.random().toString(36).slice(2), time: performance.now() }));
  };

t.test('--shadow-noise-sample: a random id and a timestamp in both answers are noise, not mismatches; GET /shadow says which fields and how much; --shadow-absolute', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shadow-noise-'));
  const log = join(dir, 'mismatches.jsonl');
  // The canary: y off by 1e-4 for even x (within --shadow-absolute 0.001), by 1 for odd x (a real difference).
  const handlers = { flask: stamped(() => 0), fastapi: stamped((x) => (x % 2 === 1 ? 1 : 1e-4)) };
  const a = await app(t, { shadowSample: '1', shadowNoiseSample: '1', shadowAbsolute: '0.001', shadowLog: log }, handlers);
  for (let x = 1; x <= 6; x++) await predict(a, x);
  await settled(a, 6);
  const v = await view(a);
  t.match(v, { noiseSample: 1, tolerance: { relative: 0, absolute: 0.001 }, counts: { match: 3, mismatch: 3 } });
  t.strictSame(v.noise!.routes, { '/predict/': { compared: 6, noisePairs: 6 } });
  t.match(v.noise!.fields, [
    { route: '/predict/', field: '$.id', differences: 6, compared: 6, noiseDifferences: 6, noisePairs: 6, rate: 1, noiseRate: 1, verdict: 'noise', discounted: 6 },
    { route: '/predict/', field: '$.time', verdict: 'noise', discounted: 6 },
  ]);
  t.equal(v.noise!.fields.length, 2);
  t.equal(v.noise!.discounted, 3, 'the even ones matched only because their differences were noise');
  const again = traffic(a.flask).filter((s) => s.headers['x-drum-splitter-shadow'] === '1');
  t.equal(again.length, 6, 'each copy also to the baseline, marked');
  t.same(again.map((s) => s.body.toString()), traffic(a.fastapi).map((s) => s.body.toString()), 'the same request as the shadow got');
  await a.close();
  const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ShadowLine);
  t.strictSame(lines.map((l) => l.differences.map((d) => d.field)), [['$.y'], ['$.y'], ['$.y']], 'the mismatches, without their noise');

  // The same without a noise sample: every copy differs at the id and the time.
  const plain = await app(t, { shadowSample: '1', shadowAbsolute: '0.001' }, handlers);
  for (let x = 1; x <= 4; x++) await predict(plain, x);
  await settled(plain, 4);
  t.match(await view(plain), { noiseSample: 0, noise: null, counts: { match: 0, mismatch: 4 } });
});

t.test('--shadow-noise-sample: a second baseline call that fails leaves no noise pair; the copy is compared as without one', async (t) => {
  const noisy = stamped(() => 0);
  const a = await app(t, { shadowSample: '1', shadowNoiseSample: '1' }, {
    flask: (req, res, body) => (req.headers['x-drum-splitter-shadow'] === '1' ? res.destroy() : noisy(req, res, body)),
    fastapi: noisy,
  });
  await predict(a, 1);
  await settled(a, 1);
  t.match(await view(a), { counts: { mismatch: 1 }, noise: { routes: { '/predict/': { compared: 1, noisePairs: 0 } }, fields: [], discounted: 0 } });
});

t.test('bounded: past --shadow-max-inflight or --shadow-max-body a copy is dropped and counted', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const a = await app(t, { shadowSample: '1', shadowMaxInflight: '2', shadowMaxBody: '64' }, {
    flask: (req, res, body) => (body.toString() === '{"x":"big answer"}' ? res.end('a'.repeat(100)) : model()(req, res, body)),
    fastapi: (req, res, body) => void held.then(() => (body.toString() === '{"x":3}' ? res.end('b'.repeat(100)) : model()(req, res, body))),
  });
  await predict(a, 1);
  await predict(a, 2);
  await predict(a, 4);
  t.match(await view(a), { inflight: 2, counts: { dropped: 1 } }, 'the third is over the limit');
  release();
  await settled(a, 3);
  t.equal(await metric(a, 'drum_shadow_dropped_total{reason="inflight"}'), 1);

  const big = JSON.stringify({ x: 'y'.repeat(100) });
  t.equal((await send(`${a.traffic}/predict/`, { method: 'POST', body: big })).status, 200, 'a request body over the limit');
  await send(`${a.traffic}/predict/`, { method: 'POST', body: '{"x":"big answer"}' }); // the primary answer over the limit
  await predict(a, 3); // the shadow answer over the limit: its call is cut
  await settled(a, 6);
  t.equal(await metric(a, 'drum_shadow_dropped_total{reason="body"}'), 3);
  t.match((await view(a)).counts, { dropped: 4, match: 2 });
});

t.test('a chunked request body over the limit is dropped once it has passed', async (t) => {
  const a = await app(t, { shadowSample: '1', shadowMaxBody: '16', requestBuffering: false });
  const { request } = await import('node:http');
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(`${a.traffic}/predict/`, { method: 'POST' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.write('{"x":');
    req.end(' 12345678901234567890}');
  });
  t.equal(status, 200);
  await settled(a, 1);
  t.equal(await metric(a, 'drum_shadow_dropped_total{reason="body"}'), 1);
  t.equal(traffic(a.fastapi).length, 0, 'nothing was sent');
});

t.test('an exchange the primary did not finish is not copied', async (t) => {
  const a = await app(t, { shadowSample: '1', timeout: '200ms' }, { flask: () => {} });
  t.equal((await predict(a, 1)).status, 504);
  await settled(a, 1);
  t.equal(await metric(a, 'drum_shadow_dropped_total{reason="incomplete"}'), 1);
  t.equal(traffic(a.fastapi).length, 0);
});

t.test('a streamed answer still streams to the client while it is copied', async (t) => {
  let more!: () => void;
  const next = new Promise<void>((r) => (more = r));
  const stream = (_req: unknown, res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: one\n\n');
    void next.then(() => res.end('data: two\n\n'));
  };
  const a = await app(t, { shadowSample: '1' }, { flask: stream, fastapi: stream });
  const { request } = await import('node:http');
  const first = await new Promise<string>((resolve, reject) => {
    const req = request(`${a.traffic}/predict/`, { method: 'POST' }, (res) => {
      res.once('data', (d: Buffer) => resolve(d.toString()));
      res.on('end', () => undefined);
    });
    req.on('error', reject);
    req.end('{}');
  });
  t.equal(first, 'data: one\n\n', 'the first event arrived before the upstream finished');
  more();
  await settled(a, 1);
  t.match((await view(a)).counts, { match: 1 });
});

t.test('GET/PUT /shadow: the switch, with the token, and clear refusals', async (t) => {
  const a = await app(t, {}, {});
  t.match(await view(a), { enabled: false, sampleRate: 0, upstream: 'fastapi', maxInflight: 64, maxBody: 1_000_000, log: null, counts: { match: 0 } });
  const cases: [unknown, number, RegExp | undefined][] = [
    [{}, 400, /send "enabled" and\/or "sampleRate"/],
    [{ enabled: true }, 400, /needs a sample rate above 0/],
    [{ sampleRate: 2 }, 400, /sampleRate/],
    [{ enabled: 'yes' }, 400, /enabled/],
    [{ sampleRate: 0.5, extra: 1 }, 400, /extra/],
    [{ sampleRate: 0.5, reason: 'compare before step 2' }, 200, undefined],
  ];
  for (const [json, status, message] of cases) {
    const r = await put(a, json);
    t.equal(r.status, status, JSON.stringify(json));
    if (message !== undefined) t.match(JSON.parse(r.body.toString()), { error: 'invalid', message });
  }
  t.match(await view(a), { enabled: false, sampleRate: 0.5 }, 'a rate alone is only the rate, as for the recording');
  t.equal((await put(a, { enabled: true })).status, 200);
  t.match(await view(a), { enabled: true, sampleRate: 0.5 }, 'on at it');
  const zero = await put(a, { sampleRate: 0 });
  t.equal(zero.status, 400, 'on with a rate of 0 is refused');
  t.match(JSON.parse(zero.body.toString()), { message: /to stop it, send \{"enabled": false\}/ });
  t.equal((await put(a, { enabled: false })).status, 200);
  t.match(await view(a), { enabled: false, sampleRate: 0.5 }, 'off keeps the rate');

  const single = await startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: [`flask=${a.flask.url}`] } }, { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log: silentLog });
  t.teardown(() => single.close());
  const singleAdmin = `http://127.0.0.1:${single.adminAddress.port}`;
  t.match(JSON.parse((await send(`${singleAdmin}/shadow`)).body.toString()), { enabled: false, upstream: null });
  const refused = await send(`${singleAdmin}/shadow`, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: '{"enabled":true,"sampleRate":1}' });
  t.equal(refused.status, 400);
  t.match(JSON.parse(refused.body.toString()), { message: /no upstream to shadow to/ });
  const anonymous = await send(`${singleAdmin}/shadow`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"enabled":false}' });
  t.equal(anonymous.status, 401, 'a write needs the token');
});

t.test('the shadow log: 0600, a full queue dropped and said, a failing disk said once a minute; an unwritable place refused at start', async (t) => {
  const said: string[] = [];
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void (lines.push(line), said.push((JSON.parse(line) as { msg: string }).msg)) });
  const file = join(mkdtempSync(join(tmpdir(), 'shadow-log-')), 'm.jsonl');
  const writer = new ShadowLog(file, log);
  const line = { method: 'POST', body_hex: 'ab'.repeat(3_000_000) } as unknown as ShadowLine;
  for (let i = 0; i < 4; i++) writer.write(line); // 24 MB at once: past the 16 MB queue
  await writer.close();
  t.equal(readFileSync(file, 'utf8').split('\n').length - 1, 2, 'what fitted was written');
  t.same(said, ['the shadow log cannot keep up; mismatch lines are being dropped', 'shadow log lines dropped (the disk could not keep up)']);

  said.length = 0;
  const clock = { now: 0 };
  const full = new ShadowLog('/dev/full', log, () => clock.now);
  full.write(line);
  await until(() => said.length > 0);
  t.same(said, ['cannot write the shadow log']);
  // Once a minute, as the recorder's: a full disk is one line, not one per mismatch.
  const small = { method: 'POST' } as unknown as ShadowLine;
  for (let i = 0; i < 5; i++) {
    clock.now += 1000;
    full.write(small);
    await new Promise((r) => setTimeout(r, 20));
  }
  t.same(said, ['cannot write the shadow log'], 'the errors within the minute are not logged');
  clock.now += 60_000;
  full.write(small);
  await until(() => said.length > 1);
  t.match(JSON.parse(lines.at(-1)!), { msg: 'cannot write the shadow log', file: '/dev/full', errors_not_logged: 5 });

  // An existing file someone opened up is made 0600 before the first line.
  const open = join(dirname(file), 'open.jsonl');
  writeFileSync(open, '', { mode: 0o644 });
  const reopened = new ShadowLog(open, log);
  reopened.write(small);
  await reopened.close();
  t.equal(statSync(open).mode & 0o777, 0o600);

  await t.rejects(
    startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', shadowLog: '/nonexistent/dir/m.jsonl' } }, { env: {}, log: silentLog }),
    { name: 'InputError', field: 'shadowLog', message: /\/nonexistent\/dir is not a writable directory/ },
  );
});

t.test('the pause after an unreachable shadow, on an injected clock: one attempt per DOWN_PAUSE_MS', async (t) => {
  const registry = new Registry();
  const results: string[] = [];
  let now = 0;
  const target = createBackend({ name: 'fastapi', url: new URL(`http://127.0.0.1:${await freePort()}`) }, 1000);
  t.teardown(() => target.pool.close());
  const said: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void said.push(JSON.parse(l) as Record<string, unknown>) });
  const shadow = new Shadow(
    { upstream: 'fastapi', sampleRate: 1, paths: ['/predict/'], maxInflight: 8, maxBody: 1000, timeoutMs: 1000, log: undefined, ignore: [], noiseSample: 0, tolerance: DEFAULT_TOLERANCE },
    { baseline: 'flask', target, metrics: createShadowMetrics(registry), log, redact: [], report: (r) => results.push(r), now: () => now },
  );
  const req = { method: 'POST', rawHeaders: ['Content-Length', '2'], headers: { 'content-length': '2' } } as unknown as IncomingMessage;
  /** One exchange of the baseline, answered whole, and its copy's result (the `n`th). */
  const exchange = async (id: number, n: number): Promise<void> => {
    const copy = shadow.copy(id, req, '/predict/', '/predict/', 'flask', 2);
    if (copy === undefined) return;
    copy.body.add(Buffer.from('{}'));
    copy.sending(['Content-Length', '2']);
    copy.head(200);
    copy.answer.add(Buffer.from('{}'));
    shadow.ended({ id, serverType: 'flask', upstream: 'flask', status: 200, sentStatus: 200, origin: 'upstream', method: 'POST', url: '/predict/', client: '', seconds: 0, clientGone: false, bytes: 2, requestComplete: true });
    await until(() => results.length === n);
  };
  await exchange(1, 1);
  t.same(results, ['error'], 'refused: an error');
  now = DOWN_PAUSE_MS - 1;
  await exchange(2, 2);
  t.same(results, ['error', 'dropped'], 'within the pause: dropped, nothing sent');
  // A copy taken before the refusal, whose exchange ends during the pause, is not sent either.
  now = DOWN_PAUSE_MS;
  const early = shadow.copy(3, req, '/predict/', '/predict/', 'flask', 0)!;
  early.sending([]);
  early.head(200);
  await exchange(4, 3);
  t.same(results, ['error', 'dropped', 'error'], 'after it: tried again');
  shadow.ended({ id: 3, serverType: 'flask', upstream: 'flask', status: 200, sentStatus: 200, origin: 'upstream', method: 'POST', url: '/predict/', client: '', seconds: 0, clientGone: false, bytes: 0, requestComplete: true });
  t.same(results, ['error', 'dropped', 'error', 'dropped'], 'one taken before the refusal, ended after: dropped, not sent');
  t.match(said, [{ level: 40, msg: /shadow copies get no answer/, shadow: 'fastapi', reason: 'unreachable', errors_not_logged: 0 }], 'two errors within a minute: said once');
});
