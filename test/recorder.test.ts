/** The request recorder's file writer and helpers, on real files (t.testdir), /dev/full and a size-limited child. */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { BATCH_BYTES, createRecorderMetrics, FLUSH_MS, RecordWriter } from '../src/record/writer.js';
import { DEFAULT_RECORD_PATHS, recordable, sampled } from '../src/record/policy.js';
import { DEFAULT_REDACT, recordHeaders, type RecordLine } from '../src/record/line.js';
import { mode, readLines } from './helpers/files.js';
import { metricSum } from './helpers/metrics.js';
import { until } from './helpers/wait.js';

/** The seed's fields, in the seed's order, then ours: the order every line is written in. */
const FIELD_ORDER = ['timestamp', 'method', 'path', 'headers', 'body_hex', 'content_type', 'id', 'upstream', 'status', 'latency_ms', 'body_truncated'];

function record(i: number, over: Partial<RecordLine> = {}): RecordLine {
  return {
    timestamp: 1_700_000_000.25 + i,
    method: 'POST',
    path: `/predict/?n=${i}`,
    headers: { 'Content-Type': 'application/json', 'X-Request-Id': `r-${String(i).padStart(6, '0')}` },
    body_hex: Buffer.from(`{"x":${String(i).padStart(6, '0')}}`).toString('hex'),
    content_type: 'application/json',
    id: `id-${String(i).padStart(6, '0')}`,
    upstream: i % 2 === 0 ? 'flask' : 'fastapi',
    status: 200,
    latency_ms: 12.5,
    body_truncated: false,
    ...over,
  };
}

interface Harness {
  registry: Registry;
  logs: Record<string, unknown>[];
  writer: RecordWriter;
  clock: { now: number };
  /** A counter's value for the labels given. */
  value(name: string, labels?: Record<string, string>): Promise<number>;
}

function harness(opts: { path: string; maxBufferBytes?: number; rotateBytes?: number; realClock?: boolean }): Harness {
  const registry = new Registry();
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void logs.push(JSON.parse(s) as Record<string, unknown>) });
  const clock = { now: 1_000_000 };
  const writer = new RecordWriter({
    path: opts.path,
    maxBufferBytes: opts.maxBufferBytes ?? 64 * 1024 * 1024,
    ...(opts.rotateBytes === undefined ? {} : { rotateBytes: opts.rotateBytes }),
    metrics: createRecorderMetrics(registry),
    log,
    ...(opts.realClock ? {} : { now: () => clock.now }),
  });
  return { registry, logs, writer, clock, value: (name, labels) => metricSum(registry, name, labels) };
}

/** Record files of `base` in writing order: FILE, FILE.1, FILE.2, ... */
const recordFiles = (dir: string, base: string): string[] =>
  readdirSync(dir)
    .filter((n) => n === base || (n.startsWith(`${base}.`) && /^[1-9]\d*$/.test(n.slice(base.length + 1))))
    .sort((a, b) => Number(a.slice(base.length + 1) || 0) - Number(b.slice(base.length + 1) || 0));

