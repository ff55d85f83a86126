/**
 * Recording in operation, end to end on real sockets and files: a full queue, a failing disk
 * (/dev/full), the flush on SIGTERM/SIGINT of the real CLI, rotation, the admin switch, the
 * seed's DRUM_RECORD_* environment, and the record settings (flags, YAML, validation).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { startApp } from '../src/app.js';
import { buildConfig, parseConfigText, type RawSettings } from '../src/config/config.js';
import { type RecordSettings, DEFAULT_RECORD_PATHS } from '../src/record/policy.js';
import { DEFAULT_REDACT } from '../src/record/line.js';
import { recordFromEnv, SEED_RECORD_FILE } from '../src/config/env.js';
import { startProxy, type RunningProxy } from '../src/proxy/listener.js';
import { assertInputError, logLines, serveCli, type Served } from './helpers/cli.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { mode, readLines } from './helpers/files.js';
import { metricSum } from './helpers/metrics.js';
import { runCli, send, silentLog, startUpstream, type CliResult, type Reply } from './helpers/net.js';
import { sleep, until } from './helpers/wait.js';

// ---------------------------------------------------------------------------------------------
// Helpers

/** A deterministic, binary body for request `i` (every byte value occurs). */
function payload(i: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let j = 0; j < size; j++) b[j] = (i * 7 + j * 13) & 0xff;
  return b;
}

/** POSTs request `i`'s payload to `url`/PATH?i=N. */
const post = (base: string, path: string, i: number, size: number, headers: Record<string, string> = {}): Promise<Reply> =>
  send(`${base}${path}?i=${i}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', ...headers }, body: payload(i, size) });

/** Runs `n` jobs, `concurrency` at a time; results in job order. */
async function pool<T>(n: number, concurrency: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, concurrency) }, async () => {
      while (next < n) {
        const i = next++;
        results[i] = await job(i);
      }
    }),
  );
  return results;
}

/** The upstream answers with the request body it got, byte for byte. */
async function echoUpstream(t: Test): Promise<string> {
  const up = await startUpstream('flask', (_req, res, body) => {
    res.setHeader('content-type', 'application/octet-stream');
    res.end(body);
  });
  t.teardown(() => up.close());
  return up.url;
}

const counters = async (registry: Registry) => ({
  records: await metricSum(registry, 'drum_recorder_records_total'),
  dropped: await metricSum(registry, 'drum_recorder_dropped_total'),
  queueFull: await metricSum(registry, 'drum_recorder_dropped_total', { reason: 'queue_full' }),
  writeError: await metricSum(registry, 'drum_recorder_dropped_total', { reason: 'write_error' }),
  closed: await metricSum(registry, 'drum_recorder_dropped_total', { reason: 'closed' }),
  errors: await metricSum(registry, 'drum_recorder_write_errors_total'),
});

/** Calls `close` at most once, whether from the test body or its teardown. */
function once(close: () => Promise<unknown>): () => Promise<unknown> {
  let closing: Promise<unknown> | undefined;
  return () => (closing ??= close());
}

type Line = Record<string, unknown> & { path: string; body_hex: string; id: string; headers: Record<string, string> };

/** The `i` of a recorded path such as /predict/?i=12. */
const indexOf = (l: Line): number => Number(/[?&]i=(\d+)/.exec(l.path)![1]);

/** A logger whose JSON lines land in `lines`. */
function arrayLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) }) };
}

/** An in-process proxy on an ephemeral loopback port, closed (once) on teardown. */
async function proxyFor(t: Test, settings: RawSettings, log: Logger = silentLog): Promise<RunningProxy & { url: string; stop: () => Promise<unknown> }> {
  const proxy = await startProxy(buildConfig({ listen: '127.0.0.1:0', ...settings }), log);
  const stop = once(() => proxy.close());
  t.teardown(stop);
  return Object.assign(proxy, { url: `http://127.0.0.1:${proxy.address.port}`, stop });
}

// ---------------------------------------------------------------------------------------------
// The real CLI, spawned by the tests that use it

/** Echoes bodies up to 64 KB; answers a bigger one with its SHA-256, so the answer is short. */
const cliAnswer = (body: Buffer): Buffer => (body.length <= 65_536 ? body : Buffer.from(createHash('sha256').update(body).digest('hex')));

/** An upstream answering cliAnswer; requests with X-Barrier: K are held until K have arrived, then answered together. */
async function cliUpstream(t: Test): Promise<string> {
  const held: (() => void)[] = [];
  const up = await startUpstream('flask', (req, res, body) => {
    const answer = (): void => {
      res.setHeader('content-type', 'application/octet-stream');
      res.end(cliAnswer(body));
    };
    const barrier = Number(req.headers['x-barrier'] ?? 0);
    if (barrier === 0) return answer();
    held.push(answer);
    if (held.length >= barrier) for (const release of held.splice(0)) release();
  });
  t.teardown(() => up.close());
  return up.url;
}

/** Nothing the test runner's environment says about recording reaches the CLIs unless set here. */
const HERMETIC: NodeJS.ProcessEnv = { DRUM_RECORD_REQUESTS: undefined, DRUM_RECORD_SAMPLE_RATE: undefined, DRUM_SPLITTER_ADMIN_TOKEN: undefined };

