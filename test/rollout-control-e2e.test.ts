/**
 * The rollout's control commands, hooks and dry run end to end: `drum-splitter serve` as its own
 * process, real upstreams and a real hook server on 127.0.0.1, real traffic through the proxy,
 * and the rollout CLI as a user types it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { serveCli } from './helpers/cli.js';
import { behaving, runCli, startUpstream, steadyTraffic, type UpstreamHandler } from './helpers/net.js';
import { until } from './helpers/wait.js';

const TOKEN = 'rollout-control-e2e-token-0123456789';
const ENV = { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN };
const FAST = { interval: '150ms', window: '1s', minRequests: 20 };

interface Served {
  admin: string;
  /** GET on the admin API. */
  get(path: string): Promise<Record<string, unknown>>;
  /** The canary's weight in the live split. */
  canary(): Promise<number>;
  /** `drum-splitter rollout ARGS` against it. */
  rollout(...args: string[]): ReturnType<typeof runCli>;
}

/** `serve` with a rollout plan, its upstreams, and a client sending predictions on many paths. */
async function served(t: Test, rollout: Record<string, unknown>, canary: UpstreamHandler = behaving(2)): Promise<Served> {
  const flask = await startUpstream('flask', behaving(2));
  const fastapi = await startUpstream('fastapi', canary);
  const path = join(t.testdir({}), 'drum.yaml');
  writeFileSync(path, JSON.stringify({ upstreams: { flask: flask.url, fastapi: fastapi.url }, rollout }));
  const serve = serveCli(t, ['--config', path, '--listen', '127.0.0.1:0'], ENV);
  const listening = await serve.listening;
  const admin = `http://${listening.admin}`;
  const traffic = steadyTraffic((i) => `http://${listening.listen}/predict/${i % 500}`);
  t.teardown(async () => {
    await traffic.stop();
    serve.child().kill('SIGTERM');
    await serve.exited();
    await Promise.all([flask.close(), fastapi.close()]);
  });
  const get = async (p: string): Promise<Record<string, unknown>> => (await (await request(`${admin}${p}`)).body.json()) as Record<string, unknown>;
  return {
    admin,
    get,
    canary: async () => ((await get('/weights')).weights as Record<string, number>).fastapi!,
    rollout: (...args) => runCli(['rollout', ...args, '--admin-url', admin], ENV),
  };
}

type Decision = { action: string; from: number; to: number; text: string; reason: string | null; dryRun?: boolean; hook?: Record<string, unknown> };
const decisions = async (s: Served): Promise<Decision[]> => (await s.get('/rollout/decisions')).decisions as Decision[];