t.test('lines round-trip: the contract field order, byte-exact bodies, ASCII only, readable by the seed', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'recorded_requests.jsonl');
  const { writer, value } = harness({ path: file, realClock: true });
  const binary = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37) % 256));
  const multipart = Buffer.concat([
    Buffer.from('--b\r\nContent-Disposition: form-data; name="X"; filename="x.csv"\r\n\r\n'),
    Buffer.from([0x00, 0xff, 0x0a, 0x0d, 0xe9]),
    Buffer.from('\r\n--b--\r\n'),
  ]);
  const json = Buffer.from('{"a": [1, 2.5, "é", "\\u2028"]}\n', 'utf8');
  const bodies = [binary, multipart, json, Buffer.alloc(0)];
  const lines: RecordLine[] = bodies.map((body, i) =>
    record(i, {
      body_hex: body.toString('hex'),
      headers: { 'Content-Type': 'application/octet-stream', 'X-Note': 'caf\u00e9 \u2603 \u{1F600}', Authorization: '[REDACTED]' },
      path: '/predictions/?a=1&b=%2F&c',
    }),
  );
  lines[1] = { ...lines[1]!, content_type: 'multipart/form-data; boundary=b', response: { status: 500, body_hex: binary.toString('hex'), body_truncated: true } };
  // Fields in another order and one the contract does not know: written in order, the extra left out.
  const shuffled = { zzz: 'not written', body_truncated: true, latency_ms: 1, status: 404, upstream: 'flask', id: 'x', content_type: '', body_hex: '', headers: {}, path: '/invocations', method: 'GET', timestamp: 1.5 };
  for (const l of [...lines, shuffled]) t.equal(writer.write(l), true);
  await writer.close();

  const raw = readFileSync(file);
  t.ok(raw.every((b) => b < 0x80), 'the file is pure ASCII');
  const back = readLines(t, file);
  t.equal(back.length, 5);
  for (const [i, l] of back.entries()) {
    const order = i === 1 ? [...FIELD_ORDER, 'response'] : FIELD_ORDER;
    t.same(Object.keys(l), order, `line ${i}: the seed's fields first, then ours`);
  }
  t.strictSame(back.slice(0, 4), lines, 'every field comes back as written');
  for (const [i, body] of bodies.entries()) t.ok(Buffer.from(back[i]!.body_hex as string, 'hex').equals(body), `body ${i} byte-exact`);
  t.same(back[4], { timestamp: 1.5, method: 'GET', path: '/invocations', headers: {}, body_hex: '', content_type: '', id: 'x', upstream: 'flask', status: 404, latency_ms: 1, body_truncated: true });
  t.equal(await value('drum_recorder_records_total'), 5);

  // The seed's loader, as written in CANARY_DEPLOYMENT.md Option A: open(), json.loads, RequestRecord.from_dict.
  const seedLoader = `
import json, sys
from dataclasses import dataclass
from typing import Dict

@dataclass
class RequestRecord:
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes
    timestamp: float

    @classmethod
    def from_dict(cls, d: dict) -> "RequestRecord":
        return cls(
            method=d["method"],
            path=d["path"],
            headers=d.get("headers", {}),
            body=bytes.fromhex(d.get("body_hex", "")) if d.get("body_hex") else b"",
            timestamp=d.get("timestamp", 0)
        )

records = []
with open(sys.argv[1]) as f:
    for line in f:
        records.append(RequestRecord.from_dict(json.loads(line)))
print(json.dumps([[r.method, r.path, r.headers, r.body.hex(), r.timestamp] for r in records]))
`;
  const py = spawnSync('python3', ['-c', seedLoader, file], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C', PYTHONUTF8: '0', PYTHONCOERCECLOCALE: '0' } });
  if (py.error) {
    t.comment('python3 is not installed: the seed loader was not run');
    return;
  }
  t.equal(py.status, 0, py.stderr);
  const seen = JSON.parse(py.stdout) as [string, string, Record<string, string>, string, number][];
  t.same(
    seen,
    [...lines, shuffled].map((l) => [l.method, l.path, l.headers, l.body_hex, l.timestamp]),
    'the seed reads method, path, headers, body and timestamp back, even in the C locale',
  );
});

