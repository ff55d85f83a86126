import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import t from 'tap';
import { consoleUrl, demoAdmin, demoCsv, demoHost, splitReport } from '../src/cli/demo.js';
import type { RecordLine } from '../src/record/line.js';
import { compileSplit, hashKey, pickByHash } from '../src/proxy/split.js';
import { freePort, runCli, send, spawnCli, waitForLine } from './helpers/net.js';

/** The upstream the demo's split (5% fastapi, the rest flask, key ${remote_addr}${uri}) picks. */
const table = compileSplit([['fastapi', 500]], 'flask');
const expectedUpstream = (clientAddr: string, uri = '/predict/'): string =>
  pickByHash(table, hashKey(Buffer.from(`${clientAddr}${uri}`, 'latin1')))!;

/** The demo's folders in a temp directory (Node keeps its own compile cache there too). */
const demoFolders = (tmp: string): string[] => readdirSync(tmp).filter((name) => name.startsWith('drum-splitter-demo-'));

/** The demo's 400 client addresses: 127.0.1.1 … 127.0.1.250, then 127.0.2.1 … 127.0.2.150. */
const clients = Array.from({ length: 400 }, (_, c) => `127.0.${1 + Math.floor(c / 250)}.${1 + (c % 250)}`);

t.test('demoHost: where the demo\'s 127.0.x.y clients reach the proxy', async (t) => {
  const good: [string, string][] = [
    ['0.0.0.0', '127.0.0.1'],
    ['::', '127.0.0.1'],
    ['127.0.0.1', '127.0.0.1'],
    ['127.0.0.5', '127.0.0.5'],
    ['localhost', 'localhost'],
  ];
  for (const [host, want] of good) t.equal(demoHost(host), want, host);
  for (const host of ['::1', 'fd00::2', '::ffff:127.0.0.1']) {
    t.throws(() => demoHost(host), { name: 'InputError', field: 'listen', message: /cannot reach .*use an IPv4 address or \[::\]/ }, host);
  }
});

