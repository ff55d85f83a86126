/** /metrics after known traffic: parsed with a real Prometheus text parser, checked exactly. */
import parsePrometheus from 'parse-prometheus-text-format';
import { pino } from 'pino';
import t from 'tap';
import { startApp } from '../src/app.js';
import { createMetrics, methodLabel } from '../src/observe/metrics.js';
import { describeIdentity, readIdentity } from '../src/observe/health.js';
import { UpstreamPoller, type PollSample } from '../src/observe/poller.js';
import { createStandin } from '../src/cli/standin.js';
import { createBackend } from '../src/proxy/forward.js';
import { freePort, rawExchange, send, silentLog, startUpstream } from './helpers/net.js';
import { metricSum } from './helpers/metrics.js';
import { until } from './helpers/wait.js';

const MiB = 1024 * 1024;

type Families = ReturnType<typeof parsePrometheus>;
/** The value of the one sample of `name` whose labels include `labels`, or undefined. */
function value(families: Families, name: string, labels: Record<string, string>): number | undefined {
  const family = families.find((f) => f.name === name);
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (sample === undefined) return undefined;
  return Number(sample.value ?? sample.count);
}
/** One sample line's value, e.g. name{labels} 10; fails the test if there is not exactly one. */
function sampleLine(text: string, name: string, labels: string): number {
  const lines = text.split('\n').filter((l) => l.startsWith(`${name}{${labels}} `));
  if (lines.length !== 1) throw new Error(`${lines.length} lines for ${name}{${labels}}`);
  return Number(lines[0]!.split(' ')[1]);
}
const series = (families: Families, name: string): Record<string, string>[] =>
  (families.find((f) => f.name === name)?.metrics ?? []).map((m) => m.labels ?? {});

/** A DRUM-like upstream: /stats/ with memory in MB, /ping, 500 on /fail. */
const drumLike = (stats: string | null) => (req: { url?: string }, res: { statusCode: number; end: (s: string) => void }) => {
  if (req.url === '/stats/') {
    res.statusCode = stats === null ? 404 : 200;
    return res.end(stats ?? 'not found');
  }
  res.statusCode = req.url === '/fail' ? 500 : 200;
  res.end('{}');
};

