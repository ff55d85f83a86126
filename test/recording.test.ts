/**
 * Request recording through the real proxy: in-process proxy and upstreams on loopback sockets,
 * the record file read back after close() (which flushes the writer). No mocks.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { Agent, request, type OutgoingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { RawSettings } from '../src/config/config.js';
import type { RecordLine } from '../src/record/line.js';
import { compileSplit, hashKey, pickByHash } from '../src/proxy/split.js';
import { readLines } from './helpers/files.js';
import { metricSum } from './helpers/metrics.js';
import { freePort, rawExchange, send, startTestProxy, startUpstream, type Reply, type TestUpstream, type UpstreamHandler } from './helpers/net.js';
import { sleep, until, within } from './helpers/wait.js';

// ---------------------------------------------------------------------------------------------
// Helpers

/** The contract's field order (the seed's fields, then ours). */
const FIELD_ORDER = ['timestamp', 'method', 'path', 'headers', 'body_hex', 'content_type', 'id', 'upstream', 'status', 'latency_ms', 'body_truncated'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

const unhex = (s: string | undefined): Buffer => Buffer.from(s ?? '', 'hex');

/** The one line whose path is `path`; fails the test if there is not exactly one. */
function lineFor(t: Test, lines: readonly RecordLine[], path: string): RecordLine {
  const found = lines.filter((l) => l.path === path);
  t.equal(found.length, 1, `one line for ${path}`);
  return found[0] ?? ({} as RecordLine);
}

/** A directory per test: t.testdir() wipes its directory on every call, so it is called once. */
const dirs = new WeakMap<Test, { dir: string; n: number }>();
function recordFile(t: Test): string {
  let d = dirs.get(t);
  if (d === undefined) dirs.set(t, (d = { dir: t.testdir(), n: 0 }));
  return join(d.dir, `r${d.n++}.jsonl`);
}

interface Rig {
  readonly proxy: Awaited<ReturnType<typeof startTestProxy>>;
  readonly file: string;
  /** Closes the proxy once (flushing the recording) and returns the lines written. */
  finish(): Promise<RecordLine[]>;
}

/** A recording proxy (rate 1 unless `settings` says otherwise) in front of the given upstreams. */
async function recordingProxy(t: Test, upstreams: Record<string, TestUpstream | string>, settings: RawSettings = {}): Promise<Rig> {
  const file = recordFile(t);
  const proxy = await startTestProxy({
    upstreams: Object.entries(upstreams).map(([name, u]) => `${name}=${typeof u === 'string' ? u : u.url}`),
    record: file,
    recordSample: 1,
    ...settings,
  });
  let closing: Promise<unknown> | undefined;
  const close = (): Promise<unknown> => (closing ??= proxy.close());
  t.teardown(close);
  return {
    proxy,
    file,
    async finish() {
      await close();
      // The file is opened lazily: none when nothing was ever written.
      return existsSync(file) ? readLines<RecordLine>(t, file) : [];
    },
  };
}

/** An upstream closed when the test ends. */
async function upstream(t: Test, name: string, handler?: UpstreamHandler, opts?: { readBody?: boolean }): Promise<TestUpstream> {
  const u = await startUpstream(name, handler, opts);
  t.teardown(() => u.close());
  return u;
}

/** POST with a Content-Length body. */
function post(url: string, body: Buffer, headers: OutgoingHttpHeaders = {}): Promise<Reply> {
  return send(url, { method: 'POST', body, headers: { 'content-length': body.length, ...headers } });
}

/** POST with a chunked body (no Content-Length), one write per part, a macrotask apart. */
function postChunked(url: string, parts: readonly Buffer[], headers: OutgoingHttpHeaders = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, statusMessage: res.statusMessage!, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    void (async () => {
      for (const p of parts) {
        if (req.destroyed) return;
        req.write(p);
        await sleep(1);
      }
      req.end();
    })();
  });
}

/** Sends half a body, runs `between` (while the rest is held back), then the rest. */
async function halfThenRest(url: string, body: Buffer, between: () => Promise<void>): Promise<number> {
  const req = request(url, { method: 'POST', agent: false, headers: { 'content-length': body.length } });
  const status = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
  });
  req.write(body.subarray(0, body.length / 2));
  try {
    await between();
  } catch (err) {
    status.catch(() => {}); // the destroyed request's "socket hang up" is not the failure
    req.destroy();
    throw err;
  }
  req.end(body.subarray(body.length / 2));
  return status;
}

