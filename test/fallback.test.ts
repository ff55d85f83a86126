/**
 * --fallback (issue 29, item 3): a request an upstream other than the baseline fails goes to the
 * baseline once — refused, or reset before a byte of it was written; with `safe`, also a
 * GET/HEAD/OPTIONS whose answer had not begun. Real upstreams on 127.0.0.1, real sockets.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { buildConfig, type RawSettings } from '../src/config/config.js';
import { FALLBACK_HEADER, UPSTREAM_HEADER } from '../src/proxy/handler.js';
import { fallbackReason, type FailedForward, type FallbackMode } from '../src/proxy/fallback.js';
import { startProxy } from '../src/proxy/listener.js';
import { Outcomes, type Outcome } from '../src/observe/outcomes.js';
import { Series } from '../src/observe/series.js';
import { LocalEvidence } from '../src/rollout/evidence.js';
import { parsePlan } from '../src/rollout/plan.js';
import { freePort, quietLists, send, startUpstream, type Reply, type TestUpstream, type UpstreamHandler } from './helpers/net.js';
import { metricSum, sampleSum } from './helpers/metrics.js';
import { until } from './helpers/wait.js';

t.test('fallbackReason: which failures go to the baseline, by mode', async (t) => {
  const f = (at: FailedForward['at'], code: string | undefined, method = 'POST', blame: FailedForward['blame'] = 'upstream'): FailedForward => ({ at, code, blame, method });
  const rows: [FallbackMode, FailedForward, string | undefined, string][] = [
    ['connect', f('connect', 'ECONNREFUSED'), 'refused', 'refused: nothing was written'],
    ['connect', f('connect', 'ECONNRESET'), 'reset', 'reset while connecting (a TLS handshake, a stale keep-alive connection)'],
    ['connect', f('connect', 'UND_ERR_SOCKET'), 'reset', 'closed before the request was written'],
    ['connect', f('connect', 'EPIPE'), 'reset', 'a broken pipe before the request was written'],
    ['connect', f('connect', 'UND_ERR_CONNECT_TIMEOUT'), 'timeout', 'the connect timed out'],
    ['connect', f('connect', 'ENOTFOUND'), 'connect_failed', 'a name that does not resolve'],
    ['connect', f('connect', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'connect_failed', 'a certificate not trusted'],
    ['connect', f('connect', undefined), 'connect_failed', 'an error without a code, before a byte was written'],
    ['safe', f('request', undefined, 'GET'), undefined, 'an error without a code after the request was written'],
    ['connect', f('request', 'ECONNRESET', 'GET'), undefined, 'written: connect leaves even a GET alone'],
    ['connect', f('request', 'ECONNREFUSED'), undefined, 'written, whatever the code'],
    ['connect', f('answer', 'ECONNRESET'), undefined, 'the answer had begun'],
    ['connect', f('connect', 'ECONNREFUSED', 'POST', 'client'), undefined, "the request's own fault"],
    ['connect', f('connect', 'ECONNREFUSED', 'POST', 'proxy'), undefined, 'our own fault (the buffer disk)'],
    ['off', f('connect', 'ECONNREFUSED'), undefined, 'off: never'],
    ['off', f('request', 'ECONNRESET', 'GET'), undefined, 'off: never'],
    ['safe', f('connect', 'ECONNREFUSED'), 'refused', 'safe includes connect'],
    ['safe', f('connect', 'ECONNRESET', 'PATCH'), 'reset', 'safe includes connect, for any method'],
    ['safe', f('request', 'ECONNRESET', 'GET'), 'reset', 'a GET reset before its answer'],
    ['safe', f('request', 'UND_ERR_SOCKET', 'HEAD'), 'reset', 'a HEAD whose connection closed before its answer'],
    ['safe', f('request', 'UND_ERR_HEADERS_TIMEOUT', 'OPTIONS'), 'timeout', 'an OPTIONS with no answer within --timeout'],
    ['safe', f('request', 'ECONNRESET', 'POST'), undefined, 'a POST the upstream may have acted on'],
    ['safe', f('request', 'ECONNRESET', 'PUT'), undefined, 'PUT is idempotent but not safe'],
    ['safe', f('request', 'ECONNRESET', 'DELETE'), undefined, 'DELETE neither'],
    ['safe', f('request', 'HPE_INVALID_CONSTANT', 'GET'), undefined, 'an upstream that answered garbage answered'],
    ['safe', f('answer', 'ECONNRESET', 'GET'), undefined, 'never once the answer has begun'],
    ['safe', f('answer', 'UND_ERR_BODY_TIMEOUT', 'GET'), undefined, 'a body timeout is mid-answer'],
  ];
  for (const [mode, failed, want, why] of rows) t.equal(fallbackReason(mode, failed), want, `${mode} ${failed.at} ${failed.code} ${failed.method}: ${why}`);
});

t.test('--fallback: connect by default, off|connect|safe, anything else refused naming the choices', async (t) => {
  t.equal(buildConfig({}).fallback, 'connect');
  for (const mode of ['off', 'connect', 'safe']) t.equal(buildConfig({ fallback: mode }).fallback, mode);
  t.throws(() => buildConfig({ fallback: 'always' }), { name: 'InputError', field: 'fallback', message: '"always" is not one of off, connect, safe' });
  t.throws(() => buildConfig({ fallback: false }), { name: 'InputError', field: 'fallback', message: '"false" is not one of off, connect, safe' });
});

interface Rig {
  readonly url: string;
  readonly flask: TestUpstream;
  readonly outcomes: Outcome[];
  readonly logs: { msg: string; level: number; upstream?: string; fallback?: string; reason?: string }[];
  metric(name: string, labels: Record<string, string>): Promise<number>;
}

/** The proxy in front of an echoing flask (or `baseline`) and `canary` (a URL), the canary at 100%; its outcomes and log kept. */
async function rig(t: Test, canary: string, settings: RawSettings = {}, baseline?: UpstreamHandler): Promise<Rig> {
  const flask = await startUpstream('flask', baseline);
  const logs: Rig['logs'] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => logs.push(JSON.parse(l) as Rig['logs'][number]) });
  const proxy = await startProxy(buildConfig({ listen: '127.0.0.1:0', upstreams: [`flask=${flask.url}`, `fastapi=${canary}`], weights: ['fastapi=100'], ...settings }), log);
  t.teardown(async () => {
    await proxy.close(0);
    await flask.close();
  });
  const outcomes: Outcome[] = [];
  proxy.outcomes.subscribe('test', (o) => outcomes.push(o));
  return { url: `http://127.0.0.1:${proxy.address.port}`, flask, outcomes, logs, metric: async (name, labels) => sampleSum(await proxy.metrics.text(), name, labels) };
}

