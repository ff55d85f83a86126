/**
 * The shadow phase and the mismatch trigger end to end, on short real durations: `serve` as its
 * own process, real upstreams on 127.0.0.1, real traffic, the admin API and the rollout CLI.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { serveCli, type Served } from './helpers/cli.js';
import { runCli, startUpstream, steadyTraffic, type UpstreamHandler } from './helpers/net.js';
import { until } from './helpers/wait.js';
import { startTestApp } from './helpers/app.js';

const TOKEN = 'shadow-e2e-token-0123456789';
const ENV = { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN };
const auth = { authorization: `Bearer ${TOKEN}` };

/**
 * A DRUM-like answer: the prediction, and a request id that differs on every call of either
 * server — what the noise sample finds to be noise, not a difference.
 */
const predicting = (prediction: () => number): UpstreamHandler => {
  let n = 0;
  return (_req, res) => {
    n++;
    setTimeout(() => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ predictions: [prediction()], request_id: `${process.pid}-${n}-${Math.random()}` }));
    }, 2);
  };
};

async function call(url: string, method: 'GET' | 'POST' | 'PUT' = 'GET', body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const write = method !== 'GET';
  const res = await request(url, { method, headers: { ...auth, ...(write ? { 'content-type': 'application/json' } : {}) }, body: write ? JSON.stringify(body ?? {}) : undefined });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

interface World {
  served: Served;
  admin: string;
  dir: string;
  /** From now on the canary answers another prediction. */
  corrupt(): void;
  /** The traffic stops, then serve (SIGTERM: it exits cleanly). */
  stop(): Promise<void>;
}

async function world(t: Test, settings: Record<string, unknown>, args: string[] = []): Promise<World> {
  let corrupted = false;
  const flask = await startUpstream('flask', predicting(() => 1));
  const fastapi = await startUpstream('fastapi', predicting(() => (corrupted ? 2 : 1)));
  t.teardown(() => Promise.all([flask.close(), fastapi.close()]));
  const dir = t.testdir({});
  const path = join(dir, 'drum.yaml');
  writeFileSync(path, JSON.stringify({ upstreams: { flask: flask.url, fastapi: fastapi.url }, ...settings }));
  const served = serveCli(t, ['--config', path, '--listen', '127.0.0.1:0', ...args], ENV);
  const listening = await served.listening;
  const traffic = steadyTraffic((i) => `http://${listening.listen}/predict/?i=${i}`);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await traffic.stop();
      served.child().kill('SIGTERM');
      await served.exited();
    })());
  t.teardown(stop);
  return { served, admin: `http://${listening.admin}`, dir, corrupt: () => (corrupted = true), stop };
}

const FAST = { interval: '150ms', window: '1s', minRequests: 20, settle: 0 };

t.test('the shadow phase passes (the noisy field is noise), 10% follows; a canary turning out other predictions is rolled back at once, the pair in the decision', async (t) => {
  const w = await world(t, {
    // The operator's own shadow: on at 20%, with the noise sample; the phase raises it, then puts it back.
    shadowSample: 0.2,
    shadowNoiseSample: 1,
    rollout: { ...FAST, steps: [{ shadow: 1, hold: '600ms' }, { weight: 10, hold: '60s' }, { weight: 50, hold: '60s' }] },
  });
  t.match(await call(`${w.admin}/rollout`), { status: 200, json: { phase: 'idle', plan: { steps: 'shadow 100% 600ms → 10% 1m → 50% 1m' } } });
  const started = await runCli(['rollout', 'start', '--admin-url', w.admin], ENV);
  t.equal(started.code, 0, started.stderr);
  t.match(JSON.parse(started.stdout), { phase: 'running', weight: 0, step: { index: 0, shadow: 1 } });
  t.match((await call(`${w.admin}/shadow`)).json, { enabled: true, sampleRate: 1 }, 'the shadow phase switched the shadow to its share');

  let decisions: Record<string, unknown>[] = [];
  await until(async () => {
    decisions = (await call(`${w.admin}/rollout/decisions`)).json.decisions as Record<string, unknown>[];
    return decisions.some((d) => d.action === 'shadow_pass');
  }, 20_000, 50);
  const pass = decisions.find((d) => d.action === 'shadow_pass')!;
  t.match(pass, { from: 0, to: 10, text: 'shadow 100% held with every check passing → canary to 10%' });
  const checks = pass.checks as { check: string; status: string; value: number | null }[];
  t.match(checks.find((c) => c.check === 'mismatch'), { status: 'ok', value: 0 }, 'the request ids differ on every call, and are noise');
  t.match(checks.find((c) => c.check === 'p99'), { status: 'ok' }, "the pairs' p99s side by side");
  t.notOk('mismatch' in pass);
  const status = (await call(`${w.admin}/rollout`)).json;
  t.match(status, { phase: 'running', weight: 10, step: { index: 1 } });
  t.match((await call(`${w.admin}/shadow`)).json, { enabled: true, sampleRate: 0.2 }, "the operator's shadow is back as it was");

  const at = Date.now();
  w.corrupt();
  await until(async () => (await call(`${w.admin}/rollout`)).json.phase === 'rolled_back', 10_000, 20);
  const took = Date.now() - at;
  t.ok(took < 3000, `rolled back within ${took} ms of the first different prediction`);
  decisions = (await call(`${w.admin}/rollout/decisions`)).json.decisions as Record<string, unknown>[];
  // The rollback, whether or not the baseline's verification has followed it yet.
  const rollback = decisions.find((d) => d.action === 'rollback')!;
  t.match(rollback, { action: 'rollback', from: 10, to: 0, text: /^prediction mismatch: \d+ of \d+ shadow pairs differ beyond the ignore list and the noise \([\d.]+%\): any difference → canary to 0% at once$/ });
  t.match(rollback.mismatch, {
    request: { method: 'POST', path: /^\/predict\/\?i=\d+$/, contentType: '', body: { text: 'a\n1\n' } },
    baseline: { upstream: 'flask', status: 200, body: { text: /"predictions":\[1\]/ } },
    canary: { upstream: 'fastapi', status: 200, body: { text: /"predictions":\[2\]/ } },
    kind: 'json',
    differences: [{ path: '$.predictions[0]', baseline: 1, canary: 2, field: '$.predictions[*]' }],
  });
  t.match((await call(`${w.admin}/weights`)).json, { weights: { fastapi: 0 } });
  const metrics = await (await request(`${w.admin}/metrics`)).body.text();
  t.match(metrics, /drum_canary_check\{check="mismatch"\} 0\.\d+/);
  t.match(metrics, /drum_rollout_decisions_total\{action="shadow_pass"\} 1/);
  await w.stop();
  t.match(await w.served.exited(), [0, null], 'serve stops cleanly');
});

