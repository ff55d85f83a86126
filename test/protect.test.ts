/**
 * Protecting the upstreams and the verdicts (issue 11): what a client does is never counted
 * against a backend, what a backend does always is, and shutdown drains.
 */
import { once } from 'node:events';
import { readdirSync, rmSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { request, type IncomingMessage } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { pino, type Logger } from 'pino';
import t, { type Test } from 'tap';
import { buildConfig, type RawSettings } from '../src/config/config.js';
import { startProxy } from '../src/proxy/listener.js';
import { MAX_HEADERS } from '../src/proxy/handler.js';
import { sampleSum } from './helpers/metrics.js';
import { sleep, until } from './helpers/wait.js';
import { freePort, rawExchange, send, silentLog, spawnCli, startUpstream, waitForLine, type UpstreamHandler } from './helpers/net.js';

/** A pino logger whose lines land in `lines`. */
function capturedLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) }) };
}

async function rig(t: Test, handler: UpstreamHandler | undefined, settings: RawSettings = {}, log: Logger = silentLog) {
  const upstream = await startUpstream('flask', handler);
  const proxy = await startProxy(buildConfig({ listen: '127.0.0.1:0', upstreams: [`flask=${upstream.url}`], ...settings }), log);
  t.teardown(async () => {
    await proxy.close(0);
    await upstream.close();
  });
  const counted = async (labels: Record<string, string>): Promise<number> => sampleSum(await proxy.metrics.text(), 'drum_requests_total', labels);
  return { upstream, proxy, url: `http://127.0.0.1:${proxy.address.port}`, counted };
}

t.test('two Host headers: our 400, counted as no upstream\'s, never a 502 of the backend', async (t) => {
  const { upstream, proxy, counted } = await rig(t, undefined);
  const raw = await rawExchange(proxy.address.port, 'GET /predict/ HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n');
  t.match(raw, /^HTTP\/1\.1 400 /);
  t.match(raw, /"message":"the request has more than one Host header"/);
  t.equal(upstream.seen.length, 0);
  t.equal(await counted({ server_type: 'none', status: '400', origin: 'proxy' }), 1);
  t.equal(await counted({ server_type: 'flask' }), 0, 'nothing against flask');
});

t.test('an upstream that dies or stalls mid-body: its 502/504, logged, not a client that left', async (t) => {
  for (const responseBuffering of [true, false]) {
    const mode = responseBuffering ? 'buffered' : 'unbuffered';
    const { lines, log } = capturedLog();
    const { url, counted } = await rig(
      t,
      (req, res) => {
        res.writeHead(200, { 'content-length': 100_000 });
        res.write(Buffer.alloc(1000));
        // /reset: the upstream process dies; /stall: it hangs past the proxy's timeout.
        if (req.url === '/reset') setTimeout(() => res.socket!.destroy(), 50);
      },
      { timeout: '300ms', responseBuffering },
      log,
    );
    for (const [path, status, reason] of [['/reset', '502', 'upstream closed the connection'], ['/stall', '504', 'upstream timed out']] as const) {
      const got = await new Promise<{ bytes: number; complete: boolean }>((resolve) => {
        request(`${url}${path}`, { agent: false }, (res) => {
          let bytes = 0;
          res.on('data', (c: Buffer) => (bytes += c.length));
          res.on('close', () => resolve({ bytes, complete: res.complete }));
        }).end();
      });
      t.same(got, { bytes: 1000, complete: false }, `${mode} ${path}: what came is passed on, then the connection is cut`);
      await until(async () => (await counted({ server_type: 'flask', status, origin: 'proxy' })) >= 1);
      t.equal(await counted({ server_type: 'flask', status, origin: 'proxy' }), 1, `${mode} ${path}: counted as flask's ${status}`);
      t.match(lines, [{ level: 40, upstream: 'flask', status: Number(status), msg: `${reason} in the middle of the answer; connection cut` }], `${mode} ${path}: logged`);
      lines.length = 0;
    }
    t.equal(await counted({ status: '499' }), 0, `${mode}: no 499`);
  }
});

