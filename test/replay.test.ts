import { statSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t, { type Test } from 'tap';
import { InputError } from '../src/common/input-error.js';
import type { RecordLine } from '../src/record/line.js';
import { EXIT, replayCommand } from '../src/replay/command.js';
import { openRecordings } from '../src/replay/input.js';
import { helpPage } from '../src/common/flags.js';
import { REPLAY_COMMAND, REPLAY_FLAGS } from '../src/replay/options.js';
import { inNoiseSample } from '../src/replay/run.js';
import type { Report } from '../src/replay/report.js';
import { freePort, spawnBuiltCli, startUpstream, type TestUpstream, type UpstreamHandler } from './helpers/net.js';
import { statusBytes } from './helpers/rss.js';
import { mode } from './helpers/files.js';
import { until } from './helpers/wait.js';

// `drum-splitter replay` in-process against real upstreams on 127.0.0.1.

const dir = await mkdtemp(join(tmpdir(), 'replay-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

let lines = 0;
/** One line as our recorder writes it. */
function ours(method: string, path: string, body: Buffer | string = '', more: Partial<RecordLine> = {}): string {
  const bytes = Buffer.from(body);
  const line: RecordLine = {
    timestamp: 1_700_000_000.25,
    method,
    path,
    headers: { Host: 'model.example', 'User-Agent': 'rec' },
    body_hex: bytes.toString('hex'),
    content_type: '',
    id: `r${++lines}`,
    upstream: 'flask',
    status: 200,
    latency_ms: 3.5,
    body_truncated: false,
    ...more,
  };
  return JSON.stringify(line);
}

async function file(name: string, ...content: string[]): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content.map((l) => `${l}\n`).join(''));
  return path;
}

/**
 * Answers after a steady delay, so that the canary's p99 is within 20% of the baseline's
 * however busy the machine (at 1 ms each, scheduling jitter alone can exceed 20%).
 */
const STEADY_MS = 40;

/** A DRUM stand-in: CSV → one prediction per row (the sum of its cells), JSON and bytes echoed, /ping text. */
function drum(variant: (path: string, body: Buffer) => { status: number; type?: string; body: Buffer | string } | undefined = () => undefined): UpstreamHandler {
  return (req, res, body) => {
    const path = req.url!;
    const answer = variant(path, body) ?? standard(req.headers['content-type'], path, body);
    if (answer.type !== undefined) res.setHeader('content-type', answer.type);
    res.statusCode = answer.status;
    setTimeout(() => res.end(answer.body), STEADY_MS);
  };
}

function standard(type: string | undefined, path: string, body: Buffer): { status: number; type?: string; body: Buffer | string } {
  if (path.startsWith('/ping')) return { status: 200, body: 'pong' };
  if (type === 'text/csv') {
    const [, ...rows] = body.toString('utf8').trim().split('\n');
    const predictions = rows.map((r) => r.split(',').reduce((s, c) => s + Number(c), 0));
    if (predictions.some(Number.isNaN)) return { status: 422, type: 'application/json', body: JSON.stringify({ message: 'bad csv' }) };
    return { status: 200, type: 'application/json', body: JSON.stringify({ predictions }) };
  }
  if (type === 'application/json') return { status: 200, type: 'application/json', body };
  return { status: 200, type: 'application/octet-stream', body };
}

const BINARY = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3]);