t.test('known traffic, one upstream down: counts, histograms, memory and health', async (t) => {
  const flask = await startUpstream('flask', drumLike('{"mem_info": {"drum_rss": 100.5, "container_used": 50, "total": 16000}}'));
  const fastapi = await startUpstream('fastapi', drumLike(null));
  const dead = await freePort();
  const logLines: { msg: string; upstream?: string }[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => logLines.push(JSON.parse(l) as { msg: string }) });
  const app = await startApp({ flags: {
      listen: '127.0.0.1:0', admin: '127.0.0.1:0', overrideHeader: 'X-To', bodyLimit: '10',
      upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`, `down=http://127.0.0.1:${dead}`], weights: ['fastapi=5'],
    } },
    { env: {}, log },
  );
  t.teardown(async () => {
    await app.close();
    await Promise.all([flask.close(), fastapi.close()]);
  });
  const traffic = `http://127.0.0.1:${app.proxy.address.port}`;
  const to = (name: string) => ({ headers: { 'x-to': name } });
  for (let i = 0; i < 7; i++) await send(`${traffic}/predict/`, to('flask'));
  for (let i = 0; i < 3; i++) t.equal((await send(`${traffic}/fail`, to('flask'))).status, 500);
  for (let i = 0; i < 4; i++) await send(`${traffic}/predict/`, { method: 'POST', body: 'a,b', ...to('fastapi') });
  // Sent there by the override header: its failure is the answer (no fallback for a request that asked for it; test/fallback.test.ts counts those).
  for (let i = 0; i < 2; i++) t.equal((await send(`${traffic}/predict/`, to('down'))).status, 502);
  await rawExchange(app.proxy.address.port, 'GET /../x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
  t.equal((await send(`${traffic}/predict/`, { method: 'POST', body: 'x'.repeat(11), ...to('fastapi') })).status, 413);

  let text = '';
  const scrape = async (): Promise<Families> => {
    const r = await send(`http://127.0.0.1:${app.adminAddress.port}/metrics`);
    t.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
    text = r.body.toString();
    return parsePrometheus(text);
  };
  let m: Families = [];
  await until(async () => series((m = await scrape()), 'drum_upstream_up').length === 3);

  const requests: [Record<string, string>, number][] = [
    [{ server_type: 'flask', status: '200', method: 'GET', origin: 'upstream' }, 7],
    [{ server_type: 'flask', status: '500', method: 'GET', origin: 'upstream' }, 3],
    [{ server_type: 'fastapi', status: '200', method: 'POST', origin: 'upstream' }, 4],
    [{ server_type: 'down', status: '502', method: 'GET', origin: 'proxy' }, 2],
    [{ server_type: 'none', status: '400', method: 'GET', origin: 'proxy' }, 1],
    [{ server_type: 'none', status: '413', method: 'POST', origin: 'proxy' }, 1],
  ];
  for (const [labels, want] of requests) t.equal(value(m, 'drum_requests_total', labels), want, JSON.stringify(labels));
  t.equal(series(m, 'drum_requests_total').length, requests.length, 'no other series');
  t.equal(series(m, 'drum_fallback_total').length, 0, 'no fallback');

  // The parser drops histogram labels, so histogram samples are read off their lines.
  for (const [server_type, count] of [['flask', 10], ['fastapi', 4], ['down', 2]] as const) {
    const bucket = (le: string): number => sampleLine(text, 'drum_request_duration_seconds_bucket', `le="${le}",server_type="${server_type}"`);
    t.equal(sampleLine(text, 'drum_request_duration_seconds_count', `server_type="${server_type}"`), count, `${server_type}: histogram count`);
    t.equal(bucket('+Inf'), count, `${server_type}: +Inf bucket`);
    t.equal(bucket('30'), count, `${server_type}: all under the 30 s bucket`);
    t.ok(bucket('0.001') <= bucket('0.1'), `${server_type}: buckets cumulative`);
  }
  const les = [...text.matchAll(/^drum_request_duration_seconds_bucket\{le="([^"]+)",server_type="flask"\}/gm)].map((x) => x[1]);
  t.same(les, ['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '+Inf']);

  t.equal(value(m, 'drum_memory_bytes', { server_type: 'flask', type: 'rss' }), 100.5 * MiB);
  t.equal(value(m, 'drum_memory_bytes', { server_type: 'flask', type: 'container_used' }), 50 * MiB);
  t.same(series(m, 'drum_memory_bytes').map((l) => l.server_type), ['flask', 'flask'], 'no memory series for upstreams without DRUM /stats/');
  t.same(logLines.filter((l) => /no DRUM \/stats\//.test(l.msg)).map((l) => l.upstream).sort(), ['down', 'fastapi'], 'said once each');

  t.equal(value(m, 'drum_upstream_up', { server_type: 'flask' }), 1);
  t.equal(value(m, 'drum_upstream_up', { server_type: 'fastapi' }), 1);
  t.equal(value(m, 'drum_upstream_up', { server_type: 'down' }), 0);
  t.equal(value(m, 'drum_upstream_down_seconds', { server_type: 'flask' }), 0);
  t.ok(value(m, 'drum_upstream_down_seconds', { server_type: 'down' })! > 0, 'down since start');
  t.same([value(m, 'drum_split_weight_percent', { server_type: 'flask' }), value(m, 'drum_split_weight_percent', { server_type: 'fastapi' })], [95, 5]);
  t.equal(value(m, 'drum_requests_in_flight', { server_type: 'flask' }), 0);
  t.equal(value(m, 'drum_requests_in_flight', { server_type: 'down' }), 0, 'a failure leaves nothing in flight');
  t.ok(m.some((f) => f.name === 'drum_splitter_process_resident_memory_bytes'), "Node's own metrics, prefixed");

  // The seed's error-rate query, by hand: 5xx / all, per server_type.
  const perType = (type: string, five: boolean): number =>
    m.find((f) => f.name === 'drum_requests_total')!.metrics
      .filter((s) => s.labels!.server_type === type && (!five || /^5..$/.test(s.labels!.status!)))
      .reduce((sum, s) => sum + Number(s.value), 0);
  t.equal(perType('flask', true) / perType('flask', false), 0.3);
  t.equal(perType('down', true) / perType('down', false), 1, 'the upstream that failed: all errors');
});

t.test('/metrics on the traffic port only when asked', async (t) => {
  const upstream = await startUpstream('flask');
  t.teardown(() => upstream.close());
  for (const metricsOnTraffic of [false, true]) {
    const app = await startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: [`flask=${upstream.url}`], metricsOnTraffic } }, { env: {}, log: silentLog });
    const r = await send(`http://127.0.0.1:${app.proxy.address.port}/metrics`);
    const other = await send(`http://127.0.0.1:${app.proxy.address.port}/predict/`);
    await app.close();
    t.same(JSON.parse(other.body.toString()), { upstream: 'flask', bytes: 0 }, 'other paths are proxied as ever');
    if (metricsOnTraffic) t.match(r.body.toString(), /^# HELP drum_/m, 'served by drum-splitter');
    else t.same(JSON.parse(r.body.toString()), { upstream: 'flask', bytes: 0 }, 'off: the upstream answers /metrics');
  }
});

t.test('UpstreamPoller: down time on an injected clock', async (t) => {
  const up = await startUpstream('flask', drumLike('{"mem_info": {"drum_rss": 1}}'));
  t.teardown(() => up.close());
  const metrics = createMetrics();
  let now = 1_000_000;
  const backend = createBackend({ name: 'flask', url: new URL(up.url) }, 1000);
  const poller = new UpstreamPoller([backend], metrics, { intervalMs: 60_000, timeoutMs: 500, now: () => now, log: silentLog });
  const down = async (): Promise<number | undefined> => value(parsePrometheus(await metrics.registry.metrics()), 'drum_upstream_down_seconds', { server_type: 'flask' });
  await poller.pollAll();
  t.equal(await down(), 0);
  await up.close();
  now += 10_000;
  await poller.pollAll();
  now += 35_000;
  t.equal(await down(), 45, 'seconds since it last answered, past the seed\'s 30 s trigger');
  t.equal(value(parsePrometheus(await metrics.registry.metrics()), 'drum_memory_bytes', { server_type: 'flask', type: 'rss' }), undefined, 'memory series gone with /stats/');
  poller.start();
  poller.stop();
  await backend.pool.close();
});

t.test('UpstreamPoller: an oversized /stats/ is not read whole, and gives no memory series', async (t) => {
  const big = await startUpstream('big', (req, res) => {
    if (req.url === '/stats/') return void res.end(`{"mem_info": {"drum_rss": 1}, "pad": "${'x'.repeat(100_000)}"}`);
    res.end('{}');
  });
  t.teardown(() => big.close());
  const metrics = createMetrics();
  const backend = createBackend({ name: 'big', url: new URL(big.url) }, 1000);
  const poller = new UpstreamPoller([backend], metrics, { intervalMs: 60_000, timeoutMs: 500, now: Date.now, log: silentLog });
  await poller.pollAll();
  const m = parsePrometheus(await metrics.registry.metrics());
  t.equal(value(m, 'drum_upstream_up', { server_type: 'big' }), 1);
  t.equal(value(m, 'drum_memory_bytes', { server_type: 'big', type: 'rss' }), undefined);
  await backend.pool.close();
});

t.test('UpstreamPoller: listeners hear each poll; one that throws is logged (once a minute), counted, and the others still hear', async (t) => {
  const up = await startUpstream('flask', drumLike('{"mem_info": {"drum_rss": 2, "container_max_used": 3, "container_limit": 4}}'));
  t.teardown(() => up.close());
  const lines: { msg: string; err?: string }[] = [];
  const log = pino({ level: 'error' }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string }) });
  const backend = createBackend({ name: 'flask', url: new URL(up.url) }, 1000);
  const metrics = createMetrics();
  const poller = new UpstreamPoller([backend], metrics, { intervalMs: 60_000, timeoutMs: 500, now: () => 5, log });
  const heard: PollSample[] = [];
  poller.subscribe('broken', () => {
    throw new Error('listener broke');
  });
  const off = poller.subscribe('test', (s) => heard.push(s));
  await poller.pollAll();
  t.same(
    heard.sort((a, b) => a.kind.localeCompare(b.kind)),
    [
      { upstream: 'flask', at: 5, kind: 'info', identity: undefined },
      { upstream: 'flask', at: 5, kind: 'ping', answered: true },
      { upstream: 'flask', at: 5, kind: 'stats', memory: { rss: 2 * 2 ** 20, containerMaxUsed: 3 * 2 ** 20, containerLimit: 4 * 2 ** 20 } },
    ],
  );
  // Three polls (/ping, /stats/, /info/), three failures, one line: the clock (5) stands still within the minute.
  t.match(lines, [{ msg: 'a subscriber failed (drum_subscriber_errors_total)', subscriber: 'polls/broken', err: 'listener broke', errors_not_logged: 0 }]);
  t.equal(lines.length, 1);
  t.equal(await metricSum(metrics.registry, 'drum_subscriber_errors_total', { subscriber: 'polls/broken' }), 3, 'each counted');
  t.equal(poller.downMs('flask'), 0, 'it answers');
  off();
  await poller.pollAll();
  t.equal(heard.length, 3, 'unsubscribed: heard nothing more');
  await backend.pool.close();
});