/** An upstream that does not wait for the body: counts requests as their headers arrive, and resolves `firstData` on the first body bytes. */
async function streamingUpstream(t: Test) {
  const state = {
    calls: 0,
    bodies: [] as Buffer[],
    headers: [] as Record<string, string | string[] | undefined>[],
    firstData: undefined as Promise<void> | undefined,
  };
  let gotData!: () => void;
  const reset = (): void => {
    state.firstData = new Promise((r) => (gotData = r));
  };
  reset();
  const u = await upstream(
    t,
    'flask',
    (req, res) => {
      state.calls++;
      state.headers.push(req.headers);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => {
        chunks.push(c);
        gotData();
      });
      req.on('end', () => {
        state.bodies.push(Buffer.concat(chunks));
        res.end('ok');
      });
    },
    { readBody: false },
  );
  return { u, state, reset };
}

// ---------------------------------------------------------------------------------------------
// 1. Byte-exact bodies

t.test('sampled bodies arrive upstream byte-exact and are recorded byte-exact', async (t) => {
  const u = await upstream(t, 'flask');
  const rig = await recordingProxy(t, { flask: u });

  const binary = Buffer.concat([ALL_BYTES, randomBytes(64 * 1024), Buffer.from(ALL_BYTES).reverse()]);
  const boundary = '----drumRec0rdBoundary9xQ';
  const filePart = Buffer.concat([ALL_BYTES, Buffer.from(`\r\n--${boundary.slice(0, 10)}\r\n`), randomBytes(2048)]);
  const multipart = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nh\u00e9llo \u2713\r\n`, 'utf8'),
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="X"; filename="x.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    filePart,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  // Valid JSON a re-serializer would change: spacing, a duplicate key, escapes, raw UTF-8, key order.
  const json = Buffer.from('{ "z" :1,\n\t"a":  [1 , 2.50e+1,-0.0 ] ,"a":"dup",\r\n "s":"\\u00e9\\ud83d\\ude00\\u0000\\/", "\u00e9":"\u2713" }  \n', 'utf8');
  const cases: [string, Buffer, string][] = [
    ['/predictUnstructured/?case=binary', binary, 'application/octet-stream'],
    ['/predict/?case=multipart', multipart, `multipart/form-data; boundary=${boundary}`],
    ['/predictions/?case=json', json, 'application/json'],
  ];
  for (const [path, body, type] of cases) {
    const r = await post(`${rig.proxy.url}${path}`, body, { 'Content-Type': type });
    t.equal(r.status, 200, path);
  }
  // Chunked from the client: buffered whole, so it goes upstream with a Content-Length.
  const parts = [randomBytes(1), Buffer.from('\r\n0\r\n\r\n'), randomBytes(30_000), ALL_BYTES];
  const chunked = Buffer.concat(parts);
  t.equal((await postChunked(`${rig.proxy.url}/invocations?case=chunked`, parts, { 'Content-Type': 'text/csv' })).status, 200);

  const lines = await rig.finish();
  t.equal(lines.length, 4);
  for (const [i, [path, body, type]] of [...cases, ['/invocations?case=chunked', chunked, 'text/csv'] as const].entries()) {
    const seen = u.seen[i]!;
    t.equal(seen.url, path);
    t.ok(seen.body.equals(body), `${path}: upstream got the same ${body.length} bytes`);
    const line = lineFor(t, lines, path);
    t.ok(unhex(line.body_hex).equals(body), `${path}: body_hex decodes to the same bytes`);
    t.equal(line.body_hex.length, body.length * 2);
    t.equal(line.body_truncated, false);
    t.equal(line.content_type, type);
  }
  const framing = u.seen[3]!.headers;
  t.equal(framing['content-length'], String(chunked.length), 'the buffered chunked body went upstream with a Content-Length');
  t.equal(framing['transfer-encoding'], undefined, 'and not chunked');
  t.notOk(
    Object.keys(lineFor(t, lines, '/invocations?case=chunked').headers).some((n) => /^(transfer-encoding|content-length)$/i.test(n)),
    'the record of a chunked request has neither Transfer-Encoding nor Content-Length',
  );
});

// ---------------------------------------------------------------------------------------------
// 2. The line

t.test('line format: field order, path with query, headers, upstream, status, id, timestamp, latency', async (t) => {
  const flask = await upstream(t, 'flask', (_req, res) => void setTimeout(() => res.writeHead(201).end('made'), 60));
  const fastapi = await upstream(t, 'fastapi', (_req, res) => void res.writeHead(422, { 'content-type': 'application/json' }).end('{"detail":"bad"}'));
  const rig = await recordingProxy(t, { flask, fastapi }, { weights: ['fastapi=50'], key: '$http_x_user' });
  // A user on each side of the 50/50 split.
  const table = compileSplit([['fastapi', 5000]], 'flask');
  const users = Array.from({ length: 64 }, (_, i) => `user-${i}`);
  const side = (u: string): string => pickByHash(table, hashKey(Buffer.from(u, 'latin1')))!;
  const toFlask = users.find((u) => side(u) === 'flask')!;
  const toFastapi = users.find((u) => side(u) === 'fastapi')!;

  const before = Date.now() / 1000;
  const body = '{"rows": [[1, 2]]}';
  const raw = await rawExchange(
    rig.proxy.address.port,
    [
      'POST /predict/?a=1&b=%20x&a=2 HTTP/1.1', 'Host: model.example', `X-User: ${toFlask}`, 'X-Custom-CASE: Value  With  Spaces',
      'Content-Type: application/json; charset=utf-8', 'Connection: close, X-Hop', 'X-Hop: gone', 'Keep-Alive: timeout=5',
      'Transfer-Encoding: chunked', '', `${body.length.toString(16)}`, body, '0', '', '',
    ].join('\r\n'),
  );
  t.match(raw, /^HTTP\/1\.1 201 /);
  t.match(raw, /\r\nX-Drum-Splitter-Upstream: flask\r\n/);
  const second = await send(`${rig.proxy.url}/predictions?q=%E2%9C%93`, { method: 'PATCH', headers: { 'X-User': toFastapi } });
  t.equal(second.status, 422);
  t.equal(second.headers['x-drum-splitter-upstream'], 'fastapi');
  const after = Date.now() / 1000;

  const lines = await rig.finish();
  t.equal(lines.length, 2);
  const text = readFileSync(rig.file, 'latin1').split('\n');
  t.match(text[0], /^\{"timestamp":\d+(\.\d+)?,"method":"POST","path":/, 'the line starts with the seed fields, in order');
  for (const line of lines) t.same(Object.keys(line), FIELD_ORDER, 'fields in the contract order, no response field');

  const a = lineFor(t, lines, '/predict/?a=1&b=%20x&a=2');
  t.equal(a.method, 'POST');
  t.same(Object.keys(a.headers), ['Host', 'X-User', 'X-Custom-CASE', 'Content-Type'], 'original names and order; hop-by-hop and Connection-listed gone');
  t.equal(a.headers['X-Custom-CASE'], 'Value  With  Spaces');
  t.equal(a.headers['Content-Type'], 'application/json; charset=utf-8');
  t.equal(a.content_type, 'application/json; charset=utf-8');
  t.equal(unhex(a.body_hex).toString(), body);
  t.equal(a.upstream, 'flask');
  t.equal(a.status, 201);
  t.ok(a.latency_ms >= 60, `latency_ms ${a.latency_ms} covers the upstream's 60 ms`);
  t.ok(a.latency_ms < 5000, 'and is milliseconds, not microseconds');

  const b = lineFor(t, lines, '/predictions?q=%E2%9C%93');
  t.equal(b.method, 'PATCH');
  t.equal(b.upstream, 'fastapi');
  t.equal(b.status, 422);
  t.equal(b.body_hex, '', 'no body');
  t.equal(b.content_type, '', 'no Content-Type');
  t.ok(b.latency_ms > 0, `latency_ms ${b.latency_ms} > 0`);

  for (const line of lines) {
    t.match(line.id, UUID);
    t.ok(line.timestamp >= before - 0.001 && line.timestamp <= after + 0.001, `timestamp ${line.timestamp} is epoch seconds of the request`);
  }
  t.not(a.id, b.id, 'ids differ');
  t.ok(a.timestamp <= b.timestamp, 'in request order');
});