const refusing = async (): Promise<string> => `http://127.0.0.1:${await freePort()}`;

/** A TCP server that resets every connection as it accepts it, reached over https: the reset comes during the TLS handshake, before undici writes a byte. */
async function resettingOnAccept(t: Test): Promise<string> {
  const server: NetServer = createNetServer((socket) => socket.resetAndDestroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An upstream that reads each request whole, then resets the connection without a byte of answer. */
async function resettingAfterRequest(t: Test, name = 'fastapi'): Promise<TestUpstream> {
  const up = await startUpstream(name, (req) => req.socket.resetAndDestroy());
  t.teardown(() => up.close());
  return up;
}

const json = (r: Reply): unknown => JSON.parse(r.body.toString());

t.test('a canary that refuses the connection: the baseline answers, with both headers; the canary is charged, the fallback counted', async (t) => {
  const r = await rig(t, await refusing(), { accessLog: true });
  const replies: Reply[] = [];
  for (let i = 0; i < 3; i++) replies.push(await send(`${r.url}/predict/?i=${i}`, { method: 'POST', body: 'a,b\n1,2\n' }));
  for (const reply of replies) {
    t.equal(reply.status, 200);
    t.same(json(reply), { upstream: 'flask', bytes: 8 }, "the baseline's answer");
    t.equal(reply.headers[UPSTREAM_HEADER.toLowerCase()], 'flask', 'X-Drum-Splitter-Upstream names the baseline');
    t.equal(reply.headers[FALLBACK_HEADER.toLowerCase()], 'fastapi', 'X-Drum-Splitter-Fallback names the upstream that failed');
  }
  t.same(r.flask.seen.map((s) => [s.method, s.url, s.body.toString()]), [0, 1, 2].map((i) => ['POST', `/predict/?i=${i}`, 'a,b\n1,2\n']));
  await until(() => r.outcomes.length === 3);
  t.match(r.outcomes, Array(3).fill({ serverType: 'flask', upstream: 'flask', status: 200, origin: 'upstream', fallback: { from: 'fastapi', reason: 'refused', status: 502, seconds: Number } }), 'one outcome an exchange, carrying the failed attempt');
  t.equal(await r.metric('drum_requests_total', { server_type: 'fastapi', status: '502', method: 'POST', origin: 'proxy' }), 3, 'the canary charged with the failure');
  t.equal(await r.metric('drum_requests_total', { server_type: 'flask', status: '200', method: 'POST', origin: 'upstream' }), 3, "and the baseline with its answer");
  t.equal(await r.metric('drum_requests_total', {}), 6, 'nothing else');
  t.equal(await r.metric('drum_fallback_total', { from: 'fastapi', to: 'flask', reason: 'refused' }), 3);
  t.equal(await r.metric('drum_request_duration_seconds_count', { server_type: 'fastapi' }), 3, "the failures' latencies are the canary's");
  t.equal(await r.metric('drum_requests_in_flight', { server_type: 'fastapi' }), 0, 'nothing left in flight on either side');
  t.equal(await r.metric('drum_requests_in_flight', { server_type: 'flask' }), 0);
  t.match(r.logs.filter((l) => l.level === 40), Array(3).fill({ msg: 'upstream refused the connection; sent to the baseline', upstream: 'fastapi', to: 'flask', reason: 'refused' }));
  t.match(r.logs.filter((l) => l.msg === 'request'), Array(3).fill({ method: 'POST', upstream: 'flask', fallback: 'fastapi', status: 200 }), 'the access log names both');
});

t.test('--no-upstream-header: the fallback header still names the upstream that failed', async (t) => {
  const r = await rig(t, await refusing(), { upstreamHeader: false });
  const reply = await send(`${r.url}/predict/`);
  t.equal(reply.status, 200);
  t.equal(reply.headers[UPSTREAM_HEADER.toLowerCase()], undefined);
  t.equal(reply.headers[FALLBACK_HEADER.toLowerCase()], 'fastapi');
});

t.test('a canary that resets the connection before a byte of the request was written: the baseline answers (connect)', async (t) => {
  const r = await rig(t, await resettingOnAccept(t));
  const reply = await send(`${r.url}/predict/`, { method: 'POST', body: 'a,b\n1,2\n' });
  t.equal(reply.status, 200);
  t.equal(reply.headers[FALLBACK_HEADER.toLowerCase()], 'fastapi');
  t.equal(r.flask.seen[0]!.body.toString(), 'a,b\n1,2\n');
  t.equal(await r.metric('drum_fallback_total', { from: 'fastapi', to: 'flask', reason: 'reset' }), 1);
  t.equal(await r.metric('drum_requests_total', { server_type: 'fastapi', status: '502' }), 1);
});

t.test('a request the override header or a cohort rule sent to the canary gets its failure: it asked for that upstream', async (t) => {
  const r = await rig(t, await refusing(), { overrideHeader: 'x-force', weights: ['fastapi=0'], routes: [{ name: 'qa', match: { header: { 'x-qa': '1' } }, upstream: 'fastapi' }] });
  for (const headers of [{ 'x-force': 'fastapi' }, { 'x-qa': '1' }]) {
    const reply = await send(`${r.url}/predict/`, { method: 'POST', body: 'x', headers });
    t.equal(reply.status, 502, JSON.stringify(headers));
    t.equal(reply.headers[FALLBACK_HEADER.toLowerCase()], undefined);
  }
  t.equal(r.flask.seen.length, 0, 'nothing sent to the baseline');
  t.equal(await r.metric('drum_fallback_total', {}), 0);
});

t.test('--fallback off: the failure is the answer, and nothing is counted as a fallback', async (t) => {
  const r = await rig(t, await refusing(), { fallback: 'off' });
  const reply = await send(`${r.url}/predict/`, { method: 'POST', body: 'x' });
  t.equal(reply.status, 502);
  t.same(json(reply), { error: 'bad_gateway', message: 'upstream refused the connection', upstream: 'fastapi' });
  t.equal(reply.headers[FALLBACK_HEADER.toLowerCase()], undefined);
  t.equal(r.flask.seen.length, 0);
  t.equal(await r.metric('drum_fallback_total', {}), 0);
  await until(() => r.outcomes.length === 1);
  t.equal(r.outcomes[0]!.fallback, undefined);
});

t.test('a canary that resets after reading the request: connect leaves it alone; safe sends a GET, HEAD or OPTIONS to the baseline, never a POST', async (t) => {
  const canary = await resettingAfterRequest(t);
  const connect = await rig(t, canary.url);
  const get = await send(`${connect.url}/info/`);
  t.equal(get.status, 502, 'connect: the GET was written, so it is not sent again');
  t.match(json(get), { message: 'upstream closed the connection', upstream: 'fastapi' });
  t.equal(connect.flask.seen.length, 0);

  const safe = await rig(t, canary.url, { fallback: 'safe' });
  for (const method of ['GET', 'HEAD', 'OPTIONS']) {
    const reply = await send(`${safe.url}/info/`, { method });
    t.equal(reply.status, 200, `${method}: the baseline's answer`);
    t.equal(reply.headers[FALLBACK_HEADER.toLowerCase()], 'fastapi');
  }
  t.same(safe.flask.seen.map((s) => s.method), ['GET', 'HEAD', 'OPTIONS']);
  t.equal(await safe.metric('drum_fallback_total', { from: 'fastapi', to: 'flask', reason: 'reset' }), 3);

  const seen = canary.seen.length;
  const post = await send(`${safe.url}/predict/`, { method: 'POST', body: 'a,b\n1,2\n' });
  t.equal(post.status, 502, 'safe: a POST the canary had is not sent again');
  t.equal(canary.seen.length - seen, 1, 'it reached the canary, once');
  t.equal(canary.seen.at(-1)!.body.toString(), 'a,b\n1,2\n', 'whole: its bytes were sent');
  t.same(safe.flask.seen.map((s) => s.method), ['GET', 'HEAD', 'OPTIONS'], 'and never the baseline');
  t.equal(await safe.metric('drum_requests_total', { server_type: 'fastapi', status: '502', method: 'POST' }), 1);
});

t.test('safe: a GET with no answer within --timeout goes to the baseline, the canary charged with a 504', async (t) => {
  const silent = await startUpstream('fastapi', () => {});
  t.teardown(() => silent.close());
  const r = await rig(t, silent.url, { fallback: 'safe', timeout: '300ms' });
  const reply = await send(`${r.url}/info/`);
  t.equal(reply.status, 200);
  t.equal(reply.headers[FALLBACK_HEADER.toLowerCase()], 'fastapi');
  t.equal(await r.metric('drum_fallback_total', { reason: 'timeout' }), 1);
  t.equal(await r.metric('drum_requests_total', { server_type: 'fastapi', status: '504', origin: 'proxy' }), 1);
  await until(() => r.outcomes.length === 1);
  t.ok(r.outcomes[0]!.fallback!.seconds >= 0.3, 'the failed attempt took the timeout');
  t.ok(r.outcomes[0]!.seconds < 0.3, `the baseline's answer is timed alone (${r.outcomes[0]!.seconds} s): the wait is the canary's`);
  const post = await send(`${r.url}/predict/`, { method: 'POST', body: 'x' });
  t.equal(post.status, 504, 'a POST is not sent again');
});

t.test('once a byte of the answer reached the client, nothing is sent again, even a GET under safe', async (t) => {
  const cut = await startUpstream('fastapi', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
    res.write('{"partial":', () => res.socket!.resetAndDestroy());
  });
  t.teardown(() => cut.close());
  const r = await rig(t, cut.url, { fallback: 'safe' });
  const failed = await new Promise<{ status: number; error: string }>((resolve) => {
    request(`${r.url}/info/`, { agent: false }, (res) => {
      res.on('data', () => {});
      res.on('error', (err) => resolve({ status: res.statusCode!, error: err.message }));
      res.on('end', () => resolve({ status: res.statusCode!, error: '' }));
    }).end();
  });
  t.match(failed, { status: 200, error: 'aborted' }, 'the connection cut mid-answer, as nginx does');
  t.equal(r.flask.seen.length, 0, 'the baseline never had it');
  t.equal(await r.metric('drum_fallback_total', {}), 0);
});

t.test('the baseline failing is never sent again: alone, or after a fallback', async (t) => {
  const flaskResets = await resettingAfterRequest(t, 'flask');
  const canary = await startUpstream('fastapi');
  t.teardown(() => canary.close());
  const up = `fastapi=${canary.url}`;
  const logs: { msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => logs.push(JSON.parse(l) as { msg: string }) });
  // The split's choice is the baseline itself: a GET under safe, reset, is answered 502 and not sent again.
  const alone = await startProxy(buildConfig({ listen: '127.0.0.1:0', upstreams: [`flask=${flaskResets.url}`, up], fallback: 'safe' }), log);
  t.teardown(() => alone.close(0));
  const reply = await send(`http://127.0.0.1:${alone.address.port}/info/`);
  t.equal(reply.status, 502);
  t.match(json(reply), { upstream: 'flask' });
  t.equal(flaskResets.seen.length, 1, 'the baseline had it once');
  t.equal(canary.seen.length, 0, 'and no other upstream had it');

  // The canary refuses, the baseline refuses too: 502 naming the baseline, each charged, the one fallback counted.
  const dead = await refusing();
  const both = await startProxy(buildConfig({ listen: '127.0.0.1:0', upstreams: [`flask=${dead}`, `fastapi=${await refusing()}`], weights: ['fastapi=100'] }), log);
  t.teardown(() => both.close(0));
  const outcomes: Outcome[] = [];
  both.outcomes.subscribe('test', (o) => outcomes.push(o));
  const twice = await send(`http://127.0.0.1:${both.address.port}/predict/`, { method: 'POST', body: 'x' });
  t.equal(twice.status, 502);
  t.same(json(twice), { error: 'bad_gateway', message: 'upstream refused the connection', upstream: 'flask' });
  t.equal(twice.headers[FALLBACK_HEADER.toLowerCase()], undefined, "our own error, not the baseline's answer");
  await until(() => outcomes.length === 1);
  t.match(outcomes[0], { serverType: 'flask', status: 502, origin: 'proxy', fallback: { from: 'fastapi', reason: 'refused', status: 502 } });
  const count = (labels: Record<string, string>): Promise<number> => metricSum(both.metrics.registry, 'drum_requests_total', labels);
  t.equal(await count({ server_type: 'fastapi', status: '502' }), 1);
  t.equal(await count({ server_type: 'flask', status: '502' }), 1);
  t.equal(await metricSum(both.metrics.registry, 'drum_fallback_total', { from: 'fastapi', to: 'flask', reason: 'refused' }), 1);
});

