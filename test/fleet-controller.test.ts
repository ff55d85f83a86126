/**
 * `drum-splitter controller` as a process: its flags and refusals, its admin API, and what it
 * does when Prometheus or a replica fails. (The whole fleet with a real Prometheus: fleet-e2e.)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { pino } from 'pino';
import t from 'tap';
import { request } from 'undici';
import { startApp } from '../src/app.js';
import { readConfigFile } from '../src/config/config.js';
import { createStandin } from '../src/cli/standin.js';
import { startController } from '../src/fleet/app.js';
import { freePort, runCli, silentLog, spawnCli, startUpstream, waitForLine } from './helpers/net.js';
import { sleep, until } from './helpers/wait.js';

const TOKEN = 'fleet-controller-token-0123456789';
const flask = await startUpstream('flask');
const fastapi = await startUpstream('fastapi');
const dir = t.testdir({});
const path = join(dir, 'drum.yaml');
writeFileSync(path, JSON.stringify({ upstreams: { flask: flask.url, fastapi: fastapi.url }, state: join(dir, 'replica-state.json'), rollout: { interval: '200ms', window: '2s', minRequests: 1, steps: [{ weight: 20, hold: '1h' }] } }));
const single = join(dir, 'one.yaml');
writeFileSync(single, JSON.stringify({ upstreams: { flask: flask.url } }));
const replica = await startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`] } }, { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log: silentLog });
const stranger = await startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`] } }, { env: { DRUM_SPLITTER_ADMIN_TOKEN: 'another-token-0123456789' }, log: silentLog });
t.teardown(() => Promise.all([replica.close(), stranger.close(), flask.close(), fastapi.close()]));
const adminOf = (app: { adminAddress: { port: number } }): string => `http://127.0.0.1:${app.adminAddress.port}`;
const deadPrometheus = `http://127.0.0.1:${await freePort()}`;

t.test('bad settings: one line saying what is wrong, nothing started', async (t) => {
  const file = readConfigFile(path);
  const base = { file, prometheus: deadPrometheus, admin: '127.0.0.1:0' };
  await t.rejects(startController({ ...base }, { env: {}, log: silentLog }), { message: /--proxy URL \(repeatable\) or --proxies-dns NAME:PORT, one of the two/ });
  await t.rejects(startController({ ...base, proxies: ['http://a:1'], proxiesDns: 'a:1' }, { env: {}, log: silentLog }), { message: /one of the two/ });
  await t.rejects(startController({ ...base, proxies: ['http://a:1'], prometheus: 'not a url' }, { env: {}, log: silentLog }), { message: '--prometheus "not a url" is not a URL' });
  await t.rejects(startController({ file: readConfigFile(single), prometheus: deadPrometheus, proxies: ['http://a:1'] }, { env: {}, log: silentLog }), { message: /one upstream: there is no canary/ });
  await t.rejects(startController({ ...base, proxies: ['http://a:1'], admin: '0.0.0.0:0' }, { env: {}, log: silentLog }), { message: /reachable from other hosts; set DRUM_SPLITTER_ADMIN_TOKEN/ });
  await t.rejects(startController({ ...base, proxiesDns: 'not a name' }, { env: {}, log: silentLog }), { message: /is not NAME:PORT/ });
});

t.test('Prometheus unreachable: inconclusive, no weight change, said once; a replica with another token: reported, the other driven', async (t) => {
  const lines: { msg: string; level: number; replica?: string; status?: string }[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string; level: number }) });
  const state = join(t.testdir({}), 'controller.json');
  const c = await startController(
    { file: readConfigFile(path), prometheus: deadPrometheus, proxies: [adminOf(replica), adminOf(stranger)], admin: '127.0.0.1:0', token: TOKEN, state },
    { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log },
  );
  let closed: Promise<void> | undefined;
  t.teardown(() => (closed ??= c.close()));
  const control = `http://127.0.0.1:${c.adminAddress.port}`;
  const call = async (p: string, method: 'GET' | 'POST' = 'GET', body?: unknown) => {
    const res = await request(`${control}${p}`, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
  };
  t.match(await call('/readyz'), { status: 503, json: { ready: false, upstreams: { prometheus: false } } });
  t.match(await call('/rollout/start', 'POST', { reason: 'test' }), { status: 200, json: { weight: 20 } });
  await until(async () => ((await call('/rollout')).json.lastVerdict as { text?: string } | null)?.text?.includes('ECONNREFUSED') === true, 5000);
  const view = (await call('/rollout')).json as { weight: number; lastVerdict: { action: string; checks: unknown[] }; fleet: { prometheus: string; replicas: { url: string; status: string; detail: string }[] } };
  t.match(view, { weight: 20, lastVerdict: { action: 'inconclusive', checks: [] }, fleet: { prometheus: `${deadPrometheus}/` } });
  await until(async () => ((await call('/rollout')).json.lastVerdict as { at: string }).at !== (view.lastVerdict as unknown as { at: string }).at, 3000);
  t.equal(lines.filter((l) => /Prometheus unreachable or failing/.test(l.msg)).length, 1, 'the outage said once over several checks');
  t.equal((await call('/rollout')).json.weight, 20, 'held');

  const byUrl = Object.fromEntries(view.fleet.replicas.map((r) => [r.url, r]));
  t.match(byUrl[adminOf(replica)], { status: /^(in_sync|promoted)$/ }, 'the replica with our token is driven');
  t.match(lines.find((l) => l.replica === adminOf(replica)), { status: 'promoted', msg: /set to the fleet's weights: had flask=100, fastapi=0; set to flask=80, fastapi=20/ }, 'the start is a promotion, not a correction');
  t.match(byUrl[adminOf(stranger)], { status: 'unauthorized', detail: /401: the token is not accepted \(misconfigured\)/ });
  t.match((await request(`${adminOf(replica)}/weights`).then((r) => r.body.json())) as object, { weights: { fastapi: 20 } });
  t.match((await request(`${adminOf(replica)}/rollout`).then((r) => r.body.json())) as object, { controller: { controller: /^http:\/\/[^/]+:0$/ } }, 'claimed in the name of the controller\'s host and configured port');
  const metrics = await request(`${control}/metrics`).then((r) => r.body.text());
  t.match(metrics, /drum_fleet_replicas\{status="unauthorized"\} 1/);
  t.match(metrics, /drum_rollout_step_percent 20/);

  // A person's change through the controller pauses the rollout and reaches the replicas at once.
  const res = await request(`${control}/weights`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ weights: { fastapi: 7 }, reason: 'hand' }) });
  t.equal(res.statusCode, 200);
  await res.body.dump();
  await until(async () => ((await request(`${adminOf(replica)}/weights`).then((r) => r.body.json())) as { weights: { fastapi: number } }).weights.fastapi === 7, 3000);
  t.match((await call('/rollout')).json, { phase: 'paused' });

  // Stopped, it lets its replicas go at once; one that never took its token keeps what it had.
  const said = lines.length;
  await (closed ??= c.close());
  t.match((await request(`${adminOf(replica)}/rollout`).then((r) => r.body.json())) as object, { controller: null }, 'released, not left to lapse');
  t.match(lines.slice(said).filter((l) => /claim/.test(l.msg)), [
    { level: 40, replica: adminOf(stranger), msg: /: the claim is not released \(401: .*\); it lapses within 30 s$/ },
    { level: 30, msg: "released the controller's claim on 1 of 2 replicas" },
  ]);
  // Closed, a change of the fleet's weights reaches no replica: they are let go.
  c.store.change([['fastapi', 1200]], { source: 'admin', who: 'test', reason: 'after the close' });
  await sleep(200);
  t.match((await request(`${adminOf(replica)}/weights`).then((r) => r.body.json())) as object, { weights: { fastapi: 7 } }, 'not sent');
});

t.test('a replica running its own rollout refuses the claim; one with other upstreams refuses the weights', async (t) => {
  const busy = await startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`] } }, { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log: silentLog });
  const lone = await startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: [`flask=${flask.url}`] } }, { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log: silentLog });
  t.teardown(() => Promise.all([busy.close(), lone.close()]));
  const own = await request(`${adminOf(busy)}/rollout/start`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
  t.equal(own.statusCode, 200);
  await own.body.dump();
  const c = await startController({ file: readConfigFile(path), prometheus: deadPrometheus, proxies: [adminOf(busy), adminOf(lone)], admin: '127.0.0.1:0', token: TOKEN }, { env: {}, log: silentLog });
  t.teardown(() => c.close());
  const byUrl = Object.fromEntries(c.fleet.replicas.map((r) => [r.url, r]));
  t.match(byUrl[adminOf(busy)], { status: 'rejected', detail: /refuses the controller: an in-proxy rollout is running here; abort it before a fleet controller takes over/ });
  t.match(byUrl[adminOf(lone)], { status: 'rejected', detail: /has no upstream fastapi/ }, 'no rollout to claim (404), and its config differs');
});

t.test('replicas that cannot be listed: said once, retried; a state file that cannot be written: said', async (t) => {
  const lines: { msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string }) });
  const c = await startController(
    // A state file it cannot write: said, and the controller runs on.
    { file: readConfigFile(path), prometheus: deadPrometheus, proxiesDns: 'no-such-name.invalid:9901', admin: '127.0.0.1:0', state: join(dir, 'missing-dir', 'state.json') },
    { env: {}, log },
  );
  t.teardown(() => c.close());
  await until(() => lines.some((l) => l.msg === 'controller running'), 5000);
  c.store.change([['fastapi', 300]], { source: 'admin', who: 'test', reason: null });
  await until(async () => (await request(`http://127.0.0.1:${c.adminAddress.port}/rollout`).then((r) => r.body.json())) !== undefined, 1000);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(lines.filter((l) => /cannot list the replicas/.test(l.msg)).length, 1);
  t.ok(lines.some((l) => l.msg === 'cannot write the state file'));
});

t.test('a restarted controller resumes its rollout from --state, and reads the replicas before it acts', async (t) => {
  const state = join(t.testdir({}), 'controller.json');
  const settings = { file: readConfigFile(path), prometheus: deadPrometheus, proxies: [adminOf(replica)], admin: '127.0.0.1:0', token: TOKEN, state };
  const first = await startController(settings, { env: {}, log: silentLog });
  first.rollout.command('start', 'alice', 'resume test');
  await until(async () => ((await request(`${adminOf(replica)}/weights`).then((r) => r.body.json())) as { weights: { fastapi: number } }).weights.fastapi === 20, 3000);
  await first.close();
  // While it is down, someone moves the replica; the restarted controller finds it and corrects it.
  const res = await request(`${adminOf(replica)}/weights`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"weights":{"fastapi":3}}' });
  await res.body.dump();
  const again = await startController(settings, { env: {}, log: silentLog });
  t.teardown(() => again.close());
  t.match(again.rollout.view(), { phase: 'running', weight: 20 }, 'resumed where it was');
  t.same(again.rollout.decisions.map((d) => d.action), ['start'], 'with its decision log');
  t.match(again.fleet.replicas, [{ url: adminOf(replica), status: 'corrected', weights: { fastapi: 3 } }], 'read first (it had 3%), then corrected');
  t.match(((await request(`${adminOf(replica)}/weights`).then((r) => r.body.json())) as { weights: object }).weights, { fastapi: 20 });
});

t.test('a Prometheus that does not answer: checks do not pile up behind it', async (t) => {
  const { createServer } = await import('node:http');
  const held: import('node:http').ServerResponse[] = [];
  const silent = createServer((_req, res) => held.push(res));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const res of held) res.destroy();
    silent.close();
  });
  const c = await startController(
    { file: readConfigFile(path), prometheus: `http://127.0.0.1:${(silent.address() as { port: number }).port}`, proxies: [adminOf(replica)], admin: '127.0.0.1:0', token: TOKEN },
    { env: {}, log: silentLog },
  );
  t.teardown(() => c.close());
  c.rollout.command('start', 'test', null);
  await new Promise((r) => setTimeout(r, 1000));
  t.equal(c.rollout.view().lastVerdict, null, 'no check yet: the first is still waiting for Prometheus');
  t.equal(held.length, 11, 'one round of the eleven queries, not a round per interval');

  // Closed while that check waits: its queries are given up at once, and none follow.
  const given = held.map((res) => new Promise<void>((r) => res.once('close', r)));
  const closing = performance.now();
  await c.close();
  t.ok(performance.now() - closing < 1000, `closed in ${Math.round(performance.now() - closing)} ms, not held by Prometheus`);
  t.ok(await Promise.race([Promise.all(given).then(() => true), new Promise((r) => setTimeout(r, 1000, false))]), 'its queries were given up');
  await new Promise((r) => setTimeout(r, 500));
  t.equal(held.length, 11, 'no check after close');
  t.equal(c.rollout.view().lastVerdict, null, 'and nothing judged');
});

t.test('nextCheckAt, with a Prometheus slower than the interval: when the next round of queries is asked', async (t) => {
  const { createServer } = await import('node:http');
  const INTERVAL = 400;
  /** Each round's time (the queries' `time`, ms): what the check gathers for, as it begins. */
  const rounds: number[] = [];
  const slow = createServer((req, res) => {
    const at = Math.round(Number(new URL(req.url!, 'http://x').searchParams.get('time')) * 1000);
    if (!rounds.includes(at)) rounds.push(at);
    // One and a half intervals: each check runs past the next boundary, which is skipped.
    setTimeout(() => res.end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] } })), INTERVAL * 1.5);
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  t.teardown(() => slow.close());
  const file = join(t.testdir({}), 'drum.yaml');
  writeFileSync(file, JSON.stringify({ upstreams: { flask: flask.url, fastapi: fastapi.url }, rollout: { interval: `${INTERVAL}ms`, window: '10s', steps: [{ weight: 20, hold: '1h' }] } }));
  const c = await startController(
    { file: readConfigFile(file), prometheus: `http://127.0.0.1:${(slow.address() as AddressInfo).port}`, proxies: [adminOf(replica)], admin: '127.0.0.1:0', token: TOKEN },
    { env: {}, log: silentLog },
  );
  t.teardown(() => c.close());
  c.rollout.command('start', 'test', null);
  const readings: { sent: number; received: number; next: number }[] = [];
  const until = Date.now() + 8 * INTERVAL;
  while (Date.now() < until) {
    const sent = Date.now();
    const view = (await request(`http://127.0.0.1:${c.adminAddress.port}/rollout`).then((r) => r.body.json())) as { nextCheckAt: string };
    readings.push({ sent, received: Date.now(), next: Date.parse(view.nextCheckAt) });
    await new Promise((r) => setTimeout(r, 20));
  }
  await c.close();
  t.ok(rounds.length >= 3, `${rounds.length} rounds`);
  const wrong = readings.filter(({ sent, received, next }) => {
    // A round began then (the check under way, or the next one), within a timer's lateness.
    const began = rounds.some((at) => at >= next && at - next < 100);
    // It is the latest begun when asked, or the next to begin.
    const stale = rounds.some((at) => at < sent && at > next);
    const skipped = rounds.some((at) => at > received && at < next);
    return !began || stale || skipped;
  });
  t.same(wrong, [], `every one of ${readings.length} readings true (rounds began at ${rounds.join(', ')})`);
});

