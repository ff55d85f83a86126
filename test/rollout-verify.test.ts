/** The verification after a rollback: its outcome and the picking of predictions (tables), the checklist against real servers on 127.0.0.1, and the request files it reads. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createStandin } from '../src/cli/standin.js';
import { recentRecorded, readRequestFile, verifyRequestSource } from '../src/replay/verify-input.js';
import { csvRows, identityAt, pickPredictions, verificationOutcome, verifyUrl, type VerifyItem, type VerifyRequest } from '../src/rollout/verify.js';
import { startUpstream } from './helpers/net.js';

const ok = (name: string): VerifyItem => ({ name, ok: true, detail: 'fine' });
const bad = (name: string): VerifyItem => ({ name, ok: false, detail: 'GET → 500' });
const skip = (name: string): VerifyItem => ({ name, ok: null, detail: 'nothing to replay' });

t.test('the outcome: any failed item fails it; a skipped one does not, and is named', async (t) => {
  const table: [VerifyItem[], string, string][] = [
    [[ok('ping'), ok('stats')], 'verified', 'the baseline flask verified after the rollback: ping, stats ok'],
    [[ok('ping'), skip('predict_single')], 'verified', 'the baseline flask verified after the rollback: ping ok; skipped: predict_single'],
    [[bad('ping'), ok('stats')], 'verification_failed', 'the baseline flask failed its verification after the rollback: ping (GET → 500)'],
    [[bad('ping'), bad('health'), skip('predict_batch')], 'verification_failed', 'the baseline flask failed its verification after the rollback: ping (GET → 500); health (GET → 500); skipped: predict_batch'],
    [[skip('predict_single'), skip('predict_batch')], 'verified', 'the baseline flask verified after the rollback:  ok; skipped: predict_single, predict_batch'],
  ];
  for (const [items, action, text] of table) t.same(verificationOutcome(items, 'the baseline flask'), { action, text }, items.map((i) => `${i.name}=${i.ok}`).join(' '));
});

const req = (body: string, type: string | undefined, source = 'r'): VerifyRequest => ({ method: 'POST', path: '/predict/', headers: type === undefined ? [] : ['Content-Type', type], body: Buffer.from(body), source });

t.test('rows and the predictions picked: a batch has two rows or more; a single one, or a batch cut to its first', async (t) => {
  t.equal(csvRows(req('a,b\n1,2\n', 'text/csv')), 1);
  t.equal(csvRows(req('a,b\r\n1,2\r\n3,4\r\n\r\n', 'text/csv; charset=utf-8')), 2);
  t.equal(csvRows(req('a,b\n', 'text/csv')), 0);
  t.equal(csvRows(req('{"x":1}', 'application/json')), undefined);
  t.equal(csvRows(req('a,b\n1,2\n', undefined)), undefined);

  const single = req('a\n1\n', 'text/csv', 'single');
  const batch = req('a,b\n1,2\n3,4\n', 'text/csv', 'batch');
  const json = req('{"x":1}', 'application/json', 'json');
  const empty = req('a\n', 'text/csv', 'empty');
  t.same(pickPredictions([]), {});
  t.same(pickPredictions([json, batch, single]), { single, batch }, 'the newest of each kind');
  const cutBatch = pickPredictions([batch]);
  t.same(cutBatch.batch, batch);
  t.same(cutBatch.single, { ...batch, body: Buffer.from('a,b\n1,2\n'), source: 'batch (its first row)' }, "one batch gives both: the single is its header and first row");
  t.same(pickPredictions([json, empty]), { single: json }, 'a body whose rows cannot be counted serves as the single; no batch');
});

t.test('the checklist against a DRUM stand-in: every item passes, each saying what it saw', async (t) => {
  const flask = createStandin('flask');
  const url = await flask.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => flask.close());
  const requests = async () => ({ requests: [req('a,b\n1,2\n3,4\n', 'text/csv', 'b.csv')], from: 'in b.csv' });
  const canary = JSON.stringify(['fastapi', 'stand-in', 'python', { name: 'fastapi stand-in' }]);
  const items = await verifyUrl('flask', new URL(`${url}/`), { timeoutMs: 2000, canaryIdentity: canary, requests });
  t.same(items.map((i) => [i.name, i.ok]), [['ping', true], ['health', true], ['info', true], ['predict_single', true], ['predict_batch', true], ['stats', true]]);
  t.match(items, [
    { detail: 'GET /ping → 200' },
    { detail: 'GET /health/ → 200' },
    { detail: 'GET /info/: flask stand-in flask stand-in (the canary: fastapi stand-in fastapi stand-in)' },
    { detail: 'POST /predict/ → 200 (1 row, b.csv (its first row))' },
    { detail: 'POST /predict/ → 200 (2 rows, b.csv)' },
    { detail: /^GET \/stats\/: drum_rss \d+ MiB$/ },
  ]);

  t.equal(await identityAt('flask', new URL(url), 2000), JSON.stringify(['flask', 'stand-in', 'python', { name: 'flask stand-in', targetType: 'regression' }]));
  const same = await verifyUrl('flask', new URL(url), { timeoutMs: 2000, canaryIdentity: JSON.stringify(['flask', 'stand-in', 'python', { name: 'flask stand-in', targetType: 'regression' }]), requests: async () => ({ requests: [], from: '(none)' }) });
  t.match(same[2], { name: 'info', ok: false, detail: "GET /info/ names the canary's server: flask stand-in flask stand-in" }, 'the baseline answering as the canary: the rollback did not reach it');
  t.match(same.slice(3), [{ name: 'predict_single', ok: null, detail: 'no single-row prediction to replay (none)' }, { name: 'predict_batch', ok: null, detail: 'no multi-row CSV prediction to replay (none)' }]);
  const unreadable = await verifyUrl('flask', new URL(url), { timeoutMs: 2000, canaryIdentity: null, requests: () => Promise.reject(new Error('cannot read x.csv: ENOENT')) });
  t.match(unreadable.slice(2, 5), [{ name: 'info', ok: true, detail: 'GET /info/: flask stand-in flask stand-in' }, { name: 'predict_single', ok: false, detail: 'no request to replay: cannot read x.csv: ENOENT' }, { name: 'predict_batch', ok: false }]);
});

t.test('an upstream that is not well: each item fails with what it saw', async (t) => {
  // 500 on everything; /ping 200 but too late.
  const sick = await startUpstream('sick', (rq, res) => {
    if (rq.url === '/base/ping') return void setTimeout(() => res.end('late'), 500);
    res.statusCode = 500;
    res.end('{}');
  });
  t.teardown(() => sick.close());
  const items = await verifyUrl('sick', new URL(`${sick.url}/base/`), { timeoutMs: 200, canaryIdentity: null, requests: async () => ({ requests: [req('a\n1\n', undefined, 's.bin')], from: 'in s.bin' }) });
  t.same(items.map((i) => [i.name, i.ok, i.detail]), [
    ['ping', false, 'GET /ping: no answer in time'],
    ['health', false, 'GET /health/ → 500'],
    ['info', false, 'GET /info/: no DRUM server named (unreachable, not 200, or not DRUM)'],
    ['predict_single', false, 'POST /predict/ → 500 (s.bin)'],
    ['predict_batch', null, 'no multi-row CSV prediction to replay in s.bin'],
    ['stats', false, 'GET /stats/: no mem_info.drum_rss (unreachable, not 200, or not DRUM)'],
  ]);
  t.ok(sick.seen.some((s) => s.url === '/base/predict/' && s.body.toString() === 'a\n1\n'), 'the prediction went under the path prefix, body as given');
  const requests = async () => ({ requests: [req('a\n1\n', 'text/csv', 's.csv')], from: 'in s.csv' });
  t.equal(await identityAt('sick', new URL(sick.url), 200), null, 'no DRUM /info/: no identity');
  const gone = await verifyUrl('gone', new URL('http://127.0.0.1:1/'), { timeoutMs: 500, canaryIdentity: null, requests });
  t.match(gone[3], { name: 'predict_single', ok: false, detail: /^POST \/predict\/: connect ECONNREFUSED .* \(1 row, s\.csv\)$/ });
});

const line = (o: Record<string, unknown>): string => JSON.stringify({ timestamp: 1, method: 'POST', path: '/predict/', headers: { 'Content-Type': 'text/csv' }, body_hex: Buffer.from('a,b\n1,2\n3,4\n').toString('hex'), content_type: 'text/csv', ...o });

t.test('request files: a recording gives its answered predictions newest first; a body file goes to /predict/', async (t) => {
  const dir = t.testdir({
    'rec.jsonl': [
      line({ id: 'old', status: 200 }),
      line({ path: '/ping', method: 'GET' }),
      line({ status: 500 }),
      'not json',
      '',
      line({ path: '/predictions/?x=1', body_hex: Buffer.from('a\n1\n').toString('hex') }),
    ].join('\n'),
    'one.csv': 'a,b\n1,2\n',
    'one.json': '{"x":1}',
    'one.bin': 'xx',
  });
  const rec = await readRequestFile(join(dir, 'rec.jsonl'));
  t.same(rec.map((r) => [r.path, r.source.slice(dir.length + 1)]), [['/predictions/?x=1', 'rec.jsonl:6'], ['/predict/', 'rec.jsonl:1']]);
  t.same(rec[0]!.headers, ['Content-Type', 'text/csv']);
  t.same(await readRequestFile(join(dir, 'one.csv')), [{ method: 'POST', path: '/predict/', headers: ['Content-Type', 'text/csv'], body: Buffer.from('a,b\n1,2\n'), source: join(dir, 'one.csv') }]);
  t.same((await readRequestFile(join(dir, 'one.json')))[0]!.headers, ['Content-Type', 'application/json']);
  t.same((await readRequestFile(join(dir, 'one.bin')))[0]!.headers, ['Content-Type', 'application/octet-stream']);

  const both = await verifyRequestSource([join(dir, 'one.csv'), join(dir, 'rec.jsonl')], () => 'ignored')();
  t.equal(both.requests.length, 3);
  t.equal(both.from, `in ${join(dir, 'one.csv')}, ${join(dir, 'rec.jsonl')}`);
  await t.rejects(verifyRequestSource([join(dir, 'missing.csv')], () => undefined)(), { message: `ENOENT: no such file or directory, open '${join(dir, 'missing.csv')}'` });
});

t.test('the recording: its last megabyte, a partial first line left out; none, not yet written, or unreadable', async (t) => {
  const dir = t.testdir({ small: { 'r.jsonl': `${line({ status: 200 })}\n` }, 'open.jsonl': `${line({ id: 'a' })}\n${line({ id: 'b' })}` });
  t.same((await recentRecorded(join(dir, 'open.jsonl'))).map((r) => r.source), [`${join(dir, 'open.jsonl')}, line 1 from the end`, `${join(dir, 'open.jsonl')}, line 2 from the end`], 'a last line still being written counts');
  const big = join(dir, 'big.jsonl');
  // Over 1 MiB of lines: the read starts inside one, which is left out.
  const filler = line({ status: 200, body_hex: '61'.repeat(2000) });
  writeFileSync(big, `${Array.from({ length: 400 }, () => filler).join('\n')}\n${line({ id: 'last', status: 200 })}\n`);
  const recent = await recentRecorded(big);
  t.ok(recent.length > 200 && recent.length < 401, `${recent.length} lines from the end`);
  t.equal(recent[0]!.source, `${big}, line 1 from the end`);
  t.same(Buffer.from(recent[0]!.body).toString(), 'a,b\n1,2\n3,4\n');

  const source = (file: string | undefined) => verifyRequestSource([], () => file)();
  t.same(await source(undefined), { requests: [], from: '(no request files given, and no recording)' });
  t.same(await source(join(dir, 'none.jsonl')), { requests: [], from: `(the recording ${join(dir, 'none.jsonl')} is not written yet)` });
  t.equal((await source(join(dir, 'small', 'r.jsonl'))).requests.length, 1);
  t.equal((await source(join(dir, 'small', 'r.jsonl'))).from, `in the recording ${join(dir, 'small', 'r.jsonl')}`);
  await t.rejects(source(join(dir, 'small')), { message: new RegExp(`^cannot read the recording ${join(dir, 'small')}: EISDIR`) });
});