/** A POST with `body`, chunked when `chunked`, else with its Content-Length. */
function post(url: string, body: Buffer, chunked = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: chunked ? {} : { 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    if (chunked) for (let i = 0; i < body.length; i += 7000) req.write(body.subarray(i, i + 7000));
    else req.write(body);
    req.end();
  });
}

t.test('bodies go to the baseline whole: in memory, chunked, spilled to a file, streamed', async (t) => {
  const refused = await refusing();
  // 16 KB of memory: the 100 KB bodies spill to a temp file when buffered.
  const buffered = await rig(t, refused, { bufferMemory: '16KB' });
  const streamed = await rig(t, refused, { requestBuffering: false });
  const cases: [string, Rig, Buffer, boolean][] = [
    ['in memory, with Content-Length', buffered, randomBytes(10_000), false],
    ['in memory, chunked', buffered, randomBytes(10_000), true],
    ['spilled, with Content-Length', buffered, randomBytes(100_000), false],
    ['spilled, chunked', buffered, randomBytes(100_000), true],
    ['streamed, with Content-Length (--no-request-buffering)', streamed, randomBytes(100_000), false],
    ['streamed, chunked', streamed, randomBytes(100_000), true],
  ];
  for (const [what, r, body, chunked] of cases) {
    const before = r.flask.seen.length;
    t.equal(await post(`${r.url}/predict/`, body, chunked), 200, what);
    t.ok(r.flask.seen[before]!.body.equals(body), `${what}: byte-exact at the baseline`);
  }
});

