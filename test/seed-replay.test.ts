import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { RecordLine } from '../src/record/line.js';
import { send, startTestProxy, startUpstream, type UpstreamHandler } from './helpers/net.js';
import { extractSeedScript, runSeedReplay, seedReplayAvailable } from './helpers/seed-replay.js';

// The seed's Option A replay script (CANARY_DEPLOYMENT.md), run unchanged by Debian's python3,
// over a JSONL file written by hand in the seed's Option B recorder format, and over one
// recorded by drum-splitter.

t.test('extractSeedScript finds only the Option A block, and says so when it is missing', async (t) => {
  const md = [
    '# x',
    '```python',
    '# request_recorder.py',
    'pass',
    '```',
    '```python',
    '# scripts/shadow_replay_test.py',
    'print("a")',
    '',
    'print("b")',
    '```',
    'after',
  ].join('\n');
  t.equal(extractSeedScript(md), '# scripts/shadow_replay_test.py\nprint("a")\n\nprint("b")\n');
  t.throws(() => extractSeedScript('```python\n# request_recorder.py\n```\n', 'SEED.md'), /SEED\.md has no ```python block starting "# scripts\/shadow_replay_test\.py"/);
  t.throws(() => extractSeedScript('```python\n# scripts/shadow_replay_test.py\nx = 1\n'), /never closed/);
});

/** Predictions from a CSV body: one per data row, the sum of its cells. */
function csvPredictions(body: Buffer): number[] {
  const [, ...rows] = body.toString('utf8').trim().split('\n');
  return rows.map((r) => r.split(',').reduce((s, c) => s + Number(c), 0));
}

/**
 * A DRUM stand-in. `drift` is the one deliberate difference: the "fastapi" one adds 1 to any
 * prediction over 100, which only one recorded request produces.
 */
const drum = (drift: boolean): UpstreamHandler => (req, res, body) => {
  const path = req.url!.split('?')[0];
  const json = (v: unknown) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(v));
  };
  if (req.method === 'GET' && path === '/ping') return json({ message: 'OK' });
  if (req.method === 'POST' && path === '/predict/') {
    return json({ predictions: csvPredictions(body).map((p) => (drift && p > 100 ? p + 1 : p)) });
  }
  if (req.method === 'POST' && path === '/invocations') {
    const { rows } = JSON.parse(body.toString('utf8')) as { rows: number[][] };
    return json({ predictions: rows.map((r) => r.reduce((s, c) => s + c, 0)) });
  }
  if (req.method === 'POST' && path === '/predictUnstructured/') {
    // Not JSON: the script compares such 200 bodies byte for byte, but only if they
    // decode as text (see the quirks test); ?raw=1 answers raw bytes.
    const digest = createHash('sha256').update(body).digest();
    if (req.url!.endsWith('?raw=1')) {
      res.setHeader('content-type', 'application/octet-stream');
      return res.end(Buffer.concat([Buffer.from([0xff, 0xfe, 0xfd]), digest]));
    }
    res.setHeader('content-type', 'text/plain');
    return res.end(digest.toString('hex'));
  }
  if (path === '/hangup') return req.socket.destroy();
  res.statusCode = 404;
  res.end();
};

/** What the seed's WSGI RequestRecorderMiddleware writes: CGI names, so Title-Case headers
 * (HTTP_X_REQUEST_ID -> X-Request-Id), and never Content-Type/Content-Length among them. */
type SeedRecord = Pick<RecordLine, 'timestamp' | 'method' | 'path' | 'headers' | 'body_hex' | 'content_type'>;

const wsgiHeaders = (extra: Record<string, string> = {}): Record<string, string> => ({
  Host: 'canary.example:8080',
  'User-Agent': 'python-requests/2.31.0',
  'Accept-Encoding': 'gzip, deflate',
  Accept: '*/*',
  Connection: 'keep-alive',
  ...extra,
});

