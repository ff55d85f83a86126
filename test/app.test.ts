/** Where the weights come from: start-up precedence, the state file, the watched config file. */
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { startApp } from '../src/app.js';
import { readConfigFile, type RawSettings } from '../src/config/config.js';
import { send, silentLog } from './helpers/net.js';
import { sleep, until } from './helpers/wait.js';

const UPSTREAMS = ['flask=http://127.0.0.1:1', 'fastapi=http://127.0.0.1:1'];
const base = { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: UPSTREAMS };

t.test('start-up weights: config, then the state file, then the MLOPS variables', async (t) => {
  const dir = t.testdir();
  const state = join(dir, 'state.json');
  const first = await startApp({ flags: { ...base, weights: ['fastapi=5'], state } }, { env: {}, log: silentLog });
  t.match(first.store.view(), { weights: { fastapi: 5 }, version: 1, source: 'startup' });
  first.store.change([['fastapi', 2500]], { source: 'admin', who: 'alice', reason: 'step 4' });
  await first.close();
  t.match(JSON.parse(readFileSync(state, 'utf8')), { format: 1, state: { version: 2, source: 'admin' } }, 'persisted on close');

  const second = await startApp({ flags: { ...base, weights: ['fastapi=5'], state } }, { env: {}, log: silentLog });
  t.match(second.store.view(), { weights: { flask: 75, fastapi: 25 }, version: 2, source: 'admin' }, 'the state file wins over the config');
  t.equal(second.store.history.length, 2, 'the audit trail survived the restart');
  await second.close();

  const third = await startApp({ flags: { ...base, weights: ['fastapi=5'], state } }, {
    env: { MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE: '{"type": "string", "payload": "flask"}' },
    log: silentLog,
  });
  t.match(third.store.view(), { weights: { flask: 100, fastapi: 0 }, version: 3, source: 'env' }, "the seed's Level 1 rollback wins");
  t.match(third.store.history.at(-1), { source: 'env', who: 'environment', reason: 'MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE=flask' });
  await third.close();

  const canary = await startApp({ flags: { ...base } }, { env: { MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_CANARY_PERCENT: '10' }, log: silentLog });
  t.match(canary.store.view(), { weights: { fastapi: 10 }, source: 'env' });
  await canary.close();

  await t.rejects(
    startApp({ flags: { ...base } }, { env: { MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_CANARY_PERCENT: '{"type":"numeric"' }, log: silentLog }),
    { name: 'InputError', field: 'MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_CANARY_PERCENT' },
  );
});

t.test('a state file from a newer version, with a source this one does not know, is started from', async (t) => {
  const at = '2025-01-01T00:00:00.000Z';
  const state = join(t.testdir(), 'state.json');
  const to = { flask: 70, fastapi: 30 };
  writeFileSync(state, JSON.stringify({
    format: 1,
    state: { shares: [['fastapi', 3000]], version: 4, updatedAt: at, source: 'controller' },
    history: [{ at, version: 4, source: 'controller', who: 'rollout', reason: 'step 3', from: { flask: 80, fastapi: 20 }, to }],
  }));
  const app = await startApp({ flags: { ...base, state } }, { env: {}, log: silentLog });
  t.teardown(() => app.close());
  const got = await send(`http://127.0.0.1:${app.adminAddress.port}/weights`);
  t.match(JSON.parse(got.body.toString()), { weights: to, version: 4, source: 'controller' });
});

t.test('a corrupt state file stops start-up with a clear error', async (t) => {
  const dir = t.testdir({ 'state.json': '{"format": 1, "state": ' });
  await t.rejects(startApp({ flags: { ...base, state: join(dir, 'state.json') } }, { env: {}, log: silentLog }), {
    name: 'InputError',
    field: '--state',
    message: /state\.json is corrupt.*fix or remove it/,
  });
});

