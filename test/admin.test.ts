/** The admin API, on real sockets, with traffic through the proxy following every change. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { CONSOLE_CSP } from '../src/admin/console.js';
import { startApp } from '../src/app.js';
import type { RawSettings } from '../src/config/config.js';
import { compileSplit, hashKey, pickByHash } from '../src/proxy/split.js';
import type { Share } from '../src/weights/shares.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { freePort, rawExchange, send, silentLog, startUpstream, type Reply } from './helpers/net.js';

const TOKEN = 'ops-token-0123456789';

const flask = await startUpstream('flask');
const fastapi = await startUpstream('fastapi');
t.teardown(() => Promise.all([flask.close(), fastapi.close()]));

/** The app over the two upstreams at 5% to fastapi, unless `settings` say otherwise. */
const app = (t: Test, settings: RawSettings = {}, env: NodeJS.ProcessEnv = {}): Promise<TestApp> =>
  startTestApp(t, { upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`], weights: ['fastapi=5'], ...settings }, { env });

const body = (r: Reply): Record<string, unknown> => JSON.parse(r.body.toString()) as Record<string, unknown>;
const put = (url: string, json: unknown, headers: Record<string, string> = {}): Promise<Reply> =>
  send(url, { method: 'PUT', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(json) });

/** A path whose ${remote_addr}${uri} key (from 127.0.0.1) lands on fastapi at `on`% but not at `off`%. */
function pathBetween(off: number, on: number): string {
  const bucket = (p: number, path: string): string =>
    pickByHash(compileSplit([['fastapi', p * 100]] as Share[], 'flask'), hashKey(Buffer.from(`127.0.0.1${path}`)))!;
  for (let i = 0; ; i++) {
    const path = `/predict/${i}`;
    if (bucket(off, path) === 'flask' && bucket(on, path) === 'fastapi') return path;
  }
}
const servedBy = async (url: string): Promise<string> => String((await send(url)).headers['x-drum-splitter-upstream']);

t.test('GET /weights, PUT /weights, POST /rollback, GET /history — and traffic follows', async (t) => {
  const a = await app(t);
  const heard: string[] = [];
  a.store.subscribe('test', ({ state }) => heard.push(`v${state.version} ${state.source} ${JSON.stringify(state.shares)}`));
  const moving = pathBetween(5, 10);
  const start = body(await send(`${a.adminUrl}/weights`));
  t.match(start, { weights: { flask: 95, fastapi: 5 }, version: 1, source: 'startup', updatedAt: String, split: { key: '${remote_addr}${uri}', hash: 'murmur2' } });
  t.equal(await servedBy(a.traffic + moving), 'flask');

  const changed = await put(`${a.adminUrl}/weights`, { weights: { fastapi: 10 }, reason: 'canary step 2' });
  t.equal(changed.status, 200);
  t.match(body(changed), { weights: { flask: 90, fastapi: 10 }, version: 2, source: 'admin' });
  t.equal(await servedBy(a.traffic + moving), 'fastapi', 'the next request follows the new split');

  const same = await put(`${a.adminUrl}/weights`, { weights: { flask: 90, fastapi: 10 } });
  t.match(body(same), { version: 2 }, 'sending back what GET shows changes nothing');

  const back = await send(`${a.adminUrl}/rollback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  t.match(body(back), { weights: { flask: 100, fastapi: 0 }, version: 3 });
  t.equal(await servedBy(a.traffic + moving), 'flask');

  t.same(heard, ['v2 admin [["fastapi",1000]]', 'v3 admin [["fastapi",0]]'], 'a subscriber heard each change, not the one that changed nothing');

  const { history } = body(await send(`${a.adminUrl}/history`)) as { history: Record<string, unknown>[] };
  t.match(history, [
    { version: 1, source: 'startup', who: 'startup', to: { flask: 95, fastapi: 5 } },
    { version: 2, source: 'admin', who: 'anonymous', reason: 'canary step 2', from: { fastapi: 5 }, to: { fastapi: 10 } },
    { version: 3, source: 'admin', who: 'anonymous', reason: 'rollback', from: { fastapi: 10 }, to: { fastapi: 0 } },
  ]);
  t.equal(history.length, 3);
});

