/**
 * Cohort rules end to end, in process on real sockets: requests routed by header, cookie, path and
 * method (text and regex), the first match winning, a rule handing on to the split; counted in
 * GET /routes and /metrics; changed through PUT /routes with the token and the audit trail, the
 * state file and the watched config file; refused, naming the field, when wrong.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { startApp } from '../src/app.js';
import { readConfigFile } from '../src/config/config.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { sampleSum } from './helpers/metrics.js';
import { serveCli } from './helpers/cli.js';
import { freePort, send, silentLog, startUpstream, type TestUpstream } from './helpers/net.js';
import { until } from './helpers/wait.js';

const TOKEN = 'cohort-token-0123456789';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, unknown>;
  readonly json: Record<string, unknown>;
}

/** An admin request; a write sends JSON with the token unless told otherwise. */
async function call(app: TestApp, method: string, path: string, body?: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }): Promise<Answer> {
  const res = await request(`${app.adminUrl}${path}`, {
    method: method as 'GET',
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: (method === 'GET' && path === '/metrics' ? { text } : JSON.parse(text)) as Record<string, unknown> };
}

/** Three upstreams that say who they are; closed when the test ends. */
async function upstreams(t: Test): Promise<TestUpstream[]> {
  const all = await Promise.all(['flask', 'fastapi', 'canary2'].map((name) => startUpstream(name)));
  t.teardown(() => Promise.all(all.map((u) => u.close())));
  return all;
}
const flags = (u: TestUpstream[]) => ({ upstreams: [`flask=${u[0]!.url}`, `fastapi=${u[1]!.url}`, `canary2=${u[2]!.url}`] });

/** Which upstream answered a request, as X-Drum-Splitter-Upstream says (and the upstream's own body). */
async function whoAnswers(app: TestApp, method: string, path: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await send(`${app.traffic}${path}`, { method, headers, ...(method === 'POST' ? { body: 'a,b\n1,2\n' } : {}) });
  const said = (JSON.parse(r.body.toString()) as { upstream: string }).upstream;
  return said === r.headers['x-drum-splitter-upstream'] ? said : `header ${String(r.headers['x-drum-splitter-upstream'])}, body ${said}`;
}

const RULES = [
  { name: 'beta', match: { header: { 'X-Beta': '1' } }, upstream: 'fastapi' },
  { name: 'group', match: { header: { 'x-group': { regex: '^beta-' } } }, upstream: 'canary2' },
  { name: 'qa', match: { cookie: { qa: 'yes' }, method: 'POST' }, upstream: 'fastapi' },
  { name: 'v2', match: { path: '/v2/', method: { regex: '^(GET|HEAD)$' } }, upstream: 'canary2' },
  { name: 'pinned', match: { header: { 'x-customer': 'acme' }, path: { regex: '^/predict/$' } }, split: true },
  { name: 'acme', match: { header: { 'x-customer': 'acme' } }, upstream: 'canary2' },
];

t.test('rules route by header, cookie, path and method, text and regex; the first match wins; split: true hands on to the split; each counted', async (t) => {
  const u = await upstreams(t);
  const app = await startTestApp(t, { ...flags(u), routes: RULES });
  const cases: [string, string, Record<string, string>, string][] = [
    ['GET', '/predict/', {}, 'flask'], // no rule: the split, all on the baseline
    ['GET', '/predict/', { 'x-beta': '1' }, 'fastapi'],
    ['GET', '/predict/', { 'x-beta': '1', 'x-group': 'beta-7' }, 'fastapi'], // both match: the first wins
    ['GET', '/predict/', { 'x-beta': '2', 'x-group': 'beta-7' }, 'canary2'],
    ['GET', '/predict/', { 'x-group': 'not-beta-7' }, 'flask'],
    ['POST', '/predict/', { cookie: 'sid=1; qa=yes' }, 'fastapi'],
    ['GET', '/predict/', { cookie: 'qa=yes' }, 'flask'], // the cookie, but not the method
    ['GET', '/v2/models', {}, 'canary2'],
    ['POST', '/v2/models', {}, 'flask'],
    ['GET', '/v2', {}, 'flask'], // a prefix of the path's segments as written, not of any text
    ['POST', '/predict/', { 'x-customer': 'acme' }, 'flask'], // pinned to the split: not taken by acme below
    ['POST', '/other/', { 'x-customer': 'acme' }, 'canary2'],
  ];
  for (const [method, path, headers, want] of cases) t.equal(await whoAnswers(app, method, path, headers), want, `${method} ${path} ${JSON.stringify(headers)}`);

  const counts = { beta: 2, group: 1, qa: 1, v2: 1, pinned: 1, acme: 1 };
  await until(async () => ((await call(app, 'GET', '/routes')).json.routes as { matches: number }[]).reduce((n, r) => n + r.matches, 0) === 7);
  const view = await call(app, 'GET', '/routes');
  t.match(view, { status: 200, headers: { etag: '"1"' }, json: { version: 1, source: 'startup' } });
  t.same((view.json.routes as { name: string; matches: number }[]).map((r) => [r.name, r.matches]), Object.entries(counts), 'GET /routes: each rule, in order, with what it matched');
  t.same((view.json.routes as unknown[])[0], { name: 'beta', match: { header: { 'x-beta': '1' } }, upstream: 'fastapi', matches: 2 }, 'as checked: the header name lower-cased');

  const text = String((await call(app, 'GET', '/metrics')).json.text);
  for (const [route, n] of Object.entries(counts)) t.equal(sampleSum(text, 'drum_route_matches_total', { route }), n, `drum_route_matches_total{route="${route}"}`);
  t.equal(sampleSum(text, 'drum_requests_total'), cases.length, 'drum_requests_total still counts every request');
  t.equal(sampleSum(text, 'drum_requests_total', { server_type: 'fastapi', route: 'beta' }), 2, 'a request a rule took carries its name');
  t.equal(sampleSum(text, 'drum_requests_total', { route: 'pinned' }), 0, "one it handed to the split is the split's");
  t.equal(sampleSum(text, 'drum_request_duration_seconds_count', { server_type: 'canary2', route: 'acme' }), 1);
  t.match(text, /^drum_requests_total\{server_type="flask",status="200",method="GET",origin="upstream"\} 4$/m, "the split's own keep their labels as they were");
});

t.test('the live shadow copies only what the split sent: a customer a rule keeps on the baseline never reaches the canary', async (t) => {
  const u = await upstreams(t);
  const app = await startTestApp(t, { ...flags(u), shadowSample: 1, routes: [{ name: 'sensitive', match: { header: { 'x-customer': 'acme' } }, upstream: 'flask' }] });
  t.equal(await whoAnswers(app, 'POST', '/predict/', { 'x-customer': 'acme' }), 'flask');
  t.equal(await whoAnswers(app, 'POST', '/predict/'), 'flask');
  // The split's request is copied to the canary (the shadow's default upstream); the rule's is not.
  await until(async () => sampleSum(((await call(app, 'GET', '/metrics')).json as { text: string }).text, 'drum_shadow_requests_total', {}) === 1);
  t.same(u[1]!.seen.filter((r) => r.url === '/predict/').map((r) => r.headers['x-customer']), [undefined], 'only the unrouted request copied, and compared');
});

t.test('PUT /routes: the token, the audit trail, compare-and-set; the next request follows; bad input is a 400 naming the field and changes nothing', async (t) => {
  const u = await upstreams(t);
  const app = await startTestApp(t, { ...flags(u), routes: [RULES[0]] }, { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN } });
  const qa = [{ name: 'qa', match: { header: { 'x-qa': { regex: '^run-\\d+$' } } }, upstream: 'canary2' }];

  t.match(await call(app, 'PUT', '/routes', { routes: qa }, {}), { status: 401, json: { error: 'unauthorized' } }, 'no token');
  t.equal(await whoAnswers(app, 'GET', '/predict/', { 'x-qa': 'run-12' }), 'flask');
  const put = await call(app, 'PUT', '/routes', { routes: qa, reason: 'QA run 12' });
  t.match(put, { status: 200, headers: { etag: '"2"' }, json: { version: 2, source: 'admin', routes: [{ name: 'qa', upstream: 'canary2', matches: 0 }] } });
  t.equal(await whoAnswers(app, 'GET', '/predict/', { 'x-qa': 'run-12' }), 'canary2', 'the next request follows the new rules');
  t.equal(await whoAnswers(app, 'GET', '/predict/', { 'x-beta': '1' }), 'flask', 'the list was replaced: beta is gone');

  const history = (await call(app, 'GET', '/routes/history')).json.history as Record<string, unknown>[];
  t.match(history, [
    { version: 1, source: 'startup', who: 'startup', to: [{ name: 'beta' }] },
    { version: 2, source: 'admin', who: 'admin', reason: 'QA run 12', from: [{ name: 'beta', upstream: 'fastapi' }], to: [{ name: 'qa', upstream: 'canary2' }] },
  ]);

  t.match(await call(app, 'PUT', '/routes', { routes: [], version: 1 }), { status: 409, json: { error: 'conflict', version: 2, message: 'cohort rules are at version 2, not 1' } });
  t.match(await call(app, 'PUT', '/routes', { routes: [] }, { authorization: `Bearer ${TOKEN}`, 'if-match': '"1"' }), { status: 409 }, 'If-Match too');
  t.match(await call(app, 'PUT', '/routes', { routes: [] }, { authorization: `Bearer ${TOKEN}`, 'if-match': 'v2' }), { status: 400, json: { field: 'if-match', message: 'if-match: must be the ETag GET /routes gave, e.g. "3"' } });

  const bad: [unknown, string, RegExp][] = [
    [{ routes: 'beta' }, 'routes', /must be a list of rules/],
    [{}, 'routes', /is required/],
    [{ routes: [], who: 'me' }, 'who', /unknown field; allowed: routes, reason, version/],
    [{ routes: [{ match: { method: 'GET' }, upstream: 'gpu' }] }, 'routes[0].upstream', /"gpu" is not an upstream; upstreams: flask, fastapi, canary2/],
    [{ routes: [{ match: { header: { 'x-a': { regex: '[' } } }, upstream: 'flask' }] }, 'routes[0].match.header.x-a.regex', /not a regular expression/],
    [{ routes: [{ match: {}, upstream: 'flask' }] }, 'routes[0].match', /needs at least one of header, cookie, path, method/],
    [{ routes: [{ match: { method: 'GET' }, upstream: 'flask', to: 'x' }] }, 'routes[0]', /unknown key "to"/],
    [{ routes: [{ name: 'a', match: { method: 'GET' }, split: true }, { name: 'a', match: { method: 'PUT' }, split: true }] }, 'routes[1].name', /"a" is the name of routes\[0\] too/],
  ];
  for (const [body, field, message] of bad) {
    t.match(await call(app, 'PUT', '/routes', body), { status: 400, json: { error: 'invalid', field, message } }, `${field}: ${String(message)}`);
  }
  t.match((await call(app, 'GET', '/routes')).json, { version: 2, routes: [{ name: 'qa' }] }, 'nothing changed');

  t.match(await call(app, 'PUT', '/routes', { routes: [], reason: 'QA done' }, { authorization: `Bearer ${TOKEN}`, 'if-match': '"2"' }), { status: 200, json: { version: 3, routes: [] } });
  t.equal(await whoAnswers(app, 'GET', '/predict/', { 'x-qa': 'run-12' }), 'flask', 'no rules: every request is the split\'s');
  t.match(await call(app, 'GET', '/nowhere'), { status: 404, json: { message: /\/routes/ } }, 'the 404 lists /routes');
});