// ---------------------------------------------------------------------------------------------
// 3. Streaming when not sampled, buffering when sampled

t.test('--no-request-buffering: streamed through untouched, sampled or not; buffered (the default): held until the body is complete', async (t) => {
  const { u, state, reset } = await streamingUpstream(t);
  const body = randomBytes(64 * 1024);

  const streamed: [string, RawSettings, string][] = [
    ['recordSample 0', { recordSample: 0, requestBuffering: false }, '/predict/'],
    ['a path not recorded, at rate 1', { requestBuffering: false }, '/info/'],
    ['sampled', { requestBuffering: false }, '/predict/'],
  ];
  for (const [label, settings, path] of streamed) {
    reset();
    const calls = state.calls;
    const rig = await recordingProxy(t, { flask: u }, settings);
    const status = await halfThenRest(`${rig.proxy.url}${path}`, body, async () => {
      await within(state.firstData!, 3000, `${label}: upstream sees the first half`);
      t.pass(`${label}: the upstream got body bytes while the client held back the rest`);
    });
    t.equal(status, 200);
    t.equal(state.calls - calls, 1);
    t.ok(state.bodies.at(-1)!.equals(body), `${label}: whole body upstream`);
    t.equal(state.headers.at(-1)!['content-length'], String(body.length));
    const lines = await rig.finish();
    if (label === 'sampled') t.ok(unhex(lines[0]!.body_hex).equals(body), 'sampled: recorded whole from the passing chunks');
    else t.same(lines, [], `${label}: no line`);
  }

  reset();
  const calls = state.calls;
  const rig = await recordingProxy(t, { flask: u });
  const status = await halfThenRest(`${rig.proxy.url}/predict/`, body, async () => {
    await sleep(200);
    t.equal(state.calls - calls, 0, 'buffered: the upstream is not called while the body is incomplete');
  });
  t.equal(status, 200, 'buffered: answered once the rest arrived');
  t.equal(state.calls - calls, 1);
  t.ok(state.bodies.at(-1)!.equals(body));
  const lines = await rig.finish();
  t.equal(lines.length, 1);
  t.ok(unhex(lines[0]!.body_hex).equals(body));
});