t.test(`more than ${MAX_HEADERS} headers: 431, never a request with some of them dropped`, async (t) => {
  const { upstream, proxy, counted } = await rig(t, undefined);
  const junk = (n: number): string => Array.from({ length: n }, (_, i) => `X-${i}: 1\r\n`).join('');
  // Content-Length last, where Node used to drop it: the upstream would have seen an empty POST.
  const over = await rawExchange(proxy.address.port, `POST /predict/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n${junk(MAX_HEADERS)}Content-Length: 5\r\n\r\nhello`);
  t.match(over, /^HTTP\/1\.1 431 /);
  t.match(over, /"error":"too_many_headers"/);
  t.equal(upstream.seen.length, 0, 'nothing reached the upstream');
  t.equal(await counted({ server_type: 'none', status: '431' }), 1);
  const at = await rawExchange(proxy.address.port, `POST /predict/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n${junk(MAX_HEADERS - 3)}Content-Length: 5\r\n\r\nhello`);
  t.match(at, /^HTTP\/1\.1 200 /, `${MAX_HEADERS} headers pass`);
  t.equal(upstream.seen[0]!.body.toString(), 'hello', 'with their body');
});

t.test("requests Node's parser or router would drop: our JSON 400, counted", async (t) => {
  const { upstream, proxy, counted } = await rig(t, undefined);
  const cases: [string, string, RegExp][] = [
    ['an unknown method', 'FOO /predict/ HTTP/1.1\r\nHost: h\r\n\r\n', /"malformed request: HPE_INVALID_METHOD"/],
    ['HTTP/1.1 without Host', 'GET /predict/ HTTP/1.1\r\nConnection: close\r\n\r\n', /"an HTTP\/1\.1 request needs a Host header"/],
    ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', /"CONNECT is not proxied"/],
  ];
  for (const [label, bytes, message] of cases) {
    const raw = await rawExchange(proxy.address.port, bytes);
    t.match(raw, /^HTTP\/1\.1 400 /, label);
    t.match(raw, /content-type: application\/json/i, `${label}: JSON`);
    t.match(raw, message, `${label}: says why`);
  }
  t.equal(upstream.seen.length, 0);
  t.equal(await counted({ server_type: 'none', status: '400', origin: 'proxy' }), cases.length, 'each one counted');
  const old = await rawExchange(proxy.address.port, 'GET /ping HTTP/1.0\r\n\r\n');
  t.match(old, /^HTTP\/1\.1 200 /, 'HTTP/1.0 needs no Host');
});

t.test('server-sent events reach the client as the upstream sends them, buffering on', async (t) => {
  const { url } = await rig(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let n = 0;
    const timer = setInterval(() => {
      res.write(`data: ${n}\n\n`);
      if (++n === 3) {
        clearInterval(timer);
        res.end();
      }
    }, 150);
  });
  const arrivals: [string, number][] = [];
  const started = performance.now();
  await new Promise<void>((resolve) => {
    request(`${url}/v1/chat/completions`, { agent: false }, (res: IncomingMessage) => {
      res.on('data', (c: Buffer) => arrivals.push([c.toString(), performance.now() - started]));
      res.on('end', resolve);
    }).end();
  });
  t.same(arrivals.map(([d]) => d).join(''), 'data: 0\n\ndata: 1\n\ndata: 2\n\n');
  t.ok(arrivals.length >= 3, `each event on its own (${arrivals.length} chunks)`);
  t.ok(arrivals[0]![1] < 400, `the first event arrived after ${arrivals[0]![1].toFixed(0)} ms, before the stream ended (~450 ms)`);
});

/** Sends the headers and the first half of each body, then (after `between`) the rest. */
async function halves(url: string, bodies: Buffer[], between: () => Promise<void>): Promise<number[]> {
  const sockets: Socket[] = [];
  const answers: Promise<number>[] = [];
  const { port } = new URL(url);
  for (const body of bodies) {
    const socket = connect(Number(port), '127.0.0.1');
    sockets.push(socket);
    answers.push(
      new Promise((resolve) => {
        let text = '';
        socket.on('data', (d) => (text += d.toString('latin1')));
        socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0)));
      }),
    );
    socket.write(`POST /predict/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n`);
    socket.write(body.subarray(0, body.length / 2));
    await sleep(50);
  }
  await between();
  for (const [i, body] of bodies.entries()) {
    sockets[i]!.write(body.subarray(body.length / 2));
    await sleep(50);
  }
  return Promise.all(answers);
}