t.test('safe, after the canary read the body: a spilled body is read back from its file again; a streamed one cannot be, and the log says so', async (t) => {
  const canary = await resettingAfterRequest(t);
  const body = randomBytes(100_000);
  const spilled = await rig(t, canary.url, { fallback: 'safe', bufferMemory: '16KB' });
  const reply = await send(`${spilled.url}/info/`, { method: 'GET', body, headers: { 'content-length': body.length } });
  t.equal(reply.status, 200);
  t.ok(canary.seen.at(-1)!.body.equals(body), 'the canary read it whole');
  t.ok(spilled.flask.seen[0]!.body.equals(body), 'and the baseline had it whole too');

  const streamed = await rig(t, canary.url, { fallback: 'safe', requestBuffering: false });
  const cut = await send(`${streamed.url}/info/`, { method: 'GET', body, headers: { 'content-length': body.length } });
  t.equal(cut.status, 502);
  t.equal(streamed.flask.seen.length, 0);
  t.match(streamed.logs.find((l) => l.level === 40), { msg: 'upstream closed the connection', fallback: 'reset, not taken: the streamed request body was already read' });
  t.equal(await streamed.metric('drum_fallback_total', {}), 0);
});

const failedOver = (id: number, seconds: number): Outcome => ({
  id, serverType: 'flask', upstream: 'flask', status: 200, sentStatus: 200, origin: 'upstream', method: 'POST', url: '/predict/', client: '', seconds, clientGone: false, bytes: 2, requestComplete: true,
  fallback: { from: 'fastapi', reason: 'refused', status: 502, seconds: 0.001 },
});