// ---------------------------------------------------------------------------------------------
// 4. Which requests are sampled

t.test('sampling: the rate holds; default and custom record paths', async (t) => {
  const u = await upstream(t, 'flask');

  t.test('recordSample 0.1 over 2000 requests: within 5 sigma of 200 lines', async (t) => {
    const rig = await recordingProxy(t, { flask: u }, { recordSample: 0.1 });
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    t.teardown(() => agent.destroy());
    const n = 2000;
    const statuses: number[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < n) {
          const i = next++;
          const r = await send(`${rig.proxy.url}/predict/?i=${i}`, { method: 'POST', body: `{"i":${i}}`, agent });
          statuses.push(r.status);
        }
      }),
    );
    t.equal(statuses.length, n);
    t.ok(statuses.every((s) => s === 200), 'every request answered 200');
    const lines = await rig.finish();
    const sigma = Math.sqrt(n * 0.1 * 0.9);
    t.ok(Math.abs(lines.length - 200) <= 5 * sigma, `${lines.length} lines, expected 200 ± ${(5 * sigma).toFixed(0)}`);
    t.equal(new Set(lines.map((l) => l.path)).size, lines.length, 'each sampled request once');
    t.equal(await metricSum(rig.proxy.metrics.registry, 'drum_recorder_records_total'), lines.length, 'drum_recorder_records_total counts them all');
    t.ok(lines.every((l) => l.status === 200 && unhex(l.body_hex).toString() === `{"i":${l.path.slice('/predict/?i='.length)}}`), 'each line has its own body');
  });

  t.test('default record paths: DRUM prediction routes, trailing slash optional, query ignored', async (t) => {
    const rig = await recordingProxy(t, { flask: u });
    const recorded = [
      '/predict/', '/predict', '/predict/?x=1', '/predictions/', '/predictions?y=2&z', '/transform/', '/transform',
      '/invocations', '/invocations/', '/invocations?x=%2F', '/predictUnstructured/', '/predictUnstructured', '/predictionsUnstructured/', '/predictionsUnstructured?q',
      // Matched on $uri, decoded and normalised as the upstream's router sees it; recorded as sent.
      '/pr%65dict/', '//invocations',
    ];
    const skipped = ['/info/', '/ping', '/predict/x', '/predict/x/', '/', '/health/', '/Predict/', '/predictx', '/stats/?predict/'];
    for (const path of [...recorded, ...skipped]) t.equal((await send(`${rig.proxy.url}${path}`, { method: 'POST', body: 'x' })).status, 200, path);
    const lines = await rig.finish();
    t.same(lines.map((l) => l.path).sort(), [...recorded].sort());
  });

  t.test('custom recordPaths replace the default', async (t) => {
    const rig = await recordingProxy(t, { flask: u }, { recordPaths: ['/score'] });
    const paths = ['/score', '/score/', '/score?x=1', '/predict/', '/invocations', '/scores'];
    for (const path of paths) await send(`${rig.proxy.url}${path}`);
    const lines = await rig.finish();
    t.same(lines.map((l) => l.path), ['/score', '/score/', '/score?x=1']);
  });
});