t.test('--workers: the workers copy and compare, the primary judges their pairs; their mismatch rolls back at once', async (t) => {
  // The request id a documented difference this time: the ignore list.
  const w = await world(t, { shadowIgnore: ['$.request_id'], rollout: { ...FAST, steps: [{ shadow: 0.5, hold: '600ms' }, { weight: 10, hold: '60s' }] } }, ['--workers', '2']);
  const started = await call(`${w.admin}/rollout/start`, 'POST', {});
  t.match(started, { status: 200, json: { phase: 'running', weight: 0 } });
  await until(async () => (await call(`${w.admin}/rollout`)).json.weight === 10, 20_000, 50).catch(async (err: Error) => {
    throw new Error(`${err.message}; GET /rollout: ${JSON.stringify((await call(`${w.admin}/rollout`)).json.lastVerdict)}; GET /shadow: ${JSON.stringify((await call(`${w.admin}/shadow`)).json)}`);
  });
  const decisions = (await call(`${w.admin}/rollout/decisions`)).json.decisions as Record<string, unknown>[];
  t.match(decisions.map((d) => d.action), ['start', 'shadow_pass']);
  t.match((await call(`${w.admin}/shadow`)).json, { enabled: false, sampleRate: 0 }, 'off again, as the config had it');
  // Without a shadow at the canary step there is no mismatch check: switched on by a person, it judges.
  t.match(await call(`${w.admin}/shadow`, 'PUT', { enabled: true, sampleRate: 0.5 }), { status: 200 });
  w.corrupt();
  await until(async () => (await call(`${w.admin}/rollout`)).json.phase === 'rolled_back', 10_000, 20);
  const last = ((await call(`${w.admin}/rollout/decisions`)).json.decisions as Record<string, unknown>[]).find((d) => d.action === 'rollback')!;
  t.match(last, { action: 'rollback', mismatch: { canary: { body: { text: /"predictions":\[2\]/ } } } });
  t.match((await call(`${w.admin}/shadow`)).json, { lastMismatch: { canary: { upstream: 'fastapi', body: { text: /"predictions":\[2\]/ } } } }, 'GET /shadow shows it too');
  await w.stop();
});

const REPORT = {
  summary: { total_requests: 400, errors: 0, response_mismatches: 0, match_rate: '100.00%' },
  criteria: [
    { name: 'match_rate', threshold: 1, value: 1, verdict: 'pass', pass: true },
    { name: 'canary_p99_within_20_percent', threshold: 1.2, value: 1.01, verdict: 'pass', pass: true },
    { name: 'error_responses_match', threshold: 1, value: null, verdict: 'pass', pass: true },
    { name: 'no_oom', threshold: 0, value: null, verdict: 'not measured', pass: null },
  ],
  interrupted: false,
  results: [],
};