/** A Kubernetes ConfigMap volume: FILE → ..data/FILE, ..data → ..<timestamp>/ */
function configMap(dir: string, yaml: string, stamp: string): string {
  mkdirSync(join(dir, `..${stamp}`));
  writeFileSync(join(dir, `..${stamp}`, 'drum-splitter.yaml'), yaml);
  symlinkSync(`..${stamp}`, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  return join(dir, 'drum-splitter.yaml');
}
function swap(dir: string, yaml: string, stamp: string, old: string): void {
  configMap(dir, yaml, stamp);
  rmSync(join(dir, `..${old}`), { recursive: true });
}
const yaml = (weights: string, extra = ''): string =>
  `upstreams:\n  flask: http://127.0.0.1:1\n  fastapi: http://127.0.0.1:1\nweights:\n  ${weights}\n${extra}`;

t.test('the watched config file (a ConfigMap): changes apply, bad edits do not, last change wins', async (t) => {
  const dir = t.testdir();
  const path = configMap(dir, yaml('fastapi: 5'), 'v1');
  symlinkSync('..data/drum-splitter.yaml', path);
  const lines: { msg: string; err?: string }[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string }) });
  const settings: RawSettings = readConfigFile(path);
  const app = await startApp({ file: { path, settings }, flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0' } }, { env: {}, log });
  t.teardown(() => app.close());
  const admin = `http://127.0.0.1:${app.adminAddress.port}`;
  const fastapi = (): number => app.store.view().weights.fastapi!;

  swap(dir, yaml('fastapi: 10'), 'v2', 'v1');
  await until(() => fastapi() === 10);
  t.match(app.store.history.at(-1), { source: 'file', who: path, reason: 'config file changed', from: { fastapi: 5 }, to: { fastapi: 10 } });

  swap(dir, yaml('fastapi: [oops'), 'v3', 'v2');
  await until(() => lines.some((l) => /rejected/.test(l.msg)));
  t.equal(fastapi(), 10, 'a bad edit leaves the last good weights');
  swap(dir, '', 'v3b', 'v3');
  await until(() => lines.some((l) => /the file is empty/.test(l.msg)));
  t.equal(fastapi(), 10, 'an empty file (half-written?) is not taken as "no weights"');
  swap(dir, yaml('fastapi: 150'), 'v4', 'v3b');
  await until(() => lines.some((l) => /rejected/.test(l.msg) && /over 100%/.test(l.err ?? '')));
  t.equal(fastapi(), 10);
  // The baseline named with a share it would not get: refused in PUT /weights's words.
  swap(dir, yaml('fastapi: 5\n  flask: 3'), 'v4b', 'v4');
  await until(() => lines.some((l) => /rejected/.test(l.msg) && /baseline/.test(l.err ?? '')));
  t.equal(lines.find((l) => /baseline/.test(l.err ?? ''))!.err, 'weights.flask: flask is the baseline and takes the rest, 95%; leave it out or send 95');
  t.equal(fastapi(), 10, 'flask is not sent 95% by the back door');

  // The admin API changes it; an edit of the file that leaves its weights alone keeps that.
  await send(`${admin}/weights`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"weights":{"fastapi":20}}' });
  t.equal(fastapi(), 20);
  swap(dir, yaml('fastapi: 10', '# a comment\n'), 'v5', 'v4b');
  await sleep(600);
  t.equal(fastapi(), 20, "an edit that leaves the file's weights as they were changes nothing");
  // Changing the file's weights applies them: the last change wins, whichever its source.
  swap(dir, yaml('fastapi: 15'), 'v6', 'v5');
  await until(() => fastapi() === 15);

  swap(dir, yaml('fastapi: 30').replace('http://127.0.0.1:1\nweights', 'http://127.0.0.1:2\nweights'), 'v7', 'v6');
  await until(() => lines.some((l) => /take effect on restart/.test(l.msg)));
  t.equal(fastapi(), 15, 'changed upstreams need a restart; their weights are not applied');
});

t.test('a state file that cannot be written is logged; the change still applies', async (t) => {
  const dir = t.testdir({ data: {} });
  const lines: { msg: string; err?: string }[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string }) });
  const app = await startApp({ flags: { ...base, state: join(dir, 'data', 'state.json') } }, { env: {}, log });
  await until(() => app.store.state.version === 1 && lines.some((l) => l.msg === 'weights changed') === false);
  rmSync(join(dir, 'data'), { recursive: true });
  t.equal(app.store.change([['fastapi', 700]], { source: 'admin', who: 'alice' }), 'changed');
  await app.close();
  t.match(lines.find((l) => l.msg === 'cannot write the state file'), { err: /ENOENT/ });
  t.equal(app.store.view().weights.fastapi, 7, 'the live weights changed all the same');
});

t.test('a config file that relies on flags: its weights are checked against the running upstreams', async (t) => {
  const dir = t.testdir({ 'drum.yaml': 'weights:\n  canary: 150\n' });
  const path = join(dir, 'drum.yaml');
  const settings = readConfigFile(path);
  // As `serve --config drum.yaml --upstream main=… --upstream canary=… --weight canary=5`.
  const flags = { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: ['main=http://127.0.0.1:1', 'canary=http://127.0.0.1:1'], weights: ['canary=5'] };
  const app = await startApp({ file: { path, settings }, flags }, { env: {}, log: silentLog });
  t.teardown(() => app.close());
  t.equal(app.store.view().weights.canary, 5, 'starts, though the file alone would not (150%, and no upstreams of its own)');
  writeFileSync(path, 'weights:\n  canary: 12\n');
  await until(() => app.store.view().weights.canary === 12);
  t.match(app.store.history.at(-1), { source: 'file', to: { main: 88, canary: 12 } });
});