/** CSV, JSON, binary (not UTF-8), a GET with a query, and a request both answer 422. */
const standardFile = (name: string): Promise<string> =>
  file(
    name,
    ours('POST', '/predict/', 'a,b\n1,2\n3,4\n', {
      headers: { Host: 'model.example', 'Content-Type': 'text/csv', 'Content-Length': '12', Connection: 'keep-alive, X-Hop', 'X-Hop': '1', 'X-Trace': 't1', Authorization: '[REDACTED]' },
    }),
    ours('POST', '/predictUnstructured/', '{"x":[1,2]}', { headers: { 'Content-Type': 'application/json' } }),
    ours('POST', '/predictUnstructured/', BINARY, { headers: { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' } }),
    ours('GET', '/ping?verbose=1'),
    ours('POST', '/predict/', 'a,b\n1,x\n', { headers: { 'Content-Type': 'text/csv' } }),
  );

interface Run {
  code: number;
  report: Report;
  stderr: string[];
  stdout: string;
}

async function replay(values: Record<string, unknown>, positionals: string[] = [], deps: { stderrIsTTY?: boolean; barStream?: NodeJS.WritableStream } = {}): Promise<Run> {
  const stderr: string[] = [];
  let stdout = '';
  const output = (values.output as string | undefined) ?? join(dir, `out-${++lines}.json`);
  const code = await replayCommand({ output, ...values }, positionals, { stderr: (l) => stderr.push(l), stdout: (s) => (stdout += s), stderrIsTTY: false, ...deps });
  return { code, report: JSON.parse(await readFile(output, 'utf8')) as Report, stderr, stdout };
}

/** What a backend received of the replayed requests (the replay also reads each backend's /stats/ before and after). */
const sent = (up: TestUpstream): TestUpstream['seen'] => up.seen.filter((r) => r.url !== '/stats/');

async function pair(t: Test, baseline: UpstreamHandler, canary: UpstreamHandler): Promise<[TestUpstream, TestUpstream]> {
  const b = await startUpstream('flask', baseline);
  const c = await startUpstream('fastapi', canary);
  t.teardown(() => Promise.all([b.close(), c.close()]));
  return [b, c];
}

/**
 * The most the replay process may reach replaying a 1 GiB recording: a third of the file. What it
 * holds is ten records in flight (~15 MB, about 5 MB left after a full collection); the rest is
 * Node itself (~45 MB) and V8's slack between collections, which every 512 KB line read (as a
 * string, and its body_hex as another) feeds: 230-280 MiB measured at V8's defaults on Node 24.
 * Reading the file whole took more than the file, and failed past ~512 MiB.
 */
const PEAK = 384 * 2 ** 20;

const SUMMARY_KEYS = ['total_requests', 'errors', 'response_mismatches', 'match_rate', 'flask_latency', 'fastapi_latency', 'latency_improvement'];
const SEED_RESULT_KEYS = ['path', 'flask_status', 'fastapi_status', 'flask_latency_ms', 'fastapi_latency_ms', 'diff', 'error'];

t.test('the flags and usage main.ts wires in', async (t) => {
  t.match(REPLAY_FLAGS.find((f) => f.flag === 'requests-file'), { kind: 'list' });
  t.match(REPLAY_FLAGS.find((f) => f.flag === 'noise-check'), { kind: 'switch' });
  t.match(helpPage(REPLAY_COMMAND), /^ +--flask-url URL/m);
  for (const flag of ['noise-sample', 'relative', 'absolute', 'repeat', 'min-p99-difference'] as const) t.match(REPLAY_FLAGS.find((f) => f.flag === flag), { kind: 'value' }, flag);
  t.match(helpPage(REPLAY_COMMAND), /3 none fails but one is inconclusive/, 'the inconclusive exit code');
});

t.test('identical backends: every request matches, the seed summary keys; 5 latencies a side judge no p99, exit 3', async (t) => {
  const [b, c] = await pair(t, drum(), drum());
  const rec = await standardFile('same.jsonl');
  const { code, report, stderr, stdout } = await replay({ 'flask-url': b.url, 'fastapi-url': c.url, 'requests-file': [rec] });
  t.equal(code, EXIT.inconclusive);
  t.strictSame(Object.keys(report.summary), SUMMARY_KEYS);
  t.strictSame(Object.keys(report.summary.flask_latency), ['p50', 'p95', 'p99']);
  t.strictSame(Object.keys(report.summary.latency_improvement), ['p50', 'p99']);
  t.match(report.summary.latency_improvement.p50, /^-?\d+\.\d%$/);
  t.equal(report.summary.total_requests, 5);
  t.equal(report.summary.errors, 0);
  t.equal(report.summary.response_mismatches, 0);
  t.equal(report.summary.match_rate, '100.00%');
  t.strictSame(Object.keys(report.results[0]!).slice(0, 7), SEED_RESULT_KEYS);
  t.strictSame(
    report.results.map((r) => [r.path, r.route, r.flask_status, r.fastapi_status, r.kind, r.diff, r.error]),
    [
      ['/predict/', '/predict/', 200, 200, 'json', null, null],
      ['/predictUnstructured/', '/predictUnstructured/', 200, 200, 'json', null, null],
      ['/predictUnstructured/', '/predictUnstructured/', 200, 200, 'bytes', null, null],
      ['/ping?verbose=1', '/ping', 200, 200, 'text', null, null],
      ['/predict/', '/predict/', 422, 422, 'json', null, null],
    ],
  );
  t.equal(report.results[0]!.source, `${rec}:1`);
  t.strictSame(
    report.criteria.map((x) => [x.name, x.verdict, x.pass]),
    [
      ['match_rate', 'pass', true],
      ['canary_p99_within_20_percent', 'inconclusive', null],
      ['error_responses_match', 'pass', true],
      ['no_oom', 'not measured', null],
    ],
  );
  t.equal(report.criteria[0]!.value, 1);
  t.equal(report.criteria[2]!.value, 1);
  t.match(report.criteria[1], {
    value: null,
    note: 'p99: 5 canary and 5 baseline requests, fewer than 100 each (the p99 of fewer than 100 latencies is their slowest; --repeat N sends each request N times)',
    test: { test: 'one-sided Mann–Whitney U', significance: 0.01, samples: { baseline: 5, canary: 5 }, min_samples: 100, min_difference_ms: 5, p: null, p99_ms: null, difference_ms: null },
  });
  t.equal(report.criteria[3]!.note, 'no container limits in /stats/');
  t.equal(report.noise, null, 'no noise sample');
  t.ok(stderr.includes('replay: not measured no_oom: no container limits in /stats/ (criterion: 0 backends at their container memory limit)'), 'not measured, not a pass');
  t.ok(stderr.some((l) => l.startsWith('replay: INCONCLUSIVE canary_p99_within_20_percent: p99: 5 canary and 5 baseline requests')));
  t.ok(stderr.includes('replay: pass match_rate: 100.0% (criterion: 100%); 5 of 5 requests match'), 'a rate as a percent, beside its criterion');
  t.ok(stderr.includes('replay: pass error_responses_match: 100.0% (criterion: 100%); 1 of 1 error answers match'));
  t.ok(
    stderr.includes('replay: INCONCLUSIVE overall; criteria: 2 pass (match_rate, error_responses_match), 1 inconclusive (canary_p99_within_20_percent), 1 not measured (no_oom)'),
    'what they add up to: not measured is not counted a pass',
  );
  t.notOk(stderr.some((l) => l.startsWith('replay: mismatch')), 'no mismatch, no mismatch line');
  t.strictSame(report.memory, { flask: { before: null, after: null }, fastapi: { before: null, after: null } }, 'no DRUM /stats/ here');
  t.strictSame(Object.keys(report.routes), ['/predict/', '/predictUnstructured/', '/ping']);
  t.match(report.routes['/predict/'], { count: 2, mismatches: 0, errors: 0 });
  t.equal(report.interrupted, false);
  t.strictSame(report.skipped, { counts: { malformed: 0, truncated: 0 }, first: [] });
  t.strictSame(JSON.parse(stdout), report.summary, 'the summary on stdout, as the seed prints it');
  t.match(stderr[0], /loaded 5 requests for replay from 1 file\(s\)$/);
  t.ok(stderr.includes('replay: 100% (5/5), 0 mismatches, 0 errors'), 'a plain line per tenth when not a terminal');

  // What each backend received: the recorded request, minus what belonged to its connection.
  for (const up of [b, c]) {
    t.equal(sent(up).length, 5);
    const [csv, , bin, ping] = sent(up);
    t.equal(csv!.body.toString(), 'a,b\n1,2\n3,4\n');
    t.equal(csv!.headers['x-trace'], 't1');
    t.equal(csv!.headers['content-length'], '12');
    t.notOk('x-hop' in csv!.headers, 'a header named in Connection is not resent');
    t.notOk('authorization' in csv!.headers, 'a redacted header is not resent');
    t.not(csv!.headers.host, 'model.example');
    t.strictSame(bin!.body, BINARY);
    t.notOk('transfer-encoding' in bin!.headers);
    t.equal(ping!.method, 'GET');
    t.equal(ping!.url, '/ping?verbose=1');
  }
});

t.test('the reports are 0600, as the recordings are: an existing one is made so', async (t) => {
  const [b, c] = await pair(t, drum(), drum());
  const rec = await file('private.jsonl', ours('GET', '/ping'));
  const output = join(dir, 'private-out.json');
  const html = join(dir, 'private-out.html');
  await writeFile(output, 'old', { mode: 0o644 });
  const { code, stderr } = await replay({ baseline: b.url, canary: c.url, output, html }, [rec]);
  t.equal(code, EXIT.inconclusive);
  t.equal(mode(output), 0o600, 'the JSON report, which existed as 0644');
  t.equal(mode(html), 0o600, 'the HTML report, new');
  t.notOk(stderr.some((l) => l.includes('cannot be made private')), 'nothing to say');
});

t.test('a canary that answers differently: mismatches counted and described, exit 1', async (t) => {
  const [b, c] = await pair(
    t,
    drum(),
    drum((path, body) => {
      if (path === '/predict/' && body.includes('1,2')) return { status: 200, type: 'application/json', body: '{"predictions":[3.5,7]}' };
      if (path === '/predict/' && body.includes('1,x')) return { status: 500, type: 'application/json', body: '{"message":"boom"}' };
      if (body[0] === 0xff) return { status: 200, type: 'application/octet-stream', body: Buffer.concat([body, Buffer.from([1])]) };
      if (body.includes('"x"')) return { status: 200, type: 'application/json', body: '{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}' };
      return undefined;
    }),
  );
  const rec = await standardFile('differ.jsonl');
  const { code, report, stderr } = await replay({ baseline: b.url, canary: c.url }, [rec]);
  t.equal(code, 1);
  t.equal(report.summary.response_mismatches, 4);
  t.ok(stderr.includes(`replay: FAIL match_rate: 20.0% (criterion: 100%); 1 of 5 requests match`), stderr.join('\n'));
  t.ok(stderr.includes(`replay: FAIL error_responses_match: 0.0% (criterion: 100%); 0 of 1 error answers match`));
  // Each kind of mismatch once (here each is its own), with a request to look at.
  t.same(
    stderr.filter((l) => l.startsWith('replay: mismatch ')),
    [
      `replay: mismatch 1 × POST /predict/ 200 vs 200 at $.predictions[*] (changed); e.g. ${rec}:1`,
      `replay: mismatch 1 × POST /predictUnstructured/ 200 vs 200 at $.a (added), $.b (added), $.c (added), $.d (added), $.e (added), $.f (added), $.x (removed); e.g. ${rec}:2`,
      `replay: mismatch 1 × POST /predictUnstructured/ 200 vs 200 at $ (bytes); e.g. ${rec}:3`,
      `replay: mismatch 1 × POST /predict/ 422 vs 500 at $status (status), $.message (changed); e.g. ${rec}:5`,
    ],
  );
  t.equal(report.summary.errors, 0);
  t.equal(report.summary.match_rate, '20.00%');
  const diffs = report.results.map((r) => r.diff);
  t.match(diffs[0], /^differences at \$\.predictions/);
  t.match(diffs[1], /^differences at .*, …$/, 'six differences: five named');
  t.equal(report.results[1]!.differences.length, 7);
  t.equal(diffs[2], 'Binary diff: 5 vs 6 bytes');
  t.equal(diffs[3], null);
  t.equal(diffs[4], 'Status mismatch: Flask=422, FastAPI=500');
  t.match(report.criteria, [
    { name: 'match_rate', value: 0.2, pass: false },
    {},
    { name: 'error_responses_match', value: 0, pass: false },
    { name: 'no_oom', verdict: 'not measured' },
  ]);
  t.match(report.routes['/predict/'], { count: 2, mismatches: 2 });
});

t.test('a dead canary or baseline is an error per request, not a crash', async (t) => {
  const [b] = await pair(t, drum(), drum());
  const dead = `http://127.0.0.1:${await freePort()}`;
  const rec = await file('dead.jsonl', ours('GET', '/ping'), ours('GET', '/ping'));
  const canaryDown = await replay({ baseline: b.url, canary: dead, 'noise-check': true }, [rec]);
  t.equal(canaryDown.code, 1);
  t.match(canaryDown.report.summary, { total_requests: 2, errors: 2, response_mismatches: 0, match_rate: '0.00%' });
  t.match(canaryDown.report.results[0], { flask_status: 200, fastapi_status: 0, diff: null, kind: null, error: /^canary: .*ECONNREFUSED/ });
  t.equal(sent(b).length, 2, 'no noise-check send when there is nothing to compare');

  const bothDown = await replay({ baseline: dead, canary: dead }, [rec]);
  t.match(bothDown.report.results[0], { flask_status: 0, error: /^baseline: .*; canary: / });
  t.strictSame(bothDown.report.summary.latency_improvement, { p50: 'N/A', p99: 'N/A' });
  t.match(bothDown.report.criteria[1], { value: null, verdict: 'inconclusive', pass: null, note: /^p99: 0 canary and 0 baseline requests/ });
  t.match(bothDown.report.routes['/ping'], { count: 2, errors: 2, flask_p99_ms: 0 });
});

t.test('a canary that does not answer in --timeout is an error', async (t) => {
  const [b, c] = await pair(t, drum(), () => undefined);
  const rec = await file('slow.jsonl', ours('GET', '/ping'));
  const { report } = await replay({ baseline: b.url, canary: c.url, timeout: '200ms' }, [rec]);
  t.match(report.results[0], { error: 'canary: timeout after 200 ms', flask_status: 200 });
});

t.test('malformed and truncated lines are skipped and counted; --strict stops at the first malformed one', async (t) => {
  const [b, c] = await pair(t, drum(), drum());
  const rec = await file(
    'bad.jsonl',
    ours('GET', '/ping'),
    'not json',
    '{"method":"GET"}',
    '[1]',
    '{"method":"GET","path":"ping"}',
    '{"method":"GET","path":"/x","headers":[]}',
    '{"method":"GET","path":"/x","headers":{"A":1}}',
    '{"method":"GET","path":"/x","body_hex":"zz"}',
    '',
    ours('POST', '/predict/', 'a\n1\n', { body_truncated: true }),
    ...Array.from({ length: 5 }, () => '{"method":""}'),
  );
  const rotated = await file('bad.jsonl.1', `${ours('GET', '/ping?old')}\r`, '{"truncated line');
  const { code, report, stderr } = await replay({ baseline: b.url, canary: c.url }, [rec, rotated]);
  t.equal(code, EXIT.inconclusive, 'skipped lines do not fail the replay');
  t.equal(report.summary.total_requests, 2);
  t.strictSame(report.skipped.counts, { malformed: 13, truncated: 1 });
  t.equal(report.skipped.first.length, 10);
  t.strictSame(report.skipped.first.slice(0, 9), [
    { source: `${rec}:2`, reason: 'malformed', detail: 'not JSON' },
    { source: `${rec}:3`, reason: 'malformed', detail: 'no path starting with /' },
    { source: `${rec}:4`, reason: 'malformed', detail: 'not a JSON object' },
    { source: `${rec}:5`, reason: 'malformed', detail: 'no path starting with /' },
    { source: `${rec}:6`, reason: 'malformed', detail: 'headers are not an object of strings' },
    { source: `${rec}:7`, reason: 'malformed', detail: 'headers are not an object of strings' },
    { source: `${rec}:8`, reason: 'malformed', detail: 'body_hex is not hex' },
    { source: `${rec}:10`, reason: 'truncated', detail: 'body_truncated' },
    { source: `${rec}:11`, reason: 'malformed', detail: 'no method' },
  ]);
  t.equal(report.results[1]!.source, `${rotated}:1`);
  t.match(stderr[0], /loaded 2 requests .* from 2 file\(s\), skipped 14 \(13 malformed, 1 truncated\)/);
  t.equal(sent(b).length, 2, 'a truncated record is never sent');

  await t.rejects(replayCommand({ baseline: b.url, canary: c.url, strict: true }, [rec]), new InputError(`${rec}:2: not JSON (--strict stops at a malformed line)`));
  await t.rejects(replayCommand({ baseline: b.url, canary: c.url }, [join(dir, 'missing.jsonl')]), { name: 'InputError', message: /cannot read .*missing\.jsonl/ });
  await t.rejects(replayCommand({ baseline: b.url, canary: c.url }, [dir]), { name: 'InputError', message: /cannot read/ });
});

t.test('recordings read line by line: a last line without a newline, one over the limit, the files as first read', async (t) => {
  const long = JSON.stringify({ method: 'GET', path: `/${'x'.repeat(1000)}` });
  const rec = join(dir, 'lines.jsonl');
  await writeFile(rec, `${ours('GET', '/a')}\n${long}\n\n${ours('GET', '/b')}`);
  const blankEnd = join(dir, 'blank-end.jsonl');
  await writeFile(blankEnd, `${ours('GET', '/c')}\n  `);
  const empty = join(dir, 'empty-file.jsonl');
  await writeFile(empty, '');
  const recordings = await openRecordings([rec, empty, blankEnd], false, 400);
  t.equal(recordings.count, 3);
  t.strictSame(recordings.skipped, { counts: { malformed: 1, truncated: 0 }, first: [{ source: `${rec}:2`, reason: 'malformed', detail: 'longer than 400 bytes' }] });
  // What is added or changed after the count is not read: the files as they were, up to where they ended.
  await writeFile(blankEnd, `${ours('GET', '/d')}\n`, { flag: 'a' });
  await rm(rec);
  await writeFile(rec, `${ours('GET', '/other')}\n`);
  const read: string[] = [];
  for await (const r of recordings.records()) read.push(`${r.path} ${r.source}`);
  t.strictSame(read, [`/a ${rec}:1`, `/b ${rec}:4`, `/c ${blankEnd}:1`]);
  await recordings.close();

  await t.rejects(openRecordings([rec, blankEnd], true, 100), new InputError(`${rec}:1: longer than 100 bytes (--strict stops at a malformed line)`));
});

t.test('a recording over 1 GiB: replayed whole, the replay process holding a few records at a time', async (t) => {
  // 2,200 records of 256 KB bodies: the old replay read it whole into one string, past V8's longest (~512 MiB).
  const big = join(dir, 'big.jsonl');
  const line = `${ours('POST', '/predictUnstructured/', Buffer.alloc(256 * 1024, 7), { headers: { 'Content-Type': 'application/octet-stream' } })}\n`;
  const block = Buffer.from(line.repeat(100));
  const handle = await open(big, 'w');
  for (let written = 0; written <= 2 ** 30; written += block.length) await handle.write(block);
  await handle.close();
  const { size } = statSync(big);
  t.teardown(() => rm(big, { force: true }));
  t.ok(size > 2 ** 30, `${size} bytes`);
  const records = Math.round(size / line.length);

  // Small answers, whatever was sent: the replay holds the requests, not what comes back.
  const small: UpstreamHandler = (req, res) => {
    req.resume();
    req.on('end', () => res.end('{"predictions":[1]}'));
  };
  const b = await startUpstream('flask', small, { readBody: false });
  const c = await startUpstream('fastapi', small, { readBody: false });
  t.teardown(() => Promise.all([b.close(), c.close()]));
  const output = join(dir, 'big-out.json');
  // The built CLI in a process of its own, as a user runs it; its peak from the kernel's high-water mark.
  const child = spawnBuiltCli(['replay', '--baseline', b.url, '--canary', c.url, '--output', output, big]);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  let peak = 0;
  const sample = setInterval(() => {
    try {
      peak = statusBytes(child.pid!, 'VmHWM');
    } catch {
      // Exited (a zombie has no memory lines): the last sample stands.
    }
  }, 25);
  const code = await new Promise<number | null>((r) => child.on('exit', (exit) => (clearInterval(sample), r(exit))));
  t.equal(code, 0, stderr);
  t.match(stderr, new RegExp(`loaded ${records} requests`));
  const report = JSON.parse(await readFile(output, 'utf8')) as Report;
  t.equal(report.summary.total_requests, records, 'every record replayed');
  t.equal(report.summary.match_rate, '100.00%');
  t.ok(peak > 0 && peak < PEAK, `peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB for a ${(size / 2 ** 30).toFixed(2)} GiB recording`);
});

t.test('nothing to replay: a report that says so, exit 1', async (t) => {
  const rec = await file('empty.jsonl', ours('GET', '/x', '', { body_truncated: true }));
  const { code, report, stderr } = await replay({ baseline: 'http://127.0.0.1:1', canary: 'http://127.0.0.1:1' }, [rec]);
  t.equal(code, 1);
  t.equal(report.summary.match_rate, 'N/A');
  t.match(report.criteria[0], { name: 'match_rate', value: null, pass: false, note: 'no requests replayed' });
  t.ok(stderr.includes('replay: FAIL match_rate: no requests replayed (criterion: 100%)'), stderr.join('\n'));
});

t.test('mismatches that differ alike are one line with their count; past five kinds, how many more', async (t) => {
  // The canary adds a field to every CSV answer, and answers each /rN with a 500.
  const canary = drum((path, body) => {
    if (path.startsWith('/r')) return { status: 500, body: 'down' };
    const predictions = body.toString().trim().split('\n').slice(1).map(Number);
    return { status: 200, type: 'application/json', body: JSON.stringify({ predictions, meta: 'fastapi' }) };
  });
  const [b, c] = await pair(t, drum(), canary);
  const csv = (n: number): string => ours('POST', '/predict/', `a\n${n}\n`, { headers: { 'Content-Type': 'text/csv' } });
  const rec = await file('groups.jsonl', csv(1), csv(1), csv(2), ...Array.from({ length: 6 }, (_, i) => ours('GET', `/r${i}`)));
  const { code, stderr } = await replay({ baseline: b.url, canary: c.url }, [rec]);
  t.equal(code, 1);
  t.same(
    stderr.filter((l) => l.startsWith('replay: mismatch ') || l.includes('more kinds')),
    [
      `replay: mismatch 3 × POST /predict/ 200 vs 200 at $.meta (added), all alike; e.g. ${rec}:1`,
      ...[0, 1, 2, 3].map((i) => `replay: mismatch 1 × GET /r${i} 200 vs 500 at $status (status), $ (changed); e.g. ${rec}:${4 + i}`),
      'replay: 2 more kinds of mismatch: the --html page lists every kind, the JSON every request',
    ],
  );
});

t.test('--ignore makes a documented difference pass', async (t) => {
  const answer = (version: string): UpstreamHandler => (_req, res) => {
    res.setHeader('content-type', 'application/json');
    setTimeout(() => res.end(JSON.stringify({ predictions: [1, 2], meta: { version } })), STEADY_MS);
  };
  const [b, c] = await pair(t, answer('flask-1'), answer('fastapi-1'));
  const rec = await file('ignore.jsonl', ours('POST', '/predict/', 'a\n1\n', { headers: { 'Content-Type': 'text/csv' } }));
  t.equal((await replay({ baseline: b.url, canary: c.url }, [rec])).report.summary.response_mismatches, 1);
  const ignored = await replay({ baseline: b.url, canary: c.url, ignore: ['$.meta.version'] }, [rec]);
  t.equal(ignored.code, EXIT.inconclusive);
  t.equal(ignored.report.summary.match_rate, '100.00%');
  await t.rejects(replayCommand({ baseline: b.url, canary: c.url, ignore: ['$.['] }, [rec]), { name: 'InputError', message: /^--ignore: / });
});

t.test('--noise-check cancels a field that differs between two baseline answers', async (t) => {
  let tick = 0;
  let flaky = 0;
  const stamped =
    (baseline: boolean): UpstreamHandler =>
    (req, res) => {
      // Every second /flaky request to the baseline (the noise-check one) fails.
      if (baseline && req.url === '/flaky' && ++flaky % 2 === 0) {
        res.destroy();
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ predictions: [1], timestamp: ++tick }));
    };
  const [b, c] = await pair(t, stamped(true), stamped(false));
  const rec = await file('noise.jsonl', ours('GET', '/predict'), ours('GET', '/flaky'));
  const plain = await replay({ baseline: b.url, canary: c.url }, [rec]);
  t.equal(plain.report.summary.response_mismatches, 2);
  t.match(plain.report.results[0]!.diff, /\$\.timestamp/);
  flaky = 0;
  const checked = await replay({ baseline: b.url, canary: c.url, 'noise-check': true }, [rec]);
  t.equal(checked.report.results[0]!.diff, null, 'the timestamp is noise');
  t.match(checked.report.results[1]!.diff, /\$\.timestamp/, 'no noise known when the second baseline send fails');
  t.equal(checked.report.results[1]!.error, null);
});

t.test('the noise sample: exactly its share of the exchanges, spread evenly, the same each time', async (t) => {
  const table: [number, number[]][] = [
    [0, []],
    [1, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]],
    [0.25, [3, 7, 11]],
    [0.1, [9]],
    [0.5, [1, 3, 5, 7, 9, 11]],
    [1 / 3, [2, 5, 8, 11]],
  ];
  for (const [share, picked] of table) t.strictSame([...Array(12).keys()].filter((n) => inNoiseSample(n, share)), picked, String(share));
});