t.test('bad input → 400/413/415 JSON naming the field; the state is unchanged', async (t) => {
  const a = await app(t, { upstreams: ['flask=http://127.0.0.1:1', 'fastapi=http://127.0.0.1:1', 'canary2=http://127.0.0.1:1'], weights: ['fastapi=60', 'canary2=30'] });
  const cases: [string, unknown, number, Record<string, unknown>][] = [
    ['unknown upstream', { weights: { django: 1 } }, 400, { field: 'weights.django', message: /not an upstream/ }],
    ['not a number', { weights: { fastapi: 'ten' } }, 400, { field: 'weights.fastapi' }],
    ['negative', { weights: { fastapi: -1 } }, 400, { field: 'weights.fastapi' }],
    ['over 100', { weights: { fastapi: 101 } }, 400, { field: 'weights.fastapi', message: /over 100%/ }],
    ['three decimals', { weights: { fastapi: 1.555 } }, 400, { field: 'weights.fastapi', message: /two decimals/ }],
    ['total over 100%', { weights: { fastapi: 71 } }, 400, { field: 'weights', message: /101%, over 100%/ }],
    ['baseline not the rest', { weights: { flask: 50 } }, 400, { field: 'weights.flask', message: /takes the rest, 10%/ }],
    ['weights missing', { reason: 'x' }, 400, { field: 'weights', message: /is required/ }],
    ['weights not an object', { weights: [1] }, 400, { field: 'weights' }],
    ['unknown field', { weights: { fastapi: 1 }, weight: 2 }, 400, { field: 'weight', message: /unknown field/ }],
    ['reason not a string', { weights: { fastapi: 1 }, reason: 7 }, 400, { field: 'reason' }],
    ['body not an object', [1, 2], 400, { field: 'body' }],
  ];
  for (const [name, json, status, want] of cases) {
    const r = await put(`${a.adminUrl}/weights`, json);
    t.equal(r.status, status, name);
    t.match(body(r), { error: 'invalid', ...want }, name);
  }
  const raw: [string, Record<string, string>, string, number, RegExp][] = [
    ['wrong content type', { 'content-type': 'text/plain' }, 'fastapi=1', 415, /Content-Type: application\/json/],
    ['form content type', { 'content-type': 'application/x-www-form-urlencoded' }, 'fastapi=1', 415, /Content-Type: application\/json/],
    ['malformed JSON', { 'content-type': 'application/json' }, '{"weights": {', 400, /JSON|Unexpected|expected/i],
    ['empty JSON body', { 'content-type': 'application/json' }, '', 400, /empty/i],
    ['oversized', { 'content-type': 'application/json' }, JSON.stringify({ weights: { fastapi: 1 }, reason: 'x'.repeat(70_000) }), 413, /too large/i],
  ];
  for (const [name, headers, text, status, message] of raw) {
    const r = await send(`${a.adminUrl}/weights`, { method: 'PUT', headers, body: text });
    t.equal(r.status, status, name);
    t.match(body(r), { message }, name);
  }
  t.match(body(await send(`${a.adminUrl}/weights`)), { version: 1, weights: { flask: 10, fastapi: 60, canary2: 30 } }, 'nothing changed');
  t.equal((await send(`${a.adminUrl}/nope`)).status, 404);
});