t.test('recordHeaders keeps original names, joins repeats, redacts case-insensitively', async (t) => {
  const raw = [
    'Host', 'drum:8080',
    'Content-Type', 'application/json',
    'X-Trace', 'a',
    'x-trace', 'b',
    'Authorization', 'Bearer secret',
    'Proxy-Authorization', 'Basic c2VjcmV0',
    'COOKIE', 's=1',
    'Cookie', 't=2',
    'X-API-Key', 'k',
    'DataRobot-Key', 'dk',
    'X-DataRobot-Api-Token', 'tok',
    'x-datarobot-api-key', 'key',
    'X-DataRobot-Authorization', 'Bearer idp',
    'X-DataRobot-Identity-Token', 'id',
    '__proto__', 'kept',
  ];
  const R = '[REDACTED]';
  const out = recordHeaders(raw, new Set(DEFAULT_REDACT));
  t.strictSame(Object.entries(out), [
    ['Host', 'drum:8080'],
    ['Content-Type', 'application/json'],
    ['X-Trace', 'a, b'],
    ['Authorization', R],
    ['Proxy-Authorization', R],
    ['COOKIE', R],
    ['X-API-Key', R],
    ['DataRobot-Key', R],
    ['X-DataRobot-Api-Token', R],
    ['x-datarobot-api-key', R],
    ['X-DataRobot-Authorization', R],
    ['X-DataRobot-Identity-Token', R],
    ['__proto__', 'kept'],
  ]);
  t.equal(JSON.parse(JSON.stringify(out)).__proto__, 'kept', 'a header named __proto__ survives JSON');

  const custom = recordHeaders(raw, new Set(['X-TRACE', 'host']));
  t.equal(custom['X-Trace'], R, 'a custom list, in any case');
  t.equal(custom.Host, R);
  t.equal(custom.Authorization, 'Bearer secret', 'only the listed names are redacted');
  t.equal(custom.COOKIE, 's=1; t=2', 'repeated cookies are joined with "; "');
  t.strictSame(recordHeaders(raw.slice(0, 4), new Set()), { Host: 'drum:8080', 'Content-Type': 'application/json' }, 'no redaction');
  t.strictSame(recordHeaders(['A', '1', 'B'], new Set()), { A: '1' }, 'a name without a value is ignored');
  t.strictSame(recordHeaders([], new Set(DEFAULT_REDACT)), {});
});

t.test('sampled: 0 never, 1 always, otherwise at the rate', async (t) => {
  const never = (): number => {
    throw new Error('random() must not be called');
  };
  for (const rate of [0, -1, Number.NaN]) t.equal(sampled(rate, never), false, `rate ${rate}`);
  for (const rate of [1, 2]) t.equal(sampled(rate, never), true, `rate ${rate}`);
  t.equal(sampled(0.01, () => 0.0099), true, 'below the rate');
  t.equal(sampled(0.01, () => 0.01), false, 'at the rate');
  t.type(sampled(0.5), 'boolean', 'Math.random by default');

  // mulberry32: a seeded PRNG, so the statistical checks are reproducible.
  const prng = (seed: number) => (): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), seed | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  for (const [rate, draws, seed] of [
    [0.01, 10_000, 1],
    [0.01, 10_000, 42],
    [0.3, 100_000, 7],
  ] as const) {
    const random = prng(seed);
    let hits = 0;
    for (let i = 0; i < draws; i++) if (sampled(rate, random)) hits++;
    const observed = hits / draws;
    t.ok(Math.abs(observed - rate) <= 0.005, `rate ${rate}, ${draws} draws, seed ${seed}: observed ${observed} within ±0.5%`);
  }
});

t.test('recordable: DRUM prediction routes, query ignored, trailing slash optional', async (t) => {
  const cases: [string, boolean][] = [
    ['/predict/', true],
    ['/predict', true],
    ['/predict/?passthroughColumns=id', true],
    ['/predict?x=1', true],
    ['/predictions/', true],
    ['/transform/', true],
    ['/invocations', true],
    ['/invocations/', true],
    ['/invocations?x=/predict/', true],
    ['/predictUnstructured/', true],
    ['/predictionsUnstructured/', true],
    ['/predictionsUnstructured', true],
    ['/ping/', false],
    ['/', false],
    ['/stats/', false],
    ['/predict/extra', false],
    ['/v1/predict/', false],
    ['/Predict/', false],
    ['/predictions//', false],
    ['/health/?/predict/', false],
  ];
  const drum = recordable(DEFAULT_RECORD_PATHS);
  for (const [path, want] of cases) t.equal(drum(path), want, path);
  t.equal(recordable(['/'])('/'), true, 'the root route');
  t.equal(recordable(['/a/', '/b'])('/a'), true, 'a custom list');
  t.equal(recordable([])('/predict/'), false, 'an empty list');
});