// ---------------------------------------------------------------------------------------------
// 5. Redaction

t.test('redaction: in the record only; default list, additions, none', async (t) => {
  const u = await upstream(t, 'flask');
  const sent = {
    Authorization: 'Bearer api-key-1',
    'Proxy-Authorization': 'Basic cHJveHk6c2VjcmV0',
    Cookie: 'session=abc; theme=dark',
    'X-Api-Key': 'xak-2',
    'DataRobot-Key': 'drk-3',
    'X-DataRobot-Api-Token': 'tok-4',
    'X-Secret': 'shh-5',
    'X-Plain': 'visible-6',
  };
  const R = '[REDACTED]';
  const defaults = { Authorization: R, Cookie: R, 'X-Api-Key': R, 'DataRobot-Key': R, 'X-DataRobot-Api-Token': R };
  const asSent = { Authorization: sent.Authorization, Cookie: sent.Cookie, 'X-Api-Key': sent['X-Api-Key'], 'DataRobot-Key': sent['DataRobot-Key'], 'X-DataRobot-Api-Token': sent['X-DataRobot-Api-Token'] };
  const cases: [string, RawSettings, Record<string, string>][] = [
    ['default', {}, { ...defaults, 'X-Secret': sent['X-Secret'] }],
    ['recordRedact adds to the default', { recordRedact: ['X-Secret'] }, { ...defaults, 'X-Secret': R }],
    ['recordNoRedact: as sent', { recordNoRedact: true }, { ...asSent, 'X-Secret': sent['X-Secret'] }],
    ['recordNoRedact with recordRedact: only that one', { recordNoRedact: true, recordRedact: ['X-Secret'] }, { ...asSent, 'X-Secret': R }],
  ];
  for (const [label, settings, expected] of cases) {
    const rig = await recordingProxy(t, { flask: u }, settings);
    const before = u.seen.length;
    t.equal((await send(`${rig.proxy.url}/predict/`, { headers: sent })).status, 200);
    const [line] = await rig.finish();
    const got = line?.headers ?? {};
    t.same(
      Object.fromEntries(Object.entries(got).filter(([n]) => n !== 'Host')),
      { ...expected, 'X-Plain': sent['X-Plain'] },
      `${label}: recorded headers (Proxy-Authorization is hop-by-hop, never recorded)`,
    );
    const upstreamSaw = u.seen[before]!.headers;
    t.match(
      upstreamSaw,
      { authorization: sent.Authorization, cookie: sent.Cookie, 'x-api-key': 'xak-2', 'datarobot-key': 'drk-3', 'x-datarobot-api-token': 'tok-4', 'x-secret': 'shh-5' },
      `${label}: the upstream gets the real values`,
    );
    t.equal(upstreamSaw['proxy-authorization'], undefined);
  }
});

// ---------------------------------------------------------------------------------------------
// 6. The record cap

