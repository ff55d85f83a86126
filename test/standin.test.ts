import t from 'tap';
import { createStandin, NO_FAULTS, type Faults } from '../src/cli/standin.js';
import { faultSummary, standinFaults } from '../src/cli/standin-command.js';
import { assertInputError } from './helpers/cli.js';
import { runCli, send, spawnCli, waitForLine, type Reply } from './helpers/net.js';

const app = createStandin('fastapi');
const base = await app.listen({ host: '127.0.0.1', port: 0 });
t.teardown(() => app.close());

const json = (r: Reply): unknown => JSON.parse(r.body.toString('utf8'));

function predict(body: string, contentType?: string): Promise<Reply> {
  return send(`${base}/predict/`, {
    method: 'POST',
    headers: contentType === undefined ? {} : { 'content-type': contentType },
    body,
  });
}

t.test('health routes answer like DRUM: 200 {"message":"OK"}', async (t) => {
  for (const path of ['/ping', '/', '/health/']) {
    const r = await send(`${base}${path}`);
    t.equal(r.status, 200, path);
    t.match(r.headers['content-type'], /^application\/json/, path);
    t.same(json(r), { message: 'OK' }, path);
  }
  t.equal((await send(`${base}/nope/`)).status, 404, 'other paths are not found');
});

t.test('/info/ names the server it stands in for', async (t) => {
  const other = createStandin('flask');
  const otherBase = await other.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => other.close());
  for (const [url, name] of [[base, 'fastapi'], [otherBase, 'flask']] as const) {
    const r = await send(`${url}/info/`);
    t.equal(r.status, 200);
    t.match(json(r), { drumServer: name, modelMetadata: { name: `${name} stand-in`, targetType: 'regression' } }, name);
  }
});

t.test('/stats/ reports memory in MB and uptime like DRUM', async (t) => {
  const r = await send(`${base}/stats/`);
  t.equal(r.status, 200);
  const stats = json(r) as { mem_info: Record<string, unknown>; time_info: { uptime_seconds: unknown } };
  const rss = stats.mem_info['drum_rss'];
  t.type(rss, 'number');
  t.ok((rss as number) > 0, 'drum_rss is positive');
  // In MB, not bytes: this process's RSS, give or take a few MB between the two readings.
  t.ok(Math.abs((rss as number) - process.memoryUsage().rss / 2 ** 20) < 64, `drum_rss ${String(rss)} is this process's RSS in MB`);
  t.type(stats.mem_info['container_used'], 'number');
  t.type(stats.mem_info['total'], 'number');
  t.type(stats.mem_info['avail'], 'number');
  t.type(stats.time_info.uptime_seconds, 'number');
  t.ok((stats.time_info.uptime_seconds as number) >= 0);
});

t.test('POST /predict/: one prediction per CSV data row, the mean of its numbers', async (t) => {
  const cases: [string, string, number[]][] = [
    ['two rows', 'x1,x2,x3\n1,2,3\n4,5,6\n', [2, 5]],
    ['CRLF and blank lines', 'a,b\r\n1,2\r\n\r\n\n10,20\r\n', [1.5, 15]],
    ['rounded to three decimals', 'a,b,c\n1,1,2\n0.0001,0,0\n', [1.333, 0]],
    ['non-numeric cells are skipped', 'a,b,c\n1,x,3\n', [2]],
    ['empty cells are missing values, not zeros', 'a,b,c\n1,,3\n4, ,\n', [2, 4]],
    ['a row with no numbers predicts 0', 'a,b\nfoo,bar\n,\n', [0, 0]],
    ['no trailing newline', 'a\n-7.5', [-7.5]],
  ];
  for (const [name, csv, predictions] of cases) {
    const r = await predict(csv, 'text/csv');
    t.equal(r.status, 200, name);
    t.same(json(r), { predictions }, name);
  }
});

t.test('POST /predict/ without data rows is a 422, as DRUM answers (the fastapi stand-in in FastAPI\'s shape, {"detail": ...})', async (t) => {
  const cases: [string, string][] = [['header only', 'a,b,c\n'], ['empty', ''], ['blank lines', '\n\r\n']];
  for (const [name, body] of cases) {
    const r = await predict(body, 'text/csv');
    t.equal(r.status, 422, name);
    t.match(json(r), { detail: /csv with a header row/ }, name);
  }
  const flask = createStandin('flask');
  const flaskUrl = await flask.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => flask.close());
  const r = await send(`${flaskUrl}/predict/`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: 'a\n' });
  t.same([r.status, json(r)], [422, { message: 'ERROR: Samples should be provided as a csv with a header row' }], 'flask: {"message": ...}');
});

t.test('POST /predict/ reads any content type as text', async (t) => {
  for (const type of ['application/octet-stream', 'text/plain; charset=utf-8', 'application/x-whatever']) {
    const r = await predict('a,b\n2,4\n', type);
    t.equal(r.status, 200, type);
    t.same(json(r), { predictions: [3] }, type);
  }
  const noType = await predict('a,b\n2,4\n');
  t.same([noType.status, json(noType)], [200, { predictions: [3] }], 'no content type at all');
  const bare = await send(`${base}/predict/`, { method: 'POST', headers: { 'content-length': '0' } });
  t.same([bare.status, json(bare)], [422, { detail: 'ERROR: Samples should be provided as a csv with a header row' }], 'no body at all: 422, not a crash');
  const asJson = await predict('{"a": 1}', 'application/json');
  t.equal(asJson.status, 422, 'JSON is not parsed as JSON either: one line, no data rows');
});