t.test('metrics: names, and every drop reason exported from the start', async (t) => {
  const registry = new Registry();
  createRecorderMetrics(registry);
  const text = await registry.metrics();
  t.match(text, /^drum_recorder_records_total 0$/m);
  t.match(text, /^drum_recorder_write_errors_total 0$/m);
  for (const reason of ['queue_full', 'write_error', 'closed', 'memory']) t.match(text, new RegExp(`^drum_recorder_dropped_total\\{reason="${reason}"\\} 0$`, 'm'));
});

t.test('close() flushes: every accepted line is in the file, in order, mode 0600', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'rec.jsonl');
  const { writer, value } = harness({ path: file });
  const n = 2000;
  let accepted = 0;
  for (let i = 0; i < n; i++) if (writer.write(record(i))) accepted++;
  t.equal(accepted, n);
  await writer.close();
  const back = readLines(t, file);
  t.equal(back.length, n);
  t.ok(back.every((l, i) => l.id === record(i).id), 'in order');
  t.equal(mode(file), 0o600);
  t.equal(await value('drum_recorder_records_total'), n);
  t.equal(writer.write(record(n)), false, 'closed: no more lines');
  t.equal(await value('drum_recorder_dropped_total', { reason: 'closed' }), 1);
  await writer.close();
  t.equal(readLines(t, file).length, n, 'a second close() is harmless');

  // Appending: a second writer continues the file, and makes it 0600 if someone opened it up.
  chmodSync(file, 0o644);
  const again = harness({ path: file });
  again.writer.write(record(n));
  await again.writer.close();
  t.equal(readLines(t, file).length, n + 1);
  t.equal(mode(file), 0o600, 'an existing 0644 file is made 0600');
  t.same(again.logs, [], 'and nothing to say about it');
});

t.test('batches: a few lines wait in memory up to FLUSH_MS, a full batch goes at once', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'rec.jsonl');
  const { writer, value } = harness({ path: file, realClock: true });
  t.teardown(() => writer.close());
  writer.write(record(0));
  writer.write(record(1));
  await new Promise((r) => setTimeout(r, 100));
  t.equal(statSync(file).size, 0, 'two lines are not a write yet');
  const started = Date.now();
  await until(async () => (await value('drum_recorder_records_total')) === 2, 3 * FLUSH_MS);
  t.ok(Date.now() - started < 2 * FLUSH_MS, 'written within the flush interval');
  t.equal(readLines(t, file).length, 2);
  const lineBytes = JSON.stringify(record(2)).length + 1;
  const batch = Math.ceil(BATCH_BYTES / lineBytes);
  for (let i = 0; i < batch; i++) writer.write(record(2 + i));
  await until(async () => (await value('drum_recorder_records_total')) === 2 + batch, FLUSH_MS / 2);
});