t.test('recordMaxBody: bodies over it are forwarded whole, recorded cut and marked', async (t) => {
  const u = await upstream(t, 'flask');
  const rig = await recordingProxy(t, { flask: u }, { recordMaxBody: '1KB' });
  const big = randomBytes(5000);
  const bigChunked = randomBytes(5000);
  const exact = randomBytes(1000);
  const exactChunked = randomBytes(1000);
  const oneOver = randomBytes(1001);
  const capThenMore = randomBytes(2000);
  t.equal((await post(`${rig.proxy.url}/predict/?c=cl5000`, big)).status, 200);
  t.equal((await postChunked(`${rig.proxy.url}/predict/?c=ch5000`, [bigChunked.subarray(0, 700), bigChunked.subarray(700, 1300), bigChunked.subarray(1300)])).status, 200);
  t.equal((await post(`${rig.proxy.url}/predict/?c=cl1000`, exact)).status, 200);
  t.equal((await postChunked(`${rig.proxy.url}/predict/?c=ch1000`, [exactChunked.subarray(0, 400), exactChunked.subarray(400)])).status, 200);
  t.equal((await post(`${rig.proxy.url}/predict/?c=cl1001`, oneOver)).status, 200);
  // The cap filled exactly by one chunk, then more.
  t.equal((await postChunked(`${rig.proxy.url}/predict/?c=ch2000`, [capThenMore.subarray(0, 1000), capThenMore.subarray(1000)])).status, 200);
  const lines = await rig.finish();

  const expect: [string, Buffer, boolean, Record<string, string | undefined>][] = [
    ['cl5000', big, true, { 'content-length': '5000', 'transfer-encoding': undefined }],
    // Buffered, so a chunked body goes upstream with the Content-Length of what was read.
    ['ch5000', bigChunked, true, { 'content-length': '5000', 'transfer-encoding': undefined }],
    ['cl1000', exact, false, { 'content-length': '1000', 'transfer-encoding': undefined }],
    ['ch1000', exactChunked, false, { 'content-length': '1000', 'transfer-encoding': undefined }],
    ['cl1001', oneOver, true, { 'content-length': '1001', 'transfer-encoding': undefined }],
    ['ch2000', capThenMore, true, { 'content-length': '2000', 'transfer-encoding': undefined }],
  ];
  for (const [i, [c, body, truncated, framing]] of expect.entries()) {
    const seen = u.seen[i]!;
    t.equal(seen.url, `/predict/?c=${c}`);
    t.ok(seen.body.equals(body), `${c}: the upstream got all ${body.length} bytes, unaltered`);
    t.same({ 'content-length': seen.headers['content-length'], 'transfer-encoding': seen.headers['transfer-encoding'] }, framing, `${c}: upstream framing`);
    const line = lineFor(t, lines, `/predict/?c=${c}`);
    t.equal(line.body_truncated, truncated, `${c}: body_truncated ${truncated}`);
    t.ok(unhex(line.body_hex).equals(body.subarray(0, 1000)), `${c}: body_hex is the first ${Math.min(1000, body.length)} bytes`);
  }
});

t.test('--no-request-buffering, recordMaxBody: past the cap, a sampled body streams on without waiting for the rest', async (t) => {
  const { u, state } = await streamingUpstream(t);
  const rig = await recordingProxy(t, { flask: u }, { recordMaxBody: '1KB', requestBuffering: false });
  const body = randomBytes(8000); // the first half, 4000 bytes, is past the cap
  const status = await halfThenRest(`${rig.proxy.url}/predict/`, body, async () => {
    await within(state.firstData!, 3000, 'upstream sees bytes past the cap');
    t.pass('the upstream got the body while the client held back its second half');
  });
  t.equal(status, 200);
  t.ok(state.bodies[0]!.equals(body), 'all of it, in order');
  const [line] = await rig.finish();
  t.equal(line?.body_truncated, true);
  t.ok(unhex(line?.body_hex).equals(body.subarray(0, 1000)));
});

// ---------------------------------------------------------------------------------------------
// 7. The body limit still applies while buffering

