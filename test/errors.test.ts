import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import t from 'tap';
import { freePort, rawExchange, send, startTestProxy, startUpstream } from './helpers/net.js';
import { sleep, until } from './helpers/wait.js';

const json = (b: Buffer): Record<string, unknown> => JSON.parse(b.toString()) as Record<string, unknown>;

t.test('an upstream that refuses the connection → 502 naming it', async (t) => {
  const port = await freePort();
  const proxy = await startTestProxy({ upstreams: [`fastapi=http://127.0.0.1:${port}`] });
  t.teardown(() => proxy.close());
  const r = await send(`${proxy.url}/predict/`);
  t.equal(r.status, 502);
  t.equal(r.headers['content-type'], 'application/json; charset=utf-8');
  t.same(json(r.body), { error: 'bad_gateway', message: 'upstream refused the connection', upstream: 'fastapi' });
  t.equal(r.headers['x-drum-splitter-upstream'], 'fastapi', 'the header names the upstream that failed, as it names one that answers');
  t.equal((await send(`${proxy.url}/ping`)).status, 502, 'still serving');
  const quiet = await startTestProxy({ upstreams: [`fastapi=http://127.0.0.1:${port}`], upstreamHeader: false });
  t.teardown(() => quiet.close());
  const q = await send(`${quiet.url}/predict/`);
  t.equal(q.status, 502);
  t.equal(q.headers['x-drum-splitter-upstream'], undefined, '--no-upstream-header: none on our 502 either');
});