t.test('rotation: FILE, FILE.1, FILE.2, ... each under rotateBytes, 0600, no line lost', async (t) => {
  const dir = t.testdir({ 'other.txt': 'x', 'rec.jsonl.bak': 'x', 'rec.jsonl.01': 'x' });
  const file = join(dir, 'rec.jsonl');
  const lineBytes = JSON.stringify(record(0)).length + 1;
  const rotateBytes = lineBytes * 3 + 10;
  const { writer, value } = harness({ path: file, rotateBytes });
  const n = 20;
  for (let i = 0; i < n; i++) writer.write(record(i));
  // A line longer than rotateBytes gets a file of its own.
  const big = record(n, { body_hex: 'ab'.repeat(rotateBytes) });
  writer.write(big);
  writer.write(record(n + 1));
  await writer.close();

  const files = recordFiles(dir, 'rec.jsonl');
  t.same(files, ['rec.jsonl', ...Array.from({ length: 8 }, (_, i) => `rec.jsonl.${i + 1}`)]);
  const all: Record<string, unknown>[] = [];
  for (const f of files) {
    const lines = readLines(t, join(dir, f));
    all.push(...lines);
    t.equal(mode(join(dir, f)), 0o600, `${f} is 0600`);
    if (lines.some((l) => l.id === big.id)) t.equal(lines.length, 1, 'the big line alone');
    else t.ok(statSync(join(dir, f)).size <= rotateBytes, `${f} within rotateBytes`);
  }
  t.same(
    all.map((l) => l.id),
    [...Array.from({ length: n }, (_, i) => record(i).id), big.id, record(n + 1).id],
    'every line, in order, across the files',
  );
  t.equal(await value('drum_recorder_records_total'), n + 2);
  t.equal(readFileSync(join(dir, 'rec.jsonl.01'), 'utf8'), 'x', 'files not named FILE.<n> are left alone');
});

t.test('a writer continues the highest-numbered file, or the next one after a broken last line', async (t) => {
  const whole = `${JSON.stringify(record(0))}\n`;
  t.test('appends to the newest file', async (t) => {
    const dir = t.testdir({ 'rec.jsonl': whole, 'rec.jsonl.2': whole, 'rec.jsonl.x': 'x', 'rec.jsonl.02': 'x', 'rec.jsonl.': 'x' });
    const { writer } = harness({ path: join(dir, 'rec.jsonl') });
    writer.write(record(1));
    await writer.close();
    t.equal(readLines(t, join(dir, 'rec.jsonl.2')).length, 2);
    t.equal(readLines(t, join(dir, 'rec.jsonl')).length, 1);
  });
  t.test('a last line cut short is left alone: the next number', async (t) => {
    const dir = t.testdir({ 'rec.jsonl': whole, 'rec.jsonl.2': whole + '{"cut' });
    const { writer } = harness({ path: join(dir, 'rec.jsonl') });
    writer.write(record(1));
    await writer.close();
    t.equal(readFileSync(join(dir, 'rec.jsonl.2'), 'utf8'), whole + '{"cut');
    t.same(readLines(t, join(dir, 'rec.jsonl.3')).map((l) => l.id), [record(1).id]);
  });
  t.test('an existing file counts towards rotateBytes', async (t) => {
    const dir = t.testdir({ 'rec.jsonl.4': whole });
    const { writer } = harness({ path: join(dir, 'rec.jsonl'), rotateBytes: whole.length + 5 });
    writer.write(record(1));
    await writer.close();
    t.equal(readLines(t, join(dir, 'rec.jsonl.4')).length, 1);
    t.equal(readLines(t, join(dir, 'rec.jsonl.5')).length, 1);
  });
  t.test('an empty file is used', async (t) => {
    const dir = t.testdir({ 'rec.jsonl': '' });
    const { writer } = harness({ path: join(dir, 'rec.jsonl'), rotateBytes: 1 });
    writer.write(record(1));
    await writer.close();
    t.equal(readLines(t, join(dir, 'rec.jsonl')).length, 1);
    t.same(recordFiles(dir, 'rec.jsonl'), ['rec.jsonl']);
  });
});