t.test("the controller's admin API without a token: no write from another origin, JSON only, no rebinding Host", async (t) => {
  const c = await startController({ file: readConfigFile(path), prometheus: deadPrometheus, proxies: [`http://127.0.0.1:${await freePort()}`], admin: '127.0.0.1:0' }, { env: {}, log: silentLog });
  t.teardown(() => c.close());
  const control = `http://127.0.0.1:${c.adminAddress.port}`;
  const post = async (p: string, headers: Record<string, string>, body?: string) => {
    const res = await request(`${control}${p}`, { method: 'POST', headers, body });
    return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
  };
  const before = c.store.view();
  t.match(await post('/rollback', { origin: 'http://evil.example' }), { status: 403, json: { error: 'forbidden', message: /another web page \(Origin: http:\/\/evil\.example\)/ } });
  t.match(await post('/rollout/start', { 'sec-fetch-site': 'same-site', 'content-type': 'application/json' }, '{}'), { status: 403 });
  t.match(await post('/rollout/start', {}), { status: 415, json: { error: 'unsupported_media_type', field: 'content-type' } });
  const history = await request(`${control}/history`, { headers: { host: 'attacker.example:9902' } });
  t.equal(history.statusCode, 403, 'a rebinding Host reads no history');
  await history.body.dump();
  t.same(c.store.view(), before, 'nothing changed');
  t.equal(c.rollout.state.phase, 'idle');
  // The console, on the controller too: GET /about says which server it is and what to read.
  const page = await request(`${control}/`);
  t.match({ status: page.statusCode, body: await page.body.text() }, { status: 200, body: /<title>drum-splitter console<\/title>/ });
  const reads = ['/weights', '/history', '/rollout', '/rollout/decisions'];
  t.same(await request(`${control}/about`).then((r) => r.body.json()), { server: 'controller', reads });
  const series = await request(`${control}/series`);
  t.match({ status: series.statusCode, json: await series.body.json() }, { status: 404, json: { message: `no GET /series; see GET / (the console), ${reads.join(', ')}, /healthz, /readyz, /metrics` } });
  t.match(await post('/rollout/start', { 'content-type': 'application/json' }, '{"reason":"a script"}'), { status: 200, json: { phase: 'running' } });
});