t.test('UpstreamPoller: an upstream that never answered /ping has been down since the poller started', async (t) => {
  const port = await freePort(); // nothing listens there
  const backend = createBackend({ name: 'fastapi', url: new URL(`http://127.0.0.1:${port}`) }, 1000);
  let now = 1_000;
  const poller = new UpstreamPoller([backend], createMetrics(), { intervalMs: 60_000, timeoutMs: 500, now: () => now, log: pino({ level: 'silent' }) });
  now = 4_000;
  await poller.pollAll();
  t.equal(poller.downMs('fastapi'), 3_000);
  await backend.pool.close();
});

t.test("UpstreamPoller: which server and model a DRUM upstream is, from its /info/; nothing from one that is not DRUM", async (t) => {
  const drum = createStandin('fastapi');
  const drumUrl = await drum.listen({ host: '127.0.0.1', port: 0 });
  const plain = await startUpstream('plain', drumLike(null));
  t.teardown(async () => {
    await drum.close();
    await plain.close();
  });
  const backends = [createBackend({ name: 'fastapi', url: new URL(drumUrl) }, 1000), createBackend({ name: 'plain', url: new URL(plain.url) }, 1000)];
  const poller = new UpstreamPoller(backends, createMetrics(), { intervalMs: 60_000, timeoutMs: 500, now: () => 5, log: silentLog });
  const identities = new Map<string, string | undefined>();
  poller.subscribe('identities', (s) => {
    if (s.kind === 'info') identities.set(s.upstream, s.identity);
  });
  await poller.pollAll();
  const identity = identities.get('fastapi')!;
  t.same(JSON.parse(identity), ['fastapi', 'stand-in', 'python', { name: 'fastapi stand-in', targetType: 'regression' }]);
  t.equal(describeIdentity(identity), 'fastapi stand-in fastapi stand-in');
  t.ok(identities.has('plain') && identities.get('plain') === undefined, 'an upstream whose /info/ names no server or model has no identity');
  const partial = await startUpstream('partial', (req, res) => res.end(req.url === '/info/' ? '{"drumServer": "flask"}' : '{}'));
  t.teardown(() => partial.close());
  const partialBackend = createBackend({ name: 'partial', url: new URL(partial.url) }, 1000);
  t.equal(await readIdentity(partialBackend, 500), '["flask",null,null,null]', 'a field DRUM leaves out is null');
  await partialBackend.pool.close();
  t.equal(describeIdentity(JSON.stringify([null, null, null, null])), '[null,null,null,null]', 'nothing to name: the text itself');
  t.equal(describeIdentity(JSON.stringify(['flask', '1.16', 'python', { name: 7 }])), 'flask 1.16', 'a model name that is not text is left out');
  for (const b of backends) await b.pool.close();
});

t.test('drum_requests_in_flight: what is forwarded now, by upstream, as the handler tells it', async (t) => {
  const metrics = createMetrics();
  metrics.forwardStarted('flask');
  metrics.forwardStarted('flask');
  metrics.forwardStarted('fastapi');
  metrics.forwardEnded('flask');
  metrics.forwardEnded('fastapi');
  t.equal(await metricSum(metrics.registry, 'drum_requests_in_flight', { server_type: 'flask' }), 1);
  t.equal(await metricSum(metrics.registry, 'drum_requests_in_flight', { server_type: 'fastapi' }), 0);
});

t.test('methodLabel keeps the method label bounded', async (t) => {
  for (const [method, want] of [['GET', 'GET'], ['POST', 'POST'], ['PATCH', 'PATCH'], ['BREW', 'other'], ['get', 'other'], [undefined, 'other']] as const) {
    t.equal(methodLabel(method), want, String(method));
  }
});