t.test('recordMemory: bodies held for records are bounded as a whole; past it, requests pass unrecorded and are counted', async (t) => {
  const file = `${t.testdir()}/rec.jsonl`;
  // The upstream answers late, so each record stays in flight, holding its body, for a while.
  const { upstream, proxy } = await rig(t, (_req, res) => void setTimeout(() => res.end('ok'), 300), { record: file, recordSample: 1, recordMemory: '100KB' });
  const bodies = [Buffer.alloc(60_000, 1), Buffer.alloc(60_000, 2), Buffer.alloc(60_000, 3)];
  let heldMidway = 0;
  const statuses = await halves(`http://127.0.0.1:${proxy.address.port}`, bodies, async () => {
    heldMidway = proxy.recording.heldBytes;
  });
  t.same(statuses, [200, 200, 200], 'every client answered');
  t.same(upstream.seen.map((s) => s.body.length), [60_000, 60_000, 60_000], 'every body reached the upstream whole');
  // 1st: fits. 2nd: 30 KB held + its 60 KB fits too. 3rd: 60 + 60 > 100 KB: unrecorded from the start.
  t.equal(heldMidway, 60_000, 'two half bodies held midway');
  await proxy.close(0);
  const text = await proxy.metrics.text();
  t.equal(sampleSum(text, 'drum_recorder_records_total'), 1, 'the first recorded');
  // The 2nd passed the budget when its second half came (the 1st's 60 KB + its 30 + 30 > 100 KB) and let go of what it had.
  t.equal(sampleSum(text, 'drum_recorder_dropped_total', { reason: 'memory' }), 2, 'the other two dropped, reason "memory"');
  t.equal(proxy.recording.heldBytes, 0, 'nothing held after');
});

// ---------------------------------------------------------------------------------------------
// Shutdown, on the real CLI

async function slowUpstream(t: Test, delayMs: number) {
  const upstream = await startUpstream('flask', (req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('late'), delayMs).unref();
    else res.end('ok');
  });
  t.teardown(() => upstream.close());
  return upstream;
}

async function serve(t: Test, upstreamUrl: string, extra: string[] = []) {
  const port = await freePort();
  const child = spawnCli(['serve', '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0', '--poll-interval', '1h', '--upstream', `flask=${upstreamUrl}`, ...extra]);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await waitForLine(child, /"msg":"listening"/, 30_000);
  const logged = (msg: RegExp): Record<string, unknown>[] =>
    out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => msg.test(String(l.msg)));
  return { child, port, exited, logged };
}

/** A keep-alive connection that has finished one exchange and sits idle. */
async function idleConnection(port: number): Promise<{ closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1');
  const closed = once(socket, 'close').then(() => {});
  socket.write('GET /fast HTTP/1.1\r\nHost: h\r\n\r\n');
  await once(socket, 'data');
  return { closed };
}

t.test('SIGTERM drains: idle connections closed, requests in flight answered with Connection: close, exit 0', async (t) => {
  const upstream = await slowUpstream(t, 800);
  const { child, port, exited, logged } = await serve(t, upstream.url);
  const idle = await idleConnection(port);
  const inFlight = send(`http://127.0.0.1:${port}/slow`, { agent: false, headers: { connection: 'keep-alive' } });
  await until(() => upstream.seen.some((r) => r.url === '/slow')); // in flight
  const signalled = performance.now();
  child.kill('SIGTERM');
  await idle.closed;
  t.ok(performance.now() - signalled < 500, 'the idle keep-alive connection is closed at once');
  const r = await inFlight;
  t.equal(r.status, 200, 'the request in flight is answered');
  t.equal(r.body.toString(), 'late');
  t.equal(r.headers.connection, 'close', 'with Connection: close');
  t.equal(await exited, 0);
  t.match(logged(/^stopped/), [{ cut: 0 }]);
});

t.test('SIGTERM past --drain-timeout: the rest are cut, said in the log and the exit code', async (t) => {
  const upstream = await slowUpstream(t, 60_000);
  const { child, port, exited, logged } = await serve(t, upstream.url, ['--drain-timeout', '300ms']);
  const cut = new Promise<string>((resolve) => {
    request(`http://127.0.0.1:${port}/slow`, { agent: false })
      .on('error', (err) => resolve(err.message))
      .end();
  });
  await until(() => upstream.seen.some((r) => r.url === '/slow')); // in flight
  const signalled = performance.now();
  child.kill('SIGTERM');
  t.equal(await cut, 'socket hang up', 'the request still in flight is cut');
  t.equal(await exited, 3, 'exit 3: stopped, but cut requests');
  t.ok(performance.now() - signalled < 5000, 'after the drain timeout, not a fixed 10 s');
  t.match(logged(/cut/), [{ cut: 1, msg: /1 requests still in flight at the drain timeout were cut/ }, { cut: 1, msg: 'stopped: 1 requests cut at the drain timeout' }]);
});