t.test('the CLI: flags checked, then it runs until SIGTERM', async (t) => {
  t.match(await runCli(['controller', '--config', path]), { code: 2, stderr: /^drum-splitter controller: needs --config FILE and --prometheus URL \(see drum-splitter controller --help\)\n$/ });
  t.match(await runCli(['controller', '--config', path, '--prometheus', deadPrometheus]), { code: 2, stderr: /--proxy URL \(repeatable\) or --proxies-dns/ });
  t.match(await runCli(['controller', '--listen', '1']), { code: 2, stderr: /^drum-splitter controller: unknown option --listen/ });
  const child = spawnCli(['controller', '--config', path, '--prometheus', deadPrometheus, '--proxy', adminOf(replica), '--admin', '127.0.0.1:0', '--log-level', 'info'], { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN });
  await waitForLine(child, /"msg":"controller running"/);
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  child.kill('SIGTERM');
  t.equal(await exited, 0);
  t.match((await runCli(['controller', '--help'])).stdout, /drum-splitter controller --config FILE --prometheus URL/);
});

t.test('SIGTERM with webhooks queued for a receiver that never answers: the admin API closes first, the webhooks get a bounded flush', async (t) => {
  const held: Socket[] = [];
  const hook = createNetServer((socket) => void held.push(socket));
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const socket of held) socket.destroy();
    hook.close();
  });
  const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/`;
  const file = join(t.testdir({}), 'drum.yaml');
  writeFileSync(file, JSON.stringify({ upstreams: { flask: flask.url, fastapi: fastapi.url }, drainTimeout: '2s', rollout: { interval: '1h', window: '1h', notify: [hookUrl] } }));
  const child = spawnCli(['controller', '--config', file, '--prometheus', deadPrometheus, '--proxy', adminOf(replica), '--admin', '127.0.0.1:0', '--log-level', 'info'], { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN });
  t.teardown(() => void (child.exitCode === null && child.kill('SIGKILL')));
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const running = JSON.parse(await waitForLine(child, /"msg":"controller running"/)) as { admin: string };
  const statuses = new Set<number>();
  for (let i = 0; i < 50; i++) {
    const command = i === 0 ? 'start' : i % 2 === 1 ? 'pause' : 'resume';
    const res = await request(`http://${running.admin}/rollout/${command}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
    statuses.add(res.statusCode);
    await res.body.dump();
  }
  t.strictSame([...statuses], [200], 'every command taken');
  await until(() => held.length === 1, 5000);
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  const signalled = performance.now();
  child.kill('SIGTERM');
  const [host, port] = running.admin.split(':');
  const refused = (): Promise<boolean> =>
    new Promise((resolve) => {
      const socket = connect(Number(port), host);
      socket.on('connect', () => (socket.destroy(), resolve(false)));
      socket.on('error', () => resolve(true));
    });
  await until(refused, 1000);
  t.equal(await Promise.race([exited, new Promise((r) => setTimeout(r, 2000 + 5000 + 2000, 'still running'))]), 0);
  const took = performance.now() - signalled;
  t.ok(took < 2000 + 5000, `exited within the drain timeout plus the flush bound (${Math.round(took)} ms)`);
  const lines = out.split('\n').filter((l) => l.includes('rollout webhooks')).map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(lines, [{ dropped: 50, msg: /^shutdown: 50 rollout webhooks still queued after \d+ ms were dropped$/ }]);
});