t.test('compare-and-set: a write naming a stale version (body or If-Match) gets 409 and changes nothing', async (t) => {
  const a = await app(t);
  const heard: number[] = [];
  a.store.subscribe('test', ({ state }) => heard.push(state.version));
  const etag = async (): Promise<string | undefined> => (await send(`${a.adminUrl}/weights`)).headers.etag as string | undefined;
  t.equal(await etag(), '"1"', 'GET /weights has the version as its ETag');

  const byBody = await put(`${a.adminUrl}/weights`, { weights: { fastapi: 10 }, version: 1 });
  t.match([byBody.status, byBody.headers.etag, body(byBody)], [200, '"2"', { version: 2, weights: { fastapi: 10 } }]);
  const stale = await put(`${a.adminUrl}/weights`, { weights: { fastapi: 50 }, version: 1 });
  t.equal(stale.status, 409);
  t.same(body(stale), { error: 'conflict', message: 'weights are at version 2, not 1', version: 2 });
  const staleNoop = await put(`${a.adminUrl}/weights`, { weights: { fastapi: 10 } }, { 'if-match': '"1"' });
  t.match([staleNoop.status, body(staleNoop)], [409, { version: 2 }], 'stale is stale, even when the change would be none');

  const quoted = await put(`${a.adminUrl}/weights`, { weights: { fastapi: 20 } }, { 'if-match': await etag() as string });
  t.match([quoted.status, body(quoted)], [200, { version: 3, weights: { fastapi: 20 } }], 'If-Match with the ETag as GET gave it');
  const bare = await put(`${a.adminUrl}/weights`, { weights: { fastapi: 30 }, version: 3 }, { 'if-match': '3' });
  t.match([bare.status, body(bare)], [200, { version: 4 }], 'a bare number, and the body agreeing');
  const same = await put(`${a.adminUrl}/weights`, { weights: { fastapi: 30 } }, { 'if-match': '4' });
  t.match([same.status, same.headers.etag, body(same)], [200, '"4"', { version: 4 }], 'no change at the current version: 200, same version');

  const staleRollback = await send(`${a.adminUrl}/rollback`, { method: 'POST', headers: { 'if-match': '"3"', 'content-type': 'application/json' }, body: '{}' });
  t.match([staleRollback.status, body(staleRollback)], [409, { error: 'conflict', message: 'weights are at version 4, not 3', version: 4 }]);
  const rollback = await send(`${a.adminUrl}/rollback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"version": 4}' });
  t.match([rollback.status, rollback.headers.etag, body(rollback)], [200, '"5"', { version: 5, weights: { fastapi: 0 } }]);

  t.same(heard, [2, 3, 4, 5], 'refused writes told nobody');
  t.match(body(await send(`${a.adminUrl}/weights`)), { version: 5, weights: { flask: 100, fastapi: 0 } });
});

t.test('a malformed or contradictory version is a 400 naming it', async (t) => {
  const a = await app(t);
  const cases: [string, Record<string, unknown>, Record<string, string>, string, RegExp][] = [
    ['body and header differ', { weights: { fastapi: 7 }, version: 1 }, { 'if-match': '"2"' }, 'if-match', /says version 2 and the body's "version" 1; send one/],
    ['a weak ETag', { weights: { fastapi: 7 } }, { 'if-match': 'W/"1"' }, 'if-match', /must be the ETag GET \/weights gave, e.g. "3"/],
    ['a list of ETags', { weights: { fastapi: 7 } }, { 'if-match': '"1", "2"' }, 'if-match', /must be the ETag/],
    ['any', { weights: { fastapi: 7 } }, { 'if-match': '*' }, 'if-match', /must be the ETag/],
    ['version as text', { weights: { fastapi: 7 }, version: '1' }, {}, 'version', /must be the version GET \/weights gave, e.g. 3/],
    ['version fractional', { weights: { fastapi: 7 }, version: 1.5 }, {}, 'version', /must be the version/],
    ['version negative', { weights: { fastapi: 7 }, version: -1 }, {}, 'version', /must be the version/],
    ['version null', { weights: { fastapi: 7 }, version: null }, {}, 'version', /must be the version/],
  ];
  for (const [name, json, headers, field, message] of cases) {
    const r = await put(`${a.adminUrl}/weights`, json, headers);
    t.equal(r.status, 400, name);
    t.match(body(r), { error: 'invalid', field, message }, name);
  }
  const rollback = await send(`${a.adminUrl}/rollback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"version": "x"}' });
  t.match([rollback.status, body(rollback)], [400, { field: 'version' }]);
  t.match(body(await send(`${a.adminUrl}/weights`)), { version: 1, weights: { fastapi: 5 } }, 'nothing changed');
});