t.test('a pre-step hook answering 503 holds the step until it answers 200; then the rollout moves on', async (t) => {
  let answer = 200;
  const hooks = await startUpstream('hooks', (_req, res, body) => {
    // The first step's pre-step passes; the second's answers what the test says.
    res.statusCode = (JSON.parse(body.toString()) as { step: { number: number } }).step.number === 1 ? 200 : answer;
    res.end();
  });
  t.teardown(() => hooks.close());
  const s = await served(t, {
    ...FAST,
    window: '2s',
    // 10% of the client's requests fill a window of 20.
    steps: [{ weight: 10, hold: '300ms' }, { weight: 50, hold: '300ms' }],
    hooks: [{ name: 'load-test', on: 'pre-step', url: `${hooks.url}/pre-step`, timeout: '2s' }],
  });
  answer = 503;
  const started = await s.rollout('start', '--reason', 'e2e');
  t.equal(started.code, 0, started.stderr);
  await until(async () => (await decisions(s)).some((d) => d.action === 'hook'), 20_000);
  const held = (await decisions(s)).find((d) => d.action === 'hook')!;
  t.match(held, { from: 10, to: 10, text: /^pre-step hook "load-test" answered 503 after \d+ ms: the move to 50% is not made, the canary stays at 10%/, hook: { hook: 'load-test', status: 503 } });
  // Asked again at every check meanwhile, and still held.
  const asked = hooks.seen.length;
  await until(() => hooks.seen.length >= asked + 3, 10_000);
  t.equal(await s.canary(), 10, 'held at 10% while the hook answers 503');
  t.match(await s.get('/rollout'), { phase: 'running', step: { index: 0 } });
  answer = 200;
  await until(async () => (await s.get('/rollout')).phase === 'complete', 20_000);
  t.equal(await s.canary(), 50);
  // Between them a window may be too small to judge on a busy machine (a suspicion, a hold).
  const moves = (await decisions(s)).map((d) => d.action).filter((a) => ['start', 'hook', 'promote', 'complete'].includes(a));
  t.same(moves, ['start', 'hook', 'promote', 'complete'], 'the hold said once');
  const payload = JSON.parse(hooks.seen.at(-1)!.body.toString()) as Record<string, unknown>;
  t.match(payload, { hook: 'load-test', on: 'pre-step', rollout: { canary: 'fastapi', baseline: 'flask' }, step: { index: 1, number: 2, weight: 50 }, weights: { fastapi: 10 }, lastVerdict: { action: 'pass', checks: [{ check: 'error_rate' }] } });
  // Complete at 50%: a start would take the canary down to 5%. Said, and refused without --force.
  const again = await s.rollout('start');
  t.match(again, { code: 2, stdout: '' });
  t.match(again.stderr, /^drum-splitter: 409 from .*\/rollout\/start: start would lower the canary from 50% to 10% \(step 1 of 2\); to do so, start with force \(--force\); to carry on from the canary's weight, start from the current step \(--from-current\)\n$/);
  t.equal(await s.canary(), 50);
});

t.test('start over a canary set by hand: refused, then --force or --from-current; retry after a rollback; promote --full', async (t) => {
  let failing = false;
  const healthy = behaving(2);
  const s = await served(t, { ...FAST, steps: [{ weight: 1, hold: '1h' }, { weight: 10, hold: '1h' }, { weight: 100, hold: '1h' }], rollback: { maxErrorRate: 0.01 } }, (req, res, body) => {
    if (!failing) return healthy(req, res, body);
    res.statusCode = 500;
    res.end('{}');
  });
  const byHand = await runCli(['weights', 'set', 'fastapi=10', '--admin-url', s.admin, '--reason', 'by hand'], ENV);
  t.equal(byHand.code, 0, byHand.stderr);
  t.match(await s.get('/rollout'), { phase: 'idle', weights: { fastapi: 10 } }, 'a weight set by hand is the people\'s');

  const refused = await s.rollout('start');
  t.match(refused, { code: 2, stdout: '', stderr: /^drum-splitter: 409 from [^\n]*: start would lower the canary from 10% to 1% \(step 1 of 3\); to do so, start with force \(--force\)[^\n]*--from-current\)\n$/ });
  t.equal(await s.canary(), 10, 'refused: the canary stays where the person put it');
  const forced = await s.rollout('start', '--force', '--reason', 'from the top');
  t.equal(forced.code, 0, forced.stderr);
  t.match(JSON.parse(forced.stdout), { phase: 'running', weight: 1, step: { index: 0 } });
  t.equal(await s.canary(), 1);
  t.equal((await s.rollout('abort')).code, 0);

  t.equal((await runCli(['weights', 'set', 'fastapi=10', '--admin-url', s.admin], ENV)).code, 0);
  const current = await s.rollout('start', '--from-current');
  t.equal(current.code, 0, current.stderr);
  t.match(JSON.parse(current.stdout), { phase: 'running', weight: 10, step: { index: 1 } }, 'at the step that holds 10%');
  t.match((await decisions(s)).at(-1), { action: 'start', from: 10, to: 10, text: "rollout started at step 2 of 3 (the step at or under the canary's 10%, or the first) → canary to 10%" });

  failing = true;
  await until(async () => (await s.get('/rollout')).phase === 'rolled_back', 20_000);
  t.equal(await s.canary(), 0);
  failing = false;
  const retried = await s.rollout('retry', '--reason', 'fixed');
  t.equal(retried.code, 0, retried.stderr);
  t.match(JSON.parse(retried.stdout), { phase: 'running', weight: 10, step: { index: 1 } }, 'back at the step that failed');
  t.equal(await s.canary(), 10);

  const noReason = await s.rollout('promote', '--full');
  t.match(noReason, { code: 2, stdout: '', stderr: /^drum-splitter rollout: rollout promote --full needs --reason TEXT[^\n]*\n$/ });
  const full = await s.rollout('promote', '--full', '--reason', 'ship it');
  t.equal(full.code, 0, full.stderr);
  t.match(JSON.parse(full.stdout), { phase: 'running', weight: 100, step: { index: 2 } }, "the last step (100%) still watched through its hold");
  t.equal(await s.canary(), 100);
  t.match((await decisions(s)).at(-1), { action: 'promote_full', from: 10, to: 100, reason: 'ship it' });
  t.equal((await s.rollout('abort')).code, 0);
  const atStep = await s.rollout('start', '--at-step', '2');
  t.match(JSON.parse(atStep.stdout), { phase: 'running', weight: 10, step: { index: 1 } });
});