t.test('with --state the rules survive a restart; a rules file that no longer fits stops start-up, naming it; one that cannot be written refuses the PUT', async (t) => {
  const u = await upstreams(t);
  const dir = t.testdir({ data: {} });
  const state = join(dir, 'data', 'state.json');
  const first = await startTestApp(t, { ...flags(u), state, routes: [RULES[0]] });
  t.match(await call(first, 'PUT', '/routes', { routes: [RULES[1]], reason: 'beta group' }), { status: 200, json: { version: 2 } });
  await first.close();

  const second = await startTestApp(t, { ...flags(u), state, routes: [RULES[0]] });
  t.match((await call(second, 'GET', '/routes')).json, { version: 2, source: 'admin', routes: [{ name: 'group' }] }, "the state file's rules win over the config's, as its weights do");
  t.equal(((await call(second, 'GET', '/routes/history')).json.history as unknown[]).length, 2, 'the audit trail too');
  t.equal(await whoAnswers(second, 'GET', '/predict/', { 'x-group': 'beta-1' }), 'canary2');

  // The state directory unusable: the PUT is refused, the rules stay.
  rmSync(join(dir, 'data'), { recursive: true });
  writeFileSync(join(dir, 'data'), '');
  t.match(await call(second, 'PUT', '/routes', { routes: [] }), { status: 503, json: { error: 'not_saved', version: 2, message: /^not applied: the cohort rules file .*state\.routes\.json cannot be written \(ENOTDIR.*\); the cohort rules stay at version 2$/ } });
  t.equal(await whoAnswers(second, 'GET', '/predict/', { 'x-group': 'beta-1' }), 'canary2', 'still routed');
  await second.close();
  rmSync(join(dir, 'data'));
  mkdirSync(join(dir, 'data'));

  const at = '2025-01-01T00:00:00.000Z';
  const rulesFile = join(dir, 'data', 'state.routes.json');
  writeFileSync(rulesFile, JSON.stringify({ format: 1, state: { routes: [{ name: 'x', match: { method: 'GET' }, upstream: 'gpu' }], version: 3, updatedAt: at, source: 'admin' }, history: [] }));
  await t.rejects(startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', ...flags(u), state } }, { env: {}, log: silentLog }), {
    name: 'InputError',
    field: '--state',
    message: /cohort rules file .*state\.routes\.json is corrupt: state\.routes\[0\]\.upstream: "gpu" is not an upstream; upstreams: flask, fastapi, canary2; fix or remove it/,
  });
  writeFileSync(rulesFile, '{"format": 2}');
  await t.rejects(startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', ...flags(u), state } }, { env: {}, log: silentLog }), { field: '--state', message: /corrupt: format is 2, this version reads format 1/ });
});