/** `serve` on ephemeral ports (traffic and admin). */
const serve = (t: Test, args: string[], env: NodeJS.ProcessEnv = {}): Served => serveCli(t, ['--listen', '127.0.0.1:0', ...args], { ...HERMETIC, ...env });

/** A `serve` expected to end by itself; killed (and reported as code null) after 20 s. */
const runServe = (args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> =>
  runCli(['serve', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...args], { ...HERMETIC, ...env }, 20_000);

// ---------------------------------------------------------------------------------------------
// 1. A full queue

t.test('queue overflow through the proxy: clients unaffected, drops counted, the file holds exactly the recorded lines', async (t) => {
  const upstream = await echoUpstream(t);
  const file = join(t.testdir(), 'rec.jsonl');
  // A 2 KB queue and lines of about 1.5 KB (600-byte bodies, hex-encoded, plus the fields):
  // one line fits at a time, so concurrent finishes overflow it.
  // recordMemory apart from the queue: this test is about the queue.
  const proxy = await proxyFor(t, { upstreams: [`flask=${upstream}`], record: file, recordSample: 1, recordQueue: '2KB', recordMemory: '10MB' });
  const n = 200;
  const size = 600;
  const replies = await pool(n, 32, (i) => post(proxy.url, '/predict/', i, size));
  t.ok(replies.every((r) => r.status === 200), 'every client gets 200');
  t.ok(replies.every((r, i) => r.body.equals(payload(i, size))), "every client gets the upstream's body, byte-exact");

  const before = await counters(proxy.metrics.registry);
  t.ok(before.queueFull > 0, `drum_recorder_dropped_total{reason="queue_full"} > 0 (${before.queueFull})`);

  await proxy.stop();
  const c = await counters(proxy.metrics.registry);
  t.ok(c.records > 0, `some lines were recorded (${c.records})`);
  t.equal(c.records + c.dropped, n, 'records_total + dropped_total (all reasons) = sampled requests');
  t.same([c.writeError, c.closed, c.errors], [0, 0, 0], 'drops are all queue_full; no write errors');

  const lines = readLines<Line>(t, file);
  t.equal(lines.length, c.records, 'the file has records_total lines');
  t.ok(lines.every((l) => Buffer.byteLength(JSON.stringify(l)) < 2000), 'each line fits the 2 KB queue');
  t.equal(new Set(lines.map(indexOf)).size, lines.length, 'each recorded request once');
  t.ok(
    lines.every((l) => l.body_hex === payload(indexOf(l), size).toString('hex') && l.status === 200 && l.upstream === 'flask'),
    'each line is its request, whole',
  );
  t.equal(mode(file), 0o600);
});

t.test('with the default settings, a body under the default recordMaxBody (10 MB) is recorded', async (t) => {
  const upstream = await echoUpstream(t);
  const file = join(t.testdir(), 'rec.jsonl');
  const proxy = await proxyFor(t, { upstreams: [`flask=${upstream}`], record: file, recordSample: 1 });
  t.equal(proxy.recording.maxBody, 10_000_000);
  const sizes = [1_000_000, 9_000_000];
  for (const [i, size] of sizes.entries()) {
    const r = await post(proxy.url, '/predict/', i, size);
    t.equal(r.status, 200, `${size} bytes: 200`);
    t.ok(r.body.equals(payload(i, size)), `${size} bytes: forwarded and answered whole`);
  }
  await proxy.stop();
  const c = await counters(proxy.metrics.registry);
  t.equal(c.records + c.dropped, sizes.length, 'each request recorded or counted as dropped');
  const lines = readLines<Line>(t, file);
  t.ok(lines.some((l) => indexOf(l) === 0), 'the 1 MB body is recorded');
  t.same(
    lines.map(indexOf),
    [0, 1],
    'the 9 MB body is recorded too: an idle queue takes a line longer than its bound',
  );
});

// ---------------------------------------------------------------------------------------------
// 2. A failing disk

t.test('writing to /dev/full: traffic unaffected, errors counted, logged once', async (t) => {
  const upstream = await echoUpstream(t);
  const { log, lines: logs } = arrayLogger();
  const proxy = await proxyFor(t, { upstreams: [`flask=${upstream}`], record: '/dev/full', recordSample: 1 }, log);
  const size = 700;
  const batch = async (from: number, n: number): Promise<void> => {
    const replies = await pool(n, 8, (i) => post(proxy.url, '/predict/', from + i, size));
    t.ok(replies.every((r) => r.status === 200), `requests ${from}..${from + n - 1}: all 200`);
    t.ok(replies.every((r, i) => r.body.equals(payload(from + i, size))), `requests ${from}..${from + n - 1}: the upstream's bodies`);
  };
  const errors = (): Promise<number> => metricSum(proxy.metrics.registry, 'drum_recorder_write_errors_total');

  await batch(0, 30);
  await until(async () => (await errors()) >= 1);
  // Past the writer's 1 s pause after a failure: the file is tried (and fails) again.
  await sleep(1100);
  await batch(30, 30);
  await until(async () => (await errors()) >= 2);
  await proxy.stop();

  const c = await counters(proxy.metrics.registry);
  t.ok(c.errors >= 2, `drum_recorder_write_errors_total >= 2 (${c.errors}): the file failed on two attempts`);
  t.equal(c.writeError, 60, 'every sampled request is dropped with reason write_error');
  t.same([c.records, c.queueFull, c.closed], [0, 0, 0], 'none recorded, none dropped for another reason');

  const errorLogs = logs.filter((l) => (l.level as number) >= 40);
  t.equal(errorLogs.length, 1, 'one log line for all of it, not one per request or per failure');
  t.match(errorLogs[0], { level: 50, msg: /writing the record file failed/, file: '/dev/full', err: { code: 'ENOSPC' }, errors_not_logged: 0 });
});

// ---------------------------------------------------------------------------------------------
// 3. The flush on shutdown (the real CLI)

t.test('CLI: SIGTERM right after the last response writes every record out, exit 0, mode 0600', async (t) => {
  const file = join(t.testdir(), 'term.jsonl');
  const term = serve(t, [
    '--upstream', `flask=${await cliUpstream(t)}`,
    '--record', file,
    '--record-sample', '1',
    '--record-queue', '64MB',
    '--record-rotate-bytes', '1GB',
    '--record-no-redact',
    '--record-redact', 'X-Only',
  ]);
  const info = await term.listening;
  t.match(info.recording, { file, sampleRate: 1 }, 'the listening line says where it records');
  const view = JSON.parse((await send(`http://${info.admin}/recording`)).body.toString()) as { redact: string[] };
  t.same(view.redact, ['x-only'], '--record-no-redact drops the default list; --record-redact names stay');
  // 300 requests, then 8 with 1 MB bodies that the upstream answers together, briefly: their
  // 2 MB lines all join the writer's queue at once and are still being written when the signal
  // arrives (without the flush on shutdown, most of them are lost).
  const small = 300;
  const big = 8;
  const n = small + big;
  const size = (i: number): number => (i >= small ? 1_000_000 : 1024);
  const url = `http://${info.listen}`;
  const replies = await pool(small, 16, (i) => post(url, '/predict/', i, size(i)));
  const last = Array.from({ length: big }, (_, k) => post(url, '/predict/', small + k, size(small + k), { 'x-barrier': String(big) }));
  replies.push(...(await Promise.all(last)));
  term.child().kill('SIGTERM');
  t.same(await term.exited(), [0, null], 'exits with code 0');
  t.ok(replies.every((r, i) => r.status === 200 && r.body.equals(cliAnswer(payload(i, size(i))))), 'every request answered by the upstream');
  t.match(logLines(term, 'shutting down'), [{ signal: 'SIGTERM' }]);
  t.equal(term.stderr(), '', 'nothing on stderr');

  const lines = readLines<Line>(t, file);
  t.equal(lines.length, n, 'one line per request: none lost in the shutdown');
  t.same(lines.map(indexOf).sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i), 'each request exactly once');
  t.ok(lines.every((l) => l.body_hex === payload(indexOf(l), size(indexOf(l))).toString('hex') && l.body_truncated === false), 'every body whole');
  t.equal(mode(file), 0o600, 'the record file is 0600');
});