t.test('the rollout CLI: its flags where they belong, each mistake one line and exit 2; the API names the field', async (t) => {
  const s = await served(t, { ...FAST, steps: [{ weight: 5, hold: '1h' }] });
  const usage: [string[], RegExp][] = [
    [['pause', '--force'], /^drum-splitter rollout: --force goes with rollout start or retry, not pause \(see drum-splitter rollout --help\)\n$/],
    [['retry', '--from-current'], /^drum-splitter rollout: --from-current goes with rollout start, not retry/],
    [['start', '--full'], /^drum-splitter rollout: --full goes with rollout promote, not start/],
    [['promote', '--reason', 'x'], /^drum-splitter rollout: rollout promote needs --full \(the canary to 100% now\); to go one step on, rollout approve/],
    [['start', '--at-step', 'two'], /^drum-splitter rollout: --at-step two: not a step number; steps count from 1/],
    [['start', '--at-step', '0'], /--at-step 0: not a step number/],
    [['start', '--at-step', '9'], /^drum-splitter: 400 from .*\/rollout\/start: atStep: 9 is not a step of the plan: 1 to 1 \(5% 1h\)\n$/],
    [['start', '--at-step', '1', '--from-current'], /^drum-splitter: 400 from .*: fromCurrent: give a step \(atStep\) or the current one \(fromCurrent\), not both\n$/],
    [['retry'], /^drum-splitter: 409 from .*: nothing to retry: the rollout is idle; retry follows a rollback or an abort\n$/],
  ];
  for (const [args, stderr] of usage) t.match(await s.rollout(...args), { code: 2, stdout: '', stderr }, args.join(' '));
  const help = await runCli(['rollout', '--help']);
  t.match(help.stdout, /start \[--at-step N \| --from-current\] \[--force\]/);
  t.match(help.stdout, /--at-step N +start, retry: at step N of the plan, counted from 1/);
  t.match(help.stdout, /--full +promote: the canary to 100% now \(needs --reason\)/);
  const post = async (path: string, body: unknown) => {
    const res = await request(`${s.admin}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
  };
  t.match(await post('/rollout/promote', { full: true }), { status: 400, json: { field: 'reason', message: 'reason: is required' } });
  t.match(await post('/rollout/promote', { full: false, reason: 'x' }), { status: 400, json: { field: 'full', message: 'full: must be true (to 100% now)' } });
  t.match(await post('/rollout/start', { atStep: '2' }), { status: 400, json: { field: 'atStep', message: /must be a step of the plan counted from 1/ } });
  t.match(await post('/rollout/retry', { fromCurrent: true }), { status: 400, json: { message: /unknown field; allowed: reason, atStep, force/ } });
  t.match(await post('/rollout/promote', { full: true, reason: 'x' }), { status: 409, json: { message: 'nothing to promote: the rollout is idle; start it (at a step, if need be) first' } });
});

t.test('dryRun: the whole plan judged and decided as "would", the weights never moved', async (t) => {
  const s = await served(t, { ...FAST, window: '2s', dryRun: true, steps: [{ weight: 5, hold: '300ms' }, { weight: 50, hold: '300ms' }] });
  // What a dry run judges is the canary as people run it: 20% here, by hand.
  t.equal((await runCli(['weights', 'set', 'fastapi=20', '--admin-url', s.admin], ENV)).code, 0);
  const started = await s.rollout('start');
  t.equal(started.code, 0, `${started.stderr} (a start that would lower the canary, but a dry run lowers nothing)`);
  t.match(JSON.parse(started.stdout), { phase: 'running', weight: 5, weights: { fastapi: 20 }, plan: { dryRun: true } });
  await until(async () => (await s.get('/rollout')).phase === 'complete', 20_000);
  t.equal(await s.canary(), 20, 'never moved');
  const all = await decisions(s);
  t.ok(all.every((d) => d.dryRun === true), 'every decision a dry run\'s');
  t.same(all.map((d) => d.action).filter((a) => ['start', 'promote', 'complete'].includes(a)), ['start', 'promote', 'complete']);
  t.ok(all.every((d) => d.text.startsWith('would: ')), all.map((d) => d.text).join(' | '));
  t.same(((await s.get('/history')).history as { source: string }[]).map((h) => h.source), ['startup', 'admin'], 'the weights changed by the person alone');
});
