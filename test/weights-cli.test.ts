import t, { type Test } from 'tap';
import { startApp } from '../src/app.js';
import type { ClientOptions } from '../src/cli/admin-client.js';
import { weightArgs, weightsCommand } from '../src/cli/weights.js';
import { limiter, freePort, runCli, silentLog, startUpstream, type CliResult } from './helpers/net.js';

// `drum-splitter weights` as a user runs it: the real CLI, a fresh Node process each time (over
// a second of CPU under tap's TypeScript loader), against a real in-process app. The runs are
// started together, a few at a time, and the subtests await them; the runs that change the
// weights go one after another, in the order a canary would.

const TOKEN = 'a-long-enough-token-123';

const slot = limiter(3);

/** The CLI with no token in its environment unless given one. */
const run = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> =>
  slot(() => runCli(args, { DRUM_SPLITTER_ADMIN_TOKEN: undefined, ...env }));

const flask = await startUpstream('flask');
const fastapi = await startUpstream('fastapi');
/** Not an admin API: /broken answers 500 in plain text, /json 409 JSON without a message, else 200 in plain text. */
const odd = await startUpstream('odd', (req, res) => {
  if (req.url!.startsWith('/json')) {
    res.writeHead(409, { 'content-type': 'application/json' }).end('{"error":"conflict"}');
    return;
  }
  res.statusCode = req.url!.startsWith('/broken') ? 500 : 200;
  res.setHeader('content-type', 'text/plain');
  res.end(res.statusCode === 500 ? 'upstream exploded' : 'hello, not JSON');
});
const app = await startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`], weights: ['fastapi=5'] } },
  { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log: silentLog },
);
t.teardown(() => Promise.all([app.close(), flask.close(), fastapi.close(), odd.close()]));

const admin = `http://127.0.0.1:${app.adminAddress.port}`;
const dead = await freePort();

/** The canary, step by step; each result with the store's view right after it. */
type Step = CliResult & { view: ReturnType<typeof app.store.view> };
const step = async (args: string[], env?: NodeJS.ProcessEnv): Promise<Step> => {
  const r = await run(args, env);
  return { ...r, view: app.store.view() };
};
const canary = (async () => {
  const get = await step(['weights', 'get', '--admin-url', admin]);
  const set = await step(['weights', 'set', 'fastapi=10', '--reason', 'step 2', '--token', TOKEN, '--admin-url', admin]);
  const envToken = await step(['weights', 'set', 'fastapi=20', '--reason', 'step 3', '--admin-url', admin], { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN });
  const rollback = await step(['weights', 'rollback', '--reason', 'p99 regression', '--token', TOKEN, '--admin-url', admin]);
  // HOST:PORT, without a scheme, as serve's --admin takes it.
  const history = await step(['weights', 'history', '--admin-url', `127.0.0.1:${app.adminAddress.port}`]);
  return { get, set, envToken, rollback, history };
})();
canary.catch(() => {}); // awaited (and reported) by the subtest

// Runs that change nothing, whenever a slot is free.
const runs = {
  noToken: run(['weights', 'set', 'fastapi=50', '--admin-url', admin]),
  notANumber: run(['weights', 'set', 'fastapi=abc', '--token', TOKEN, '--admin-url', admin]),
  noPairs: run(['weights', 'set', '--token', TOKEN, '--admin-url', admin]),
  noEquals: run(['weights', 'set', 'fastapi', '--token', TOKEN, '--admin-url', admin]),
  bogus: run(['weights', 'bogus', '--admin-url', admin]),
  unreachable: run(['weights', 'get', '--admin-url', `http://127.0.0.1:${dead}`]),
  // No --admin-url: the default address, where nothing listens during the tests.
  byDefault: run(['weights', 'get']),
  badUrl: run(['weights', 'get', '--admin-url', 'http://[bad']),
  // The old spelling still works, with a warning.
  oldSpelling: run(['weights', 'get', '--admin', admin]),
  serveFlag: run(['weights', 'get', '--listen', '127.0.0.1:1', '--admin-url', admin]),
  weightsFlagToServe: run(['serve', '--reason', 'x']),
};
for (const p of Object.values(runs)) p.catch(() => {});

/** An error: the exit code, exactly one line on stderr saying what is wrong, nothing on stdout. */
function failed(t: Test, r: CliResult, code: number, message: RegExp): void {
  t.equal(r.code, code, `exit ${code}`);
  t.match(r.stderr, /^drum-splitter: [^\n]+\n$/, 'one line on stderr');
  t.match(r.stderr, message, 'says what is wrong');
  t.equal(r.stdout, '', 'nothing on stdout');
}

const json = (r: CliResult): unknown => JSON.parse(r.stdout);