t.test('CLI: SIGINT flushes too; a YAML config with record keys, flags over it, DRUM_RECORD_SAMPLE_RATE over both', async (t) => {
  const dir = t.testdir({
    'drum.yaml': [
      `upstreams:\n  flask: ${await cliUpstream(t)}`,
      'recordSample: 0.5', // overridden by --record-sample, itself overridden by DRUM_RECORD_SAMPLE_RATE
      'recordPaths: [/from-file/]', // overridden by --record-paths
      'recordMaxBody: 2KB', // overridden by --record-max-body
      'recordResponses: false', // overridden by --record-responses
      'recordRedact:\n  - X-From-File',
      'recordQueue: 1MB',
      'recordRotateBytes: 10MB',
      '',
    ].join('\n'),
  });
  const file = join(dir, 'int.jsonl');
  const int = serve(
    t,
    [
      '--config', join(dir, 'drum.yaml'),
      '--record', file,
      '--record-sample', '0.01',
      '--record-paths', '/predict/,/invocations',
      '--record-paths', '/extra/',
      '--record-max-body', '1KB',
      '--record-responses',
    ],
    { DRUM_RECORD_SAMPLE_RATE: '1' },
  );
  const info = await int.listening;
  const admin = `http://${info.admin}`;
  const view = JSON.parse((await send(`${admin}/recording`)).body.toString()) as unknown;
  t.same(
    view,
    {
      enabled: true,
      file,
      sampleRate: 1, // DRUM_RECORD_SAMPLE_RATE=1 over --record-sample 0.01 over recordSample: 0.5
      paths: ['/predict/', '/invocations', '/extra/'], // --record-paths, repeated and comma-separated, over the file's
      maxBody: 1000, // --record-max-body 1KB over the file's 2KB
      responses: true, // --record-responses over the file's false
      redact: [...DEFAULT_REDACT, 'x-from-file'],
    },
    'GET /recording shows the merged settings',
  );
  t.match(info.recording, { file, sampleRate: 1 });

  const base = `http://${info.listen}`;
  const size = 1500;
  const secret = { authorization: 'Bearer s3cret-token', 'x-from-file': 'hidden', 'x-visible': 'shown' };
  const recorded = await pool(30, 8, (i) => post(base, i % 2 === 0 ? '/predict/' : '/extra', i, size, secret));
  const notRecorded = await pool(5, 5, (i) => post(base, '/from-file/', 100 + i, size));
  t.ok([...recorded, ...notRecorded].every((r) => r.status === 200), 'all 200');
  int.child().kill('SIGINT');
  t.same(await int.exited(), [0, null], 'exits with code 0');
  t.match(logLines(int, 'shutting down'), [{ signal: 'SIGINT' }]);
  t.equal(int.stderr(), '');

  const lines = readLines<Line>(t, file);
  t.equal(lines.length, 30, 'the recorded routes only, every one of them');
  t.same(lines.map(indexOf).sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i));
  const first = lines[0]!;
  const i = indexOf(first);
  t.match(first, {
    method: 'POST',
    content_type: 'application/octet-stream',
    body_hex: payload(i, size).subarray(0, 1000).toString('hex'),
    body_truncated: true,
    status: 200,
    response: { status: 200, body_hex: payload(i, size).subarray(0, 1000).toString('hex'), body_truncated: true },
  });
  const headers = Object.fromEntries(Object.entries(first.headers).map(([k, v]) => [k.toLowerCase(), v]));
  t.match(headers, { authorization: '[REDACTED]', 'x-from-file': '[REDACTED]', 'x-visible': 'shown' }, 'default and configured redaction');
  t.equal(mode(file), 0o600);
});