t.test('SIGTERM with 200 webhook events queued for a receiver that never answers: drained first, the webhooks bounded, the rest dropped and said', async (t) => {
  // Accepts every connection and never answers.
  const held: Socket[] = [];
  const hook = createNetServer((socket) => void held.push(socket));
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const socket of held) socket.destroy();
    hook.close();
  });
  const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`;
  const upstream = await slowUpstream(t, 800);
  const dir = t.testdir({ 'drum.yaml': `rollout:\n  notify: ["${hookUrl}/a", "${hookUrl}/b"]\n` });
  const { child, port, exited, logged } = await serve(t, upstream.url, ['--upstream', `fastapi=${upstream.url}`, '--config', join(dir, 'drum.yaml'), '--drain-timeout', '2s', '--log-level', 'info']);
  const admin = (logged(/^listening$/)[0]!.admin as string).replace(/^/, 'http://');
  // A decision each: start, then pause and resume in turn; 100 events for each of the two URLs.
  const statuses = new Set<number>();
  for (let i = 0; i < 100; i++) {
    const command = i === 0 ? 'start' : i % 2 === 1 ? 'pause' : 'resume';
    statuses.add((await send(`${admin}/rollout/${command}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status);
  }
  t.strictSame([...statuses], [200], 'every command taken');
  await until(() => held.length === 2, 5000);
  const inFlight = send(`http://127.0.0.1:${port}/slow`, { agent: false });
  await until(() => upstream.seen.some((r) => r.url === '/slow')); // in flight
  const signalled = performance.now();
  child.kill('SIGTERM');
  const refused = (): Promise<boolean> =>
    new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.on('connect', () => (socket.destroy(), resolve(false)));
      socket.on('error', () => resolve(true));
    });
  await until(refused, 1000);
  t.ok(performance.now() - signalled < 1000, 'the traffic port stops accepting at once');
  t.equal((await inFlight).body.toString(), 'late', 'the request in flight is answered');
  const code = await Promise.race([exited, sleep(2000 + 5000 + 2000).then(() => 'still running')]);
  const took = performance.now() - signalled;
  t.equal(code, 0, 'exit 0: nothing cut');
  t.ok(took < 2000 + 5000, `exited within the drain timeout plus the flush bound (${Math.round(took)} ms)`);
  const dropped = logged(/rollout webhooks/);
  t.match(dropped, [{ dropped: 200, msg: /^shutdown: 200 rollout webhooks still queued after \d+ ms were dropped$/ }], 'one line with the count');
  t.ok((dropped[0]!.boundMs as number) <= 2000 - 600, 'the bound is what the drain left of --drain-timeout');
});

for (const responseBuffering of [true, false]) {
t.test(`a tiny --buffer-memory, responseBuffering ${responseBuffering}: answers for slow readers arrive whole and in order`, async (t) => {
  // 32 MB: more than loopback socket buffers take. Buffered, the upstream waits for the disk now and then.
  const answer = Buffer.from(Array.from({ length: 32 * 2 ** 20 }, (_, i) => i % 251));
  const { url } = await rig(t, (_req, res) => res.end(answer), { bufferMemory: '1KB', bufferDir: t.testdir({}), responseBuffering });
  const got = await new Promise<Buffer>((resolve) => {
    request(`${url}/big`, { agent: false }, (res) => {
      res.pause();
      const chunks: Buffer[] = [];
      setTimeout(() => {
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.resume();
      }, 300);
    }).end();
  });
  t.ok(got.equals(answer), 'byte-exact');
});
}