t.test('an upstream that resets the connection → 502, and nothing is retried', async (t) => {
  let requests = 0;
  const upstream = await startUpstream('flask', (req) => {
    requests++;
    req.socket.destroy();
  });
  const proxy = await startTestProxy({ upstreams: [`flask=${upstream.url}`] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  for (const method of ['GET', 'POST', 'PUT']) {
    const before = requests;
    const r = await send(`${proxy.url}/predict/`, { method, body: method === 'GET' ? undefined : 'a,b\n1,2\n' });
    t.equal(r.status, 502, `${method} → 502`);
    t.match(json(r.body), { error: 'bad_gateway', message: /closed the connection/, upstream: 'flask' });
    t.equal(requests - before, 1, `${method} reached the upstream exactly once`);
  }
});

t.test('a 503 with Retry-After is passed on once, not retried', async (t) => {
  let requests = 0;
  const upstream = await startUpstream('flask', (_req, res) => {
    requests++;
    res.writeHead(503, { 'retry-after': '0', 'content-type': 'text/plain' }).end('busy');
  });
  const proxy = await startTestProxy({ upstreams: [`flask=${upstream.url}`] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const r = await send(`${proxy.url}/predict/`);
  t.equal(r.status, 503);
  t.equal(r.body.toString(), 'busy');
  t.equal(r.headers['retry-after'], '0');
  t.equal(requests, 1);
});

t.test('an upstream that does not answer in time → 504, once', async (t) => {
  let requests = 0;
  const upstream = await startUpstream('flask', () => {
    requests++; // never answers
  });
  const proxy = await startTestProxy({ upstreams: [`flask=${upstream.url}`], timeout: '300ms' });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const started = Date.now();
  const r = await send(`${proxy.url}/predict/`);
  const took = Date.now() - started;
  t.equal(r.status, 504);
  t.same(json(r.body), { error: 'gateway_timeout', message: 'upstream timed out', upstream: 'flask' });
  t.equal(r.headers['x-drum-splitter-upstream'], 'flask', 'the header names the upstream that timed out');
  t.ok(took >= 280 && took < 3000, `answered after the 300 ms timeout (${took} ms)`);
  t.equal(requests, 1);
});

t.test('an upstream that stalls mid-body → the client connection is cut', async (t) => {
  const upstream = await startUpstream('flask', (_req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('partial');
  });
  const proxy = await startTestProxy({ upstreams: [`flask=${upstream.url}`], timeout: '300ms' });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const raw = await rawExchange(proxy.address.port, 'GET / HTTP/1.1\r\nHost: h\r\n\r\n');
  t.match(raw, /^HTTP\/1\.1 200 OK/);
  t.match(raw, /partial$/, 'what arrived was passed on, then the connection closed short of Content-Length');
});

t.test('a body over the limit → 413 without reading it, and the upstream never sees it', async (t) => {
  const upstream = await startUpstream('flask');
  const proxy = await startTestProxy({ upstreams: [`flask=${upstream.url}`], bodyLimit: '1000' });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  // Announce 10 GB and send 5 bytes: the answer must come without waiting for the rest.
  const raw = await rawExchange(proxy.address.port, 'POST /predict/ HTTP/1.1\r\nHost: h\r\nContent-Length: 10000000000\r\n\r\nhello');
  t.match(raw, /^HTTP\/1\.1 413 /);
  t.match(raw, /\r\nConnection: close\r\n/i);
  t.match(raw, /"error":"payload_too_large"/);
  t.equal(upstream.seen.length, 0);
  const ok = await send(`${proxy.url}/predict/`, { method: 'POST', body: Buffer.alloc(1000) });
  t.equal(ok.status, 200, 'exactly at the limit is fine');
});

for (const requestBuffering of [true, false]) {
  const mode = requestBuffering ? 'buffered' : 'streamed (--no-request-buffering)';
  t.test(`${mode}: a chunked body that passes the limit → 413; the upstream never gets it whole`, async (t) => {
    let reached = 0;
    let upstreamAborted = false;
    const upstream = await startUpstream(
      'flask',
      (req) => {
        reached++;
        req.resume();
        req.on('aborted', () => (upstreamAborted = true));
        req.on('close', () => (upstreamAborted ||= !req.complete));
      },
      { readBody: false },
    );
    const proxy = await startTestProxy({ upstreams: [`flask=${upstream.url}`], bodyLimit: '1000', requestBuffering });
    t.teardown(async () => {
      await proxy.close();
      await upstream.close();
    });
    const [status, named] = await new Promise<[number, unknown]>((resolve, reject) => {
      const req = request(`${proxy.url}/predict/`, { method: 'POST', agent: false }, (res) => {
        res.resume();
        resolve([res.statusCode!, res.headers['x-drum-splitter-upstream']]);
      });
      req.on('error', reject);
      req.write(Buffer.alloc(600));
      setTimeout(() => req.write(Buffer.alloc(600)), 50);
    });
    t.equal(status, 413);
    t.equal(named, undefined, 'the client\'s fault, no upstream failed: no upstream named in the header');
    await sleep(100);
    if (requestBuffering) t.equal(reached, 0, 'the upstream was never contacted: the body is read before connecting');
    else t.ok(upstreamAborted, 'the partial upstream request was aborted, not completed');
  });
}

t.test('malformed requests → 400 (or 431) with a JSON message', async (t) => {
  const upstream = await startUpstream('flask');
  const proxy = await startTestProxy({ upstreams: [`flask=${upstream.url}`] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const cases: [string, RegExp, RegExp][] = [
    ['GARBAGE\r\n\r\n', /^HTTP\/1\.1 400 /, /"malformed request: HPE_/],
    ['GET /../etc/passwd HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400 /, /climbs above the root/],
    ['GET /a%zz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400 /, /malformed/],
    ['GET / HTTP/1.1\r\nHost: a..b\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400 /, /not a valid host name/],
    ['OPTIONS * HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400 /, /not a path or an absolute URL/],
    ['GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', /^HTTP\/1\.1 400 /, /HPE_/],
    [`GET / HTTP/1.1\r\nHost: h\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`, /^HTTP\/1\.1 431 /, /HPE_HEADER_OVERFLOW/],
  ];
  for (const [bytes, status, message] of cases) {
    const raw = await rawExchange(proxy.address.port, bytes);
    t.match(raw, status, JSON.stringify(bytes.slice(0, 40)));
    t.match(raw, message);
    t.match(raw, /content-type: application\/json/i);
  }
  t.equal(upstream.seen.length, 0, 'none of them reached the upstream');
  const absolute = await rawExchange(proxy.address.port, 'GET http://Model.Example/predict/?q=1 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n');
  t.match(absolute, /^HTTP\/1\.1 200 /, 'absolute-form targets are accepted');
  t.equal(upstream.seen[0]!.url, '/predict/?q=1');
});

for (const requestBuffering of [true, false]) {
  const mode = requestBuffering ? 'buffered' : 'streamed (--no-request-buffering)';
  t.test(`${mode}: a client that aborts mid-upload: nothing reaches the upstream whole, nothing leaks`, async (t) => {
    let reached = 0;
    let upstreamClosed = 0;
    const upstream = await startUpstream(
      'flask',
      (req, res) => {
        reached++;
        req.resume();
        req.on('end', () => res.end('ok'));
        req.on('close', () => (upstreamClosed += req.complete ? 0 : 1));
      },
      { readBody: false },
    );
    const bufferDir = t.testdir({});
    // 100 KB of memory: the 1 MB sent spills to a file, which must be gone afterwards.
    const proxy = await startTestProxy({ upstreams: [`flask=${upstream.url}`], requestBuffering, bufferDir, bufferMemory: '100KB' });
    t.teardown(async () => {
      await proxy.close();
      await upstream.close();
    });
    const socket = connect(proxy.address.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('POST /predict/ HTTP/1.1\r\nHost: h\r\nContent-Length: 10000000\r\n\r\n');
    socket.write(Buffer.alloc(1_000_000));
    // The body so far is on its way: in a spill file, or streaming to the upstream.
    await until(() => (requestBuffering ? readdirSync(bufferDir).length === 1 : reached === 1));
    socket.destroy();
    await until(() => (requestBuffering ? readdirSync(bufferDir).length === 0 : upstreamClosed === 1));
    if (requestBuffering) {
      t.equal(reached, 0, 'the upstream was never contacted');
      t.same(readdirSync(bufferDir), [], 'the spill file is removed');
    } else {
      t.equal(upstreamClosed, 1, 'the upstream request was torn down before its body was complete');
    }
    const backend = proxy.backends.get('flask')!;
    t.equal(backend.pool.stats.running, 0, 'no request still running in the pool');
    t.equal((await send(`${proxy.url}/ping`)).status, 200, 'still serving');
    const open = await new Promise<number>((r) => proxy.server.getConnections((_e, n) => r(n)));
    t.equal(open, 0, 'no client connection left open');
  });
}

t.test('buffered: a client that leaves in the middle of a small announced body: the upstream is never contacted', async (t) => {
  const upstream = await startUpstream('flask');
  const proxy = await startTestProxy({ upstreams: [`flask=${upstream.url}`] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  const socket = connect(proxy.address.port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write('POST /predict/ HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\nsepal_length,');
  await sleep(50);
  socket.destroy();
  await sleep(100);
  t.equal(upstream.seen.length, 0);
  t.equal(proxy.backends.get('flask')!.pool.stats.running, 0, 'no request running in the pool');
  t.equal((await send(`${proxy.url}/predict/`, { method: 'POST', body: 'a,b\n1,2\n' })).status, 200, 'still serving');
  t.equal(upstream.seen.length, 1);
});

t.test('a client that aborts mid-download: upstream response torn down', async (t) => {
  let upstreamGone = false;
  const upstream = await startUpstream('flask', (req, res) => {
    if (req.url !== '/stream') return res.end('pong');
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const timer = setInterval(() => res.write(Buffer.alloc(64 * 1024)), 5);
    res.on('close', () => {
      clearInterval(timer);
      upstreamGone = true;
    });
  });
  const proxy = await startTestProxy({ upstreams: [`flask=${upstream.url}`] });
  t.teardown(async () => {
    await proxy.close();
    await upstream.close();
  });
  await new Promise<void>((resolve) => {
    const req = request(`${proxy.url}/stream`, { agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.end();
  });
  await until(() => upstreamGone);
  t.ok(upstreamGone, 'the upstream stream was closed');
  t.equal(proxy.backends.get('flask')!.pool.stats.running, 0);
  t.equal((await send(`${proxy.url}/ping`)).status, 200, 'still serving');
});