// ---------------------------------------------------------------------------------------------
// 4. Rotation

t.test('rotation through the proxy: FILE, FILE.1, ... each within 4 KB, every request once, in order', async (t) => {
  const upstream = await echoUpstream(t);
  const dir = t.testdir();
  const file = join(dir, 'rec.jsonl');
  const proxy = await proxyFor(t, { upstreams: [`flask=${upstream}`], record: file, recordSample: 1, recordRotateBytes: '4KB' });
  const sizes = Array.from({ length: 41 }, (_, i) => (i === 20 ? 3000 : 300)); // request 20's line alone is over 4 KB
  for (const [i, size] of sizes.entries()) {
    const r = await post(proxy.url, '/predict/', i, size);
    t.equal(r.status, 200, `request ${i}`);
  }
  await proxy.stop();

  const files = readdirSync(dir)
    .filter((f) => f === 'rec.jsonl' || /^rec\.jsonl\.[1-9]\d*$/.test(f))
    .sort((a, b) => Number(a.slice(10) || 0) - Number(b.slice(10) || 0));
  t.ok(files.length >= 5, `several files (${files.join(' ')})`);
  t.same(files, ['rec.jsonl', ...files.slice(1).map((_, k) => `rec.jsonl.${k + 1}`)], 'FILE, FILE.1, FILE.2, ... with no gap');
  const all: Line[] = [];
  for (const f of files) {
    const path = join(dir, f);
    const lines = readLines<Line>(t, path);
    all.push(...lines);
    if (lines.length > 1) t.ok(statSync(path).size <= 4000, `${f}: ${statSync(path).size} bytes, within 4 KB`);
    else t.ok(lines.length === 1, `${f}: a single line may pass 4 KB`);
    t.equal(mode(path), 0o600, `${f} is 0600`);
  }
  t.same(all.map(indexOf), sizes.map((_, i) => i), 'every request once, in order across the files');
  t.ok(all.every((l) => l.body_hex === payload(indexOf(l), sizes[indexOf(l)]!).toString('hex')), 'bodies whole');
  t.equal(files.filter((f) => statSync(join(dir, f)).size > 4000).length, 1, 'only the big line passes 4 KB');
});

// ---------------------------------------------------------------------------------------------
// 5. The admin API

const TOKEN = 'recording-ops-token-0123456789';

/** The app over an echo upstream of its own. */
const app = async (t: Test, settings: RawSettings, env: NodeJS.ProcessEnv = {}, log: Logger = silentLog): Promise<TestApp> =>
  startTestApp(t, { upstreams: [`flask=${await echoUpstream(t)}`], ...settings }, { env, log });

