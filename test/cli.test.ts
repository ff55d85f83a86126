import { tmpdir } from 'node:os';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { buildConfig } from '../src/config/config.js';
import { COMMANDS, GLOBAL_HELP } from '../src/cli/commands.js';
import { helpPage } from '../src/common/flags.js';
import { compileSplit, hashKey, pickByHash } from '../src/proxy/split.js';
import { assertInputError, logLines, serveCli, type Served } from './helpers/cli.js';
import { limiter, runCli, send, startUpstream, type CliResult, type Reply } from './helpers/net.js';
import { until } from './helpers/wait.js';

// Every CLI run is a fresh Node process under tap's TypeScript loader (over a second of CPU
// each), so the runs are started together, a few at a time, and the subtests await them.

const slot = limiter(3);

/** runCli, at most three at a time. */
const run = (args: string[]): Promise<CliResult> => slot(() => runCli(args));

/** `serve ARGS`, at most three CLIs at a time. */
const serve = (args: string[]): Served => serveCli(t, args, {}, slot);

async function stop(t: Test, s: Served, signal: NodeJS.Signals): Promise<void> {
  s.child().kill(signal);
  t.same(await s.exited(), [0, null], `${signal}: exits with code 0`);
  t.match(logLines(s, 'shutting down'), [{ signal }], `${signal}: logs "shutting down"`);
  t.equal(s.stderr(), '', 'nothing on stderr');
}

const upstreamName = (r: Reply): string => (JSON.parse(r.body.toString()) as { upstream: string }).upstream;

// Two real upstreams; /slow answers after 1.5 s, for --timeout.
const slowTimers = new Set<NodeJS.Timeout>();
const upstreamHandler = (name: string) => (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
  const answer = () => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ upstream: name, bytes: body.length, forced: req.headers['x-force'] ?? null }));
  };
  if (req.url === '/slow') {
    const timer = setTimeout(answer, 1500);
    slowTimers.add(timer);
  } else {
    answer();
  }
};
const ADMIN_TOKEN = 'cli-test-token-0123456789';