t.test('faults: errors at the given rate, added latency, extra memory in /stats/ — changeable while it runs', async (t) => {
  const faults = { errorRate: 0, addedLatencyMs: 0, extraMemoryMb: 0 };
  let draw = 0.5;
  const faulty = createStandin('fastapi', faults, () => draw);
  const url = await faulty.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => faulty.close());
  const post = (): Promise<Reply> => send(`${url}/predict/`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: 'a\n1\n' });
  t.equal((await post()).status, 200);
  faults.errorRate = 0.6;
  t.equal((await post()).status, 500, 'a draw of 0.5 under a rate of 0.6');
  draw = 0.7;
  t.equal((await post()).status, 200, 'a draw of 0.7 over it');
  const before = (json(await send(`${url}/stats/`)) as { mem_info: { drum_rss: number } }).mem_info.drum_rss;
  faults.extraMemoryMb = 500;
  const after = (json(await send(`${url}/stats/`)) as { mem_info: { drum_rss: number } }).mem_info.drum_rss;
  t.ok(after - before >= 450 && after - before <= 550, `drum_rss +${after - before} MB`);
  faults.addedLatencyMs = 200;
  let answered = false;
  const slow = post().then((r) => {
    answered = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 50));
  t.notOk(answered, 'still waiting 50 ms in');
  t.equal((await slow).status, 200);
});

t.test('`drum-splitter standin` serves one stand-in with the faults its flags give, until a signal', async (t) => {
  const child = spawnCli(['standin', 'fastapi', '--listen', '127.0.0.1:0', '--latency', '40ms', '--error-rate', '1', '--memory-mb', '300']);
  t.teardown(() => void child.kill('SIGKILL'));
  const line = await waitForLine(child, /stand-in on/);
  t.match(line, /^fastapi stand-in on http:\/\/127\.0\.0\.1:\d+ \(\+40 ms a prediction, 100% errors, \+300 MB drum_rss\); Ctrl-C stops it/, 'says where and what faults');
  const url = /(http:\/\/\S+) /.exec(line)![1]!;
  t.match(json(await send(`${url}/info/`)), { drumServer: 'fastapi' }, '/info/ names the server given');
  const started = performance.now();
  const r = await send(`${url}/predict/`, { method: 'POST', body: 'a,b\n1,2\n' });
  t.equal(r.status, 500, '--error-rate 1: every prediction fails');
  t.ok(performance.now() - started >= 40, '--latency delays it');
  const stats = json(await send(`${url}/stats/`)) as { mem_info: { drum_rss: number } };
  t.ok(stats.mem_info.drum_rss >= 300, '--memory-mb adds to drum_rss');
  const exited = new Promise((r) => child.on('close', (code, signal) => r([code, signal])));
  child.kill('SIGTERM');
  t.same(await exited, [0, null], 'SIGTERM: exit 0');
});

t.test('the stand-in command reads its fault flags, naming the flag of a bad one', async (t) => {
  const cases: [Record<string, unknown>, Faults | RegExp][] = [
    [{ 'error-rate': '0', 'memory-mb': '0' }, { errorRate: 0, addedLatencyMs: 0, extraMemoryMb: 0 }],
    [{ 'error-rate': '0.25', 'memory-mb': '512', latency: '1.5s' }, { errorRate: 0.25, addedLatencyMs: 1500, extraMemoryMb: 512 }],
    [{ 'error-rate': '2', 'memory-mb': '0' }, /error-rate: "2" is not a share between 0 and 1/],
    [{ 'error-rate': 'x', 'memory-mb': '0' }, /error-rate: "x" is not a share/],
    [{ 'error-rate': '0', 'memory-mb': '-1' }, /memory-mb: "-1" is not a whole number of megabytes/],
    [{ 'error-rate': '0', 'memory-mb': '1.5' }, /memory-mb: "1.5" is not a whole number/],
    [{ 'error-rate': '0', 'memory-mb': '0', latency: 'soon' }, /latency: "soon" is not a duration/],
  ];
  for (const [values, expected] of cases) {
    const name = JSON.stringify(values);
    if (expected instanceof RegExp) t.throws(() => standinFaults(values), expected, name);
    else t.same(standinFaults(values), expected, name);
  }
  t.equal(faultSummary(NO_FAULTS), '', 'no faults, nothing said');
  t.equal(faultSummary({ errorRate: 0.1, addedLatencyMs: 0, extraMemoryMb: 0 }), ' (10% errors)');
});

t.test('`drum-splitter standin` refuses bad usage with one line and exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['Flask!'], /give one server name: flask or fastapi/],
    [['flask', '--error-rate', '2'], /error-rate: "2" is not a share between 0 and 1/],
  ];
  const results = await Promise.all(cases.map(([args]) => runCli(['standin', ...args])));
  cases.forEach(([args, message], i) => assertInputError(t, results[i]!, message, args.join(' ')));
});