const json = (r: Reply): Record<string, unknown> => JSON.parse(r.body.toString()) as Record<string, unknown>;
const putRecording = (admin: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }): Promise<Reply> =>
  send(`${admin}/recording`, { method: 'PUT', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

t.test('admin API: GET /recording, PUT /recording switches what the proxy records', async (t) => {
  const file = join(t.testdir(), 'rec.jsonl');
  const { log, lines: logs } = arrayLogger();
  const a = await app(t, { record: file, recordSample: 1 }, { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log);
  const get = async (): Promise<Record<string, unknown>> => json(await send(`${a.adminUrl}/recording`));
  const start = { enabled: true, file, sampleRate: 1, paths: [...DEFAULT_RECORD_PATHS], maxBody: 10_000_000, responses: false, redact: [...DEFAULT_REDACT] };
  t.same(await get(), start, 'GET /recording: enabled, file, sampleRate, paths, maxBody, responses, redact');

  let i = 0;
  const phase = async (name: string): Promise<void> => {
    for (let k = 0; k < 3; k++) {
      const r = await send(`${a.traffic}/predict/?phase=${name}&i=${i++}`, { method: 'POST', body: name });
      t.equal(r.status, 200, `phase ${name}: 200`);
    }
  };
  await phase('A'); // recorded

  // Writes need the token; reads do not.
  const noToken = await putRecording(a.adminUrl, { enabled: false }, {});
  t.equal(noToken.status, 401, 'PUT without a token: 401');
  t.equal(noToken.headers['www-authenticate'], 'Bearer realm="drum-splitter"');
  t.equal((await putRecording(a.adminUrl, { enabled: false }, { authorization: 'Bearer not-the-token-000000' })).status, 401, 'a wrong token: 401');
  t.same(await get(), start, 'a refused write changes nothing');

  const off = await putRecording(a.adminUrl, { enabled: false, reason: 'pause for the incident' });
  t.equal(off.status, 200);
  t.same(json(off), { ...start, enabled: false }, 'the answer is the new view');
  await phase('B'); // not recorded: off

  t.same(json(await putRecording(a.adminUrl, { sampleRate: 0 })), { ...start, enabled: false, sampleRate: 0 }, 'sampleRate alone');
  t.same(json(await putRecording(a.adminUrl, { enabled: true })), { ...start, sampleRate: 0 }, 'enabled alone keeps the rate');
  await phase('C'); // not recorded: rate 0

  t.same(json(await putRecording(a.adminUrl, { enabled: true, sampleRate: 1 })), start);
  await phase('D'); // recorded

  // Bad writes: 400/415 JSON naming the field, nothing changed.
  const bad: [string, unknown, number, Record<string, unknown>][] = [
    ['sampleRate over 1', { sampleRate: 2 }, 400, { error: 'invalid', field: 'sampleRate' }],
    ['sampleRate negative', { sampleRate: -0.5 }, 400, { error: 'invalid', field: 'sampleRate' }],
    ['sampleRate a string', { sampleRate: '0.5' }, 400, { error: 'invalid', field: 'sampleRate' }],
    ['enabled not a boolean', { enabled: 'yes' }, 400, { error: 'invalid', field: 'enabled' }],
    ['enabled null', { enabled: null }, 400, { error: 'invalid', field: 'enabled' }],
    ['valid enabled, bad sampleRate', { enabled: false, sampleRate: 2 }, 400, { error: 'invalid', field: 'sampleRate' }],
    ['nothing to change', {}, 400, { error: 'invalid', field: 'body', message: /enabled.*sampleRate/ }],
    ['only a reason', { reason: 'x' }, 400, { error: 'invalid', field: 'body' }],
    ['unknown field', { bogus: 1 }, 400, { error: 'invalid', field: 'bogus', message: /unknown field/ }],
    ['not an object', [true], 400, { error: 'invalid', field: 'body' }],
  ];
  for (const [name, body, status, want] of bad) {
    const r = await putRecording(a.adminUrl, body);
    t.equal(r.status, status, `${name}: ${status}`);
    t.match(json(r), want, `${name}: JSON naming the field`);
  }
  const plain = await send(`${a.adminUrl}/recording`, { method: 'PUT', headers: { 'content-type': 'text/plain', authorization: `Bearer ${TOKEN}` }, body: 'enabled=false' });
  t.equal(plain.status, 415, 'text/plain: 415');
  t.match(json(plain), { error: 'unsupported_media_type', field: 'content-type' });
  t.same(await get(), start, 'no bad write changed anything');

  // The audit trail: who and why, from and to.
  const changes = logs.filter((l) => l.msg === 'recording changed');
  t.equal(changes.length, 4, 'each accepted change is logged');
  t.match(changes[0], { who: 'admin', reason: 'pause for the incident', from: { enabled: true, sampleRate: 1 }, to: { enabled: false, sampleRate: 1 } });

  await a.close();
  const lines = readLines<Line>(t, file);
  t.same(
    lines.map((l) => /phase=(\w)/.exec(l.path)![1]),
    ['A', 'A', 'A', 'D', 'D', 'D'],
    'recorded while on at rate 1; not while off, nor at rate 0',
  );
});

t.test('admin API: started without a record file, recording cannot be switched on', async (t) => {
  const a = await app(t, {}, { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN });
  const view = json(await send(`${a.adminUrl}/recording`));
  t.match(view, { enabled: false, file: null, sampleRate: 0.01 });
  const on = await putRecording(a.adminUrl, { enabled: true, sampleRate: 0.5 });
  t.equal(on.status, 400);
  t.match(json(on), { error: 'invalid', field: 'enabled', message: /--record/ });
  t.same(json(await send(`${a.adminUrl}/recording`)), view, 'still off, and the rate in the same request not applied');
  t.equal((await putRecording(a.adminUrl, { enabled: false, sampleRate: 0.5 })).status, 200, 'switching off or setting the rate is fine');
  t.equal(json(await send(`${a.adminUrl}/recording`)).sampleRate, 0.5);
});

// ---------------------------------------------------------------------------------------------
// 6. The seed's environment

t.test('recordFromEnv: DRUM_RECORD_REQUESTS and DRUM_RECORD_SAMPLE_RATE', async (t) => {
  const withFile = buildConfig({ record: '/data/rec.jsonl' }).record;
  const noFile = buildConfig({}).record;
  const off = { ...withFile, enabled: false };

  const good: [string, RecordSettings, NodeJS.ProcessEnv, Partial<RecordSettings>][] = [
    ['unset, with a file', withFile, {}, withFile],
    ['unset, without a file', noFile, {}, noFile],
    ['unrelated variables', noFile, { DRUM_RECORD: 'true', RECORD_REQUESTS: 'true' }, noFile],
    ['true with a file', off, { DRUM_RECORD_REQUESTS: 'true' }, { ...withFile, enabled: true }],
    ['true without a file: the seed\'s file', noFile, { DRUM_RECORD_REQUESTS: 'true' }, { ...noFile, enabled: true, file: SEED_RECORD_FILE }],
    ['false: off, the file kept', withFile, { DRUM_RECORD_REQUESTS: 'false' }, { ...withFile, enabled: false }],
    ['1', off, { DRUM_RECORD_REQUESTS: '1' }, { enabled: true }],
    ['yes', off, { DRUM_RECORD_REQUESTS: 'yes' }, { enabled: true }],
    ['on', off, { DRUM_RECORD_REQUESTS: 'on' }, { enabled: true }],
    [' TRUE ', off, { DRUM_RECORD_REQUESTS: ' TRUE ' }, { enabled: true }],
    ['0', withFile, { DRUM_RECORD_REQUESTS: '0' }, { enabled: false, file: withFile.file }],
    ['no', withFile, { DRUM_RECORD_REQUESTS: 'no' }, { enabled: false }],
    ['off', withFile, { DRUM_RECORD_REQUESTS: 'off' }, { enabled: false }],
    ['False', withFile, { DRUM_RECORD_REQUESTS: 'False' }, { enabled: false }],
    ['sample 0.5', withFile, { DRUM_RECORD_SAMPLE_RATE: '0.5' }, { ...withFile, sampleRate: 0.5 }],
    ['sample 0', withFile, { DRUM_RECORD_SAMPLE_RATE: '0' }, { sampleRate: 0 }],
    ['sample 1', withFile, { DRUM_RECORD_SAMPLE_RATE: '1' }, { sampleRate: 1 }],
    ['sample 1e-3', withFile, { DRUM_RECORD_SAMPLE_RATE: '1e-3' }, { sampleRate: 0.001 }],
    ['both', noFile, { DRUM_RECORD_REQUESTS: 'true', DRUM_RECORD_SAMPLE_RATE: '0.25' }, { enabled: true, file: SEED_RECORD_FILE, sampleRate: 0.25 }],
  ];
  for (const [name, settings, env, want] of good) {
    const frozen = structuredClone(settings);
    const got = recordFromEnv(env, settings);
    t.match(got, want, name);
    t.same(
      { ...got, enabled: undefined, file: undefined, sampleRate: undefined },
      { ...settings, enabled: undefined, file: undefined, sampleRate: undefined },
      `${name}: the other settings untouched`,
    );
    t.same(settings, frozen, `${name}: the input is not modified`);
  }

  const bad: [NodeJS.ProcessEnv, string, RegExp][] = [
    [{ DRUM_RECORD_REQUESTS: 'maybe' }, 'DRUM_RECORD_REQUESTS', /"maybe" is not true or false/],
    [{ DRUM_RECORD_REQUESTS: 'truthy' }, 'DRUM_RECORD_REQUESTS', /not true or false/],
    [{ DRUM_RECORD_SAMPLE_RATE: '1.5' }, 'DRUM_RECORD_SAMPLE_RATE', /"1\.5" is not a rate from 0 to 1/],
    [{ DRUM_RECORD_SAMPLE_RATE: '-0.1' }, 'DRUM_RECORD_SAMPLE_RATE', /not a rate/],
    [{ DRUM_RECORD_SAMPLE_RATE: 'abc' }, 'DRUM_RECORD_SAMPLE_RATE', /not a rate/],
    [{ DRUM_RECORD_SAMPLE_RATE: '' }, 'DRUM_RECORD_SAMPLE_RATE', /not a rate/],
    [{ DRUM_RECORD_SAMPLE_RATE: '50%' }, 'DRUM_RECORD_SAMPLE_RATE', /not a rate/],
    // Number() would read these as 1.
    [{ DRUM_RECORD_SAMPLE_RATE: '0x1' }, 'DRUM_RECORD_SAMPLE_RATE', /not a rate/],
    [{ DRUM_RECORD_SAMPLE_RATE: '0b1' }, 'DRUM_RECORD_SAMPLE_RATE', /not a rate/],
    [{ DRUM_RECORD_REQUESTS: 'true', DRUM_RECORD_SAMPLE_RATE: 'NaN' }, 'DRUM_RECORD_SAMPLE_RATE', /not a rate/],
  ];
  for (const [env, field, message] of bad) {
    t.throws(() => recordFromEnv(env, withFile), { name: 'InputError', field, message: new RegExp(`^${field}: .*${message.source}`) }, JSON.stringify(env));
  }
});

t.test('startApp applies DRUM_RECORD_*: off keeps the file, so it can be switched on at runtime', async (t) => {
  const file = join(t.testdir(), 'rec.jsonl');
  const a = await app(t, { record: file, recordSample: 1 }, { DRUM_RECORD_REQUESTS: 'false', DRUM_RECORD_SAMPLE_RATE: '0.2' });
  t.same(json(await send(`${a.adminUrl}/recording`)), { enabled: false, file, sampleRate: 0.2, paths: [...DEFAULT_RECORD_PATHS], maxBody: 10_000_000, responses: false, redact: [...DEFAULT_REDACT] });
  t.equal(a.proxy.recording.enabled, false);
  const on = await putRecording(a.adminUrl, { enabled: true, sampleRate: 1 }, {}); // no tokens: loopback writes are anonymous
  t.equal(on.status, 200, 'switched on at runtime: the file was kept');
  t.equal((await post(a.traffic, '/predict/', 0, 10)).status, 200);
  await a.close();
  t.equal(readLines<Line>(t, file).length, 1);
});

t.test(
  `DRUM_RECORD_REQUESTS=true without --record: ${SEED_RECORD_FILE}, whose directory must exist`,
  { skip: existsSync('/var/log/drum') ? '/var/log/drum exists on this machine' : false },
  async (t) => {
    const config = { flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: ['flask=http://127.0.0.1:1'] } };
    // Should it start after all, it is closed again rather than left running.
    const started = startApp(config, { env: { DRUM_RECORD_REQUESTS: 'true' }, log: silentLog }).then(async (a) => {
      await a.close();
      return a;
    });
    await t.rejects(started, {
      name: 'InputError',
      field: 'record',
      message: /\/var\/log\/drum is not a writable directory/,
    });
  },
);

t.test('CLI: DRUM_RECORD_REQUESTS=maybe → exit 2, one line', async (t) => {
  const r = await runServe(['--upstream', `flask=${await cliUpstream(t)}`, '--record', join(t.testdir(), 'maybe.jsonl')], { DRUM_RECORD_REQUESTS: 'maybe' });
  assertInputError(t, r, /^drum-splitter: DRUM_RECORD_REQUESTS: "maybe" is not true or false\n$/);
});

t.test('CLI: --record in a directory that does not exist → exit 2, one line naming the directory', async (t) => {
  const missing = join(t.testdir(), 'nonexistent-dir');
  const r = await runServe(['--upstream', `flask=${await cliUpstream(t)}`, '--record', join(missing, 'x.jsonl')], {});
  assertInputError(t, r, /^drum-splitter: record: /);
  t.ok(r.stderr.includes(`${missing} is not a writable directory`), 'names the directory');
  t.notOk(existsSync(missing), 'nothing created');
});

t.test('a record file whose directory is missing or a file: startProxy refuses, nothing listens', async (t) => {
  const dir = t.testdir({ plain: 'x' });
  for (const record of [join(dir, 'missing', 'rec.jsonl'), join(dir, 'plain', 'rec.jsonl')]) {
    await t.rejects(
      startProxy(buildConfig({ listen: '127.0.0.1:0', upstreams: ['flask=http://127.0.0.1:1'], record }), silentLog),
      { name: 'InputError', field: 'record', message: /is not a writable directory, so .* cannot be written/ },
      record,
    );
  }
  // With recording off (DRUM_RECORD_REQUESTS=false), the file is still checked: it can be switched on at runtime.
  const config = buildConfig({ listen: '127.0.0.1:0', upstreams: ['flask=http://127.0.0.1:1'], record: join(dir, 'missing', 'x') });
  const off = recordFromEnv({ DRUM_RECORD_REQUESTS: 'false' }, config.record);
  t.equal(off.enabled, false);
  await t.rejects(startProxy({ ...config, record: off }, silentLog), { name: 'InputError', field: 'record' }, 'checked while off too');
});

// ---------------------------------------------------------------------------------------------
// 7. Settings

t.test('record settings: defaults, and what each key accepts', async (t) => {
  t.same(
    buildConfig({}).record,
    {
      file: undefined,
      enabled: false,
      sampleRate: 0.01,
      paths: ['/predict/', '/predictions/', '/transform/', '/invocations', '/predictUnstructured/', '/predictionsUnstructured/'],
      maxBody: 10_000_000,
      rotateBytes: undefined,
      queueBytes: 64_000_000,
      memoryBytes: 16_000_000,
      responses: false,
      redact: [...DEFAULT_REDACT],
    },
    'defaults: no file, off, 1%, the six DRUM routes, 10 MB bodies, a 64 MB queue, a quarter of it for bodies in flight, no responses, the default redaction',
  );
  t.same(buildConfig({ record: null }).record.file, undefined, 'YAML null means no file');

  const good: [string, RawSettings, Partial<RecordSettings>][] = [
    ['record set → enabled', { record: '/data/rec.jsonl' }, { file: '/data/rec.jsonl', enabled: true }],
    ['recordSample string', { recordSample: '0.25' }, { sampleRate: 0.25 }],
    ['recordSample number', { recordSample: 0.25 }, { sampleRate: 0.25 }],
    ['recordSample 0', { recordSample: 0 }, { sampleRate: 0 }],
    ['recordSample 1', { recordSample: '1' }, { sampleRate: 1 }],
    ['recordPaths comma-separated', { recordPaths: '/a,/b' }, { paths: ['/a', '/b'] }],
    ['recordPaths list, items comma-separated', { recordPaths: ['/a', '/b,/c'] }, { paths: ['/a', '/b', '/c'] }],
    ['recordPaths spaces and empty items', { recordPaths: [' /a , ', '/b'] }, { paths: ['/a', '/b'] }],
    ['recordRedact lower-cased, added to the defaults', { recordRedact: 'X-Secret' }, { redact: [...DEFAULT_REDACT, 'x-secret'] }],
    ['recordRedact list', { recordRedact: ['X-A', 'x-b,X-C'] }, { redact: [...DEFAULT_REDACT, 'x-a', 'x-b', 'x-c'] }],
    ['recordRedact a default again: no duplicate', { recordRedact: 'Authorization' }, { redact: [...DEFAULT_REDACT] }],
    ['recordNoRedact: only the extra ones', { recordNoRedact: true, recordRedact: 'X-Secret' }, { redact: ['x-secret'] }],
    ['recordNoRedact alone: none', { recordNoRedact: 'true' }, { redact: [] }],
    ['recordNoRedact false', { recordNoRedact: false }, { redact: [...DEFAULT_REDACT] }],
    ['recordMaxBody 1KB', { recordMaxBody: '1KB' }, { maxBody: 1000 }],
    ['recordMaxBody 1KiB', { recordMaxBody: '1KiB' }, { maxBody: 1024 }],
    ['recordMaxBody 0: no body kept', { recordMaxBody: '0' }, { maxBody: 0 }],
    ['recordRotateBytes', { recordRotateBytes: '4KB' }, { rotateBytes: 4000 }],
    ['recordRotateBytes a number', { recordRotateBytes: 4096 }, { rotateBytes: 4096 }],
    ['recordQueue, and recordMemory a quarter of it', { recordQueue: '2KB' }, { queueBytes: 2000, memoryBytes: 500 }],
    ['recordMemory', { recordMemory: '5MB' }, { memoryBytes: 5_000_000 }],
    ['recordResponses', { recordResponses: true }, { responses: true }],
    ['recordResponses string', { recordResponses: 'true' }, { responses: true }],
  ];
  for (const [name, raw, want] of good) t.match(buildConfig(raw).record, want, name);
  t.same(buildConfig({ recordNoRedact: true }).record.redact, [], 'recordNoRedact alone: exactly none');

  const bad: [string, RawSettings, string][] = [
    ['record empty', { record: '' }, 'record'],
    ['record a number', { record: 5 }, 'record'],
    ['recordSample negative', { recordSample: -0.1 }, 'recordSample'],
    ['recordSample over 1', { recordSample: 1.1 }, 'recordSample'],
    ['recordSample not a number', { recordSample: 'x' }, 'recordSample'],
    ['recordSample empty', { recordSample: '' }, 'recordSample'],
    ['recordSample a boolean', { recordSample: true }, 'recordSample'],
    ['recordPaths not a path', { recordPaths: 'a' }, 'recordPaths'],
    ['recordPaths one not a path', { recordPaths: ['/a', 'b'] }, 'recordPaths'],
    ['recordPaths empty list', { recordPaths: [] }, 'recordPaths'],
    ['recordPaths empty string', { recordPaths: '' }, 'recordPaths'],
    ['recordPaths not strings', { recordPaths: [1] }, 'recordPaths'],
    ['recordRedact not a header name', { recordRedact: 'bad header' }, 'recordRedact'],
    ['recordRedact not strings', { recordRedact: [7] }, 'recordRedact'],
    ['recordNoRedact not a boolean', { recordNoRedact: 'yes' }, 'recordNoRedact'],
    ['recordRotateBytes 0', { recordRotateBytes: '0' }, 'recordRotateBytes'],
    ['recordRotateBytes not a size', { recordRotateBytes: 'big' }, 'recordRotateBytes'],
    ['recordQueue 0', { recordQueue: '0' }, 'recordQueue'],
    ['recordQueue 0 bytes', { recordQueue: '0MB' }, 'recordQueue'],
    ['recordMemory 0', { recordMemory: '0' }, 'recordMemory'],
    ['recordMaxBody not a size', { recordMaxBody: '-1' }, 'recordMaxBody'],
    ['recordResponses not a boolean', { recordResponses: 'maybe' }, 'recordResponses'],
  ];
  for (const [name, raw, field] of bad) {
    t.throws(() => buildConfig(raw), { name: 'InputError', field, message: new RegExp(`^${field}: `) }, name);
  }
  t.throws(() => buildConfig({ recordPaths: 'a' }), { message: /"a" is not a path \(it must start with \/\)/ });
  t.throws(() => buildConfig({ recordPaths: [] }), { message: /at least one path/ });
});

t.test('a YAML config file with the record keys; an unknown record key is refused', async (t) => {
  const yaml = [
    'record: /data/rec.jsonl',
    'recordSample: 0.25',
    'recordPaths:\n  - /predict/\n  - /a,/b',
    'recordMaxBody: 1KB',
    'recordRotateBytes: 4KB',
    'recordQueue: 2MB',
    'recordMemory: 3MB',
    'recordResponses: true',
    'recordRedact: [X-Secret]',
    'recordNoRedact: false',
    '',
  ].join('\n');
  const raw = parseConfigText(yaml, 'drum.yaml');
  t.same(buildConfig(raw).record, {
    file: '/data/rec.jsonl',
    enabled: true,
    sampleRate: 0.25,
    paths: ['/predict/', '/a', '/b'],
    maxBody: 1000,
    rotateBytes: 4000,
    queueBytes: 2_000_000,
    memoryBytes: 3_000_000,
    responses: true,
    redact: [...DEFAULT_REDACT, 'x-secret'],
  });
  t.throws(() => parseConfigText('recordFoo: 1\n', 'drum.yaml'), { name: 'InputError', field: '--config', message: /unknown setting "recordFoo" in drum\.yaml/ });
  t.throws(() => parseConfigText('record_sample: 1\n', 'drum.yaml'), { field: '--config', message: /unknown setting "record_sample"/ });
  t.throws(() => buildConfig(parseConfigText('recordSample: 2\n', 'drum.yaml')), { name: 'InputError', field: 'recordSample' }, 'a known key with a bad value');
});