t.test('a canary, step by step, through the CLI', async (t) => {
  const { get, set, envToken, rollback, history } = await canary;

  t.equal(get.code, 0, 'get: exit 0');
  t.equal(get.stderr, '');
  t.match(json(get), { weights: { flask: 95, fastapi: 5 }, version: 1, source: 'startup' }, 'get: the start-up weights');
  t.same(Object.keys((json(get) as { weights: object }).weights), ['flask', 'fastapi'], 'get: upstreams in config order');
  t.match(get.stdout, /^\{\n {2}"weights": \{\n/, 'get: indented JSON');

  t.equal(set.code, 0, 'set: exit 0');
  t.equal(set.stderr, '');
  t.match(json(set), { weights: { flask: 90, fastapi: 10 }, version: 2, source: 'admin' }, 'set: the new state');
  t.match(set.view, { weights: { flask: 90, fastapi: 10 }, version: 2 }, 'set: the store agrees');
  t.strictSame(json(set), { ...JSON.parse(JSON.stringify(set.view)), split: { key: '${remote_addr}${uri}', hash: 'murmur2' } }, "set: it printed the store's view, and how the key picks an upstream");

  t.equal(envToken.code, 0, 'the token from DRUM_SPLITTER_ADMIN_TOKEN: exit 0');
  t.match(json(envToken), { weights: { flask: 80, fastapi: 20 }, version: 3 });
  t.match(envToken.view, { weights: { flask: 80, fastapi: 20 } });

  t.equal(rollback.code, 0, 'rollback: exit 0');
  t.match(json(rollback), { weights: { flask: 100, fastapi: 0 }, version: 4, source: 'admin' }, 'rollback: everything to flask');
  t.match(rollback.view, { weights: { flask: 100, fastapi: 0 } });

  t.equal(history.code, 0, 'history: exit 0');
  t.equal(history.stderr, '');
  const { history: entries } = json(history) as { history: { source: string; who: string; reason: string | null; from: object; to: object }[] };
  t.same(
    entries.map((e) => [e.source, e.who, e.reason]),
    [
      ['startup', 'startup', 'initial weights'],
      ['admin', 'admin', 'step 2'],
      ['admin', 'admin', 'step 3'],
      ['admin', 'admin', 'p99 regression'],
    ],
    'history: every change, who and why',
  );
  t.match(entries.at(-1), { source: 'admin', who: 'admin', reason: 'p99 regression', from: { flask: 80, fastapi: 20 }, to: { flask: 100, fastapi: 0 } });
});

t.test('a write without a token: exit 3', async (t) => {
  failed(t, await runs.noToken, 3, /401 from http:\/\/127\.0\.0\.1:\d+\/weights: this needs the admin token: give --token TOKEN or set DRUM_SPLITTER_ADMIN_TOKEN\n$/);
});

t.test('a request the admin API rejects: exit 2 with its message', async (t) => {
  failed(t, await runs.notANumber, 2, /400 from .*\/weights: weights\.fastapi: "abc" is not a percentage/);
});

t.test('bad usage: exit 2 before any request', async (t) => {
  failed(t, await runs.noPairs, 2, /weights set needs NAME=PERCENT, e\.g\. weights set fastapi=10/);
  failed(t, await runs.noEquals, 2, /"fastapi" is not NAME=PERCENT/);
  failed(t, await runs.bogus, 2, /unknown weights command "bogus" \(get, set, rollback, history\)/);
  failed(t, await runs.badUrl, 2, /--admin: "http:\/\/\[bad" is not a URL or HOST:PORT/);
});

t.test('without --admin, the default http://127.0.0.1:9901', async (t) => {
  failed(t, await runs.byDefault, 1, /cannot reach the admin API at http:\/\/127\.0\.0\.1:9901: /);
});

t.test('an admin API that is not there: exit 1', async (t) => {
  failed(t, await runs.unreachable, 1, new RegExp(`cannot reach the admin API at http://127\\.0\\.0\\.1:${dead}: connect ECONNREFUSED`));
});

// The rest in-process: weightsCommand is what the CLI awaits (its InputError becomes exit 2,
// any other error exit 1), without a second of process start each.

interface Called {
  code: number;
  stdout: string;
  stderr: string;
}

/** weightsCommand with console.log and console.error captured; one at a time. */
async function call(sub: string | undefined, args: string[], opts: Partial<ClientOptions> = {}): Promise<Called> {
  let stdout = '';
  let stderr = '';
  const { log, error } = console;
  console.log = (...a: unknown[]) => void (stdout += `${a.join(' ')}\n`);
  console.error = (...a: unknown[]) => void (stderr += `${a.join(' ')}\n`);
  try {
    const code = await weightsCommand(sub, args, { admin, token: undefined, reason: undefined, ...opts });
    return { code, stdout, stderr };
  } finally {
    Object.assign(console, { log, error });
  }
}

t.test('weightsCommand: answers other than success', async (t) => {
  const cases: [string, () => Promise<Called>, number, RegExp][] = [
    ['a wrong token', () => call('rollback', [], { token: 'wrong-token-0000000000' }), 3, /401 from .*\/rollback: the admin API refused the token \(from --token\): it is not one the admin API was started with\n$/],
    ['an unknown upstream', () => call('set', ['canary=5'], { token: TOKEN }), 2, /400 from .*: weights\.canary: "canary" is not an upstream \(have: flask, fastapi\)/],
    ['a value with "=" in it', () => call('set', ['fastapi=5=6'], { token: TOKEN }), 2, /weights\.fastapi: "5=6" is not a percentage/],
    ['no such path', () => call('get', [], { admin: `${admin}/nope/` }), 2, /404 from http:\/\/127\.0\.0\.1:\d+\/nope\/weights: no GET \/nope\/weights/],
    // fetch would refuse port 6000 by policy ("bad port"); the client really tries it.
    ['a port fetch refuses', () => call('get', [], { admin: 'http://127.0.0.1:6000' }), 1, /cannot reach the admin API at http:\/\/127\.0\.0\.1:6000: connect ECONNREFUSED/],
    ['a JSON error without a message: the body as it came', () => call('get', [], { admin: `${odd.url}/json` }), 2, /409 from .*\/json\/weights: \{"error":"conflict"\}\n$/],
    ['a server error, not JSON', () => call('history', [], { admin: `${odd.url}/broken` }), 1, /^drum-splitter: 500 from .*\/broken\/history: upstream exploded\n$/],
  ];
  for (const [name, result, code, message] of cases) {
    const r = await result(); // one at a time: each borrows console
    t.equal(r.code, code, `${name}: exit ${code}`);
    t.match(r.stderr, /^drum-splitter: [^\n]+\n$/, `${name}: one line`);
    t.match(r.stderr, message, name);
    t.equal(r.stdout, '', `${name}: nothing on stdout`);
  }
  t.equal(app.store.state.version, (await canary).history.view.version, 'none of them changed the weights');
});

t.test('weightsCommand: usage errors are InputErrors, before any request', async (t) => {
  const cases: [string | undefined, string[], Partial<ClientOptions>, RegExp][] = [
    ['get', ['fastapi'], {}, /weights get takes no arguments/],
    ['history', ['all'], {}, /weights history takes no arguments/],
    ['rollback', ['now'], {}, /weights rollback takes no arguments/],
    ['set', ['=5'], {}, /"=5" is not NAME=PERCENT/],
    ['set', ['fastapi='], {}, /"fastapi=" is not NAME=PERCENT/],
    [undefined, [], {}, /unknown weights command "" \(get, set, rollback, history\)/],
    ['get', [], { admin: 'not a url' }, /^--admin: "not a url" is not a URL or HOST:PORT/],
    ['get', [], { admin: '127.0.0.1:notaport' }, /--admin: "127\.0\.0\.1:notaport"/],
  ];
  for (const [sub, args, opts, message] of cases) {
    await t.rejects(call(sub, args, { admin: `http://127.0.0.1:${dead}`, ...opts }), { name: 'InputError', message }, `${sub} ${args.join(' ')}`);
  }
});

t.test('weightsCommand: several NAME=PERCENT in one request', async (t) => {
  t.same(weightArgs(['fastapi=5', 'flask=95', 'fastapi=7.5']), { fastapi: '7.5', flask: '95' }, 'the last of a name wins');
  const r = await call('set', ['flask=93', 'fastapi=7'], { token: TOKEN, reason: 'both named' });
  t.equal(r.code, 0);
  t.match(JSON.parse(r.stdout), { weights: { flask: 93, fastapi: 7 } });
  t.match(app.store.history.at(-1), { who: 'admin', reason: 'both named' });
});

t.test('weightsCommand: a 2xx that is not JSON is printed as it came', async (t) => {
  const r = await call('get', [], { admin: `${odd.url}/text` });
  t.equal(r.code, 0);
  t.equal(r.stderr, '');
  t.equal(r.stdout, 'hello, not JSON\n', 'the body as it came');
});

t.test('each command takes only its own flags; --admin is the old spelling of --admin-url for weights', async (t) => {
  const old = await runs.oldSpelling;
  t.equal(old.code, 0);
  t.match(JSON.parse(old.stdout), { weights: { flask: Number } }, 'the admin API it names answered');
  t.equal(old.stderr, 'drum-splitter: warning: --admin URL is the old spelling for weights; use --admin-url URL\n');
  t.same(await runs.serveFlag, { code: 2, stdout: '', stderr: 'drum-splitter weights: unknown option --listen (see drum-splitter weights --help)\n' });
  t.same(await runs.weightsFlagToServe, { code: 2, stdout: '', stderr: 'drum-splitter serve: unknown option --reason (see drum-splitter serve --help)\n' });
});