/** Answers {"predictions": [sum of the CSV's cells + shift], "id": random, "time": ms}: a random id and a timestamp in every answer. */
const stamped =
  (shift: (x: number) => number = () => 0): UpstreamHandler =>
  (_req, res, body) => {
    const x = Number(body.toString().split('\n')[1]);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ predictions: [x + shift(x)], id: Math.random().toString(36).slice(2), time: performance.now() }));
  };

const csv = (x: number): string => ours('POST', '/predict/', `a\n${x}\n`, { headers: { 'Content-Type': 'text/csv' } });

t.test('--noise-sample: a random id and a timestamp in both answers are noise, discounted; a real difference still counts; --relative/--absolute', async (t) => {
  // The canary: predictions off by 1e-4 everywhere (float jitter), and by 1 for x = 7 (a real difference).
  const [b, c] = await pair(t, stamped(), stamped((x) => (x === 7 ? 1 : 1e-4)));
  const rec = await file('noisy.jsonl', ...Array.from({ length: 40 }, (_, x) => csv(x)));
  const plain = await replay({ baseline: b.url, canary: c.url }, [rec]);
  t.equal(plain.report.summary.response_mismatches, 40, 'without a noise sample every answer differs');
  t.match(plain.report.results[0]!.differences.map((d) => d.field), ['$.id', '$.predictions[*]', '$.time']);

  const before = sent(b).length;
  const sampled = await replay({ baseline: b.url, canary: c.url, 'noise-sample': '0.25', absolute: '0.001' }, [rec]);
  t.equal(sent(b).length - before, 50, 'each request once, and a quarter of them (10) a second time');
  t.equal(sampled.code, EXIT.fail, 'the real difference fails match_rate');
  t.equal(sampled.report.summary.response_mismatches, 1);
  const real = sampled.report.results.find((r) => r.diff !== null)!;
  t.match(real, { path: '/predict/', diff: 'differences at $.predictions[0] (changed)', differences: [{ field: '$.predictions[*]', baseline: 7, canary: 8 }] });
  t.equal(real.differences.length, 1, 'its noise differences are not listed');
  const noise = sampled.report.noise!;
  t.strictSame(noise.routes, { '/predict/': { compared: 40, noisePairs: 10 } });
  t.match(noise.fields, [
    { route: '/predict/', field: '$.id', differences: 40, noiseDifferences: 10, noisePairs: 10, rate: 1, noiseRate: 1, verdict: 'noise', discounted: 40 },
    { route: '/predict/', field: '$.time', differences: 40, noiseDifferences: 10, verdict: 'noise', discounted: 40 },
  ]);
  t.equal(noise.fields.length, 2, 'the predictions never differed between two baseline answers');
  t.equal(noise.discounted, 39, 'requests that matched only because their differences were noise');
  t.ok(sampled.stderr.includes('replay: noise: /predict/ $.id (40 differences), /predict/ $.time (40 differences) discounted; 39 requests matched only so'));

  // The jitter is within --absolute 0.001 and not within the default 1e-5.
  const jitter = await replay({ baseline: b.url, canary: c.url, 'noise-sample': '0.25' }, [rec]);
  t.equal(jitter.report.summary.response_mismatches, 40);
  t.match(jitter.report.results[0]!.diff, 'differences at $.predictions[0] (changed)');
});