t.test('overflow: a full buffer drops and counts lines, the file holds whole lines', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'rec.jsonl');
  const lineBytes = JSON.stringify(record(0)).length + 1;
  const { writer, value } = harness({ path: file, maxBufferBytes: lineBytes * 5 + lineBytes / 2 });
  const attempted = 100;
  let accepted = 0;
  for (let i = 0; i < attempted; i++) if (writer.write(record(i))) accepted++;
  t.equal(accepted, 5, 'the bound holds the bytes of 5 lines while nothing is written yet');
  t.equal(await value('drum_recorder_dropped_total', { reason: 'queue_full' }), attempted - 5);

  // Once written, the buffer has room again.
  await until(async () => (await value('drum_recorder_records_total')) === 5);
  t.equal(writer.write(record(attempted)), true);
  const long = (i: number): RecordLine => record(i, { body_hex: 'ab'.repeat(lineBytes * 6) });
  t.equal(writer.write(long(attempted + 1)), false, 'a line longer than the bound does not join a queue');
  await until(async () => (await value('drum_recorder_records_total')) === 6);
  t.equal(writer.write(long(attempted + 2)), true, 'but an empty queue takes it');
  t.equal(writer.write(record(attempted + 3)), false, 'and nothing joins it while it waits');
  await writer.close();

  const back = readLines(t, file);
  t.same(back.map((l) => l.id), [0, 1, 2, 3, 4, attempted, attempted + 2].map((i) => record(i).id));
  const records = await value('drum_recorder_records_total');
  const dropped = await value('drum_recorder_dropped_total', { reason: 'queue_full' });
  t.equal(records, 7);
  t.equal(records + dropped, attempted + 4, 'records_total + dropped = attempted');
});

t.test('a line that cannot be serialized is dropped and counted, not thrown; a missing field is null', async (t) => {
  const dir = t.testdir();
  const { writer, value, logs } = harness({ path: join(dir, 'rec.jsonl') });
  const bad: [string, RecordLine][] = [
    ['a BigInt', record(0, { headers: { n: 1n as unknown as string } })],
    ['body_hex not hex', record(0, { body_hex: '{"x":1}' })],
    ['body_hex of odd length', record(0, { body_hex: 'abc' })],
    ['response body_hex not hex', record(0, { response: { status: 200, body_hex: 'zz', body_truncated: false } })],
  ];
  for (const [name, line] of bad) t.equal(writer.write(line), false, name);
  const missing = { ...record(1), upstream: undefined, response: { status: undefined, body_hex: '', body_truncated: false } } as unknown as RecordLine;
  t.equal(writer.write(missing), true, 'a missing field');
  t.equal(writer.write(record(2, { body_hex: 'ABCDEF' })), true, 'upper-case hex is hex');
  await writer.close();
  t.equal(await value('drum_recorder_write_errors_total'), bad.length);
  t.equal(await value('drum_recorder_dropped_total', { reason: 'write_error' }), bad.length);
  t.equal(logs.length, 1, 'logged once a minute');
  t.match(logs[0], { level: 50, msg: /could not be serialized/, err: { type: 'TypeError' } });
  const back = readLines(t, join(dir, 'rec.jsonl'));
  t.equal(back.length, 2);
  t.equal(back[0]!.upstream, null);
  t.same(back[0]!.response, { status: null, body_hex: '', body_truncated: false });
  t.equal(back[1]!.body_hex, 'ABCDEF');
});