const binary = Buffer.from([...Array.from({ length: 256 }, (_, i) => i), 0xff, 0xfe, 0x00, 0x0d, 0x0a, 0xc3, 0x28]);
const records: SeedRecord[] = [
  {
    timestamp: 1718000000.123456,
    method: 'POST',
    path: '/predict/',
    headers: wsgiHeaders({ 'X-Request-Id': 'rec-1' }),
    body_hex: Buffer.from('a,b\n1,2\n3,4\n').toString('hex'),
    content_type: 'text/csv',
  },
  {
    // The one that differs: 50+60 = 110 from "flask", 111 from "fastapi".
    timestamp: 1718000001.5,
    method: 'POST',
    path: '/predict/',
    headers: wsgiHeaders({ 'X-Request-Id': 'rec-2' }),
    body_hex: Buffer.from('a,b\r\n50,60\r\n1,1\r\n').toString('hex'),
    content_type: 'text/csv; charset=utf-8',
  },
  {
    timestamp: 1718000002,
    method: 'POST',
    path: '/predictUnstructured/',
    headers: wsgiHeaders(),
    body_hex: binary.toString('hex'),
    content_type: 'application/octet-stream',
  },
  {
    timestamp: 1718000003.25,
    method: 'POST',
    path: '/invocations',
    // A recorder that also keeps Content-Type among the headers gets it replayed; the
    // content_type field alone is never sent (the script ignores it).
    headers: wsgiHeaders({ 'Content-Type': 'application/json' }),
    body_hex: Buffer.from('{"rows": [[1.5, 2.25], [10, -4]]}').toString('hex'),
    content_type: 'application/json',
  },
  {
    timestamp: 1718000004,
    method: 'GET',
    path: '/ping',
    headers: wsgiHeaders(),
    body_hex: '',
    content_type: '',
  },
  {
    timestamp: 1718000005.75,
    method: 'POST',
    path: '/predict/?passthrough=1&tag=a%20b',
    headers: wsgiHeaders({ 'X-Datarobot-Request-Id': 'rec-6' }),
    body_hex: Buffer.from('x,y,z\n1,1,1\n').toString('hex'),
    content_type: 'text/csv',
  },
];

const skip = seedReplayAvailable();

t.test('the seed replay script runs unchanged on our JSONL', { skip }, async (t) => {
  const workDir = await mkdtemp(join(tmpdir(), 'seed-replay-'));
  const flask = await startUpstream('flask', drum(false));
  const fastapi = await startUpstream('fastapi', drum(true));
  t.teardown(async () => {
    await Promise.all([flask.close(), fastapi.close()]);
    await rm(workDir, { recursive: true, force: true });
  });

  // One JSON object a line, newline-terminated, as the recorder's json.dumps(record) + "\n".
  const jsonl = join(workDir, 'recorded_requests.jsonl');
  await writeFile(jsonl, records.map((r) => JSON.stringify(r) + '\n').join(''));

  const { report, results, stdout } = await runSeedReplay({ jsonl, flaskUrl: flask.url, fastapiUrl: fastapi.url, workDir });

  t.match(stdout, /^Loaded 6 requests for replay\n/);
  t.equal(report.total_requests, 6);
  t.equal(report.errors, 0);
  t.equal(report.response_mismatches, 1);
  t.equal(report.match_rate, '83.33%');

  // Both sides answered 200 everywhere: a connection failure on both sides would be status 0
  // twice, which the script counts as a match, not an error.
  t.same(
    results.map((r) => [r.path, r.flask_status, r.fastapi_status, r.error]),
    records.map((r) => [r.path, 200, 200, null]),
  );
  const diffs = results.filter((r) => r.diff !== null);
  t.equal(diffs.length, 1);
  t.equal(diffs[0]!.path, '/predict/');
  t.match(diffs[0]!.diff, /values_changed.*root\['predictions'\]\[0\].*111.*110|values_changed.*110.*111/s);

  // Each stand-in got exactly the recorded requests (concurrently, so in any order),
  // bodies byte for byte.
  const key = (s: { method: string; url: string; body: Buffer }) => `${s.method} ${s.url} ${s.body.toString('hex')}`;
  const expected = records.map((r) => key({ method: r.method, url: r.path, body: Buffer.from(r.body_hex, 'hex') })).sort();
  for (const up of [flask, fastapi]) {
    t.same(up.seen.map(key).sort(), expected);
    for (const rec of records) {
      const got = up.seen.find((s) => s.url === rec.path && s.body.equals(Buffer.from(rec.body_hex, 'hex')))!;
      // The recorded Host is dropped (httpx sends the upstream's); other headers go as recorded.
      t.equal(got.headers.host, new URL(up.url).host);
      t.equal(got.headers['user-agent'], rec.headers['User-Agent']);
      t.equal(got.headers['x-request-id'], rec.headers['X-Request-Id']);
      t.equal(got.headers['x-datarobot-request-id'], rec.headers['X-Datarobot-Request-Id']);
      // content_type is never replayed; Content-Type only when it is among the headers.
      t.equal(got.headers['content-type'], rec.headers['Content-Type']);
      // httpx frames the body itself.
      t.equal(got.headers['content-length'], rec.body_hex ? String(rec.body_hex.length / 2) : rec.method === 'POST' ? '0' : undefined);
    }
  }
});