t.test('writes need the bearer token when one is set; reads do not', async (t) => {
  const dir = t.testdir({ tokens: `# ops team\nalice:${TOKEN}-alice\n\nrobot:${TOKEN}-robot\n` });
  const a = await app(t, { adminTokenFile: join(dir, 'tokens') }, { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN });
  t.equal((await send(`${a.adminUrl}/weights`)).status, 200);
  const none = await put(`${a.adminUrl}/weights`, { weights: { fastapi: 7 } });
  t.equal(none.status, 401);
  t.equal(none.headers['www-authenticate'], 'Bearer realm="drum-splitter"');
  t.equal((await put(`${a.adminUrl}/weights`, { weights: { fastapi: 7 } }, { authorization: 'Bearer wrong-token-000000000' })).status, 401);
  t.equal((await send(`${a.adminUrl}/rollback`, { method: 'POST' })).status, 401);
  t.equal((await put(`${a.adminUrl}/weights`, { weights: { fastapi: 7 } }, { authorization: `Bearer ${TOKEN}-alice` })).status, 200);
  t.equal((await put(`${a.adminUrl}/weights`, { weights: { fastapi: 8 } }, { authorization: `Bearer ${TOKEN}` })).status, 200);
  t.equal((await send(`${a.adminUrl}/rollback`, { method: 'POST', headers: { authorization: `bearer ${TOKEN}-robot`, 'content-type': 'application/json' }, body: '{"reason":"p99 regression"}' })).status, 200);
  const { history } = body(await send(`${a.adminUrl}/history`)) as { history: { who: string; reason: string }[] };
  t.same(history.slice(1).map((h) => [h.who, h.reason]), [['alice', null], ['admin', null], ['robot', 'p99 regression']]);
});

t.test('an admin API off loopback without a token refuses to start', async (t) => {
  const config = { flags: { listen: '127.0.0.1:0', admin: '0.0.0.0:0', upstreams: ['flask=http://127.0.0.1:1'] } };
  await t.rejects(startApp(config, { env: {}, log: silentLog }), { name: 'InputError', field: 'admin', message: /DRUM_SPLITTER_ADMIN_TOKEN/ });
  const ok = await startApp(config, { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log: silentLog });
  await ok.close();
  t.pass('with a token it starts');
});

t.test('/healthz, and /readyz while at least one upstream answers', async (t) => {
  const flask = await startUpstream('flask');
  const dead = await freePort();
  const a = await startTestApp(t, { upstreams: [`flask=${flask.url}`, `fastapi=http://127.0.0.1:${dead}`] });
  const base = a.adminUrl;
  t.same(body(await send(`${base}/healthz`)), { status: 'ok' });
  const ready = await send(`${base}/readyz`);
  t.equal(ready.status, 200);
  t.same(body(ready), { ready: true, upstreams: { flask: true, fastapi: false } });
  await flask.close();
  const down = await send(`${base}/readyz`);
  t.equal(down.status, 503);
  t.same(body(down), { ready: false, upstreams: { flask: false, fastapi: false } });
});

t.test('a token file that cannot be used stops start-up', async (t) => {
  const dir = t.testdir({ tokens: 'short\n' });
  const config = { flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: ['flask=http://127.0.0.1:1'], adminTokenFile: join(dir, 'tokens') } };
  await t.rejects(startApp(config, { env: {}, log: silentLog }), { field: '--admin-token-file', message: /line 1/ });
  writeFileSync(join(dir, 'tokens'), '');
  await t.rejects(startApp(config, { env: {}, log: silentLog }), { message: /holds no token/ });
});

t.test('an admin port already taken: start-up fails and the traffic port is let go', async (t) => {
  const holder = await startUpstream('holder');
  t.teardown(() => holder.close());
  const adminPort = Number(new URL(holder.url).port);
  const trafficPort = await freePort();
  const config = { flags: { listen: `127.0.0.1:${trafficPort}`, admin: `127.0.0.1:${adminPort}`, upstreams: ['flask=http://127.0.0.1:1'] } };
  await t.rejects(startApp(config, { env: {}, log: silentLog }), { code: 'EADDRINUSE' });
  await t.rejects(send(`http://127.0.0.1:${trafficPort}/`), { code: 'ECONNREFUSED' }, 'the traffic listener was closed again');
});