t.test('write errors on /dev/full: counted, dropped, logged once a minute, never thrown', async (t) => {
  const { writer, value, logs, clock } = harness({ path: '/dev/full' });
  for (let i = 0; i < 10; i++) t.equal(writer.write(record(i)), true, 'accepted: the error comes later');
  await until(async () => (await value('drum_recorder_write_errors_total')) === 1);
  t.equal(await value('drum_recorder_dropped_total', { reason: 'write_error' }), 10, 'the lines that failed');
  t.equal(logs.length, 1);
  t.match(logs[0], { level: 50, file: '/dev/full', lost: 10, errors_not_logged: 0, err: { code: 'ENOSPC' } });

  t.equal(writer.write(record(10)), false, 'dropped for a second after a failure');
  t.equal(await value('drum_recorder_dropped_total', { reason: 'write_error' }), 11);

  clock.now += 2000; // the file is tried again, within the minute: not logged
  t.equal(writer.write(record(11)), true);
  await until(async () => (await value('drum_recorder_write_errors_total')) === 2);
  t.equal(logs.length, 1, 'still one log line within the minute');

  clock.now += 60_000; // a minute later: logged, with the count of errors not logged
  t.equal(writer.write(record(12)), true);
  await until(async () => (await value('drum_recorder_write_errors_total')) === 3);
  t.equal(logs.length, 2);
  t.match(logs[1], { errors_not_logged: 1, lost: 1 });

  // A failure after close() began: close() still resolves, and the line is counted.
  clock.now += 2000;
  t.equal(writer.write(record(13)), true);
  await writer.close();
  t.equal(await value('drum_recorder_write_errors_total'), 4);
  t.equal(await value('drum_recorder_dropped_total', { reason: 'write_error' }), 14);
  t.equal(await value('drum_recorder_records_total'), 0);
});

t.test('a record directory removed mid-run: noticed, counted, logged once; recording resumes at the path once it is back', async (t) => {
  const dir = join(t.testdir(), 'records');
  mkdirSync(dir);
  const file = join(dir, 'rec.jsonl');
  const { writer, value, logs, clock } = harness({ path: file });
  t.equal(writer.write(record(0)), true);
  await until(async () => (await value('drum_recorder_records_total')) === 1);
  rmSync(dir, { recursive: true });

  t.equal(writer.write(record(1)), true, 'accepted: the new file cannot be created, which shows later');
  t.equal(await value('drum_recorder_write_errors_total'), 1, 'the removal is counted as the line is written');
  t.equal(logs.length, 1);
  t.match(logs[0], { level: 50, msg: /record file was removed or replaced/, file, err: { code: 'ENOENT' } });
  await until(async () => (await value('drum_recorder_dropped_total', { reason: 'write_error' })) === 1);
  t.equal(await value('drum_recorder_write_errors_total'), 2, 'and the failed open of a new file');
  t.equal(writer.write(record(2)), false, 'dropped for a second after the failure');

  mkdirSync(dir);
  clock.now += 2000;
  t.equal(writer.write(record(3)), true);
  t.equal(writer.write(record(4)), true);
  await writer.close();
  t.same(readLines(t, file).map((l) => l.id), [record(3).id, record(4).id], 'a new file at the path, once the directory is back');
  t.equal(mode(file), 0o600);
  t.equal(logs.length, 1, 'logged once: the failed open came within the minute');
  const records = await value('drum_recorder_records_total');
  const dropped = await value('drum_recorder_dropped_total', { reason: 'write_error' });
  t.same([records, dropped], [3, 2], 'the line written before the removal is counted as a record: it was on disk, and went with the directory');
});

