import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { buildConfig } from '../src/config/config.js';
import { startProxy } from '../src/proxy/listener.js';
import { UPSTREAM_HEADER } from '../src/proxy/handler.js';
import { compileSplit, hashKey, pickByHash } from '../src/proxy/split.js';
import { closeBackends, createBackend, dispatch } from '../src/proxy/forward.js';
import { rawExchange, send, startTestProxy, startUpstream, type TestUpstream } from './helpers/net.js';
import { sleep, until } from './helpers/wait.js';

async function oneUpstream(t: Test, handler?: Parameters<typeof startUpstream>[1], settings = {}) {
  const upstream = await startUpstream('flask', handler);
  const proxy = await startTestProxy({ upstreams: [`flask=${upstream.url}`], ...settings });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  return { upstream, proxy };
}

/** Index of a raw header name (exact case) in a flat raw-header list, values after it. */
function rawValues(raw: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i] === name) out.push(raw[i + 1]!);
  return out;
}

t.test('binary bodies arrive byte-exact both ways (Content-Length)', async (t) => {
  const reply = randomBytes(3 * 2 ** 20);
  const { upstream, proxy } = await oneUpstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': reply.length });
    res.end(reply);
  });
  const body = randomBytes(5 * 2 ** 20 + 3);
  const r = await send(`${proxy.url}/predictUnstructured/?a=1`, {
    method: 'POST', body, headers: { 'content-type': 'application/octet-stream', 'content-length': body.length },
  });
  t.equal(r.status, 200);
  t.ok(upstream.seen[0]!.body.equals(body), 'request body identical upstream');
  t.equal(upstream.seen[0]!.headers['content-length'], String(body.length));
  t.ok(r.body.equals(reply), 'response body identical at the client');
  t.equal(r.headers['content-length'], String(reply.length));
});