t.test('--noise-sample: a noise sample that finds nothing says so', async (t) => {
  const [b, c] = await pair(t, drum(), drum());
  const rec = await file('quiet.jsonl', ours('GET', '/ping'), ours('GET', '/ping'));
  const { report, stderr } = await replay({ baseline: b.url, canary: c.url, 'noise-sample': '1' }, [rec]);
  t.strictSame(report.noise, { thresholds: { relative: 0.2, absolute: 0.0003 }, routes: { '/ping': { compared: 2, noisePairs: 2 } }, fields: [], discounted: 0, untracked: 0 });
  t.ok(stderr.includes('replay: noise: no field discounted; 0 requests matched only so'));
});

t.test('--repeat: each record N times, to both backends each time, pairs one after another; enough latencies for a p99', async (t) => {
  const arrivals: string[] = [];
  const arrive =
    (name: string): UpstreamHandler =>
    (req, res) => {
      if (req.url !== '/stats/') arrivals.push(`${name} ${req.url}`);
      setTimeout(() => res.end('{"predictions":[1]}'), 5);
    };
  const [b, c] = await pair(t, arrive('b'), arrive('c'));
  const rec = await file('repeat.jsonl', ours('GET', '/predict/?1'), ours('GET', '/predict/?2'));
  const { code, report, stderr } = await replay({ baseline: b.url, canary: c.url, repeat: '50', concurrency: '1' }, [rec]);
  t.equal(code, EXIT.pass, stderr.join('\n'));
  t.match(stderr[0], /loaded 2 requests for replay from 1 file\(s\), each sent 50 times$/);
  t.equal(report.summary.total_requests, 100);
  t.strictSame(report.results.map((r) => r.path), [...Array(50).fill('/predict/?1'), ...Array(50).fill('/predict/?2')], 'in record order, then repeat order');
  t.match(report.criteria[1], { verdict: 'pass', test: { samples: { baseline: 100, canary: 100 } } });
  t.equal(arrivals.length, 200);
  // With one in flight, each pair is done before the next starts: b and c together each time, never one side ahead.
  for (let k = 0; k < 200; k += 2) t.strictSame(arrivals.slice(k, k + 2).map((a) => a[0]).sort(), ['b', 'c'], `pair ${k / 2}`);
  t.ok(stderr.some((l) => /^replay: 100% \(100\/100\)/.test(l)), 'the progress counts every exchange');
});