t.test("demoAdmin: the console on loopback only (its admin API has no token); consoleUrl for a browser", async (t) => {
  t.same(demoAdmin('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  t.same(demoAdmin('[::1]:9000'), { host: '::1', port: 9000 });
  t.same(demoAdmin('localhost:9000'), { host: 'localhost', port: 9000 });
  for (const bad of ['0.0.0.0:9000', '[::]:9000', '10.1.2.3:9000', 'example.com:80']) {
    t.throws(() => demoAdmin(bad), { name: 'InputError', message: `admin: the demo's console has no token, so it listens on loopback only: 127.0.0.1:PORT, [::1]:PORT or localhost:PORT, not "${bad}"` }, bad);
  }
  t.throws(() => demoAdmin('9000'), { name: 'InputError', message: /^admin: "9000" is not HOST:PORT/ });
  t.equal(consoleUrl('127.0.0.1', 9000), 'http://127.0.0.1:9000/');
  t.equal(consoleUrl('::1', 9000), 'http://[::1]:9000/');
  t.equal(consoleUrl('localhost', 9000), 'http://localhost:9000/');
});

t.test('splitReport: counts, shares, and a warning when a client moved', async (t) => {
  const on = (...sets: string[][]) => new Map(sets.map((s, i) => [`127.0.1.${i + 1}`, new Set(s)]));
  t.same(
    splitReport(new Map([['flask', 1885], ['fastapi', 115]]), on(['flask'], ['fastapi']), 2000),
    [
      '  flask     1885  94.3%',
      '  fastapi    115  5.8%',
      '  every client stayed on one backend: yes',
    ],
  );
  t.same(
    splitReport(new Map([['flask', 10]]), on(['flask'], ['flask', 'fastapi']), 10),
    [
      '  flask       10  100.0%',
      '  fastapi      0  0.0%',
      '  every client stayed on one backend: NO',
    ],
    'a backend that got nothing shows 0; a client on two backends is called out',
  );
});

t.test('demo: a burst through the real proxy, the split it printed, then it serves curl', async (t) => {
  const [port, adminPort] = [await freePort(), await freePort()];
  const target = `http://127.0.0.1:${port}`;
  // --keep: its files are read below, after it stopped; --admin: the console where asked.
  const child = spawnCli(['demo', '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${adminPort}`, '--keep']);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('exit', (code, signal) => r([code, signal])));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  // 2,000 predictions under the TypeScript loader: seconds on a quiet machine, much longer beside the rest of the suite.
  await waitForLine(child, /still serving/, 60_000);
  t.match(stdout, `proxy on ${target}, split_clients`, 'prints the address it serves on');
  t.match(stdout, `curl -s ${target}/info/`, 'and curl commands for it');
  const page = `http://127.0.0.1:${adminPort}/`;
  t.match(stdout, `console (the admin API's page): ${page}\n`, 'and the console address, the one --admin gave');
  t.match(await send(page), { status: 200, headers: { 'content-security-policy': /default-src 'none'/ } }, 'where the console answers');
  t.match(stdout, `watch it, and steer it, in the console: ${page}`);
  const dir = /^the demo's files: (\S+), kept when it ends \(--keep\)$/m.exec(stdout)?.[1];
  t.match(dir, /[/\\]drum-splitter-demo-\w+$/, 'where its files are');
  // What the console shows after the burst is what the demo said it did.
  t.match(stdout, /^recording and shadow now switched off \(the console shows both off\): /m);
  t.match(JSON.parse((await send(`${page}shadow`)).body.toString()), { enabled: false });
  t.match(JSON.parse((await send(`${page}recording`)).body.toString()), { enabled: false });

  t.match(stdout, /sent 2000 POST \/predict\/ from 400 client addresses \(one in 20 a CSV without rows\):/);
  const counts = Object.fromEntries(
    [...stdout.matchAll(/^ {2}(flask|fastapi) +(\d+) +(\d+\.\d)%$/gm)].map((m) => [m[1], { n: Number(m[2]), pct: m[3] }]),
  );
  t.same(Object.keys(counts).sort(), ['fastapi', 'flask'], 'a line per backend');
  const flask = counts['flask']!;
  const fastapi = counts['fastapi']!;
  t.equal(flask.n + fastapi.n, 2000, 'every request counted once');
  t.equal(flask.pct, ((100 * flask.n) / 2000).toFixed(1), 'flask percentage matches its count');
  t.equal(fastapi.pct, ((100 * fastapi.n) / 2000).toFixed(1), 'fastapi percentage matches its count');
  t.ok(fastapi.n >= 40 && fastapi.n <= 180, `fastapi share ${fastapi.pct}% is between 2% and 9%`);
  // The count is deterministic: the same 400 client addresses every run, the key is
  // "${remote_addr}${uri}", and MurmurHash2 into nginx's split table has no randomness, so
  // it is exactly the clients whose key falls in the 5% bucket times their 5 requests each
  // (23 clients, 115 requests; 1885 to flask). Computed here, not copied from a run.
  const onFastapi = clients.filter((a) => expectedUpstream(a) === 'fastapi').length;
  t.equal(fastapi.n, onFastapi * 5, `fastapi served exactly its ${onFastapi} clients × 5 requests`);
  t.match(stdout, /every client stayed on one backend: yes/);

  // The curl the demo suggests, from a client the split sends to each backend.
  const fastapiClient = clients.find((a) => expectedUpstream(a) === 'fastapi')!;
  const flaskClient = clients.find((a) => expectedUpstream(a) === 'flask')!;
  for (const [localAddress, upstream] of [[fastapiClient, 'fastapi'], [flaskClient, 'flask']] as const) {
    const r = await send(`${target}/predict/`, {
      method: 'POST',
      localAddress,
      headers: { 'content-type': 'text/csv' },
      body: 'a,b\n1,2\n3,5.5\n',
    });
    t.equal(r.status, 200, `${localAddress}: 200`);
    t.same(JSON.parse(r.body.toString()), { predictions: [1.5, 4.25] }, `${localAddress}: predictions`);
    t.equal(r.headers['x-drum-splitter-upstream'], upstream, `${localAddress} → ${upstream}`);
  }
  const info = await send(`${target}/info/`, { localAddress: fastapiClient });
  t.equal(info.headers['x-drum-splitter-upstream'], expectedUpstream(fastapiClient, '/info/'), '/info/ goes where the split says');
  t.match(JSON.parse(info.body.toString()), { drumServer: info.headers['x-drum-splitter-upstream'] }, 'and that stand-in answers');

  // The replay it suggests, run as printed (npx runs the project's own bin), while it serves.
  const replayArgs = /^ {2}npx drum-splitter (replay .+)$/m.exec(stdout)![1]!.split(' ');
  t.match(replayArgs, ['replay', '--baseline', /^http:/, '--canary', /^http:/, '--output', join(dir!, 'again.json'), '--html', join(dir!, 'again.html'), join(dir!, 'recorded_requests.jsonl')]);
  const again = await runCli(replayArgs, {}, 60_000);
  t.equal(again.code, 1, 'it finds the 422s again');
  t.match(again.stderr, /^replay: FAIL error_responses_match: /m);
  t.ok(existsSync(join(dir!, 'again.html')), 'and writes its page');

  child.kill('SIGTERM');
  t.same(await exited, [0, null], 'SIGTERM stops it cleanly with exit code 0');
  t.equal(stderr, '', 'nothing on stderr');
  await t.rejects(send(`${target}/ping`), { code: 'ECONNREFUSED' }, 'the proxy is gone');
  t.match(stdout, new RegExp(`\\nkept ${dir}\\n$`), 'and where its files were kept');

  // Recording was on for the burst (closed for the replay): 10% of its 2,000 predictions, every
  // line complete, each the CSV a client sent, the answer's status and the backend it got.
  const file = /^recording 10% of predictions to (.+)$/m.exec(stdout)![1]!;
  t.equal(dirname(file), dir);
  const lines = readFileSync(file, 'utf8').split('\n');
  t.equal(lines.pop(), '', 'the file ends with a complete line');
  t.teardown(() => rmSync(dirname(file), { recursive: true, force: true }));
  const recorded = lines.map((l) => JSON.parse(l) as RecordLine);
  // Binomial(2000, 0.1): mean 200, standard deviation 13.4; five of them either side.
  t.ok(recorded.length >= 133 && recorded.length <= 268, `${recorded.length} lines recorded, about 10% of 2,000`);
  const sent = new Map(Array.from({ length: 400 }, (_, c) => [Buffer.from(demoCsv(c)).toString('hex'), demoCsv(c).includes('\n4,') ? 200 : 422]));
  t.ok(recorded.every((r) => r.method === 'POST' && r.path === '/predict/' && sent.get(r.body_hex) === r.status), 'each a POST /predict/ with a CSV sent, and its answer status');
  t.ok(recorded.some((r) => r.upstream === 'flask') && recorded.every((r) => r.upstream === 'flask' || r.upstream === 'fastapi'), 'and who served it');

  // The live shadow compared about 20% of flask's 1,885 predictions; the 422s differ in shape.
  const [, compared, match, mismatch] = /^live shadow: (\d+) copies compared, (\d+) match, (\d+) mismatch$/m.exec(stdout)!.map(Number);
  t.ok(compared! > 250 && compared! < 520 && match! + mismatch! === compared && mismatch! > 0, `live shadow: ${compared} compared, ${mismatch} mismatched`);
  // The replay of the recording: the error answers are caught, exit 1, the report written; what
  // fails by design is said to, the numbers rounded (no 0.9656862745098039).
  t.match(stdout, /^ {2}replay: FAIL match_rate: \d+\.\d% \(criterion: 100%\); \d+ of \d+ requests match {2}← by design$/m);
  t.match(stdout, /^ {2}replay: FAIL error_responses_match: 0\.0% \(criterion: 100%\); 0 of \d+ error answers match {2}← by design$/m);
  t.match(stdout, /^ {2}replay: mismatch \d+ × POST \/predict\/ 422 vs 422 at \$\.detail \(added\), \$\.message \(removed\), all alike; /m);
  t.match(stdout, /^ {2}exit code 1 \(1: a criterion failed; here the one difference the stand-ins were given\)$/m);
  t.notMatch(stdout, /\d\.\d{4,}/, 'no number with more than three decimals');
  const report = JSON.parse(readFileSync(join(dirname(file), 'shadow_test_results.json'), 'utf8')) as { summary: { total_requests: number; response_mismatches: number } };
  t.equal(report.summary.total_requests, recorded.length, 'every recorded request replayed');
  t.equal(report.summary.response_mismatches, recorded.filter((r) => r.status === 422).length, 'the mismatches are exactly the 422s');
  t.match(readFileSync(join(dirname(file), 'shadow_test_results.html'), 'utf8'), /<svg/, 'and its page, with its plot');
});

t.test('demo: a failure is reported and the process exits (the stand-ins do not keep it up)', async (t) => {
  // Hold 127.0.0.1:8000, the demo's default. If something else already holds it, it is just
  // as busy; either way the demo cannot listen there.
  const holder = createServer();
  await new Promise<void>((resolve) => {
    holder.once('error', () => resolve());
    holder.listen(8000, '127.0.0.1', () => resolve());
  });
  t.teardown(() => new Promise<void>((r) => (holder.listening ? holder.close(() => r()) : r())));

  // A demo that fails must not hang: one still running after 30 s (a CLI under tap's TypeScript loader is slow on a busy machine) is killed (code null).
  // In a temp directory of its own, to see that the demo's folder does not outlive the failure.
  const tmp = t.testdir({});
  const env = { TMPDIR: tmp };
  const [busy, bad, open] = await Promise.all([
    runCli(['demo'], env, 30_000),
    runCli(['demo', '--listen', '8000'], env, 30_000),
    runCli(['demo', '--admin', '0.0.0.0:0'], env, 30_000),
  ]);
  t.same({ code: busy.code, stdout: busy.stdout }, { code: 1, stdout: '' }, 'address in use: exit 1, no hang');
  t.match(busy.stderr, /^drum-splitter: address in use: .*127\.0\.0\.1:8000\n$/, 'one line naming the default address');
  t.same(demoFolders(tmp), [], 'its folder removed');

  t.same({ code: bad.code, stdout: bad.stdout }, { code: 2, stdout: '' }, 'bad --listen: exit 2, no hang');
  t.match(bad.stderr, /^drum-splitter: listen: "8000" is not HOST:PORT[^\n]*\n$/);
  t.same({ code: open.code, stdout: open.stdout }, { code: 2, stdout: '' }, 'a console off loopback: exit 2');
  t.match(open.stderr, /^drum-splitter: admin: the demo's console has no token, so it listens on loopback only: [^\n]*\n$/);
});

t.test('demo: Ctrl-C during the show stops it at once, exit 0, its folder removed', async (t) => {
  const tmp = t.testdir({});
  const child = spawnCli(['demo', '--listen', '127.0.0.1:0'], { TMPDIR: tmp });
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('exit', (code, signal) => r([code, signal])));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const line = await waitForLine(child, /^the demo's files: .*\(--keep keeps them\)$/, 30_000);
  const dir = /^the demo's files: (\S+), removed when it ends \(--keep keeps them\)$/.exec(line)![1]!;
  t.equal(dirname(dir), tmp);
  t.ok(existsSync(dir), 'made');
  child.kill('SIGINT');
  t.same(await exited, [0, null]);
  t.equal(stderr, '', 'the requests cut by the stop are not reported as a failure');
  t.same(demoFolders(tmp), [], 'its folder removed');
});

t.test('demo --rollout: the shadow phase passes, the canary is promoted, turns slow at 50%, is reduced step by step and rolled back', async (t) => {
  // --exit: it ends with the rollout, rather than serving on until Ctrl-C.
  const tmp = t.testdir({});
  const r = await runCli(['demo', '--rollout', '--listen', '127.0.0.1:0', '--exit'], { TMPDIR: tmp }, 120_000);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`^the demo's files: ${tmp}/drum-splitter-demo-\\w+, removed when it ends`, 'm'));
  t.same(demoFolders(tmp), [], 'its folder removed at the end');
  t.notMatch(r.stdout, 'still serving');
  const decisions = r.stdout.split('\n').filter((l) => /^\s+\+\s*[\d.]+s/.test(l)).map((l) => /\+\s*[\d.]+s\s+(\S+)\s+(\d+)% →\s+(\d+)%/.exec(l)!.slice(1));
  t.same(decisions.slice(0, 4), [['start', '0', '0'], ['shadow_pass', '0', '5'], ['promote', '5', '25'], ['promote', '25', '50']]);
  t.match(r.stdout, /shadow_pass .* shadow 50% held with every check passing → canary to 5%/);
  const after = decisions.slice(4, -1);
  t.ok(after.length >= 1 && after.every(([action]) => ['suspect', 'reduce', 'rollback', 'recovered', 'hold'].includes(action!)), JSON.stringify(after));
  t.same(after.at(-1), ['rollback', after.at(-1)![1], '0'], 'it ends at 0%');
  t.same(decisions.at(-1), ['verified', '0', '0'], 'the rollback verified');
  for (const item of ['ping', 'health', 'info', 'predict_single', 'predict_batch', 'stats']) t.match(r.stdout, new RegExp(`^ {8}ok {4}${item} `, 'm'), `${item} shown`);
  t.match(r.stdout, /canary p99 [\d.]+ ms vs baseline [\d.]+ ms .* over \+50%/);
  t.match(r.stdout, /ended rolled_back at 0%/);
});
