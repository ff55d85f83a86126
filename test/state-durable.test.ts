/**
 * A change is durable or refused (issue 25): a state file that cannot be written refuses the
 * admin's writes (503) but never a rollback, says so in /readyz, counts it, and keeps trying
 * until what is live is on disk. On the whole app, through its admin API. Tests run as root, for
 * whom no mode bits make a directory unwritable: a parent path that is a regular file (ENOTDIR)
 * fails for anyone; a full tmpfs is mounted where the sandbox allows it.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { request } from 'undici';
import type { AddressInfo } from 'node:net';
import { createAdmin } from '../src/admin/server.js';
import { readConfigFile } from '../src/config/config.js';
import { createMetrics } from '../src/observe/metrics.js';
import { WeightStore, type SnapshotSaver } from '../src/weights/store.js';
import { startTestApp } from './helpers/app.js';
import { fill, smallTmpfs } from './helpers/files.js';
import { sampleSum } from './helpers/metrics.js';
import { quietLists, runCli, silentLog, startUpstream } from './helpers/net.js';
import { until } from './helpers/wait.js';

const flask = await startUpstream('flask');
const fastapi = await startUpstream('fastapi');
t.teardown(() => Promise.all([flask.close(), fastapi.close()]));

interface Answer {
  status: number;
  json: Record<string, any>;
}

/** The app on `state`, its log lines in memory, and its admin API as a function. */
async function app(t: Test, state: string, extra: Record<string, unknown> = {}, config?: string, env: NodeJS.ProcessEnv = {}) {
  const lines: Record<string, any>[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, any>) });
  const running = await startTestApp(
    t,
    { upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`], weights: ['fastapi=50'], state, pollInterval: '1h', ...extra },
    { env, log, ...(config === undefined ? {} : { file: { path: config, settings: readConfigFile(config) } }) },
  );
  const call = async (method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<Answer> => {
    const res = await request(`${running.adminUrl}${path}`, {
      method,
      ...(method === 'GET' ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) }),
    });
    const text = await res.body.text();
    return { status: res.statusCode, json: res.headers['content-type']?.toString().startsWith('application/json') ? (JSON.parse(text) as Record<string, any>) : { text } };
  };
  const failures = async (file: string): Promise<number> => sampleSum((await call('GET', '/metrics')).json.text as string, 'drum_state_write_failures_total', { file });
  return { app: running, lines, call, failures, close: running.close };
}

/** What the state file on disk says the canary gets; undefined before it is written. */
const onDisk = (state: string): number | undefined =>
  existsSync(state) ? (JSON.parse(readFileSync(state, 'utf8')) as { state: { shares: [string, number][] } }).state.shares.find(([n]) => n === 'fastapi')![1] / 100 : undefined;

t.test('the state directory unusable (ENOTDIR): a PUT is refused, 503 naming the cause, not applied; a rollback is applied with a warning; /readyz says so until it is on disk', async (t) => {
  const dir = t.testdir({ data: {} });
  const data = join(dir, 'data');
  const state = join(data, 'state.json');
  const a = await app(t, state);
  await until(() => onDisk(state) === 50);
  t.match(await a.call('GET', '/readyz'), { status: 200, json: { ready: true } });

  // The directory is replaced by a regular file: every write under it fails, root or not.
  rmSync(data, { recursive: true });
  writeFileSync(data, 'not a directory');

  const put = await a.call('PUT', '/weights', { weights: { fastapi: 80 }, reason: 'more' });
  t.match(put, { status: 503, json: { error: 'not_saved', version: 1 } });
  t.match(put.json.message, new RegExp(`^not applied: the state file ${state.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} cannot be written \\(ENOTDIR: not a directory, open .*\\); the weights stay at version 1$`));
  t.match((await a.call('GET', '/weights')).json, { weights: { fastapi: 50 }, version: 1 }, 'not applied');
  t.equal(a.app.store.history.length, 1, 'not in the audit trail');
  t.match(await a.call('GET', '/readyz'), { status: 200, json: { ready: true } }, 'still ready: the disk agrees with what is live');
  t.notOk('notSaved' in (await a.call('GET', '/readyz')).json);
  t.equal(await a.failures('state'), 1, 'counted');

  const rollback = await a.call('POST', '/rollback', { reason: 'p99' });
  t.match(rollback, { status: 200, json: { weights: { flask: 100, fastapi: 0 }, version: 2 } }, 'applied: safety first');
  t.match(rollback.json.warning, /^applied, but not yet durable: the state file .* cannot be written \(ENOTDIR: not a directory, open .*\); retrying, and \/readyz answers 503 until it is on disk$/);
  t.equal(a.app.store.view().weights.fastapi, 0, 'live');
  const ready = await a.call('GET', '/readyz');
  t.match(ready, { status: 503, json: { ready: false, upstreams: { flask: true, fastapi: true } } });
  t.match(ready.json.notSaved, [/^the state file .*state\.json cannot be written \(ENOTDIR: not a directory, open .*\); retrying$/]);
  t.equal(await a.failures('state'), 2);
  t.match(a.lines.filter((l) => l.msg === 'cannot write the state file'), [
    { level: 50, err: /^ENOTDIR/, file: state, retryInMs: null },
    { level: 50, err: /^ENOTDIR/, file: state, retryInMs: 500 },
  ], 'said: the refused write not retried, the rollback retried after 0.5 s');

  // A rollback again while it is not on disk: nothing changes, the warning stays true.
  t.match(await a.call('POST', '/rollback', {}), { status: 200, json: { version: 2, warning: /not yet durable/ } });
  // The CLI says both to the person, on stderr.
  const adminUrl = `http://127.0.0.1:${a.app.adminAddress.port}`;
  const [cliRollback, cliSet] = await Promise.all([runCli(['weights', 'rollback', '--admin-url', adminUrl]), runCli(['weights', 'set', 'fastapi=80', '--admin-url', adminUrl])]);
  t.match(cliRollback, { code: 0, stderr: /^drum-splitter: warning: applied, but not yet durable: the state file .* \(ENOTDIR/ });
  t.match(JSON.parse(cliRollback.stdout), { weights: { fastapi: 0 }, warning: /not yet durable/ });
  t.match(cliSet, { code: 1, stdout: '', stderr: /^drum-splitter: 503 from .*\/weights: not applied: the state file .* \(ENOTDIR/ });

  // Retried, doubling: once the directory is back, the rollback is on disk and /readyz is ready.
  await until(async () => (await a.failures('state')) >= 3, 3000);
  rmSync(data);
  mkdirSync(data);
  await until(async () => (await a.call('GET', '/readyz')).status === 200, 5000);
  t.equal(onDisk(state), 0, 'the rollback is on disk');
  t.match(await a.call('POST', '/rollback', {}), { status: 200, json: { version: 2 } });
  t.notOk('warning' in (await a.call('POST', '/rollback', {})).json, 'no warning once durable');
  t.match(await a.call('PUT', '/weights', { weights: { fastapi: 5 } }), { status: 200, json: { weights: { fastapi: 5 }, version: 3 } }, 'writes are taken again');
  t.equal(onDisk(state), 5, 'on disk when answered');
});

t.test('a PUT that takes every canary to 0% is a rollback: applied, with a warning', async (t) => {
  const dir = t.testdir({ data: {} });
  const data = join(dir, 'data');
  const a = await app(t, join(data, 'state.json'));
  rmSync(data, { recursive: true });
  writeFileSync(data, 'not a directory');
  const put = await a.call('PUT', '/weights', { weights: { fastapi: 0 } });
  t.match(put, { status: 200, json: { weights: { fastapi: 0 }, version: 2, warning: /not yet durable: the state file .* \(ENOTDIR/ } });
});

t.test('the rollout state behaves the same: retried, counted as file="rollout", and /readyz says so', async (t) => {
  const dir = t.testdir({ data: {}, 'drum.yaml': 'rollout:\n  steps:\n    - { weight: 10, hold: 1h }\n' });
  const data = join(dir, 'data');
  const state = join(data, 'state.json');
  const a = await app(t, state, { weights: ['fastapi=0'] }, join(dir, 'drum.yaml'));
  const started = await a.app.rollout!.command('start', 'alice', null);
  t.equal(started.weight, 10);
  await until(() => a.lines.filter((l) => l.msg === 'cannot write the rollout state').length === 0 && onDisk(state) === 10);
  rmSync(data, { recursive: true });
  writeFileSync(data, 'not a directory');
  // A person's pause: the rollout state changes, the weights do not.
  a.app.rollout!.command('pause', 'alice', 'looking');
  await until(async () => (await a.failures('rollout')) === 1);
  const ready = await a.call('GET', '/readyz');
  t.match(ready, { status: 503, json: { ready: false, notSaved: [/^the rollout state .*state\.rollout\.json cannot be written \(ENOTDIR.*\); retrying$/] } });
  t.equal(await a.failures('state'), 0);
  t.match(a.lines.find((l) => l.msg === 'cannot write the rollout state'), { level: 50, err: /^ENOTDIR/, retryInMs: 500 });
  rmSync(data);
  mkdirSync(data);
  await until(async () => (await a.call('GET', '/readyz')).status === 200, 5000);
  t.match(JSON.parse(readFileSync(join(data, 'state.rollout.json'), 'utf8')), { state: { phase: 'paused' } }, 'retried until on disk');
});

const tmpfs = smallTmpfs(t);
t.test('the state on a full filesystem (a 64 KiB tmpfs, filled): the rollback applied and said not durable, the PUT refused; on disk once there is room, and a restart keeps it', { skip: tmpfs.skip }, async (t) => {
  const state = join(tmpfs.dir!, 'state.json');
  const a = await app(t, state);
  await until(() => onDisk(state) === 50);
  fill(tmpfs.dir!);
  t.match(await a.call('POST', '/rollback', { reason: 'p99' }), { status: 200, json: { weights: { fastapi: 0 }, warning: /not yet durable: the state file .* cannot be written \(ENOSPC: no space left on device, write\)/ } });
  t.equal(onDisk(state), 50, 'the file still says 50%');
  t.match(await a.call('GET', '/readyz'), { status: 503, json: { ready: false, notSaved: [/ENOSPC/] } });
  t.match(await a.call('PUT', '/weights', { weights: { fastapi: 20 } }), { status: 503, json: { error: 'not_saved', message: /^not applied: .*ENOSPC/ } });
  rmSync(join(tmpfs.dir!, 'filler'));
  await until(async () => (await a.call('GET', '/readyz')).status === 200, 5000);
  t.equal(onDisk(state), 0, 'retried: the rollback is on disk');
  await a.close();
  const again = await app(t, state);
  t.match(again.app.store.view(), { weights: { fastapi: 0 }, version: 2 }, 'a restart keeps the rollback');
  await again.close();

  // The environment's change at start, the disk full again: applied, said, retried.
  fill(tmpfs.dir!);
  const env = await app(t, state, {}, undefined, { MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_CANARY_PERCENT: '10' });
  t.match(env.app.store.view(), { weights: { fastapi: 10 }, source: 'env' });
  t.match(await env.app.store.saved(), { cause: { code: 'ENOSPC' } });
  t.match(await env.call('GET', '/readyz'), { status: 503, json: { notSaved: [/ENOSPC/] } });
  t.ok((await env.failures('state')) >= 1);
  rmSync(join(tmpfs.dir!, 'filler'));
  await until(async () => (await env.call('GET', '/readyz')).status === 200, 5000);
  t.equal(onDisk(state), 10);
});

t.test('the admin API over a state file the test holds: a change by another writer while a PUT is written is a 409; another failure a 500', async (t) => {
  const at = '2025-01-01T00:00:00.000Z';
  const trials: { written: () => void; failed: (err: Error) => void }[] = [];
  const saver: SnapshotSaver = {
    save: () => {},
    trySave: () => new Promise((written, failed) => trials.push({ written, failed })),
    flush: async () => undefined,
  };
  const store = new WeightStore(['flask', 'fastapi'], { state: { shares: [['fastapi', 500]], version: 1, updatedAt: at, source: 'startup' }, history: [] }, { now: () => new Date(at), log: silentLog, subscriberErrors: quietLists.errors, persist: saver });
  const admin = createAdmin({ server: 'proxy', store, upstreams: ['flask', 'fastapi'], tokens: new Map(), probe: async () => ({ flask: true }), notSaved: () => [], metrics: createMetrics(), log: silentLog });
  await admin.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => admin.close());
  const put = (weights: Record<string, number>) =>
    request(`http://127.0.0.1:${(admin.server.address() as AddressInfo).port}/weights`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ weights }) })
      .then(async (res) => ({ status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> }));

  const moved = put({ fastapi: 20 });
  await until(() => trials.length === 1);
  store.change([['fastapi', 0]], { source: 'rollout', who: 'rollout' });
  trials[0]!.written();
  t.match(await moved, { status: 409, json: { error: 'conflict', version: 2, message: 'the weights changed (now version 2) while this change was being saved; it was not applied, send it again' } });

  const broken = put({ fastapi: 30 });
  await until(() => trials.length === 2);
  trials[1]!.failed(new Error('a bug, not a disk'));
  t.match(await broken, { status: 500, json: { error: 'internal_error', message: 'a bug, not a disk' } }, 'not taken for a write that failed');
  t.equal(store.state.version, 2);
});