t.test('identical servers replayed twice: the p99 criterion never flips between PASS and FAIL (issue 27: 1.569 FAIL, then 0.813 PASS)', async (t) => {
  // Both the same stand-in: 2-5 ms, and 3% of answers 30 ms late, so that the slowest of a few dozen
  // is luck: once the canary's, once the baseline's.
  const same: UpstreamHandler = (_req, res) => {
    setTimeout(() => res.end('{"predictions":[1]}'), 2 + Math.random() * 3 + (Math.random() < 0.03 ? 30 : 0));
  };
  const [b, c] = await pair(t, same, same);
  const rec = await file('identical.jsonl', ...Array.from({ length: 40 }, (_, i) => ours('GET', `/predict/?${i}`)));
  for (const run of [1, 2]) {
    const few = await replay({ baseline: b.url, canary: c.url }, [rec]);
    t.match(few.report.criteria[1], { verdict: 'inconclusive', pass: null, value: null, test: { samples: { baseline: 40, canary: 40 } } }, `run ${run}, 40 requests: inconclusive`);
    t.equal(few.code, EXIT.inconclusive);
    const many = await replay({ baseline: b.url, canary: c.url, repeat: '5' }, [rec]);
    t.match(many.report.criteria[1], { verdict: 'pass', test: { samples: { baseline: 200, canary: 200 } } }, `run ${run}, 40 requests × 5: pass`);
    t.equal(many.code, EXIT.pass, many.stderr.join('\n'));
  }
});