t.test('without a token, only a loopback Host (DNS rebinding), for reads of names, reasons and paths too; with a token, any Host', async (t) => {
  const open = await app(t);
  const rebound = await put(`${open.adminUrl}/weights`, { weights: { fastapi: 50 } }, { host: 'attacker.example:9901' });
  t.equal(rebound.status, 403);
  t.match(body(rebound), { error: 'forbidden', message: /loopback Host .*not "attacker\.example:9901"/ });
  t.equal(open.store.view().weights.fastapi, 5, 'nothing changed');
  t.equal((await put(`${open.adminUrl}/weights`, { weights: { fastapi: 6 } }, { host: 'localhost:9901' })).status, 200, 'localhost is loopback');
  const port = Number(new URL(open.adminUrl).port);
  const hostless = await rawExchange(port, 'POST /rollback HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
  t.match(hostless, /^HTTP\/1\.1 403 [^]*not \\"\\"/, 'no Host at all (HTTP/1.0) is no loopback Host either');

  // A rebinding page could read token names and reasons (/history, the decision log), the recording's path, the metrics.
  const reads = ['/history', '/recording', '/shadow', '/rollout', '/rollout/decisions', '/metrics', '/weights', '/series', '/readyz', '/', '/about', '/nope'];
  for (const path of reads) {
    const r = await send(`${open.adminUrl}${path}`, { headers: { host: 'attacker.example' } });
    t.equal(r.status, 403, `GET ${path} with a rebinding Host`);
    t.match(body(r), { error: 'forbidden', message: /answers only a loopback Host .*not "attacker\.example"; set DRUM_SPLITTER_ADMIN_TOKEN/ }, path);
    t.equal((await send(`${open.adminUrl}${path}`)).status, path === '/nope' ? 404 : 200, `GET ${path} with a loopback Host`);
  }

  const guarded = await app(t, {}, { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN });
  const remote = await put(`${guarded.adminUrl}/weights`, { weights: { fastapi: 7 } }, { host: 'drum-splitter.internal:9901', authorization: `Bearer ${TOKEN}` });
  t.equal(remote.status, 200, 'a token is what counts then');
  for (const path of reads.slice(0, 4)) t.equal((await send(`${guarded.adminUrl}${path}`, { headers: { host: 'drum-splitter.internal:9901' } })).status, 200, `GET ${path} by another name, a token configured`);
});

t.test('no cross-site writes: without a token, a write from another origin is refused; every write needs Content-Type: application/json', async (t) => {
  const a = await app(t);
  const own = a.adminUrl;
  const unchanged = (when: string): void => {
    t.same(a.store.view().weights, { flask: 95, fastapi: 5 }, `${when}: the weights unchanged`);
    t.equal(a.store.history.length, 1, `${when}: no history entry`);
    // The canary at 5% with no rollout started is unmanaged; a forged start would have made it running.
    t.equal(a.rollout!.state.phase, 'unmanaged', `${when}: no rollout`);
    t.same([a.proxy.recording.view().enabled, a.shadow.enabled], [false, false], `${when}: recording and shadow off`);
  };

  // The forgery: curl -XPOST -H 'Origin: http://evil.example' http://127.0.0.1:ADMIN/rollback
  const forged = await send(`${own}/rollback`, { method: 'POST', headers: { origin: 'http://evil.example' } });
  t.equal(forged.status, 403);
  t.match(body(forged), { error: 'forbidden', message: /without a token, a write from another web page \(Origin: http:\/\/evil\.example\) is refused; .*DRUM_SPLITTER_ADMIN_TOKEN/ });

  const writes: [string, string, unknown][] = [
    ['POST', '/rollback', {}],
    ['PUT', '/weights', { weights: { fastapi: 50 } }],
    ['PUT', '/recording', { enabled: true }],
    ['PUT', '/shadow', { enabled: true }],
    ...['start', 'pause', 'resume', 'approve', 'abort'].map((c): [string, string, unknown] => ['POST', `/rollout/${c}`, {}]),
    ['PUT', '/rollout/controller', { controller: 'http://evil.example', ttlSeconds: 60 }],
  ];
  const port = Number(new URL(own).port);
  const elsewhere: Record<string, string>[] = [
    { origin: 'http://evil.example' },
    { origin: 'null' },
    { origin: `http://127.0.0.1:${port + 1}` },
    { origin: `http://localhost:${port}` },
    { origin: `https://127.0.0.1:${port}` },
    { 'sec-fetch-site': 'cross-site' },
    { 'sec-fetch-site': 'same-site' },
    { origin: own, 'sec-fetch-site': 'same-site' },
  ];
  for (const [method, path, json] of writes) {
    for (const headers of elsewhere) {
      const r = await send(`${own}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(json) });
      t.equal(r.status, 403, `${method} ${path} with ${JSON.stringify(headers)}`);
    }
    // What a beacon or a no-cors fetch sends without a body: no content type.
    const bare = await send(`${own}${path}`, { method });
    t.equal(bare.status, 415, `${method} ${path} without a body or content type`);
    t.same(body(bare), { error: 'unsupported_media_type', message: 'send Content-Type: application/json with a JSON body ({} when there is nothing to say)', field: 'content-type' });
    const form = await send(`${own}${path}`, { method, headers: { 'content-type': 'text/plain' } });
    t.equal(form.status, 415, `${method} ${path} as text/plain without a body`);
  }
  unchanged('refused');

  // The console's own calls, and scripts: taken.
  const console_ = await send(`${own}/rollback`, { method: 'POST', headers: { origin: own, 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' }, body: '{}' });
  t.equal(console_.status, 200, 'the console, same origin');
  t.equal((await put(`${own}/weights`, { weights: { fastapi: 5 } }, { host: `localhost:${port}`, origin: `http://LOCALHOST:${port}` })).status, 200, 'the console opened as localhost');
  t.equal((await put(`${own}/weights`, { weights: { fastapi: 6 } }, { 'sec-fetch-site': 'none' })).status, 200, 'typed by the user');
  const charset = await send(`${own}/rollout/start`, { method: 'POST', headers: { 'content-type': 'Application/JSON; charset=utf-8' }, body: '{"reason":"script","force":true}' });
  t.equal(charset.status, 200, 'a script: a JSON type with a charset');
  t.same(a.store.history.slice(1).map((h) => [h.who, h.reason]), [['anonymous', 'rollback'], ['anonymous', null], ['anonymous', null], ['rollout (anonymous)', 'rollout started → canary to 1%']]);

  // With a token, the token is what counts; the content type still must be JSON.
  const guarded = await app(t, {}, { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN });
  const withToken = await send(`${guarded.adminUrl}/rollback`, { method: 'POST', headers: { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site', authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
  t.equal(withToken.status, 200, 'a valid token from anywhere');
  t.equal((await send(`${guarded.adminUrl}/rollback`, { method: 'POST', headers: { origin: 'http://evil.example' } })).status, 401, 'no token');
  t.equal((await send(`${guarded.adminUrl}/rollback`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status, 415, 'a token, no content type');
});

t.test('every admin answer carries nosniff and the CSP: JSON, text, errors, 404s, refusals', async (t) => {
  const open = await app(t);
  const guarded = await app(t, {}, { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN });
  const answers: [string, Promise<Reply>, number][] = [
    ['GET /weights', send(`${open.adminUrl}/weights`), 200],
    ['GET /metrics', send(`${open.adminUrl}/metrics`), 200],
    ['GET /', send(`${open.adminUrl}/`), 200],
    ['a 404', send(`${open.adminUrl}/nope<script>`), 404],
    ['a 400', put(`${open.adminUrl}/weights`, { weights: { fastapi: 'x' } }), 400],
    ['a 415', send(`${open.adminUrl}/rollback`, { method: 'POST' }), 415],
    ['a 403', send(`${open.adminUrl}/weights`, { headers: { host: 'attacker.example' } }), 403],
    ['a 401', send(`${guarded.adminUrl}/rollback`, { method: 'POST' }), 401],
  ];
  for (const [name, pending, status] of answers) {
    const r = await pending;
    t.equal(r.status, status, name);
    t.equal(r.headers['x-content-type-options'], 'nosniff', `${name}: nosniff`);
    t.equal(r.headers['content-security-policy'], CONSOLE_CSP, `${name}: the CSP`);
  }
});

t.test("GET /about: a proxy, and the console's reads it answers; a 404 names them", async (t) => {
  const two = await app(t);
  const reads = ['/weights', '/history', '/routes', '/rollout', '/rollout/decisions', '/series', '/recording', '/shadow'];
  t.same(body(await send(`${two.adminUrl}/about`)), { server: 'proxy', reads });
  t.same(body(await send(`${two.adminUrl}/nope`)), { error: 'not_found', message: `no GET /nope; see GET / (the console), ${reads.join(', ')}, /healthz, /readyz, /metrics` });
  const one = await app(t, { upstreams: [`flask=${flask.url}`], weights: [] });
  t.same(body(await send(`${one.adminUrl}/about`)), { server: 'proxy', reads: ['/weights', '/history', '/routes', '/series', '/recording', '/shadow'] }, 'one upstream: no rollout');
});