t.test('a record file replaced or removed: later lines go to the file now at the path', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'rec.jsonl');
  const { writer, value, logs, clock } = harness({ path: file });
  writer.write(record(0));
  await until(async () => (await value('drum_recorder_records_total')) === 1);

  // Renamed over, as an editor or a rotation tool does: appended to, since it ends with a whole line.
  writeFileSync(join(dir, 'new'), `${JSON.stringify(record(100))}\n`);
  renameSync(join(dir, 'new'), file);
  t.equal(writer.write(record(1)), true);
  t.equal(writer.write(record(2)), true);
  t.equal(await value('drum_recorder_write_errors_total'), 1, 'counted once');
  t.match(logs, [{ level: 50, msg: /record file was removed or replaced/, file, err: { message: /another file/ } }]);
  await until(async () => (await value('drum_recorder_records_total')) === 3);
  t.same(readLines(t, file).map((l) => l.id), [record(100).id, record(1).id, record(2).id]);

  // Moved away: a new file at the path at once.
  renameSync(file, join(dir, 'rec.jsonl.old'));
  t.equal(writer.write(record(3)), true);
  await until(async () => (await value('drum_recorder_records_total')) === 4);
  t.same(readLines(t, file).map((l) => l.id), [record(3).id]);
  t.equal(readLines(t, join(dir, 'rec.jsonl.old')).length, 3, 'the moved file is left as it was');

  // Replaced by one whose last line is cut: not glued to it, the next number instead.
  clock.now += 60_000;
  writeFileSync(join(dir, 'new'), '{"cut');
  renameSync(join(dir, 'new'), file);
  t.equal(writer.write(record(4)), true);
  await writer.close();
  t.equal(readFileSync(file, 'utf8'), '{"cut');
  t.same(readLines(t, `${file}.1`).map((l) => l.id), [record(4).id]);

  t.equal(await value('drum_recorder_write_errors_total'), 3);
  t.equal(logs.length, 2, 'the second change within the minute is not logged, the third after it is');
  t.match(logs[1], { errors_not_logged: 1 });
  t.equal(await value('drum_recorder_records_total'), 5);
  t.equal(await value('drum_recorder_dropped_total', { reason: 'write_error' }), 0);
});

t.test('a record path that is a directory: write errors, nothing thrown', async (t) => {
  const dir = t.testdir({ 'rec.jsonl': {} });
  const { writer, value } = harness({ path: join(dir, 'rec.jsonl') });
  t.equal(writer.write(record(0)), true);
  await writer.close();
  t.equal(await value('drum_recorder_write_errors_total'), 1);
  t.equal(await value('drum_recorder_dropped_total', { reason: 'write_error' }), 1);
});

t.test('a directory missing from the start', async (t) => {
  const file = join(t.testdir(), 'nope', 'rec.jsonl');
  const { writer, value } = harness({ path: file });
  t.equal(writer.write(record(0)), true);
  await writer.close();
  t.equal(await value('drum_recorder_write_errors_total'), 1);
  t.equal(await value('drum_recorder_dropped_total', { reason: 'write_error' }), 1);
});

t.test('a disk that fills mid-line: the cut line is truncated away, every line whole', async (t) => {
  // A file size limit (RLIMIT_FSIZE, soft only, set with util-linux prlimit on this process for
  // the duration): the write that crosses it is short and the next fails with EFBIG, as on a
  // full disk. A SIGXFSZ listener keeps the signal from killing the process (tap's signal-exit
  // would re-raise it).
  const dir = t.testdir();
  const file = join(dir, 'rec.jsonl');
  const { writer, value } = harness({ path: file });
  const limit = 4096;
  const line = (i: number): RecordLine => record(i, { upstream: 'flask', body_hex: String(i % 10).repeat(900) });
  const lineBytes = JSON.stringify(line(0)).length + 1;
  t.not(limit % lineBytes, 0, 'the limit falls inside a line');
  const setSoftLimit = (value: string): void => {
    const run = spawnSync('prlimit', ['--pid', String(process.pid), `--fsize=${value}:`], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`prlimit: ${run.error?.message ?? run.stderr}`);
  };
  const ignore = (): void => {};
  process.on('SIGXFSZ', ignore);
  setSoftLimit(String(limit));
  try {
    for (let i = 0; i < 10; i++) writer.write(line(i));
    await writer.close();
  } finally {
    setSoftLimit('unlimited');
    process.off('SIGXFSZ', ignore);
  }
  const whole = Math.floor(limit / lineBytes);
  t.equal(statSync(file).size, whole * lineBytes, 'the cut line is gone');
  t.same(readLines(t, file).map((l) => l.id), Array.from({ length: whole }, (_, i) => line(i).id));
  t.equal(await value('drum_recorder_records_total'), whole);
  t.equal(await value('drum_recorder_dropped_total', { reason: 'write_error' }), 10 - whole, 'records + dropped = attempted');
  t.equal(await value('drum_recorder_write_errors_total'), 1);
});
