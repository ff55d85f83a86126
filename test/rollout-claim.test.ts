/** PUT /rollout/controller on a replica's admin API: a fleet controller's claim, and what it refuses; DELETE: its release. */
import t from 'tap';
import { request } from 'undici';
import { startApp } from '../src/app.js';
import { silentLog, startUpstream } from './helpers/net.js';

const TOKEN = 'claim-test-token-0123456789';
const flask = await startUpstream('flask');
const fastapi = await startUpstream('fastapi');
const app = await startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`] } }, { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log: silentLog });
t.teardown(() => Promise.all([app.close(), flask.close(), fastapi.close()]));
const admin = `http://127.0.0.1:${app.adminAddress.port}`;

const call = async (method: 'PUT' | 'POST' | 'GET' | 'DELETE', path: string, body?: unknown, token: string | null = TOKEN): Promise<{ status: number; json: Record<string, unknown> }> => {
  const res = await request(`${admin}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
};

t.test('the claim: a write, checked, shown by GET /rollout, and start refused while it holds', async (t) => {
  t.match(await call('PUT', '/rollout/controller', { controller: 'http://c:9902', ttlSeconds: 30 }, null), { status: 401 });
  t.match(await call('PUT', '/rollout/controller', { controller: '', ttlSeconds: 30 }), { status: 400, json: { field: 'controller' } });
  t.match(await call('PUT', '/rollout/controller', { controller: 'c', ttlSeconds: 0 }), { status: 400, json: { field: 'ttlSeconds', message: 'must be a number of seconds from 1 to 3600' } });
  t.match(await call('PUT', '/rollout/controller', { controller: 'c' }), { status: 400, json: { field: 'ttlSeconds', message: 'is required' } });
  const claimed = await call('PUT', '/rollout/controller', { controller: 'http://c:9902', ttlSeconds: 30 });
  t.match(claimed, { status: 200, json: { phase: 'idle', controller: { controller: 'http://c:9902', who: 'admin' } } });
  t.match(await call('GET', '/rollout', undefined, null), { status: 200, json: { controller: { controller: 'http://c:9902' } } }, 'anyone can read who runs the rollout');
  t.match(await call('POST', '/rollout/start', {}), { status: 409, json: { error: 'conflict', message: /run by the controller at http:\/\/c:9902/ } });
});

t.test("the release: only the claim's own controller lets go, and the replica's own rollout may start at once", async (t) => {
  t.match(await call('PUT', '/rollout/controller', { controller: 'http://c:9902', ttlSeconds: 3600 }), { status: 200 });
  t.match(await call('DELETE', '/rollout/controller', { controller: 'http://c:9902' }, null), { status: 401 }, 'a write: the token');
  t.match(await call('DELETE', '/rollout/controller', {}), { status: 400, json: { field: 'controller', message: 'is required' } });
  t.match(await call('DELETE', '/rollout/controller', { controller: 'http://other:9902' }), {
    status: 409,
    json: { error: 'conflict', message: 'this replica is claimed by the controller at http://c:9902 (admin), not http://other:9902' },
  }, "another controller's claim is not let go");
  t.match(await call('GET', '/rollout'), { json: { controller: { controller: 'http://c:9902' } } });
  t.match(await call('DELETE', '/rollout/controller', { controller: 'http://c:9902' }), { status: 200, json: { phase: 'idle', controller: null } });
  t.match(await call('DELETE', '/rollout/controller', { controller: 'http://c:9902' }), { status: 200, json: { controller: null } }, 'none held: nothing to do');
  t.match(await call('POST', '/rollout/start', {}), { status: 200, json: { phase: 'running' } }, 'not an hour later: now');
  await call('POST', '/rollout/abort', {});
});