t.test('rollout start --replay-report: a passing report skips the shadow phase, its numbers in the decision; others refused with one line', async (t) => {
  const w = await world(t, { rollout: { ...FAST, steps: [{ shadow: 0.5, hold: '1h' }, { weight: 5, hold: '1h' }] } });
  const file = (name: string, content: string): string => {
    const path = join(w.dir, name);
    writeFileSync(path, content);
    return path;
  };
  const failing = file('failing.json', JSON.stringify({ ...REPORT, criteria: [{ ...REPORT.criteria[0], value: 0.99, verdict: 'fail' }] }));
  const cases: [string[], RegExp][] = [
    [['--replay-report', failing], /^drum-splitter: 400 from .*\/rollout\/start: replayReport: the replay report is failing \(match_rate fail \(0\.99\)\): only a passing one stands in for the shadow phase\n$/],
    [['--replay-report', file('junk.json', 'not json')], /^drum-splitter: --replay-report: .*junk\.json is not JSON: give the --output file of drum-splitter replay\n$/],
    [['--replay-report', join(w.dir, 'missing.json')], /^drum-splitter: --replay-report: cannot read .*missing\.json: ENOENT: no such file or directory, open '.*missing\.json'\n$/],
    [['--replay-report', file('list.json', '[1]')], /^drum-splitter: 400 from .*\/rollout\/start: replayReport: must be a drum-splitter replay report's JSON \(its --output file\)\n$/],
  ];
  for (const [args, stderr] of cases) {
    const r = await runCli(['rollout', 'start', '--admin-url', w.admin, ...args], ENV);
    t.match(r, { code: 2, stdout: '', stderr }, args.join(' '));
  }
  const wrongCommand = await runCli(['rollout', 'pause', '--admin-url', w.admin, '--replay-report', failing], ENV);
  t.match(wrongCommand, { code: 2, stderr: /--replay-report goes with rollout start, not pause \(see drum-splitter rollout --help\)\n$/ });
  t.match(await call(`${w.admin}/rollout/start`, 'POST', { replayReport: 'pass' }), { status: 400, json: { error: 'invalid', field: 'replayReport' } }, 'not an object: the schema says so');
  t.match((await call(`${w.admin}/rollout`)).json, { phase: 'idle' }, 'nothing started');

  const r = await runCli(['rollout', 'start', '--admin-url', w.admin, '--reason', 'replayed last week', '--replay-report', file('report.json', JSON.stringify(REPORT))], ENV);
  t.equal(r.code, 0, r.stderr);
  t.match(JSON.parse(r.stdout), { phase: 'running', weight: 5, step: { index: 1 } });
  const [decision] = (await call(`${w.admin}/rollout/decisions`)).json.decisions as Record<string, unknown>[];
  t.match(decision, {
    action: 'start',
    from: 0,
    to: 5,
    reason: 'replayed last week',
    text: /^rollout started; the shadow phase is passed by the replay report: 400 requests, match rate 100\.00%, 0 mismatches, 0 errors; match_rate pass \(1\), .* → canary to 5%$/,
    replay: { requests: 400, matchRate: '100.00%', mismatches: 0, criteria: [{ name: 'match_rate', verdict: 'pass' }, {}, {}, {}] },
  });
  t.match((await call(`${w.admin}/shadow`)).json, { enabled: false }, 'the skipped phase switched nothing');
  t.match(await call(`${w.admin}/rollout/start`, 'POST', { replayReport: REPORT }), { status: 409 }, 'already running');
  await w.stop();
});

t.test('a shadow phase the shadow cannot serve is refused at start-up, one line', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'drum.yaml');
  writeFileSync(path, JSON.stringify({
    upstreams: { flask: 'http://127.0.0.1:1', fastapi: 'http://127.0.0.1:2', other: 'http://127.0.0.1:3' },
    shadow: 'other',
    rollout: { steps: [{ shadow: 0.1, hold: '1h' }, { weight: 1, hold: '1h' }] },
  }));
  const r = await runCli(['serve', '--config', path, '--admin', '127.0.0.1:0', '--listen', '127.0.0.1:0']);
  t.match(r, { code: 2, stderr: /^drum-splitter: .*rollout\.steps\[0\]\.shadow: the shadow phase needs the live shadow to copy to the canary "fastapi", and it copies to "other"; set shadow: fastapi\n$/ });
});

t.test("a shadow to another upstream says nothing of the canary: no mismatch check, no rollback", async (t) => {
  const [flask, fastapi, other] = await Promise.all([
    startUpstream('flask', predicting(() => 1)),
    startUpstream('fastapi', predicting(() => 1)),
    startUpstream('other', predicting(() => 3)),
  ]);
  t.teardown(() => Promise.all([flask.close(), fastapi.close(), other.close()]));
  const app = await startTestApp(t, {
    upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`, `other=${other.url}`],
    shadow: 'other',
    shadowSample: 1,
    rollout: { ...FAST, steps: [{ weight: 10, hold: '60s' }] },
  });
  const traffic = steadyTraffic((i) => `${app.traffic}/predict/?i=${i}`);
  t.teardown(() => traffic.stop());
  app.rollout!.command('start', 'test', null);
  await until(() => app.shadow.view().counts.mismatch > 0 && app.rollout!.view().lastVerdict !== null, 10_000, 20);
  await new Promise((r) => setTimeout(r, 400));
  t.match(app.rollout!.view(), { phase: 'running', weight: 10 });
  t.notOk(app.rollout!.view().lastVerdict!.checks.some((c) => c.check === 'mismatch'), "other's differences are not the canary's");
});