t.test("an abort: the fleet's baseline is verified at the config's URL against the canary's /info/ read there, each item in the decision", async (t) => {
  const [drum, canary] = [createStandin('flask'), createStandin('fastapi')];
  const [drumUrl, canaryUrl] = await Promise.all([drum.listen({ host: '127.0.0.1', port: 0 }), canary.listen({ host: '127.0.0.1', port: 0 })]);
  t.teardown(() => Promise.all([drum.close(), canary.close()]));
  const file = join(t.testdir({}), 'drum.yaml');
  writeFileSync(file, JSON.stringify({ upstreams: { flask: drumUrl, fastapi: canaryUrl }, rollout: { interval: '200ms', window: '2s', minRequests: 1, steps: [{ weight: 20, hold: '1h' }] } }));
  const c = await startController({ file: readConfigFile(file), prometheus: deadPrometheus, proxies: [adminOf(replica)], admin: '127.0.0.1:0', token: TOKEN }, { env: {}, log: silentLog });
  t.teardown(() => c.close());
  c.rollout.command('start', 'alice', null);
  c.rollout.command('abort', 'alice', 'verify the fleet');
  await until(() => c.rollout.decisions.at(-1)!.action === 'verified', 5000);
  t.match(c.rollout.decisions.at(-1)!.verification!.items, [
    { name: 'ping', ok: true },
    { name: 'health', ok: true },
    { name: 'info', ok: true, detail: 'GET /info/: flask stand-in flask stand-in (the canary: fastapi stand-in fastapi stand-in)' },
    { name: 'predict_single', ok: null, detail: 'no single-row prediction to replay (no request files given, and no recording)' },
    { name: 'predict_batch', ok: null },
    { name: 'stats', ok: true },
  ]);
});