t.test('bodyLimit: a sampled chunked body over it → 413, the upstream never called, no line', async (t) => {
  const { u, state } = await streamingUpstream(t);
  const rig = await recordingProxy(t, { flask: u }, { bodyLimit: '2KB' });
  const parts = Array.from({ length: 10 }, () => randomBytes(1000));
  const r = await postChunked(`${rig.proxy.url}/predict/`, parts);
  t.equal(r.status, 413);
  t.equal(r.headers['content-type'], 'application/json; charset=utf-8');
  t.match(JSON.parse(r.body.toString()), { error: 'payload_too_large', message: /over the limit of 2000 bytes/ });
  // With Content-Length the refusal comes before any reading.
  const cl = await rawExchange(rig.proxy.address.port, 'POST /predict/ HTTP/1.1\r\nHost: h\r\nContent-Length: 2001\r\n\r\nabc');
  t.match(cl, /^HTTP\/1\.1 413 [^]*"error":"payload_too_large"/);
  // Exactly at the limit, chunked: accepted and recorded.
  const atLimit = randomBytes(2000);
  t.equal((await postChunked(`${rig.proxy.url}/predict/?at=limit`, [atLimit.subarray(0, 1500), atLimit.subarray(1500)])).status, 200);
  t.equal(state.calls, 1, 'only the request within the limit reached the upstream');
  t.ok(state.bodies[0]!.equals(atLimit));
  const lines = await rig.finish();
  t.same(lines.map((l) => l.path), ['/predict/?at=limit'], 'no line for the refused requests');

  // recordMaxBody below bodyLimit: buffering stops at the cap and the rest streams, so the
  // limit is hit while forwarding. The client must still get the 413, and the upstream no
  // complete request, and no line: the body never arrived whole.
  const bodiesBefore = state.bodies.length;
  const capped = await recordingProxy(t, { flask: u }, { bodyLimit: '2KB', recordMaxBody: '1KB' });
  const r2 = await postChunked(`${capped.proxy.url}/predict/?capped`, parts);
  t.equal(r2.status, 413, 'cap below the limit: still 413');
  t.match(JSON.parse(r2.body.toString()), { error: 'payload_too_large' });
  await sleep(50);
  t.equal(state.bodies.length, bodiesBefore, 'no complete request reached the upstream');
  t.same(await capped.finish(), [], 'no line for a body cut off past the cap');
});

// ---------------------------------------------------------------------------------------------
// 8. A client gone mid-body