t.test('a start that fails (the traffic port taken) with --state: the rules file written out before the error', async (t) => {
  const u = await upstreams(t);
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.teardown(() => taken.close());
  const state = join(t.testdir(), 'state.json');
  const listen = `127.0.0.1:${(taken.address() as AddressInfo).port}`;
  await t.rejects(startApp({ flags: { listen, admin: '127.0.0.1:0', ...flags(u), state, routes: [RULES[0]] } }, { env: {}, log: silentLog }), { code: 'EADDRINUSE' });
  t.match(JSON.parse(readFileSync(join(dirname(state), 'state.routes.json'), 'utf8')), { format: 1, state: { version: 1, routes: [{ name: 'beta' }] } });
});

t.test('the watched config file: an edit of its rules applies (source file); a bad one is rejected and the rules stay', async (t) => {
  const u = await upstreams(t);
  const dir = t.testdir();
  const path = join(dir, 'drum.yaml');
  const yaml = (rules: string): string => `upstreams: { flask: "${u[0]!.url}", fastapi: "${u[1]!.url}", canary2: "${u[2]!.url}" }\nroutes:\n${rules}`;
  writeFileSync(path, yaml('  - { name: beta, match: { header: { x-beta: "1" } }, upstream: fastapi }\n'));
  const lines: { msg: string; err?: string }[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string }) });
  const app = await startTestApp(t, {}, { file: { path, settings: readConfigFile(path) }, log });
  t.equal(await whoAnswers(app, 'GET', '/', { 'x-beta': '1' }), 'fastapi');

  writeFileSync(path, yaml('  - { name: beta, match: { header: { x-beta: "1" } }, upstream: canary2 }\n'));
  await until(async () => (await call(app, 'GET', '/routes')).json.version === 2, 10_000);
  t.match((await call(app, 'GET', '/routes/history')).json.history, [{}, { source: 'file', who: path, reason: 'config file changed', to: [{ upstream: 'canary2' }] }]);
  t.equal(await whoAnswers(app, 'GET', '/', { 'x-beta': '1' }), 'canary2');

  writeFileSync(path, yaml('  - { name: beta, match: { header: { x-beta: { regex: "(" } } }, upstream: fastapi }\n'));
  await until(() => lines.some((l) => l.msg === 'config file change rejected; keeping the current weights and cohort rules' && /routes\[0\]\.match\.header\.x-beta\.regex/.test(l.err ?? '')), 10_000);
  t.match((await call(app, 'GET', '/routes')).json, { version: 2, routes: [{ upstream: 'canary2' }] }, 'rejected: the rules stay');
  writeFileSync(path, yaml('  - { name: beta, match: { header: { x-beta: "1" } }, upstream: fastapi }\n'));
  await until(async () => (await call(app, 'GET', '/routes')).json.version === 3, 10_000);
});