t.test('a held answer whose file is damaged: cut, counted as ours, never as the upstream\'s', async (t) => {
  const bufferDir = t.testdir({});
  let sent!: () => void;
  const upstreamDone = new Promise<void>((r) => (sent = r));
  const { url, counted } = await rig(t, (_req, res) => res.end(Buffer.alloc(32 * 2 ** 20), sent), { bufferDir });
  const download = await new Promise<{ complete: boolean; bytes: number }>((resolve) => {
    request(`${url}/big`, { agent: false }, (res) => {
      res.pause();
      let bytes = 0;
      // Once the whole answer is in (the upstream done, the file no longer growing), cut the file short.
      void upstreamDone.then(async () => {
        const size = (): number => readdirSync(bufferDir).reduce((n, f) => n + statSync(join(bufferDir, f)).size, 0);
        for (let last = -1; size() !== last || last === 0; ) {
          last = size();
          await sleep(200);
        }
        const files = readdirSync(bufferDir);
        t.equal(files.length, 1, `the answer waits in a spill file`);
        for (const f of files) truncateSync(join(bufferDir, f), 0);
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('close', () => resolve({ complete: res.complete, bytes }));
        res.resume();
      });
    }).end();
  });
  t.equal(download.complete, false, `cut after ${download.bytes} bytes`);
  await until(async () => (await counted({ server_type: 'none', status: '500', origin: 'proxy' })) >= 1);
  t.equal(await counted({ server_type: 'none', status: '500', origin: 'proxy' }), 1);
});

t.test('a buffer directory that cannot be written stops start-up', async (t) => {
  const bufferDir = join(t.testdir({}), 'missing');
  await t.rejects(startProxy(buildConfig({ listen: '127.0.0.1:0', bufferDir }), silentLog), { name: 'InputError', field: 'bufferDir', message: /is not a writable directory for buffered bodies/ });
  const none = await startProxy(buildConfig({ listen: '127.0.0.1:0', bufferDir, requestBuffering: false, responseBuffering: false }), silentLog);
  t.ok(none.address.port > 0, 'not needed, not checked, with buffering off both ways');
  await none.close(0);
});

t.test('the buffer directory gone at run time: our 500 (or a cut answer), counted as no upstream\'s, logged', async (t) => {
  const { lines, log } = capturedLog();
  const bufferDir = t.testdir({});
  // 32 MB: more than loopback socket buffers take, so the proxy has to hold some of it.
  const { url, counted } = await rig(t, (_req, res) => res.end(Buffer.alloc(32 * 2 ** 20)), { bufferMemory: '1KB', bufferDir }, log);
  rmSync(bufferDir, { recursive: true });
  const upload = await send(`${url}/predict/`, { method: 'POST', body: Buffer.alloc(10_000) });
  t.equal(upload.status, 500);
  t.match(JSON.parse(upload.body.toString()), { error: 'buffer_failed', message: /cannot buffer in .*ENOENT/ });
  const download = await new Promise<{ complete: boolean }>((resolve) => {
    request(`${url}/big`, { agent: false }, (res) => {
      res.pause();
      setTimeout(() => {
        res.on('close', () => resolve({ complete: res.complete }));
        res.resume();
      }, 300);
    }).end();
  });
  t.equal(download.complete, false, 'a slow reader\'s answer that cannot be held is cut');
  await until(async () => (await counted({ server_type: 'none', status: '500', origin: 'proxy' })) >= 2);
  t.equal(await counted({ server_type: 'none', status: '500', origin: 'proxy' }), 2);
  t.equal(await counted({ server_type: 'flask' }), 0, 'nothing against flask');
  t.match(lines, [{ level: 40, blame: 'proxy' }, { level: 40, blame: 'proxy', msg: /cannot hold the answer for a slow client/ }]);
});

t.test('--no-response-buffering, an upstream that closes after its answer (Gunicorn sync), a slow client: paused, no crash', async (t) => {
  const answer = Buffer.alloc(8 * 2 ** 20, 5);
  // What a Gunicorn sync worker does: the answer, then FIN, which reaches undici's paused parser
  // (undici 7 crashed the process there: nodejs/undici#5360).
  const upstream = createNetServer((sock) => {
    sock.once('data', () => {
      sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${answer.length}\r\nConnection: close\r\n\r\n`);
      sock.end(answer);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.teardown(() => upstream.close());
  const proxy = await startProxy(
    buildConfig({ listen: '127.0.0.1:0', upstreams: [`gunicorn=http://127.0.0.1:${(upstream.address() as AddressInfo).port}`], responseBuffering: false, bufferDir: t.testdir({}) }),
    silentLog,
  );
  t.teardown(() => proxy.close(0));
  const got = await new Promise<number>((resolve) => {
    request(`http://127.0.0.1:${proxy.address.port}/big`, { agent: false }, (res) => {
      res.pause();
      let n = 0;
      setTimeout(() => {
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(n));
        res.resume();
      }, 500);
    }).end();
  });
  t.equal(got, answer.length, 'the whole answer arrived, and the proxy is still up');
});