t.test('a canary slower by more than the floor fails; --min-p99-difference sets the floor', async (t) => {
  // 5 ms against 60 ms: on a busy machine a p99 moves by tens of ms, so the difference is made larger
  // than that; where the floor decides is the table test's (test/replay-report.test.ts).
  const after =
    (ms: number): UpstreamHandler =>
    (_req, res) =>
      void setTimeout(() => res.end('{"predictions":[1]}'), ms);
  const rec = await file('slower.jsonl', ...Array.from({ length: 25 }, (_, i) => ours('GET', `/predict/?${i}`)));
  const [b, slow] = await pair(t, after(5), after(60));
  const failed = await replay({ baseline: b.url, canary: slow.url, repeat: '4' }, [rec]);
  t.equal(failed.code, EXIT.fail);
  t.match(failed.report.criteria[1], { verdict: 'fail', pass: false, note: /^canary p99 .* not under \+20%$/, test: { min_difference_ms: 5 } });
  t.ok(failed.report.criteria[1]!.test!.p! < 0.01);
  t.ok(
    failed.stderr.some((l) => /^replay: FAIL canary_p99_within_20_percent: \d+\.\d% of the baseline's p99 \(criterion: at most 120%, unless under 5 ms more or not slower by Mann–Whitney p < 0\.01\); canary p99 /.test(l)),
    failed.stderr.join('\n'),
  );
  const floored = await replay({ baseline: b.url, canary: slow.url, repeat: '4', 'min-p99-difference': '1s' }, [rec]);
  t.match(floored.report.criteria[1], { verdict: 'pass', note: /; under the 1000\.0 ms floor, so not a regression$/, test: { min_difference_ms: 1000 } });
  const none = await replay({ baseline: b.url, canary: slow.url, repeat: '4', 'min-p99-difference': '0' }, [rec]);
  t.match(none.report.criteria[1], { verdict: 'fail', test: { min_difference_ms: 0 } });
});

t.test('--rate spaces the requests out', async (t) => {
  const arrivals: number[] = [];
  const [b, c] = await pair(
    t,
    (req, res) => {
      if (req.url !== '/stats/') arrivals.push(performance.now());
      res.end('ok');
    },
    (_req, res) => res.end('ok'),
  );
  const rec = await file('rate.jsonl', ...Array.from({ length: 10 }, (_, i) => ours('GET', `/ping?${i}`)));
  const { report } = await replay({ baseline: b.url, canary: c.url, rate: '20', concurrency: '10' }, [rec]);
  t.equal(report.summary.total_requests, 10);
  // Over nine intervals (450 ms at 20/s), with the same 20% slack a single gap had: one request's connect time
  // must not decide it.
  const span = arrivals[9]! - arrivals[0]!;
  t.ok(span >= 360, `the tenth request ${span} ms after the first, at 20/s`);
});

t.test("the seed middleware's lines: no id or status, Content-Type only in content_type", async (t) => {
  const [b, c] = await pair(t, drum(), drum());
  const rec = await file(
    'seed.jsonl',
    JSON.stringify({ timestamp: 1_700_000_000.1, method: 'POST', path: '/predict/', headers: { 'User-Agent': 'curl/8', 'X-Request-Id': 'a1' }, body_hex: Buffer.from('a,b\n1,2\n').toString('hex'), content_type: 'text/csv' }),
    JSON.stringify({ timestamp: 1_700_000_000.2, method: 'GET', path: '/ping' }),
  );
  const { code, report } = await replay({ baseline: b.url, canary: c.url }, [rec]);
  t.equal(code, EXIT.inconclusive);
  t.equal(report.summary.match_rate, '100.00%');
  t.equal(sent(b)[0]!.headers['content-type'], 'text/csv');
  t.equal(sent(b)[0]!.headers['x-request-id'], 'a1');
  t.equal(report.results[0]!.kind, 'json');
});

t.test('bad usage is an InputError: a UsageError when a flag or the recording is missing', async (t) => {
  const rec = await file('usage.jsonl', ours('GET', '/ping'));
  const ok = { baseline: 'http://127.0.0.1:1', canary: 'http://127.0.0.1:1' };
  const cases: [Record<string, unknown>, string[], RegExp][] = [
    [{ canary: ok.canary }, [rec], /^needs --baseline URL \(or --flask-url URL\)$/],
    [{ baseline: ok.baseline }, [rec], /^needs --canary URL \(or --fastapi-url URL\)$/],
    [{ ...ok, 'flask-url': 'http://127.0.0.1:2' }, [rec], /^--flask-url and --baseline name the same backend/],
    [{ ...ok, baseline: 'nope' }, [rec], /^--baseline: "nope" is not a URL/],
    [{ ...ok, canary: 'ftp://x/' }, [rec], /^--canary: "ftp:\/\/x\/" is not an http\(s\) URL/],
    [ok, [], /^needs a recording/],
    [{ ...ok, concurrency: '0' }, [rec], /^--concurrency: "0" is not a positive whole number/],
    [{ ...ok, concurrency: '1.5' }, [rec], /^--concurrency/],
    [{ ...ok, rate: 'x' }, [rec], /^--rate: "x" is not a positive number/],
    [{ ...ok, rate: 'Infinity' }, [rec], /^--rate/],
    [{ ...ok, timeout: 'soon' }, [rec], /^--timeout/],
    [{ ...ok, repeat: '0' }, [rec], /^--repeat: "0" is not a positive whole number/],
    [{ ...ok, 'noise-sample': '1.5' }, [rec], /^--noise-sample: "1.5" is not a rate from 0 to 1/],
    [{ ...ok, 'noise-sample': '0.1', 'noise-check': true }, [rec], /^--noise-check is --noise-sample 1; give one$/],
    [{ ...ok, 'min-p99-difference': 'soon' }, [rec], /^--min-p99-difference: "soon" is not a duration/],
    [{ ...ok, relative: '-0.1' }, [rec], /^--relative: "-0.1" is not a number from 0 up/],
    [{ ...ok, absolute: 'x' }, [rec], /^--absolute: "x" is not a number from 0 up/],
    [{ ...ok, output: rec }, [rec], /is one of the recordings being replayed/],
    [{ ...ok, output: join(dir, 'no', 'such', 'out.json') }, [rec], /^--output: cannot write/],
  ];
  for (const [values, positionals, message] of cases) {
    const name = /needs|same backend/.test(message.source) ? 'UsageError' : 'InputError';
    await t.rejects(replayCommand(values, positionals, { stderr: () => undefined }), { name, message }, message.source);
  }
  // The seed's and our spelling together are fine when they agree.
  const [b, c] = await pair(t, drum(), drum());
  t.equal((await replay({ baseline: b.url, 'flask-url': b.url, canary: c.url }, [rec])).code, EXIT.inconclusive);
});

t.test('Ctrl-C: stops sending, reports what was done, exit 1', async (t) => {
  const slow: UpstreamHandler = (_req, res) => setTimeout(() => res.end('ok'), 30);
  const [b, c] = await pair(t, slow, slow);
  const rec = await file('sigint.jsonl', ...Array.from({ length: 40 }, (_, i) => ours('GET', `/ping?${i}`)));
  const before = process.listeners('SIGINT');
  const running = replay({ baseline: b.url, canary: c.url, rate: '50', concurrency: '4' }, [rec]);
  await until(() => sent(b).length >= 4);
  // Only the replay's handler: tap's own (signal-exit) must not see a Ctrl-C.
  const added = process.listeners('SIGINT').filter((l) => !before.includes(l));
  t.equal(added.length, 1);
  added[0]!('SIGINT');
  const { code, report, stderr } = await running;
  t.equal(code, 1);
  t.equal(report.interrupted, true);
  t.ok(report.summary.total_requests >= 1 && report.summary.total_requests < 40, `${report.summary.total_requests} done`);
  t.ok(stderr.includes('replay: interrupted; reporting the requests done so far'));
  t.strictSame(process.listeners('SIGINT'), before, 'the handler is removed');
});

t.test('a progress bar on a terminal', async (t) => {
  const [b, c] = await pair(t, drum(), drum());
  const rec = await file('tty.jsonl', ours('GET', '/ping'), ours('GET', '/ping'));
  let drawn = '';
  const bar = Object.assign(
    new Writable({
      write(chunk: Buffer, _enc, done) {
        drawn += chunk.toString();
        done();
      },
    }),
    { isTTY: true, columns: 100 },
  );
  const { code, stderr } = await replay({ baseline: b.url, canary: c.url }, [rec], { stderrIsTTY: true, barStream: bar });
  t.equal(code, EXIT.inconclusive);
  t.match(drawn, /replay \[.*\] 2\/2 \| 0 mismatches, 0 errors/);
  t.notOk(stderr.some((l) => /^replay: \d+% \(/.test(l)), 'no plain progress lines');
});

t.test('defaults: process stdout/stderr, shadow_test_results.json in the working directory', async (t) => {
  const [b, c] = await pair(t, drum(), drum());
  const rec = await file('defaults.jsonl', ours('GET', '/ping'));
  const cwd = process.cwd();
  const work = await mkdtemp(join(dir, 'cwd-'));
  const writes = { out: '', err: '' };
  const [out, err] = [process.stdout.write, process.stderr.write];
  process.chdir(work);
  process.stdout.write = ((s: string) => ((writes.out += s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => ((writes.err += s), true)) as typeof process.stderr.write;
  let code: number;
  try {
    code = await replayCommand({ baseline: b.url, canary: c.url }, [rec]);
  } finally {
    [process.stdout.write, process.stderr.write] = [out, err];
    process.chdir(cwd);
  }
  t.equal(code, EXIT.inconclusive);
  const report = JSON.parse(await readFile(join(work, 'shadow_test_results.json'), 'utf8')) as Report;
  t.equal(report.summary.total_requests, 1);
  t.strictSame(JSON.parse(writes.out), report.summary);
  t.match(writes.err, /replay: loaded 1 requests/);
});

t.test("memory from each backend's /stats/ before and after; a canary at its container limit fails no_oom", async (t) => {
  let canaryUsed = 100;
  const stats = (used: () => number) => (path: string) =>
    path === '/stats/' ? { status: 200, type: 'application/json', body: JSON.stringify({ mem_info: { drum_rss: 50, container_max_used: used(), container_limit: 512 } }) } : undefined;
  const [b, c] = await pair(t, drum(stats(() => 100)), drum(stats(() => canaryUsed)));
  const rec = await file('oom.jsonl', ours('POST', '/predict/', 'a,b\n1,2\n', { headers: { 'Content-Type': 'text/csv' } }));
  const fine = await replay({ baseline: b.url, canary: c.url }, [rec]);
  t.match(fine.report.memory.fastapi, { before: { rss: 50 * 2 ** 20, containerMaxUsed: 100 * 2 ** 20, containerLimit: 512 * 2 ** 20 }, after: { rss: 50 * 2 ** 20 } });
  t.match(fine.report.criteria[3], { name: 'no_oom', value: 0, pass: true });
  canaryUsed = 512;
  const oom = await replay({ baseline: b.url, canary: c.url }, [rec]);
  t.equal(oom.code, 1);
  t.match(oom.report.criteria[3], { name: 'no_oom', value: 1, pass: false });
});
