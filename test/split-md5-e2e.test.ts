/**
 * The seed's Option B through the real CLI on real sockets: `serve` with a config file's
 * `split: { key: "${http_x_datarobot_deployment_id}", hash: md5-mod-100 }` at 30%. Every
 * deployment's requests go to one upstream, and the canary gets exactly the deployments Python's
 * hashlib puts under 30 (test/fixtures/md5-golden.json); at 70% those stay and more join.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { serveCli } from './helpers/cli.js';
import { freePort, send, startUpstream, type Reply } from './helpers/net.js';

const golden = JSON.parse(readFileSync(new URL('fixtures/md5-golden.json', import.meta.url), 'utf8')) as { cases: [string, number][] };
const ids = golden.cases.filter(([key]) => /^[0-9a-f]{24}$/.test(key)).slice(0, 300);

const flask = await startUpstream('flask');
const fastapi = await startUpstream('fastapi');
t.teardown(() => Promise.all([flask.close(), fastapi.close()]));

const served = (r: Reply): string => String(r.headers['x-drum-splitter-upstream']);

/** Each id's upstreams over three requests to different routes: one name per id when they agree. */
async function upstreamsOf(traffic: string): Promise<Map<string, string[]>> {
  const seen = new Map<string, string[]>();
  for (const [id] of ids) {
    const got: string[] = [];
    for (const path of ['/predict/', '/predictions', `/predict/?n=${id}`]) {
      got.push(served(await send(traffic + path, { method: 'POST', headers: { 'x-datarobot-deployment-id': id }, body: 'a,b\n1,2\n' })));
    }
    seen.set(id, got);
  }
  return seen;
}

/** `serve --config` with the seed's Option B at 30%, on a free port; its traffic and admin URLs. */
async function serveOptionB(t: Test, args: string[] = []): Promise<{ traffic: string; admin: string }> {
  const config = join(t.testdir(), 'drum-splitter.yaml');
  writeFileSync(config, [
    `upstreams: { flask: "${flask.url}", fastapi: "${fastapi.url}" }`,
    'weights: { fastapi: 30 }',
    'split: { key: "${http_x_datarobot_deployment_id}", hash: md5-mod-100 }',
    '',
  ].join('\n'));
  const port = await freePort();
  const s = serveCli(t, ['--config', config, '--listen', `127.0.0.1:${port}`, ...args]);
  const listening = (await s.listening) as unknown as { admin: string; split: unknown };
  t.same(listening.split, { key: '${http_x_datarobot_deployment_id}', hash: 'md5-mod-100' }, 'the start-up line names the hash');
  return { traffic: `http://127.0.0.1:${port}`, admin: `http://${listening.admin}` };
}

/** Every id's requests on one upstream, and the canary holding exactly the ids Python puts under `percent`. */
async function wholeDeployments(t: Test, traffic: string, percent: number): Promise<void> {
  const seen = await upstreamsOf(traffic);
  const split = [...seen].filter(([, got]) => new Set(got).size !== 1);
  t.same(split, [], `${percent}%: each deployment's requests all went to one upstream`);
  const canary = [...seen].filter(([, got]) => got[0] === 'fastapi').map(([id]) => id);
  const python = ids.filter(([, bucket]) => bucket < percent).map(([id]) => id);
  t.same(canary, python, `${percent}%: the canary has exactly the deployments whose int(md5(id), 16) % 100 < ${percent}`);
  t.ok(canary.length > 0 && canary.length < ids.length, `${percent}%: ${canary.length} of ${ids.length} deployments on the canary`);
}

t.test('md5-mod-100 on the deployment header: whole deployments, the ones Python picks', async (t) => {
  const { traffic, admin } = await serveOptionB(t);
  const at = (percent: number): Promise<void> => wholeDeployments(t, traffic, percent);

  await at(30);
  const weights = JSON.parse((await send(`${admin}/weights`)).body.toString()) as Record<string, unknown>;
  t.match(weights, { weights: { flask: 70, fastapi: 30 }, split: { key: '${http_x_datarobot_deployment_id}', hash: 'md5-mod-100' } }, 'GET /weights names the hash');

  // A request without the header is keyed by the empty string: md5("") % 100 is 66.
  const none = async (): Promise<string> => served(await send(`${traffic}/predict/`));
  t.equal(await none(), 'flask', 'no header: bucket 66, not under 30');

  const put = await send(`${admin}/weights`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ weights: { fastapi: 70 } }) });
  t.equal(put.status, 200);
  await at(70);
  t.equal(await none(), 'fastapi', 'no header: bucket 66, under 70');
});

t.test('--workers 2: each worker splits by the same hash', async (t) => {
  const { traffic } = await serveOptionB(t, ['--workers', '2']);
  await wholeDeployments(t, traffic, 30);
});