t.test("the rollout judges the split's requests only: a beta cohort failing on the canary rolls nothing back, and GET /rollout counts it", async (t) => {
  // The canary fails every request of the beta cohort, and answers the split's.
  const flask = await startUpstream('flask');
  const fastapi = await startUpstream('fastapi', (req, res) => {
    res.statusCode = req.headers['x-beta'] === '1' ? 500 : 200;
    res.end('{"upstream": "fastapi"}');
  });
  t.teardown(() => Promise.all([flask.close(), fastapi.close()]));
  const rollout = { interval: '200ms', window: '30s', minRequests: 10, settle: 0, confirm: 1, steps: [{ weight: 50, hold: '1h' }] };
  const app = await startTestApp(t, { upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`], routes: [RULES[0]], rollout, key: '${uri}' });
  await app.rollout!.command('start', 'test', null);
  t.equal(app.store.view().weights.fastapi, 50);
  // 40 split requests on 40 paths (half to each side, by the key), and 30 the beta rule takes, all failing.
  await Promise.all(Array.from({ length: 40 }, (_, i) => send(`${app.traffic}/predict/${i}`)));
  const beta = await Promise.all(Array.from({ length: 30 }, () => send(`${app.traffic}/predict/`, { headers: { 'x-beta': '1' } })));
  t.same(new Set(beta.map((r) => r.status)), new Set([500]), 'the cohort got the canary\'s failures');
  await until(() => app.rollout!.view().lastVerdict?.routed?.fastapi === 30, 5000);
  const view = app.rollout!.view();
  t.match(view, { phase: 'running', weight: 50, lastVerdict: { routed: { flask: 0, fastapi: 30 } } }, 'not rolled back');
  t.equal(view.lastVerdict!.checks.find((c) => c.check === 'error_rate')?.status, 'ok', 'the canary\'s error rate from the split\'s requests alone');
});

t.test('--workers 2: the rules from the file in every worker, a PUT /routes applied in each, the counts of all', async (t) => {
  const u = await upstreams(t);
  const config = join(t.testdir(), 'drum-splitter.yaml');
  writeFileSync(config, `upstreams: { flask: "${u[0]!.url}", fastapi: "${u[1]!.url}", canary2: "${u[2]!.url}" }\nroutes:\n  - { name: beta, match: { header: { x-beta: "1" } }, upstream: fastapi }\n`);
  const port = await freePort();
  const served = serveCli(t, ['--config', config, '--listen', `127.0.0.1:${port}`, '--workers', '2']);
  const listening = (await served.listening) as unknown as { admin: string; routes: string[] };
  t.same(listening.routes, ['beta → fastapi'], 'the start-up line names the rules');
  const admin = `http://${listening.admin}`;
  // A connection each (send: no agent), dealt out to the workers in turn.
  const answers = async (headers: Record<string, string>): Promise<string[]> =>
    Promise.all(Array.from({ length: 6 }, async () => String((await send(`http://127.0.0.1:${port}/predict/`, { headers })).headers['x-drum-splitter-upstream'])));
  t.same(await answers({ 'x-beta': '1' }), Array(6).fill('fastapi'));
  const put = await request(`${admin}/routes`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ routes: [{ name: 'beta', match: { header: { 'x-beta': '1' } }, upstream: 'canary2' }] }) });
  t.equal(put.statusCode, 200, await put.body.text());
  // The workers hear of the PUT over IPC, apart from the connections: asked until all six say so.
  let sent = 6;
  let toCanary2 = 0;
  await until(async () => {
    const got = await answers({ 'x-beta': '1' });
    sent += got.length;
    toCanary2 += got.filter((u) => u === 'canary2').length;
    return got.every((u) => u === 'canary2');
  }, 5_000, 50);
  t.pass('every worker follows the PUT');
  // Outcomes reach the primary in batches within 100 ms.
  await until(async () => ((await (await request(`${admin}/routes`)).body.json()) as { routes: { matches: number }[] }).routes[0]!.matches === sent);
  const metrics = await (await request(`${admin}/metrics`)).body.text();
  t.equal(sampleSum(metrics, 'drum_route_matches_total', { route: 'beta' }), sent, "every worker's matches, added up");
  t.equal(sampleSum(metrics, 'drum_requests_total', { route: 'beta', server_type: 'canary2' }), toCanary2);
  // Stopped, not killed: the processes write their coverage as they exit.
  served.child().kill('SIGTERM');
  t.same(await served.exited(), [0, null]);
});