t.test("the rollout's window and the console's series charge the upstream that failed, besides the baseline's answer", async (t) => {
  const outcomes = new Outcomes(quietLists);
  const plan = parsePlan({ interval: '1m', window: '5m', steps: [{ weight: 50, hold: '1h' }] }, ['flask', 'fastapi']);
  const evidence = new LocalEvidence({ plan, outcomes, poller: { subscribe: () => () => undefined, downMs: () => 0 }, now: () => 1000 });
  evidence.start(() => true);
  t.teardown(() => evidence.stop());
  const series = new Series({ upstreams: ['flask', 'fastapi'], intervalMs: 10_000, now: () => 10_000, random: () => 0.5 });
  series.listen(outcomes, { subscribe: () => () => undefined });
  for (let i = 1; i <= 4; i++) outcomes.publish(failedOver(i, 0.01));
  const e = await evidence.gather(1000);
  t.same(e.canary, { requests: 4, errors: 4, latencies: [0.001, 0.001, 0.001, 0.001] }, 'the canary: four failures');
  t.same(e.baseline, { requests: 4, errors: 0, latencies: [0.01, 0.01, 0.01, 0.01] }, 'the baseline: its four answers');
  series.tick();
  t.match(series.view().samples[0]!.upstreams, { flask: { rps: 0.4, errorRate: 0 }, fastapi: { rps: 0.4, errorRate: 1, p99: 0.001 } });
});