t.test('seed script quirks our reports must allow for', { skip }, async (t) => {
  const workDir = await mkdtemp(join(tmpdir(), 'seed-replay-'));
  const flask = await startUpstream('flask', drum(false));
  const fastapi = await startUpstream('fastapi', drum(false));
  t.teardown(async () => {
    await Promise.all([flask.close(), fastapi.close()]);
    await rm(workDir, { recursive: true, force: true });
  });
  const quirks: Partial<SeedRecord>[] = [
    // Identical 200 answers that are not UTF-8: json.loads(bytes) raises UnicodeDecodeError,
    // which the script's `except json.JSONDecodeError` misses, so it is an "error".
    { method: 'POST', path: '/predictUnstructured/?raw=1', body_hex: '00ff' },
    // Both upstreams hang up: replay_request turns that into status 0 on each side, which
    // compares equal, so it counts as a match.
    { method: 'POST', path: '/hangup', body_hex: '' },
    // Only method and path are required: headers, body_hex, timestamp default; content_type
    // is never read.
    { method: 'GET', path: '/ping' },
  ];
  const jsonl = join(workDir, 'quirks.jsonl');
  await writeFile(jsonl, quirks.map((r) => JSON.stringify(r) + '\n').join(''));
  const { report, results } = await runSeedReplay({ jsonl, flaskUrl: flask.url, fastapiUrl: fastapi.url, workDir });

  t.match(report, { total_requests: 3, errors: 1, response_mismatches: 0, match_rate: '66.67%' });
  t.match(results[0], { flask_status: 0, fastapi_status: 0, diff: null, error: /codec can't decode/ });
  t.match(results[1], { flask_status: 0, fastapi_status: 0, diff: null, error: null });
  t.match(results[2], { flask_status: 200, fastapi_status: 200, diff: null, error: null });
  t.equal(flask.seen.length, 3);
  t.equal(fastapi.seen.length, 3);
});

t.test('a file recorded by drum-splitter replays with the seed script unchanged', { skip }, async (t) => {
  const workDir = await mkdtemp(join(tmpdir(), 'seed-replay-'));
  const flask = await startUpstream('flask', drum(false));
  const fastapi = await startUpstream('fastapi', drum(true));
  const jsonl = join(workDir, 'recorded_requests.jsonl');
  const proxy = await startTestProxy({
    upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`],
    weights: ['fastapi=50'],
    record: jsonl,
    recordSample: 1,
    recordPaths: ['/predict/', '/predictUnstructured/', '/invocations', '/ping'],
  });
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([flask.close(), fastapi.close()]);
    await rm(workDir, { recursive: true, force: true });
  });

  // The hand-written records above, sent through the proxy as a client would, with
  // Content-Type and a credential among the headers.
  for (const r of records) {
    const headers: Record<string, string> = { 'X-Request-Id': r.headers['X-Request-Id'] ?? 'none', Authorization: 'Bearer secret-token' };
    if (r.content_type !== '') headers['Content-Type'] = r.content_type;
    const reply = await send(proxy.url + r.path, { method: r.method, headers, body: Buffer.from(r.body_hex, 'hex') });
    t.equal(reply.status, 200, `${r.method} ${r.path} through the proxy`);
  }
  await proxy.close(); // writes out every queued line
  const recorded = (await readFile(jsonl, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as RecordLine);
  t.same(
    recorded.map((r) => [r.method, r.path, r.body_hex, r.headers['Authorization']]),
    records.map((r) => [r.method, r.path, r.body_hex, '[REDACTED]']),
    'one line per request, in order, bodies as sent, the credential redacted',
  );
  flask.seen.length = 0;
  fastapi.seen.length = 0;

  // Replayed straight at the two stand-ins, as the seed's step 2 does.
  const { report, results, stdout } = await runSeedReplay({ jsonl, flaskUrl: flask.url, fastapiUrl: fastapi.url, workDir });
  t.match(stdout, /^Loaded 6 requests for replay\n/);
  t.match(report, { total_requests: 6, errors: 0, response_mismatches: 1, match_rate: '83.33%' });
  t.same(
    results.map((r) => [r.path, r.flask_status, r.fastapi_status]),
    records.map((r) => [r.path, 200, 200]),
  );
  for (const up of [flask, fastapi]) {
    for (const rec of records) {
      const got = up.seen.find((s) => s.url === rec.path && s.body.equals(Buffer.from(rec.body_hex, 'hex')));
      t.ok(got, `${up.url} got ${rec.method} ${rec.path} byte for byte`);
      // Our lines carry Content-Type among the headers, so the replay sends it.
      t.equal(got?.headers['content-type'], rec.content_type === '' ? undefined : rec.content_type);
      t.equal(got?.headers['x-request-id'], rec.headers['X-Request-Id'] ?? 'none');
    }
  }
});