/** The upstreams, the config files and every CLI run the subtests read, started together. */
async function startAll() {
  const flask = await startUpstream('flask', upstreamHandler('flask'));
  const fastapi = await startUpstream('fastapi', upstreamHandler('fastapi'));
  t.teardown(async () => {
    for (const timer of slowTimers) clearTimeout(timer);
    await Promise.all([flask.close(), fastapi.close()]);
  });

  const dir = t.testdir({
    tokens: `ops:${ADMIN_TOKEN}\n`,
    // Everything the flags below override is set differently here.
    'overridden.yaml': `listen: 127.0.0.1:1\nlogLevel: silent\nupstreams:\n  flask: ${flask.url}\n  fastapi: ${fastapi.url}\nweights:\n  fastapi: 100\n`,
    'unknown.yaml': 'weight:\n  fastapi: 5\n',
    // flask, the baseline, named with a share it would not get: PUT /weights refuses it too.
    'baseline.yaml': 'weights:\n  fastapi: 5\n  flask: 3\n',
  });

  // A port that is taken, for "address in use".
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  const heldPort = (holder.address() as AddressInfo).port;
  t.teardown(() => new Promise<void>((r) => holder.close(() => r())));

  const flagsWin = serve(['--config', join(dir, 'overridden.yaml'), '--listen', '127.0.0.1:0', '--weight', 'fastapi=0', '--log-level', 'info']);
  const allFlags = serve([
    '--listen', '127.0.0.1:0',
    '--upstream', `flask=${flask.url}`,
    '--upstream', `fastapi=${fastapi.url}`,
    '--weight', 'fastapi=50',
    '--key', '$remote_addr',
    '--trust-proxy',
    '--no-upstream-header',
    '--access-log',
    '--override-header', 'X-Force',
    '--timeout', '500ms',
    '--body-limit', '1KB',
    // Taken and checked at start (a missing --buffer-dir would stop it); what they do: protect.test.ts.
    '--buffer-memory', '1MB',
    '--buffer-dir', tmpdir(),
    '--no-request-buffering',
    '--no-response-buffering',
    '--drain-timeout', '5s',
    '--upstream-keepalive', '500ms',
    '--log-level', 'info',
    '--admin-token-file', join(dir, 'tokens'),
    '--state', join(dir, 'state.json'),
    '--poll-interval', '1s',
    '--metrics-on-traffic',
  ]);

  const runs = {
    help: run(['--help']),
    serveHelp: run(['serve', '--help']),
    helpServe: run(['help', 'serve']),
    version: run(['--version']),
    serveVersion: run(['serve', '--version']),
    none: run([]),
    unknownCommand: run(['frobnicate']),
    unknownFlag: run(['serve', '--bogus']),
    flagFirst: run(['--listen', '127.0.0.1:0', 'serve']),
    missingValue: run(['serve', '--listen']),
    extra: run(['serve', 'extra']),
    badUrl: run(['serve', '--upstream', 'flask=ftp://127.0.0.1/']),
    over100: run(['serve', '--weight', 'flask=60', '--weight', 'fastapi=40.01']),
    unknownSetting: run(['serve', '--config', join(dir, 'unknown.yaml')]),
    // Were it taken, serve would run: ephemeral ports, and killed after a while.
    baselineWeight: slot(() => runCli(['serve', '--config', join(dir, 'baseline.yaml'), '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], {}, 20_000)),
    inUse: run(['serve', '--listen', `127.0.0.1:${heldPort}`]),
    // 203.0.113.0/24 is TEST-NET-3 (RFC 5737), never a local address: listen fails, not "in use".
    notLocal: run(['serve', '--listen', '203.0.113.7:8000']),
    badEnv: slot(() =>
      runCli(['serve', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE: '{"type": "string", "payload": "django"}' }),
    ),
  };
  return { flask, fastapi, dir, heldPort, flagsWin, allFlags, runs };
}

let started!: Awaited<ReturnType<typeof startAll>>;
// Not at module load: tap (and a reader) may import a test file without running it.
t.before(async () => {
  started = await startAll();
});

t.test('--help: the commands, a line each; serve --help (or help serve): its options, on stdout, exit 0', async (t) => {
  const [help, serveHelp, helpServe] = await Promise.all([started.runs.help, started.runs.serveHelp, started.runs.helpServe]);
  t.same(help, { code: 0, stdout: `${GLOBAL_HELP}\n`, stderr: '' });
  for (const c of COMMANDS) t.match(help.stdout, new RegExp(`^  ${c.name} +\\w`, 'm'), `${c.name} is listed`);
  const serve = COMMANDS.find((c) => c.name === 'serve')!;
  t.same(serveHelp, { code: 0, stdout: `${helpPage(serve)}\n`, stderr: '' });
  t.same(helpServe, serveHelp, 'help serve prints the same page');

  // The defaults it states are the ones serve really uses (every one: cli-flags.test.ts).
  const d = buildConfig({});
  const text = serveHelp.stdout.replace(/\s+/g, ' ');
  t.match(text, `default ${d.listen.host}:${d.listen.port}`);
  for (const u of d.upstreams) t.match(text, `${u.name}=${u.url.origin}`, `default upstream ${u.name}`);
  t.match(text, `default ${d.key}`);
  t.match(text, `default ${d.logLevel}`);
});

t.test('--version prints package.json\'s version, before a command or after it', async (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  t.same(await started.runs.version, { code: 0, stdout: `${pkg.version}\n`, stderr: '' });
  t.same(await started.runs.serveVersion, { code: 0, stdout: `${pkg.version}\n`, stderr: '' });
});

t.test('no command: the list of commands on stdout, exit 2', async (t) => {
  const [none, help] = await Promise.all([started.runs.none, started.runs.help]);
  t.equal(none.code, 2);
  t.equal(none.stderr, '');
  t.equal(none.stdout, help.stdout, 'the same page as --help');
});

t.test('bad input: exit 2 and one line saying what is wrong', async (t) => {
  // The command line itself: the line names the command and its --help.
  const usage: [keyof typeof started.runs, string][] = [
    ['unknownCommand', 'drum-splitter: unknown command "frobnicate"; commands: serve, controller, replay, weights, rollout, recording, shadow, check, verify, demo, standin (see drum-splitter --help)'],
    ['unknownFlag', 'drum-splitter serve: unknown option --bogus (see drum-splitter serve --help)'],
    ['flagFirst', 'drum-splitter: unknown option --listen before the command (see drum-splitter --help)'],
    ['missingValue', 'drum-splitter serve: --listen needs a value, HOST:PORT (see drum-splitter serve --help)'],
    ['extra', 'drum-splitter serve: unexpected argument "extra" (see drum-splitter serve --help)'],
  ];
  for (const [run, line] of usage) t.same(await started.runs[run], { code: 2, stdout: '', stderr: `${line}\n` }, run);
  // A value, the config file, the environment: the line names the setting.
  const cases: [keyof typeof started.runs, RegExp][] = [
    ['badUrl', /upstreams\.flask: "ftp:\/\/127\.0\.0\.1\/" must be an http:\/\/ or https:\/\/ URL/],
    ['over100', /weights: weights add up to 100\.01%, over 100%/],
    ['unknownSetting', /--config: unknown setting "weight" in .*unknown\.yaml/],
    ['baselineWeight', /^drum-splitter: weights\.flask: flask is the baseline and takes the rest, 95%; leave it out or send 95\n$/],
    ['badEnv', /MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE: "django" is not an upstream \(have: flask, fastapi\)/],
  ];
  for (const [run, message] of cases) assertInputError(t, await started.runs[run], message, run);

  // The unknown-setting error lists the settings a file may hold: serve --help documents the same ones.
  const known = /known: ([\w, ]+)/.exec((await started.runs.unknownSetting).stderr)![1]!.split(', ');
  const listed = /YAML file with these settings \(([^)]+)\)/.exec((await started.runs.serveHelp).stdout.replace(/\s+/g, ' '))![1]!.split(', ');
  t.same(listed, known, 'the config keys in serve --help are the ones a file may use');
});

t.test('a proxy that cannot start: exit 1 and one line', async (t) => {
  const inUse = await started.runs.inUse;
  t.equal(inUse.code, 1);
  t.match(inUse.stderr, new RegExp(`^drum-splitter: address in use: [^\\n]*127\\.0\\.0\\.1:${started.heldPort}\\n$`));
  t.equal(inUse.stdout, '');
  const notLocal = await started.runs.notLocal;
  t.equal(notLocal.code, 1);
  t.match(notLocal.stderr, /^drum-splitter: listen EADDRNOTAVAIL[^\n]*203\.0\.113\.7:8000\n$/);
});

// The file alone would send everything to fastapi (that a file's weights and their order are
// honoured is shown in config.test.ts); --weight fastapi=0 sends everything to flask.
t.test('serve --config FILE with flags: the flags win', async (t) => {
  const info = await started.flagsWin.listening; // the file says logLevel: silent; --log-level info wins
  t.not(info.listen, '127.0.0.1:1', 'listens where --listen says, not where the file does');
  t.match(info, {
    upstreams: { flask: `${started.flask.url}/`, fastapi: `${started.fastapi.url}/` },
    baseline: 'flask',
    weights: { fastapi: 0 },
  }, 'upstreams from the file, weights from the flag');
  const url = `http://${info.listen}`;
  for (let i = 0; i < 8; i++) {
    const r = await send(`${url}/predict/?n=${i}`, { method: 'POST', body: 'a\n1\n' });
    t.equal(r.headers['x-drum-splitter-upstream'], 'flask', `request ${i}: flask, as --weight fastapi=0 says`);
    t.equal(upstreamName(r), 'flask');
  }
  await stop(t, started.flagsWin, 'SIGTERM');
});

t.test('serve with every flag: each one takes effect', async (t) => {
  const info = await started.allFlags.listening;
  t.match(info, { upstreams: { flask: `${started.flask.url}/`, fastapi: `${started.fastapi.url}/` }, baseline: 'flask', weights: { fastapi: 50 } });
  const url = `http://${info.listen}`;

  // --key '$remote_addr' --trust-proxy: the split follows the last X-Forwarded-For entry.
  const table = compileSplit([['fastapi', 5000]], 'flask');
  const addrs = Array.from({ length: 40 }, (_, i) => `10.0.0.${i + 1}`);
  const toFlask = addrs.find((a) => pickByHash(table, hashKey(Buffer.from(a))) === 'flask')!;
  const toFastapi = addrs.find((a) => pickByHash(table, hashKey(Buffer.from(a))) === 'fastapi')!;
  for (const [xff, want] of [[toFlask, 'flask'], [toFastapi, 'fastapi'], [`${toFlask}, ${toFastapi}`, 'fastapi'], [`${toFastapi},${toFlask}`, 'flask']]) {
    const r = await send(`${url}/predict/`, { headers: { 'x-forwarded-for': xff! } });
    t.equal(r.status, 200);
    t.equal(upstreamName(r), want, `X-Forwarded-For: ${xff} → ${want}`);
    // --no-upstream-header
    t.equal(r.headers['x-drum-splitter-upstream'], undefined, 'no X-Drum-Splitter-Upstream');
  }

  // --override-header X-Force: the named upstream, whatever the split says; not passed on.
  const forced = await send(`${url}/info/`, { headers: { 'x-forwarded-for': toFlask, 'X-Force': 'fastapi' } });
  t.same(JSON.parse(forced.body.toString()), { upstream: 'fastapi', bytes: 0, forced: null }, 'X-Force: fastapi wins over the split');

  // --body-limit 1KB: 1000 bytes pass, 1001 do not.
  const fits = await send(`${url}/predict/`, { method: 'POST', body: 'x'.repeat(1000) });
  t.equal(fits.status, 200, '1000 bytes fit in 1KB');
  const tooBig = await send(`${url}/predict/`, { method: 'POST', body: 'x'.repeat(1001) });
  t.equal(tooBig.status, 413, '1001 bytes are over 1KB');

  // --timeout 500ms: an upstream that takes 1.5 s is a 504.
  const slow = await send(`${url}/slow`);
  t.equal(slow.status, 504, 'an upstream that takes 1.5 s is over --timeout 500ms');

  // --access-log: a JSON line per request, written as each exchange closes.
  await until(() => logLines(started.allFlags, 'request').length >= 8, 3000);
  const logged = logLines(started.allFlags, 'request');
  t.match(logged, [
    { method: 'GET', url: '/predict/', upstream: 'flask', status: 200 },
    { upstream: 'fastapi' },
    { upstream: 'fastapi' },
    { upstream: 'flask' },
    { method: 'GET', url: '/info/', upstream: 'fastapi', status: 200 },
    { method: 'POST', status: 200 },
    { method: 'POST', status: 413 },
    { method: 'GET', url: '/slow', status: 504 },
  ]);
  t.equal(logged.length, 8, 'one access-log line per request');

  // --metrics-on-traffic: the traffic port answers /metrics itself, counting what went by;
  // --poll-interval 1s: the upstreams have been polled by now.
  const scraped = (await send(`${url}/metrics`)).body.toString();
  t.match(scraped, /^drum_requests_total\{server_type="none",status="413",method="POST",origin="proxy"\} 1$/m, 'the 413, refused before routing');
  t.match(scraped, /^drum_requests_total\{server_type="flask",status="504",method="GET",origin="proxy"\} 1$/m, 'the 504');
  t.match(scraped, /^drum_upstream_up\{server_type="flask"\} 1$/m);

  // --admin-token-file: writes need one of its tokens, and the audit trail names it;
  // --state: the change is on disk when the process has stopped.
  const admin = `http://${info.admin}`;
  const change = (auth: Record<string, string>): Promise<Reply> =>
    send(`${admin}/weights`, { method: 'PUT', headers: { 'content-type': 'application/json', ...auth }, body: '{"weights":{"fastapi":20}}' });
  t.equal((await change({})).status, 401, 'no token, no write');
  t.equal((await change({ authorization: `Bearer ${ADMIN_TOKEN}` })).status, 200);
  await stop(t, started.allFlags, 'SIGTERM');
  const saved = JSON.parse(readFileSync(join(started.dir, 'state.json'), 'utf8')) as { state: { shares: unknown }; history: { who: string }[] };
  t.same(saved.state.shares, [['fastapi', 2000]]);
  t.equal(saved.history.at(-1)!.who, 'ops');
});
