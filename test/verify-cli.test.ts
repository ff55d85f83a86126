/** `drum-splitter verify`, the dist/ binary against a DRUM stand-in and a sick server on 127.0.0.1: item by item, exit 0, 1 or 2. */
import { join } from 'node:path';
import t from 'tap';
import { createStandin } from '../src/cli/standin.js';
import { runCli, startUpstream } from './helpers/net.js';

t.test('a healthy DRUM server: every item ok, exit 0; no request given: the predictions are skipped, still 0', async (t) => {
  const flask = createStandin('flask');
  const url = await flask.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => flask.close());
  const dir = t.testdir({ 'batch.csv': 'a,b\n1,2\n3,4\n' });
  const run = await runCli(['verify', '--upstream', url, '--request', join(dir, 'batch.csv')]);
  t.equal(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  t.equal(lines[0], `drum-splitter verify: ${url}/`);
  t.match(lines.slice(1), [
    /^ {2}ok {4}ping {12}GET \/ping → 200$/,
    /^ {2}ok {4}health {10}GET \/health\/ → 200$/,
    /^ {2}ok {4}info {12}GET \/info\/: flask stand-in/,
    /^ {2}ok {4}predict_single {2}POST \/predict\/ → 200 \(1 row, .*batch\.csv \(its first row\)\)$/,
    /^ {2}ok {4}predict_batch {3}POST \/predict\/ → 200 \(2 rows, .*batch\.csv\)$/,
    /^ {2}ok {4}stats {11}GET \/stats\/: drum_rss \d+ MiB$/,
    /^verified$/,
  ]);
  const bare = await runCli(['verify', '--upstream', url]);
  t.equal(bare.code, 0);
  t.match(bare.stdout, /^ {2}skip {2}predict_single {2}no single-row prediction to replay \(no request files given, and no recording\)$/m);
  t.match(bare.stdout, /^verified \(skipped: predict_single, predict_batch\)$/m);
});

t.test('a server that is not well: the failing items, exit 1', async (t) => {
  const sick = await startUpstream('sick', (req, res) => {
    res.statusCode = req.url === '/ping' ? 200 : 503;
    res.end('{}');
  });
  t.teardown(() => sick.close());
  const run = await runCli(['verify', '--upstream', sick.url, '--timeout', '2s']);
  t.equal(run.code, 1, run.stderr);
  t.match(run.stdout, /^ {2}ok {4}ping/m);
  t.match(run.stdout, /^ {2}FAIL {2}health {10}GET \/health\/ → 503$/m);
  t.match(run.stdout, /^verification failed: health, info, stats \(skipped: predict_single, predict_batch\)$/m);
});

t.test('bad usage: one line, exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['verify'], /^drum-splitter verify: needs --upstream URL, the DRUM server to check \(see drum-splitter verify --help\)\n$/],
    [['verify', '--upstream', 'flask:8080'], /^drum-splitter verify: --upstream "flask:8080" is not an http:\/\/ or https:\/\/ URL/],
    [['verify', '--upstream', 'http://127.0.0.1:1', '--timeout', 'soon'], /^drum-splitter verify: --timeout: "soon" is not a duration/],
    [['verify', '--upstream', 'http://127.0.0.1:1', 'extra'], /^drum-splitter verify: /],
  ];
  for (const [args, stderr] of cases) {
    const run = await runCli(args);
    t.equal(run.code, 2, args.join(' '));
    t.match(run.stderr, stderr, args.join(' '));
    t.equal(run.stderr.trim().split('\n').length, 1);
  }
  const help = await runCli(['verify', '--help']);
  t.match(help.stdout, /--request FILE/);
  t.match(help.stdout, /Exit codes: 0 verified, 1 an item failed, 2 bad usage\./);
});