t.test('a client that leaves mid-body on a sampled request: no upstream call, no line, a 499', async (t) => {
  const { u, state } = await streamingUpstream(t);
  const rig = await recordingProxy(t, { flask: u });
  const heads = [
    'POST /predict/?gone=cl HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n',
    'POST /predict/?gone=chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2710\r\n',
  ];
  for (const [i, head] of heads.entries()) {
    const socket = connect(rig.proxy.address.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(head);
    socket.write(randomBytes(5000));
    await sleep(100);
    socket.destroy();
    await until(async () => (await metricSum(rig.proxy.metrics.registry, 'drum_requests_total', { status: '499' })) >= i + 1, 3000);
    t.equal(await metricSum(rig.proxy.metrics.registry, 'drum_requests_total', { server_type: 'flask', status: '499', method: 'POST', origin: 'proxy' }), i + 1, `${head.split(' ')[1]}: counted as 499`);
  }
  await sleep(100);
  t.equal(state.calls, 0, 'the upstream was never called');
  t.equal(rig.proxy.backends.get('flask')!.pool.stats.running, 0, 'nothing running in the pool');
  t.equal((await send(`${rig.proxy.url}/predict/?after=1`, { method: 'POST', body: 'ok' })).status, 200, 'still serving');
  const lines = await rig.finish();
  t.same(lines.map((l) => l.path), ['/predict/?after=1'], 'no line for the requests whose client left');
});

// ---------------------------------------------------------------------------------------------
// 9. Responses

t.test('recordResponses: the upstream answer is recorded, capped in the record only', async (t) => {
  const small = Buffer.concat([ALL_BYTES, Buffer.from('{"prediction": 0.5}')]);
  const large = randomBytes(50_000);
  const u = await upstream(t, 'flask', (req, res) => {
    if (req.url!.includes('large')) res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(large);
    else res.writeHead(201, { 'content-type': 'application/json' }).end(small);
  });

  const rig = await recordingProxy(t, { flask: u }, { recordResponses: true });
  const r = await post(`${rig.proxy.url}/predict/?small`, Buffer.from('a,b\n1,2\n'));
  t.equal(r.status, 201);
  t.ok(r.body.equals(small));
  const [line] = await rig.finish();
  t.same(Object.keys(line!), [...FIELD_ORDER, 'response'], 'response comes last');
  t.same(line!.response, { status: 201, body_hex: small.toString('hex'), body_truncated: false });
  t.equal(line!.status, 201);

  const capped = await recordingProxy(t, { flask: u }, { recordResponses: true, recordMaxBody: '1KB' });
  const big = await send(`${capped.proxy.url}/predict/?large`);
  t.equal(big.status, 200);
  t.ok(big.body.equals(large), 'the client gets the whole 50 kB response');
  const bigSmall = await post(`${capped.proxy.url}/predict/?small`, Buffer.alloc(10, 1));
  t.ok(bigSmall.body.equals(small));
  const lines = await capped.finish();
  t.same(lineFor(t, lines, '/predict/?large').response, { status: 200, body_hex: large.subarray(0, 1000).toString('hex'), body_truncated: true });
  t.same(lineFor(t, lines, '/predict/?small').response, { status: 201, body_hex: small.toString('hex'), body_truncated: false }, 'a response under the cap is whole');
});

t.test('recordResponses: a response cut off is recorded with the upstream status, marked incomplete', async (t) => {
  const u = await upstream(t, 'flask', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(Buffer.alloc(100, 7)); // and never ends
  });
  const rig = await recordingProxy(t, { flask: u }, { recordResponses: true });
  await new Promise<void>((resolve, reject) => {
    const req = request(`${rig.proxy.url}/predict/`, { method: 'POST', agent: false }, (res) => {
      res.once('data', () => {
        req.destroy(); // the client leaves mid-response
        resolve();
      });
    });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.end('a,b\n1,2\n');
  });
  await until(async () => (await metricSum(rig.proxy.metrics.registry, 'drum_requests_total', { status: '499' })) >= 1, 3000);
  // A second client leaves after sending its whole body, before any response.
  const silent = await upstream(t, 'fastapi', () => {});
  const rig2 = await recordingProxy(t, { fastapi: silent }, { recordResponses: true });
  const socket = connect(rig2.proxy.address.port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write('POST /predict/?left HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc');
  await until(() => silent.seen.length > 0, 3000);
  socket.destroy();
  await until(async () => (await metricSum(rig2.proxy.metrics.registry, 'drum_requests_total', { status: '499' })) >= 1, 3000);
  const [left] = await rig2.finish();
  t.match(left, { path: '/predict/?left', status: 499, body_hex: Buffer.from('abc').toString('hex'), response: { status: 0, body_hex: '', body_truncated: true } }, 'no response yet: status 0');

  const [line] = await rig.finish();
  t.equal(line?.status, 499, 'the client left: 499, as in the metrics');
  t.same(line?.response, { status: 200, body_hex: Buffer.alloc(100, 7).toString('hex'), body_truncated: true }, "the upstream's status, the part that passed, marked cut");
});

// ---------------------------------------------------------------------------------------------
// 10. An upstream that refuses connections

t.test('an upstream that refuses the connection: 502 to the client and in the line', async (t) => {
  const port = await freePort();
  const rig = await recordingProxy(t, { fastapi: `http://127.0.0.1:${port}` });
  const body = randomBytes(300);
  const r = await post(`${rig.proxy.url}/predict/`, body);
  t.equal(r.status, 502);
  t.match(JSON.parse(r.body.toString()), { error: 'bad_gateway', upstream: 'fastapi' });
  const lines = await rig.finish();
  t.equal(lines.length, 1);
  t.match(lines[0], { upstream: 'fastapi', status: 502, body_truncated: false });
  t.ok(unhex(lines[0]!.body_hex).equals(body), 'the request body is still recorded, for replay');
});

// ---------------------------------------------------------------------------------------------
// 11. The records counter

t.test('drum_recorder_records_total counts the lines written', async (t) => {
  const u = await upstream(t, 'flask');
  const rig = await recordingProxy(t, { flask: u });
  t.equal(await metricSum(rig.proxy.metrics.registry, 'drum_recorder_records_total'), 0, 'none before any request');
  for (let i = 0; i < 7; i++) await post(`${rig.proxy.url}/predict/?i=${i}`, Buffer.from(`${i}`));
  for (let i = 0; i < 5; i++) await send(`${rig.proxy.url}/info/?i=${i}`); // not a recorded route
  const lines = await rig.finish();
  t.equal(lines.length, 7);
  t.equal(await metricSum(rig.proxy.metrics.registry, 'drum_recorder_records_total'), lines.length, 'the counter equals the lines in the file');
  t.equal(await metricSum(rig.proxy.metrics.registry, 'drum_recorder_dropped_total'), 0, 'nothing dropped');
});
