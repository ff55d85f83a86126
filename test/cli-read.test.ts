/**
 * The CLI that reads, against a real app on 127.0.0.1: `rollout status` and `rollout decisions`
 * as summaries (--json as the API answers, --watch again and again), `recording` and `shadow`
 * on|off|status, and what a missing and a wrong token are told. A few runs are the real CLI as a
 * child process (the wiring, Ctrl-C); the rest call the commands in-process, with console
 * captured, or the watch with its writer and terminal given.
 */
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { startApp, type RunningApp } from '../src/app.js';
import { requestAdmin, type ClientOptions } from '../src/cli/admin-client.js';
import { rolloutCommand } from '../src/cli/rollout.js';
import { rolloutLook } from '../src/cli/rollout-status.js';
import { switchCommand } from '../src/cli/switches.js';
import { watch, type WatchIo } from '../src/cli/watch.js';
import { freePort, limiter, runCli, spawnCli, startUpstream, type CliResult } from './helpers/net.js';
import { until, within } from './helpers/wait.js';

const TOKEN = 'cli-read-token-0123456789';
const slot = limiter(2);
/** The real CLI, with no token in its environment unless given one. */
const run = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> => slot(() => runCli(args, { DRUM_SPLITTER_ADMIN_TOKEN: undefined, ...env }, 30_000));