for (const requestBuffering of [true, false]) {
  const how = requestBuffering ? 'is read whole and sent with its Content-Length' : 'streams upstream chunked (--no-request-buffering)';
  t.test(`a chunked request body ${how}, byte-exact`, async (t) => {
    // 30 KB of memory: the 82 KB body spills to a temp file when buffered.
    const { upstream, proxy } = await oneUpstream(t, undefined, { requestBuffering, bufferMemory: '30KB' });
    const parts = [randomBytes(1), randomBytes(70_000), Buffer.from('\r\n0\r\n\r\n'), randomBytes(12345)];
    const r = await new Promise<number>((resolve, reject) => {
      const req = request(`${proxy.url}/predict/`, { method: 'POST', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      for (const p of parts) req.write(p);
      req.end();
    });
    t.equal(r, 200);
    const seen = upstream.seen[0]!;
    const total = parts.reduce((n, p) => n + p.length, 0);
    t.equal(seen.headers['transfer-encoding'], requestBuffering ? undefined : 'chunked');
    t.equal(seen.headers['content-length'], requestBuffering ? String(total) : undefined);
    t.ok(seen.body.equals(Buffer.concat(parts)));
  });
}

t.test('multipart bodies and their Content-Type arrive exactly', async (t) => {
  const { upstream, proxy } = await oneUpstream(t);
  const boundary = '----drumBoundary7MA4YWxkTrZu0gW';
  const file = randomBytes(4096);
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="X"; filename="x.csv"\r\nContent-Type: text/csv\r\n\r\n`),
    file,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const contentType = `multipart/form-data; boundary=${boundary}`;
  await send(`${proxy.url}/predict/`, { method: 'POST', body, headers: { 'Content-Type': contentType } });
  t.equal(upstream.seen[0]!.headers['content-type'], contentType);
  t.ok(upstream.seen[0]!.body.equals(body));
});

t.test('method, path and query string arrive as sent', async (t) => {
  const { upstream, proxy } = await oneUpstream(t);
  const targets = ['/a//b/../c/./d?x=%2F&y=%C3%A9&z', '/predict/?', '/%7Euser/%2e%2e/', '/info/?a=1&a=2#frag'];
  for (const [i, target] of targets.entries()) {
    const method = ['PATCH', 'DELETE', 'PUT', 'OPTIONS'][i]!;
    await rawExchange(proxy.address.port, `${method} ${target} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`);
    t.equal(upstream.seen[i]!.method, method);
    t.equal(upstream.seen[i]!.url, target);
  }
});

t.test('request headers: names keep their case, duplicates stay, hop-by-hop go', async (t) => {
  const { upstream, proxy } = await oneUpstream(t);
  await rawExchange(
    proxy.address.port,
    [
      'POST /predict/ HTTP/1.1', 'Host: model.example:8000', 'X-Custom-CASE: Value  With  Spaces', 'X-Dup: 1', 'X-Dup: 2',
      'Connection: close, X-Remove-Me', 'X-Remove-Me: secret', 'Keep-Alive: timeout=9', 'TE: trailers', 'Trailer: X-T',
      'Upgrade: websocket', 'Proxy-Authorization: Basic Zm9vOmJhcg==', 'Proxy-Connection: keep-alive',
      'Authorization: Bearer model-token', 'Content-Length: 2', '', 'ok',
    ].join('\r\n'),
  );
  const { rawHeaders, headers } = upstream.seen[0]!;
  t.same(rawValues(rawHeaders, 'X-Custom-CASE'), ['Value  With  Spaces']);
  t.same(rawValues(rawHeaders, 'X-Dup'), ['1', '2']);
  t.equal(headers.host, 'model.example:8000', 'Host passes as the client sent it');
  t.equal(headers.authorization, 'Bearer model-token', 'end-to-end auth passes');
  for (const gone of ['x-remove-me', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-connection']) {
    t.equal(headers[gone], undefined, `${gone} stripped`);
  }
  t.not(headers.connection, 'close, X-Remove-Me', "the client's Connection header is not forwarded");
});

t.test('response headers: case, duplicates and status text pass; hop-by-hop go', async (t) => {
  const { proxy } = await oneUpstream(t, (_req, res) => {
    res.writeHead(299, 'Custom Reason', [
      'X-Model-Version', 'v7', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Connection', 'X-Secret', 'X-Secret', 'hidden',
      'Keep-Alive', 'timeout=99', 'Proxy-Authenticate', 'Basic', 'Content-Type', 'text/plain',
    ]);
    res.end('fine');
  });
  const r = await send(`${proxy.url}/predict/`);
  t.equal(r.status, 299);
  t.equal(r.statusMessage, 'Custom Reason');
  t.same(rawValues(r.rawHeaders, 'X-Model-Version'), ['v7']);
  t.same(rawValues(r.rawHeaders, 'Set-Cookie'), ['a=1', 'b=2']);
  t.equal(r.headers['x-secret'], undefined, 'header named in Connection stripped');
  t.equal(r.headers['proxy-authenticate'], undefined);
  t.not(r.headers['keep-alive'], 'timeout=99', "the upstream's Keep-Alive is not passed on");
  t.equal(r.body.toString(), 'fine');
});

t.test('X-Forwarded-For, -Proto and -Host are appended', async (t) => {
  const { upstream, proxy } = await oneUpstream(t);
  await send(`${proxy.url}/p`, { headers: { host: 'model.example' } });
  await send(`${proxy.url}/p`, {
    headers: { host: 'model.example', 'x-forwarded-for': '203.0.113.9, 10.0.0.1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.example' },
  });
  const [first, second] = upstream.seen;
  t.equal(first!.headers['x-forwarded-for'], '127.0.0.1');
  t.equal(first!.headers['x-forwarded-proto'], 'http');
  t.equal(first!.headers['x-forwarded-host'], 'model.example');
  t.equal(second!.headers['x-forwarded-for'], '203.0.113.9, 10.0.0.1, 127.0.0.1');
  t.equal(second!.headers['x-forwarded-proto'], 'https, http');
  t.equal(second!.headers['x-forwarded-host'], 'public.example, model.example');
  t.equal(rawValues(second!.rawHeaders, 'X-Forwarded-For').length, 1, 'one combined header, not two');
});

t.test('--trust-proxy takes $remote_addr from X-Forwarded-For', async (t) => {
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const table = compileSplit([['b', 5000]], 'a');
  const bucket = (addr: string): string => pickByHash(table, hashKey(Buffer.from(addr, 'latin1')))!;
  // Two addresses on different sides of the split, so the upstream tells which was hashed.
  const addrs = Array.from({ length: 50 }, (_, i) => `198.51.100.${i}`);
  const onA = addrs.find((x) => bucket(x) === 'a')!;
  const onB = addrs.find((x) => bucket(x) === 'b')!;
  const socketSide = bucket('127.0.0.1');
  for (const trustProxy of [true, false]) {
    const proxy = await startTestProxy({ upstreams: [`a=${a.url}`, `b=${b.url}`], weights: ['b=50'], key: '$remote_addr', trustProxy });
    const served = [];
    for (const xff of [`10.9.9.9, ${onA}`, `${onB}`, 'not-an-address']) {
      const r = await send(`${proxy.url}/`, { headers: { 'x-forwarded-for': xff } });
      served.push(r.headers[UPSTREAM_HEADER.toLowerCase()]);
    }
    await proxy.close();
    t.same(served, trustProxy ? ['a', 'b', socketSide] : [socketSide, socketSide, socketSide], `trustProxy ${trustProxy}`);
  }
});

t.test('X-Drum-Splitter-Upstream names the backend, and can be switched off', async (t) => {
  const { proxy } = await oneUpstream(t);
  t.equal((await send(`${proxy.url}/`)).headers['x-drum-splitter-upstream'], 'flask');
  const { proxy: quiet } = await oneUpstream(t, undefined, { upstreamHeader: false });
  t.equal((await send(`${quiet.url}/`)).headers['x-drum-splitter-upstream'], undefined);
});

t.test('connections to the upstream are kept alive and reused', async (t) => {
  const { upstream, proxy } = await oneUpstream(t);
  const sockets = new Set<number>();
  upstream.server.on('connection', (s) => sockets.add(s.remotePort!));
  for (let i = 0; i < 20; i++) await send(`${proxy.url}/ping`);
  t.equal(upstream.seen.length, 20);
  t.equal(sockets.size, 1, '20 sequential requests over one upstream connection');
});

t.test('idle upstream connections are let go after upstreamKeepAlive', async (t) => {
  const { upstream, proxy } = await oneUpstream(t, undefined, { upstreamKeepAlive: '150ms' });
  const sockets = new Set<number>();
  upstream.server.on('connection', (s) => sockets.add(s.remotePort!));
  await send(`${proxy.url}/ping`);
  await sleep(400); // past the 150 ms keep-alive
  await send(`${proxy.url}/ping`);
  t.equal(sockets.size, 2, 'a new connection after the idle timeout, never a stale one');
});

t.test('HEAD, 204 and 304 pass without a body', async (t) => {
  const { proxy } = await oneUpstream(t, (req, res) => {
    if (req.url === '/204') res.writeHead(204).end();
    else if (req.url === '/304') res.writeHead(304, { etag: '"x"' }).end();
    else res.writeHead(200, { 'content-length': '11', 'content-type': 'text/plain' }).end(req.method === 'HEAD' ? undefined : 'hello world');
  });
  const head = await send(`${proxy.url}/h`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.headers['content-length'], '11');
  t.equal(head.body.length, 0);
  t.equal((await send(`${proxy.url}/204`)).status, 204);
  const nm = await send(`${proxy.url}/304`);
  t.equal(nm.status, 304);
  t.equal(nm.headers.etag, '"x"');
});

t.test('the override header forces a named upstream, when configured', async (t) => {
  const flask = await startUpstream('flask');
  const fastapi = await startUpstream('fastapi');
  t.teardown(() => Promise.all([flask.close(), fastapi.close()]));
  const proxy = await startTestProxy({ upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`], overrideHeader: 'X-Canary' });
  t.teardown(() => proxy.close());
  const forced = await send(`${proxy.url}/predict/`, { headers: { 'x-canary': 'fastapi' } });
  t.equal(forced.headers['x-drum-splitter-upstream'], 'fastapi');
  t.equal(fastapi.seen[0]!.headers['x-canary'], undefined, 'the override header stays at the proxy');
  t.equal((await send(`${proxy.url}/predict/`)).headers['x-drum-splitter-upstream'], 'flask', 'without it: the split (100% flask)');
  const unknown = await send(`${proxy.url}/predict/`, { headers: { 'x-canary': 'django' } });
  t.equal(unknown.status, 400);
  t.match(JSON.parse(unknown.body.toString()), { error: 'unknown_upstream', upstreams: ['flask', 'fastapi'] });

  const off = await startTestProxy({ upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`] });
  t.teardown(() => off.close());
  const ignored = await send(`${off.url}/predict/`, { headers: { 'x-canary': 'fastapi' } });
  t.equal(ignored.headers['x-drum-splitter-upstream'], 'flask', 'off by default: no header forces anything');
});

t.test('an upstream URL path is prefixed to every request path', async (t) => {
  const upstream: TestUpstream = await startUpstream('flask');
  const proxy = await startTestProxy({ upstreams: [`flask=${upstream.url}/model/v1/`] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  await send(`${proxy.url}/predict/?x=1`);
  t.equal(upstream.seen[0]!.url, '/model/v1/predict/?x=1');
});

t.test('HTTP/1.0 without Host, and absolute-form targets', async (t) => {
  const { upstream, proxy } = await oneUpstream(t);
  const plain = await rawExchange(proxy.address.port, 'GET /info/ HTTP/1.0\r\n\r\n');
  t.match(plain, /^HTTP\/1\.1 200 /);
  t.equal(upstream.seen[0]!.headers['x-forwarded-host'], undefined, 'no Host, no X-Forwarded-Host');
  for (const [target, path] of [['http://h.example', '/'], ['HTTP://h.example?x=1', '/?x=1'], ['http://h.example/p?q', '/p?q']] as const) {
    const r = await rawExchange(proxy.address.port, `GET ${target} HTTP/1.1\r\nHost: h.example\r\nConnection: close\r\n\r\n`);
    t.match(r, /^HTTP\/1\.1 200 /, target);
    t.equal(upstream.seen.at(-1)!.url, path, `${target} goes upstream as ${path}`);
  }
  const badHost = await rawExchange(proxy.address.port, 'GET http://a..b/ HTTP/1.1\r\nHost: ok\r\nConnection: close\r\n\r\n');
  t.match(badHost, /^HTTP\/1\.1 400 [^]*not a valid host name/, "an absolute-form target's host is the $host");
});

t.test('--access-log writes one JSON line per request, 499 for a client gone early', async (t) => {
  const upstream = await startUpstream('flask', (req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('late'), 300);
    else res.end('ok');
  });
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const proxy = await startProxy(buildConfig({ listen: '127.0.0.1:0', upstreams: [`flask=${upstream.url}`], accessLog: true }), log);
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const port = proxy.address.port;
  await send(`http://127.0.0.1:${port}/predict/?a=1`, { method: 'POST', body: 'x' });
  const gone = request(`http://127.0.0.1:${port}/slow`, { agent: false });
  gone.on('error', () => {});
  gone.end();
  setTimeout(() => gone.destroy(), 50);
  const requests = (): Record<string, unknown>[] => lines.filter((l) => l.msg === 'request');
  await until(() => requests().length >= 2);
  t.match(requests()[0], { method: 'POST', url: '/predict/?a=1', client: '127.0.0.1', upstream: 'flask', status: 200, ms: Number });
  t.match(requests()[1], { url: '/slow', status: 499 });
  t.equal(requests().length, 2);
});

t.test('103 Early Hints from the upstream are dropped; the final response passes', async (t) => {
  const { proxy } = await oneUpstream(t, (_req, res) => {
    res.writeEarlyHints({ link: '</model.css>; rel=preload' });
    res.writeHead(200, { 'content-type': 'text/plain' }).end('final');
  });
  const r = await rawExchange(proxy.address.port, 'GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
  t.match(r, /^HTTP\/1\.1 200 OK\r\n/);
  t.notMatch(r, /103/);
  t.match(r, /\r\nfinal\r\n/, 'the final body, chunked');
});

t.test('a call aborted before it reaches a connection is never sent, and its sink hears why', async (t) => {
  const upstream = await startUpstream('flask');
  const backend = createBackend({ name: 'flask', url: new URL(upstream.url) }, 1000);
  t.teardown(async () => {
    await closeBackends(new Map([['flask', backend]]));
    await upstream.close();
  });
  const heard = await new Promise<Error>((resolve) => {
    dispatch(backend, { method: 'GET', path: '/never', headers: ['Host', 'h'], body: null, timeoutMs: 5000 }, (call) => {
      // The client left at once: before undici has a connection for the request.
      call.abort(new Error('client went away'));
      return { head: () => resolve(new Error('an answer came')), data: () => true, end: () => resolve(new Error('an answer ended')), error: resolve };
    });
  });
  t.equal(heard.message, 'client went away');
  // A request that was sent would have been answered by now: keep-alive, loopback.
  await send(`${upstream.url}/after`);
  t.strictSame(upstream.seen.map((s) => s.url), ['/after'], 'the upstream saw only a later request of its own');
});