const flask = await startUpstream('flask');
const fastapi = await startUpstream('fastapi');
/** Answers 200 with JSON no admin API gives, 404 under /gone. */
const odd = await startUpstream('odd', (req, res) => {
  res.writeHead(req.url!.startsWith('/gone') ? 404 : 200, { 'content-type': 'application/json' }).end(req.url!.startsWith('/gone') ? '{"error":"not_found","message":"no GET"}' : '{"hello": "world"}');
});
const logged: { msg: string; who?: string; reason?: string }[] = [];
const dir = t.testdir({});
const app: RunningApp = await startApp(
  {
    flags: {
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`],
      record: join(dir, 'recorded.jsonl'),
      // A check every 150 ms: GET /rollout changes as often, for --watch to see.
      rollout: { interval: '150ms', window: '1s', minRequests: 20, steps: [{ weight: 5, hold: '1h' }, { weight: 100, hold: '1h' }] },
    },
  },
  { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log: pino({ level: 'info' }, { write: (l: string) => void logged.push(JSON.parse(l) as (typeof logged)[number]) }) },
);
t.teardown(() => Promise.all([app.close(), flask.close(), fastapi.close(), odd.close()]));
const admin = `http://127.0.0.1:${app.adminAddress.port}`;
const opts: ClientOptions = { admin, token: TOKEN, reason: undefined };

interface Called {
  code: number;
  stdout: string;
  stderr: string;
}

/** A command in-process with console.log and console.error captured; one at a time. */
async function call(command: () => Promise<number>): Promise<Called> {
  let stdout = '';
  let stderr = '';
  const { log, error } = console;
  console.log = (...a: unknown[]) => void (stdout += `${a.join(' ')}\n`);
  console.error = (...a: unknown[]) => void (stderr += `${a.join(' ')}\n`);
  try {
    return { code: await command(), stdout, stderr };
  } finally {
    Object.assign(console, { log, error });
  }
}

/** An error: the exit code, one line on stderr matching `message`, nothing on stdout. */
function failed(t: Test, r: Called | CliResult, code: number, message: RegExp | string): void {
  t.equal(r.code, code, `exit ${code}`);
  t.match(r.stderr, /^drum-splitter[^\n]*\n$/, 'one line on stderr');
  if (typeof message === 'string') t.equal(r.stderr, `${message}\n`);
  else t.match(r.stderr, message);
  t.equal(r.stdout, '', 'nothing on stdout');
}

// Before the rollout starts: the CLI's own runs, which read the idle rollout.
const idle = {
  status: run(['rollout', 'status', '--admin-url', admin]),
  json: run(['rollout', 'status', '--json', '--admin-url', admin]),
};
await Promise.all(Object.values(idle));
await app.rollout!.command('start', 'admin', 'cli-read');
await until(() => app.rollout!.view().lastVerdict !== null);

t.test('rollout status: the summary; --json: the answer as it came', async (t) => {
  const status = await idle.status;
  t.equal(status.code, 0);
  t.equal(status.stderr, '');
  t.match(status.stdout, /^canary {8}fastapi \(baseline flask\)\nphase {9}idle\nstep {10}none\nweights {7}flask 100%, fastapi 0%\nnext check {4}none\nlast verdict {2}none yet\ndecisions {5}none yet\nplan {10}5% 1h → 100% 1h\n$/);
  const json = await idle.json;
  t.equal(json.code, 0);
  t.match(JSON.parse(json.stdout), { phase: 'idle', weight: 0, plan: { canary: 'fastapi' } }, 'GET /rollout as it came');
  t.match(json.stdout, /^\{\n {2}"plan": \{/, 'indented');

  const running = await call(() => rolloutCommand('status', [], opts));
  t.equal(running.code, 0);
  t.match(running.stdout, /\nphase {9}running\nstep {10}1 of 2: 5%, held [\d.]+m?s of 1h\nweights {7}flask 95%, fastapi 5%\nnext check {4}(in [\d.]+m?s|due now)\nlast verdict {2}\w+ at \d\d:\d\d:\d\d: /);
  t.match(running.stdout, /\ndecisions {5}1\n {2}\d\d:\d\d:\d\d {2}start +0% → 5% +rollout started → canary to 5% \(admin: cli-read\)\n/);
});

t.test('rollout decisions: a line each; --json: the answer as it came', async (t) => {
  const lines = await call(() => rolloutCommand('decisions', [], opts));
  t.equal(lines.code, 0);
  t.match(lines.stdout, /^\d\d:\d\d:\d\d {2}start +0% → 5% +rollout started → canary to 5% \(admin: cli-read\)\n/);
  const json = await call(() => rolloutCommand('decisions', [], opts, { json: true }));
  t.match(JSON.parse(json.stdout), { decisions: [{ action: 'start', who: 'admin', reason: 'cli-read' }] });
});

t.test('rollout status --watch, not on a terminal: each new state printed once, until Ctrl-C', async (t) => {
  const child = await slot(async () => spawnCli(['rollout', 'status', '--watch', '--interval', '200ms', '--admin-url', admin]));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  // Each check changes the answer (its verdict, the next check's time): a state each.
  await until(() => stdout.split(/^canary /m).length > 3, 20_000);
  child.kill('SIGINT');
  t.equal(await within(exited, 10_000, 'the watch ending'), 0, 'Ctrl-C ends it: exit 0');
  t.equal(stderr, '');
  const states = stdout.split('\n\n');
  t.ok(states.length >= 3, `${states.length} states`);
  t.ok(states.every((s) => /^canary {8}fastapi \(baseline flask\)\nphase {9}running\n/.test(s)), 'each a whole summary, a blank line between');
  t.notMatch(stdout, /\u001b/, 'no terminal codes');
});

/** A watch's writer, on a terminal or not, its output collected; it stops after `looks` screens or lines. */
function io(tty: boolean, stopAfter: (out: string[], err: string[]) => boolean): WatchIo & { out: (s: string) => void; lines: string[]; errors: string[] } {
  const stop = new AbortController();
  const lines: string[] = [];
  const errors: string[] = [];
  const check = (): void => {
    if (stopAfter(lines, errors)) stop.abort();
  };
  return {
    tty,
    rows: 12,
    signal: stop.signal,
    lines,
    errors,
    out: (s) => {
      lines.push(s);
      check();
    },
    err: (s) => {
      errors.push(s);
      check();
    },
  };
}

t.test('--watch on a terminal: the screen redrawn in place under its title', async (t) => {
  const tty = io(true, (out) => out.length >= 2);
  t.equal(await watch(rolloutLook('status', opts, false), 'drum-splitter rollout status, every 0.1s (Ctrl-C to stop)', 100, tty), 0);
  t.equal(tty.lines.length, 2, 'a screen a look');
  for (const screen of tty.lines) t.match(screen, /^\u001b\[H\u001b\[2Jdrum-splitter rollout status, every 0\.1s \(Ctrl-C to stop\)\n\ncanary {8}fastapi/);
  // The decisions' screen fits the terminal: with 12 rows, a title, a blank line and the last 9 lines.
  const many = app.rollout!.decisions.length;
  const decisions = io(true, (out) => out.length >= 1);
  await watch(rolloutLook('decisions', opts, false), 'title', 100, decisions);
  t.equal(decisions.lines[0]!.split('\n').length, 2 + Math.min(many, 10), `${many} decisions on a screen of 12 rows`);
});

t.test('--watch of an admin API out of reach: said (once, off a terminal) and looked at again; a 4xx ends it', async (t) => {
  const dead: ClientOptions = { admin: `http://127.0.0.1:${await freePort()}`, token: undefined, reason: undefined };
  const away = io(false, (_, err) => err.length >= 1);
  // Off a terminal: the failure once, though the watch looked several times.
  const started = Date.now();
  const ended = watch(rolloutLook('decisions', dead, false), 'title', 50, away);
  await until(() => Date.now() - started > 300);
  t.equal(await ended, 0);
  t.match(away.errors, [/^drum-splitter: cannot reach the admin API at http:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED/]);

  const screen = io(true, (out) => out.length >= 2);
  await watch(rolloutLook('status', dead, false), 'title', 50, screen);
  t.match(screen.lines[1], /^\u001b\[H\u001b\[2Jtitle\n\ncannot reach the admin API at .*; looking again every 0\.05s$/);

  const gone = io(false, () => false);
  t.equal(await watch(rolloutLook('status', { ...opts, admin: `${odd.url}/gone` }, true), 'title', 50, gone), 2, 'a 404 would say the same again: exit 2');
  t.strictSame(gone.errors, [`drum-splitter: 404 from ${odd.url}/gone/rollout: no GET`]);
});

t.test('--watch off a terminal prints what is new: each new decision once', async (t) => {
  let later = false;
  const tail = io(false, (out) => later && out.some((l) => / pause /.test(l)));
  const watching = watch(rolloutLook('decisions', opts, false), 'title', 50, tail);
  await until(() => tail.lines.length > 0);
  const before = tail.lines.length;
  later = true;
  await app.rollout!.command('pause', 'admin', 'for the watch');
  t.equal(await within(watching, 10_000, 'the pause seen'), 0);
  t.equal(tail.lines.length, before + 1, 'only the new one');
  t.match(tail.lines.at(-1), /^\d\d:\d\d:\d\d {2}pause +5% → 5% +paused at 5% \(admin: for the watch\)$/);
  await app.rollout!.command('resume', 'admin', null);
});

t.test('an answer this version cannot read is said, not drawn', async (t) => {
  const other = { ...opts, admin: odd.url };
  failed(t, await call(() => rolloutCommand('status', [], other)), 1, 'drum-splitter: the admin API answered GET /rollout with nothing this drum-splitter can read (another version?); --json prints it as it came');
  failed(t, await call(() => rolloutCommand('decisions', [], other)), 1, /GET \/rollout\/decisions with nothing this drum-splitter can read/);
  t.same(await call(() => rolloutCommand('status', [], other, { json: true })), { code: 0, stdout: '{\n  "hello": "world"\n}\n', stderr: '' }, '--json prints it');
  failed(t, await call(() => rolloutCommand('status', [], { ...opts, admin: `${odd.url}/gone` })), 2, /^drum-splitter: 404 from .*\/gone\/rollout: no GET\n$/);
  const nowhere = `http://127.0.0.1:${await freePort()}`;
  failed(t, await call(() => rolloutCommand('status', [], { ...opts, admin: nowhere })), 1, /cannot reach the admin API/);
  // GET /rollout answers, /rollout/decisions does not, or with what is no list, or with entries that are no decisions.
  const start = app.rollout!.decisions[0];
  const decisions: Record<string, [number, unknown]> = {
    '/failing': [500, { error: 'internal_error', message: 'it broke' }],
    '/scalar': [200, { decisions: 5 }],
    '/one': [200, { decisions: [start, { at: 5 }] }],
    '/two': [200, { decisions: [start, 'x', null] }],
  };
  const half = await startUpstream('half', (req, res) => {
    const [, prefix, rest] = /^(\/\w+)(.*)$/.exec(req.url!)!;
    const [status, body] = rest === '/rollout' ? [200, app.rollout!.view()] : decisions[prefix!]!;
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  t.teardown(() => half.close());
  const at = (prefix: string): ClientOptions => ({ ...opts, admin: half.url + prefix });
  failed(t, await call(() => rolloutCommand('status', [], at('/failing'))), 1, /^drum-splitter: 500 from .*\/failing\/rollout\/decisions: it broke\n$/);
  failed(t, await call(() => rolloutCommand('status', [], at('/scalar'))), 1, /GET \/rollout\/decisions with nothing this drum-splitter can read/);
  t.match((await call(() => rolloutCommand('decisions', [], at('/one')))).stdout, /^\d\d:\d\d:\d\d {2}start .*\n1 entry is not a decision this drum-splitter can read; --json prints them\n$/);
  t.match((await call(() => rolloutCommand('decisions', [], at('/two')))).stdout, /\n2 entries are not decisions this drum-splitter can read/);
});

t.test('rollout: --json, --watch and --interval go with status and decisions; --interval with --watch', async (t) => {
  await t.rejects(rolloutCommand('start', [], opts, { watch: true }), { name: 'UsageError', message: '--watch goes with rollout status or decisions, not start' });
  await t.rejects(rolloutCommand('status', [], opts, { interval: '1s' }), { name: 'UsageError', message: '--interval goes with --watch' });
  await t.rejects(rolloutCommand('status', [], opts, { watch: true, interval: '10ms' }), { name: 'UsageError', message: '--interval 10ms: at least 100ms' });
  await t.rejects(rolloutCommand('status', [], opts, { watch: true, interval: 'often' }), { name: 'InputError', message: /^--interval: "often" is not a duration/ });
});

t.test('recording on|off|status: through the admin API, the new state printed, the change logged with its reason', async (t) => {
  const on = await call(() => switchCommand('recording', 'on', [], { ...opts, reason: 'for replay' }, { sample: '0.25' }));
  t.same(on, { code: 0, stdout: `recording on: 25% of the requests to ${app.proxy.recording.view().paths.join(', ')}, written to ${join(dir, 'recorded.jsonl')}\n`, stderr: '' });
  t.match(app.proxy.recording, { enabled: true, sampleRate: 0.25 });
  t.match(logged.filter((l) => l.msg === 'recording changed').at(-1), { who: 'admin', reason: 'for replay' });
  const off = await call(() => switchCommand('recording', 'off', [], opts, {}));
  t.match(off, { code: 0, stdout: /^recording off \(on: 25% of the requests/ });
  t.equal(app.proxy.recording.enabled, false);
  const status = await call(() => switchCommand('recording', 'status', [], { ...opts, token: undefined }, {}));
  t.equal(status.stdout, off.stdout, 'status reads without a token');
  const json = await call(() => switchCommand('recording', 'status', [], opts, { json: true }));
  t.match(JSON.parse(json.stdout), { enabled: false, sampleRate: 0.25, file: join(dir, 'recorded.jsonl') });
});

t.test('shadow on|off|status: copies to the canary, counted', async (t) => {
  const on = await call(() => switchCommand('shadow', 'on', [], opts, { sample: '0.5' }));
  t.match(on, { code: 0, stdout: /^shadow on: 50% of the baseline's requests to \/predict\/.* copied to fastapi\ncompared 0: 0 differ; 0 failed, 0 dropped, 0 in flight\n$/ });
  t.equal(app.shadow!.enabled, true);
  const off = await call(() => switchCommand('shadow', 'off', [], opts, {}));
  t.match(off.stdout, /^shadow off \(on: 50% of the baseline's requests/);
  t.equal(app.shadow!.enabled, false);
  t.match((await call(() => switchCommand('shadow', 'status', [], opts, {}))).stdout, off.stdout);
});

t.test('recording and shadow: what the admin API refuses, and bad usage', async (t) => {
  // The admin API's own refusal, a 400 with its message.
  failed(t, await call(() => switchCommand('shadow', 'on', [], opts, { sample: '0' })), 2, /^drum-splitter: 400 from .*\/shadow: sampleRate: the shadow needs a sample rate above 0 to be on/);
  const usage: [string | undefined, string[], Record<string, string | true>, RegExp][] = [
    ['start', [], {}, /^unknown recording command "start" \(on, off, status\)$/],
    [undefined, [], {}, /^unknown recording command "" \(on, off, status\)$/],
    ['on', ['0.5'], {}, /^recording on takes no arguments$/],
    ['status', [], { sample: '0.5' }, /^--sample goes with recording on, not status$/],
    ['on', [], { sample: '5%' }, /^--sample: "5%" is not a rate from 0 to 1, e\.g\. 0\.01 for 1%$/],
    ['on', [], { sample: '2' }, /^--sample: "2" is not a rate from 0 to 1/],
  ];
  for (const [sub, args, flags, message] of usage) await t.rejects(switchCommand('recording', sub, args, opts, flags), { message }, `${sub} ${args.join(' ')} ${JSON.stringify(flags)}`);
  failed(t, await call(() => switchCommand('recording', 'status', [], { ...opts, admin: odd.url }, {})), 1, /answered \/recording with nothing this drum-splitter can read/);
  failed(t, await call(() => switchCommand('shadow', 'status', [], { ...opts, admin: odd.url }, {})), 1, /answered \/shadow with nothing this drum-splitter can read/);
});

t.test('a missing token and a wrong one: each told what to do', async (t) => {
  const [missing, wrongFlag, wrongEnv, emptyEnv, right] = await Promise.all([
    run(['recording', 'on', '--admin-url', admin]),
    run(['shadow', 'off', '--token', 'not-the-token-0000000000', '--admin-url', admin]),
    run(['rollout', 'pause', '--admin-url', admin], { DRUM_SPLITTER_ADMIN_TOKEN: 'not-the-token-0000000000' }),
    run(['weights', 'rollback', '--admin-url', admin], { DRUM_SPLITTER_ADMIN_TOKEN: '' }),
    run(['recording', 'status', '--admin-url', admin], { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }),
  ]);
  failed(t, missing, 3, `drum-splitter: 401 from ${admin}/recording: this needs the admin token: give --token TOKEN or set DRUM_SPLITTER_ADMIN_TOKEN`);
  failed(t, wrongFlag, 3, `drum-splitter: 401 from ${admin}/shadow: the admin API refused the token (from --token): it is not one the admin API was started with`);
  failed(t, wrongEnv, 3, `drum-splitter: 401 from ${admin}/rollout/pause: the admin API refused the token (from DRUM_SPLITTER_ADMIN_TOKEN): it is not one the admin API was started with`);
  failed(t, emptyEnv, 3, /this needs the admin token: give --token TOKEN or set DRUM_SPLITTER_ADMIN_TOKEN\n$/);
  t.match(right, { code: 0, stdout: /^recording off/, stderr: '' }, 'the CLI runs recording');
  t.equal(app.proxy.recording.enabled, false, 'none of them changed anything');
  t.equal(app.rollout!.state.phase, 'running');
});

t.test('a call the signal ends reads as unreachable at once: a watch is not held by an admin API that never answers', async (t) => {
  // Takes connections and never answers.
  const silent = createNetServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => silent.close());
  const stop = new AbortController();
  const asked = requestAdmin({ admin: `127.0.0.1:${(silent.address() as AddressInfo).port}`, token: undefined, reason: undefined, signal: stop.signal }, 'GET', '/rollout');
  setTimeout(() => stop.abort(), 100);
  t.match(await within(asked, 2_000, 'the call ending'), { unreachable: /^cannot reach the admin API at http:\/\/127\.0\.0\.1:\d+: / });
});
