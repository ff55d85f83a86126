import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { startApp, type RunningApp } from '../src/app.js';
import { dnsTargets, Fleet, fleetMove, staticTargets, type Lookup, type ReplicaReport, type ReplicaTargets } from '../src/fleet/replicas.js';
import { freePort, send, silentLog } from './helpers/net.js';

// Real replicas: whole drum-splitter apps from startApp, their admin APIs on 127.0.0.1, driven
// over HTTP by the Fleet. Where a test needs something a replica never does on its own (another
// writer slipping in between our read and write, a Host that is not loopback, an answer that is
// not an admin API's), a small real HTTP server stands in front of it or in its place.

const TOKEN = 'fleet-controller-token-0123456789';
const OTHER_TOKEN = 'some-other-teams-token-987654321';
const dir = mkdtempSync(join(tmpdir(), 'fleet-replicas-'));
const TOKENS = join(dir, 'tokens');
writeFileSync(TOKENS, `controller:${TOKEN}\n`);
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const CANARY = ['flask=http://127.0.0.1:1', 'fastapi=http://127.0.0.1:1'];

interface ReplicaOptions {
  readonly upstreams?: readonly string[];
  /** Default "fastapi=5": flask 95, fastapi 5. */
  readonly weights?: readonly string[];
  /** Default 127.0.0.1:0. */
  readonly admin?: string;
  /** Default: the token file naming our token "controller". */
  readonly auth?: { adminTokenFile: string } | { env: NodeJS.ProcessEnv } | 'none';
}

/** A replica, closed when the test ends (closing it twice is harmless). */
async function replica(t: Test, opts: ReplicaOptions = {}): Promise<RunningApp & { url: string }> {
  const auth = opts.auth ?? { adminTokenFile: TOKENS };
  const app = await startApp(
    {
      flags: {
        listen: '127.0.0.1:0',
        admin: opts.admin ?? '127.0.0.1:0',
        upstreams: [...(opts.upstreams ?? CANARY)],
        weights: [...(opts.weights ?? ['fastapi=5'])],
        ...(typeof auth === 'object' && 'adminTokenFile' in auth ? auth : {}),
      },
    },
    { env: typeof auth === 'object' && 'env' in auth ? auth.env : {}, log: silentLog },
  );
  const stop = app.close.bind(app);
  let closed: Promise<number> | undefined;
  const close = () => (closed ??= stop());
  t.teardown(close);
  const host = app.adminAddress.family === 'IPv6' ? `[${app.adminAddress.address}]` : app.adminAddress.address;
  return Object.assign(app, { url: `http://${host}:${app.adminAddress.port}`, close });
}

/** The pino lines a Fleet wrote. */
function capture(): { log: pino.Logger; lines: { level: number; msg: string; replica?: string; status?: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { log, lines };
}
const INFO = 30;
const WARN = 40;

const START = Date.parse('2031-05-04T12:00:00.000Z');

function fleet(targets: ReplicaTargets, opts: { token?: string | undefined; timeoutMs?: number; who?: string } = {}) {
  const clock = { now: START };
  const { log, lines } = capture();
  const f = new Fleet({
    targets,
    baseline: 'flask',
    token: 'token' in opts ? opts.token : TOKEN,
    timeoutMs: opts.timeoutMs ?? 2000,
    now: () => clock.now,
    log,
    ...(opts.who === undefined ? {} : { who: opts.who }),
  });
  return { fleet: f, clock, lines };
}

const json = async <T>(url: string): Promise<T> => JSON.parse((await send(url)).body.toString()) as T;
const weightsOf = async (r: { url: string }) => (await json<{ weights: Record<string, number> }>(`${r.url}/weights`)).weights;
const historyOf = async (r: { url: string }) => (await json<{ history: { who: string; reason: string | null; source: string; to: object }[] }>(`${r.url}/history`)).history;

const byUrl = (reports: readonly ReplicaReport[], url: string): ReplicaReport => reports.find((r) => r.url === url)!;

t.test('replicas already at the weights are in sync, and nothing is written', async (t) => {
  const rs = await Promise.all([replica(t), replica(t), replica(t)]);
  const { fleet: f, lines } = fleet(staticTargets(rs.map((r) => r.url)));
  const reports = await f.reconcile({ flask: 95, fastapi: 5 }, 'hold');
  t.strictSame(
    reports,
    rs.map((r) => ({ url: r.url, status: 'in_sync', weights: { flask: 95, fastapi: 5 }, detail: 'at flask=95, fastapi=5', at: '2031-05-04T12:00:00.000Z' })),
  );
  t.strictSame(f.replicas, reports, 'replicas: the last reports');
  await f.release();
  for (const r of rs) t.equal((await historyOf(r)).length, 1, 'only the start-up entry: no write');
  t.strictSame(lines, [], 'nothing to say, and no claim to release');
});

t.test('a replica with other weights is corrected, with who and why in its audit trail', async (t) => {
  const [a, b, c] = await Promise.all([replica(t), replica(t), replica(t, { weights: ['fastapi=20'] })]);
  const { fleet: f, clock, lines } = fleet(staticTargets([a!.url, b!.url, c!.url]));
  const desired = { flask: 95, fastapi: 5 };
  const reports = await f.reconcile(desired, 'canary step 1');
  t.strictSame(reports.map((r) => r.status), ['in_sync', 'in_sync', 'corrected']);
  t.strictSame(byUrl(reports, c!.url), {
    url: c!.url,
    status: 'corrected',
    weights: { flask: 80, fastapi: 20 },
    detail: 'had flask=80, fastapi=20; set to flask=95, fastapi=5',
    at: '2031-05-04T12:00:00.000Z',
  });
  t.strictSame(await weightsOf(c!), desired, 'it has the desired weights now');
  t.match((await historyOf(c!)).at(-1), { source: 'admin', who: 'controller', reason: 'canary step 1', to: desired }, 'the token\'s name and the reason');
  t.equal((await historyOf(a!)).length, 1, 'the others were not written');
  t.match(lines, [{ level: INFO, replica: c!.url, status: 'corrected', msg: `replica ${c!.url} set to the fleet's weights: had flask=80, fastapi=20; set to flask=95, fastapi=5` }]);
  t.equal(lines.length, 1);

  clock.now += 10_000;
  const next = await f.reconcile(desired, 'canary step 1');
  t.strictSame(next.map((r) => [r.status, r.at]), Array(3).fill(['in_sync', '2031-05-04T12:00:10.000Z']), 'the next interval: all in sync');
  t.equal(lines.length, 1, 'and nothing more said');

  // It drifts (someone set it by hand): the weights are the same as last time, so it lost them.
  c!.store.change([['fastapi', 3000]], { source: 'admin', who: 'alice' });
  await f.reconcile(desired, 'canary step 1');
  t.equal(lines.length, 2);
  t.match(lines[1], { level: INFO, replica: c!.url, msg: `replica ${c!.url} restarted with old weights or drifted: had flask=70, fastapi=30; set to flask=95, fastapi=5` });

  // The next step: every replica written, each write logged, none of them a drift: promoted.
  const step2 = { flask: 90, fastapi: 10 };
  t.strictSame((await f.reconcile(step2, 'canary step 2')).map((r) => r.status), ['promoted', 'promoted', 'promoted']);
  t.strictSame(
    lines.slice(2).map((l) => l.msg),
    [a!, b!, c!].map((r) => `replica ${r.url} set to the fleet's weights: had flask=95, fastapi=5; set to flask=90, fastapi=10`),
  );
  for (const r of [a!, b!, c!]) t.strictSame(await weightsOf(r), step2);
  // A rollback: reduced, not corrected either.
  t.strictSame((await f.reconcile({ flask: 100, fastapi: 0 }, 'rollback')).map((r) => r.status), ['reduced', 'reduced', 'reduced']);
});

t.test("a write's status: how the fleet's weights moved, by the baseline's share", async (t) => {
  const table: [before: Record<string, number>, after: Record<string, number>, status: string | undefined][] = [
    [{ flask: 95, fastapi: 5 }, { flask: 90, fastapi: 10 }, 'promoted'],
    [{ flask: 90, fastapi: 10 }, { flask: 100, fastapi: 0 }, 'reduced'],
    [{ flask: 90, fastapi: 10 }, { flask: 90.004, fastapi: 9.996 }, undefined],
    [{ flask: 90, a: 10, b: 0 }, { flask: 90, a: 5, b: 5 }, 'updated'],
    [{ flask: 90, a: 10, b: 0 }, { flask: 89.99, a: 5, b: 5.01 }, 'promoted'],
  ];
  for (const [before, after, status] of table) t.equal(fleetMove('flask', before, after), status, `${JSON.stringify(before)} → ${JSON.stringify(after)}`);
});

t.test('a replica that stops is unreachable, said once; back, it is corrected at the next reconcile', async (t) => {
  const [a, b, c] = await Promise.all([replica(t), replica(t), replica(t)]);
  const port = c!.adminAddress.port;
  await c!.close();
  const { fleet: f, clock, lines } = fleet(staticTargets([a!.url, b!.url, c!.url]));
  const desired = { flask: 90, fastapi: 10 };

  const first = await f.reconcile(desired, 'step 2');
  t.strictSame(first.map((r) => r.status), ['corrected', 'corrected', 'unreachable'], 'the others are still driven');
  t.match(byUrl(first, c!.url), { status: 'unreachable', weights: null, detail: `connect ECONNREFUSED 127.0.0.1:${port}` });
  t.strictSame(await weightsOf(a!), desired);
  t.strictSame(await weightsOf(b!), desired);
  t.match(
    lines.filter((l) => l.level === WARN),
    [{ replica: c!.url, status: 'unreachable', msg: `replica ${c!.url} is unreachable: connect ECONNREFUSED 127.0.0.1:${port}` }],
  );

  const said = lines.length;
  clock.now += 10_000;
  for (let i = 0; i < 3; i++) t.equal(byUrl(await f.reconcile(desired, 'step 2'), c!.url).status, 'unreachable');
  t.equal(lines.length, said, 'the outage is not said again at every interval');

  // It comes back on the same address, restarted with its old weights.
  const back = await replica(t, { admin: `127.0.0.1:${port}` });
  clock.now += 10_000;
  const after = await f.reconcile(desired, 'step 2');
  t.strictSame(after.map((r) => r.status), ['in_sync', 'in_sync', 'corrected']);
  t.match(byUrl(after, back.url), { weights: { flask: 95, fastapi: 5 }, detail: 'had flask=95, fastapi=5; set to flask=90, fastapi=10', at: '2031-05-04T12:00:20.000Z' });
  t.strictSame(await weightsOf(back), desired);
  t.match(lines.slice(said), [{ level: INFO, replica: back.url, status: 'corrected', msg: /restarted with old weights or drifted/ }]);
  t.equal(lines.length, said + 1, 'its return said once');
  await f.reconcile(desired, 'step 2');
  t.equal(lines.length, said + 1, 'and in sync after that, quietly');
});

t.test('a replica that does not take our token is unauthorized; the others are still driven', async (t) => {
  const [a, other] = await Promise.all([replica(t), replica(t, { auth: { env: { DRUM_SPLITTER_ADMIN_TOKEN: OTHER_TOKEN } } })]);
  const desired = { flask: 90, fastapi: 10 };
  const { fleet: f, lines } = fleet(staticTargets([a.url, other.url]));
  const reports = await f.reconcile(desired, 'step 2');
  t.match(reports, [
    { url: a.url, status: 'corrected' },
    { url: other.url, status: 'unauthorized', weights: { flask: 95, fastapi: 5 }, detail: '401: the token is not accepted (misconfigured)' },
  ]);
  t.strictSame(await weightsOf(other), { flask: 95, fastapi: 5 }, 'unchanged');
  t.match(lines, [
    { level: INFO, replica: a.url },
    { level: WARN, replica: other.url, status: 'unauthorized', msg: `replica ${other.url} refuses the controller's writes: 401: the token is not accepted (misconfigured)` },
  ]);

  const anonymous = fleet(staticTargets([other.url]), { token: undefined, who: 'fleet-controller' });
  t.match(await anonymous.fleet.reconcile(desired, 'step 2'), [
    { status: 'unauthorized', detail: '401: no token was given and the replica wants one (misconfigured)' },
  ]);
  t.match(anonymous.lines, [{ msg: /refuses the fleet-controller's writes/, who: 'fleet-controller' }], 'who names the writer in the log');
});

t.test('a replica with other upstreams rejects the weights, with its reason', async (t) => {
  const [a, noFastapi, extra] = await Promise.all([
    replica(t),
    replica(t, { upstreams: ['flask=http://127.0.0.1:1', 'canary=http://127.0.0.1:1'], weights: ['canary=5'] }),
    // A third upstream with a share of its own: flask cannot get what we ask.
    replica(t, { upstreams: [...CANARY, 'other=http://127.0.0.1:1'], weights: ['fastapi=5', 'other=5'] }),
  ]);
  const { fleet: f, lines } = fleet(staticTargets([a.url, noFastapi.url, extra.url]));
  const reports = await f.reconcile({ flask: 90, fastapi: 10 }, 'step 2');
  t.match(reports, [
    { status: 'corrected' },
    { status: 'rejected', weights: { flask: 95, canary: 5 }, detail: 'has no upstream fastapi (has flask, canary): its config differs' },
    { status: 'rejected', weights: { flask: 90, fastapi: 5, other: 5 }, detail: /^400: weights\.flask: flask is the baseline and takes the rest, 85%/ },
  ]);
  t.equal((await historyOf(noFastapi)).length, 1, 'nothing written where it would not fit');
  t.strictSame(await weightsOf(extra), { flask: 90, fastapi: 5, other: 5 }, 'a rejected write changes nothing');
  t.match(lines.filter((l) => l.level === WARN), [
    { replica: noFastapi.url, msg: /rejects the weights: has no upstream fastapi/ },
    { replica: extra.url, msg: /rejects the weights: 400: / },
  ]);
  await f.reconcile({ flask: 90, fastapi: 10 }, 'step 2');
  t.equal(lines.length, 3, 'said once');
});

t.test('an outage that ends with the replica already right: its end said once', async (t) => {
  const r = await replica(t, { weights: ['fastapi=10'] });
  let down = true;
  const url = await relay(t, r.url, () => (down ? 'fail' : undefined));
  const { fleet: f, lines } = fleet(staticTargets([url]));
  const desired = { flask: 90, fastapi: 10 };
  t.match(await f.reconcile(desired, 'step 2'), [{ status: 'unreachable', weights: null, detail: '502: no healthy upstream' }]);
  down = false;
  t.match(await f.reconcile(desired, 'step 2'), [{ status: 'in_sync' }]);
  await f.reconcile(desired, 'step 2');
  t.match(lines, [
    { level: WARN, msg: `replica ${url} is unreachable: 502: no healthy upstream` },
    { level: INFO, status: 'in_sync', msg: `replica ${url} is in sync again: at flask=90, fastapi=10` },
  ]);
  t.equal(lines.length, 2);
});

/**
 * A real HTTP hop in front of a replica. `hook` runs before each request is passed on (the
 * n-th of its method): it may write to the replica, as another writer would, or answer 502 itself.
 */
async function relay(t: Test, target: string, hook: (method: string, n: number) => 'fail' | void, host?: string): Promise<string> {
  const counts = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const n = (counts.get(req.method!) ?? 0) + 1;
      counts.set(req.method!, n);
      if (hook(req.method!, n) === 'fail') {
        res.writeHead(502, { 'content-type': 'application/json' }).end('{"error":"bad_gateway","message":"no healthy upstream"}');
        return;
      }
      const out = httpRequest(`${target}${req.url}`, { method: req.method, headers: { ...req.headers, host: host ?? new URL(target).host } }, (up) => {
        res.writeHead(up.statusCode!, up.headers);
        up.pipe(res);
      });
      out.end(Buffer.concat(chunks));
    });
  });
  return listen(t, server);
}

async function listen(t: Test, server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test('another writer between our read and our write', async (t) => {
  const desired = { flask: 90, fastapi: 10 };
  // A person through the replica's own API (a change by its config file is taken, not fought: below).
  const by = { source: 'admin', who: 'alice' } as const;

  t.test('once: 409, read again, written', async (t) => {
    const r = await replica(t);
    const url = await relay(t, r.url, (method, n) => void (method === 'PUT' && n === 1 && r.store.change([['fastapi', 700]], by)));
    const [report] = await fleet(staticTargets([url])).fleet.reconcile(desired, 'step 2');
    t.match(report, { status: 'corrected', weights: { flask: 95, fastapi: 5 }, detail: 'had flask=95, fastapi=5; set to flask=90, fastapi=10' });
    t.strictSame(await weightsOf(r), desired);
    t.strictSame((await historyOf(r)).map((h) => h.who), ['startup', 'alice', 'controller']);
  });

  t.test('it set the same weights: in sync, nothing written', async (t) => {
    const r = await replica(t);
    const url = await relay(t, r.url, (method) => void (method === 'PUT' && r.store.change([['fastapi', 1000]], by)));
    const [report] = await fleet(staticTargets([url])).fleet.reconcile(desired, 'step 2');
    t.match(report, { status: 'in_sync', weights: { flask: 95, fastapi: 5 }, detail: 'at flask=90, fastapi=10' });
    t.strictSame((await historyOf(r)).map((h) => h.who), ['startup', 'alice']);
  });

  t.test('every time: rejected after the second try', async (t) => {
    const r = await replica(t);
    const url = await relay(t, r.url, (method, n) => void (method === 'PUT' && r.store.change([['fastapi', 2000 + n]], by)));
    const [report] = await fleet(staticTargets([url])).fleet.reconcile(desired, 'step 2');
    t.match(report, { status: 'rejected', weights: { flask: 95, fastapi: 5 }, detail: 'another writer keeps changing its weights (now flask=79.98, fastapi=20.02, version 3)' });
    t.strictSame((await historyOf(r)).map((h) => h.who), ['startup', 'alice', 'alice'], 'we never wrote over it');
  });

  t.test('right after our write: read back, written again', async (t) => {
    const r = await replica(t);
    // The second GET is the read-back of our first write.
    const url = await relay(t, r.url, (method, n) => void (method === 'GET' && n === 2 && r.store.change([['fastapi', 700]], by)));
    const [report] = await fleet(staticTargets([url])).fleet.reconcile(desired, 'step 2');
    t.match(report, { status: 'corrected', detail: 'had flask=95, fastapi=5; set to flask=90, fastapi=10' });
    t.strictSame((await historyOf(r)).map((h) => h.who), ['startup', 'controller', 'alice', 'controller']);
  });

  t.test('the replica stops answering in between: unreachable, with what it had', async (t) => {
    const [r1, r2] = await Promise.all([replica(t), replica(t)]);
    const afterConflict = await relay(t, r1!.url, (method, n) => {
      if (method === 'PUT') r1!.store.change([['fastapi', 700]], by);
      return method === 'GET' && n === 2 ? 'fail' : undefined;
    });
    const afterWrite = await relay(t, r2!.url, (method, n) => (method === 'GET' && n === 2 ? 'fail' : undefined));
    const { fleet: f } = fleet(staticTargets([afterConflict, afterWrite]));
    const detail = '502: no healthy upstream';
    t.match(await f.reconcile(desired, 'step 2'), [
      { status: 'unreachable', weights: { flask: 95, fastapi: 5 }, detail },
      { status: 'unreachable', weights: { flask: 95, fastapi: 5 }, detail },
    ]);
  });
});

t.test('a replica without tokens, reached by a name that is not loopback: 403, unauthorized', async (t) => {
  const r = await replica(t, { auth: 'none' });
  const url = await relay(t, r.url, () => undefined, 'drum-splitter-0.drum-splitter:9901');
  const [report] = await fleet(staticTargets([url])).fleet.reconcile({ flask: 90, fastapi: 10 }, 'step 2');
  t.match(report, { status: 'unauthorized', detail: /^403: without a token, the admin API answers only a loopback Host .*not "drum-splitter-0\.drum-splitter:9901"/ });
});

t.test('something that is not a drum-splitter admin API', async (t) => {
  const held: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    if (req.url!.startsWith('/hang/')) return void held.push(req); // never answers
    if (req.url!.startsWith('/down/')) return void res.writeHead(503, { 'content-type': 'text/plain' }).end('Service Unavailable\n');
    if (req.url!.startsWith('/missing/')) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Route GET:/missing/weights not found"}');
    if (req.url!.startsWith('/null/')) return void res.writeHead(200, { 'content-type': 'application/json' }).end('null');
    if (req.url!.startsWith('/odd/')) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"weights":{"flask":"95"},"version":1}');
    res.writeHead(200, { 'content-type': 'text/html' }).end(`<html>${'x'.repeat(300)}</html>`);
  });
  const base = await listen(t, server);
  const targets = staticTargets(['hang', 'down', 'missing', 'html', 'null', 'odd'].map((p) => `${base}/${p}`));
  const { fleet: f, lines } = fleet(targets, { timeoutMs: 300 });
  const started = Date.now();
  const reports = await f.reconcile({ flask: 90, fastapi: 10 }, 'step 2');
  t.ok(Date.now() - started < 2000, 'a replica that hangs costs the timeout, not more');
  const notAdmin = /^GET \/weights answered without weights and a version, not as a drum-splitter admin API: /;
  t.match(reports, [
    { status: 'unreachable', weights: null, detail: 'GET /weights: no answer within 300 ms' },
    { status: 'unreachable', weights: null, detail: '503: Service Unavailable' },
    { status: 'rejected', weights: null, detail: '404: Route GET:/missing/weights not found' },
    { status: 'rejected', weights: null, detail: notAdmin },
    { status: 'rejected', detail: notAdmin },
    { status: 'rejected', detail: notAdmin },
  ]);
  t.ok(reports[3]!.detail.endsWith('x…'), 'a long body cut to one short line');
  t.ok(reports[3]!.detail.length < 320);
  t.equal(lines.length, 6);
});

t.test('dnsTargets: every address of the name, each reconciled', async (t) => {
  const port = await freePort();
  const v4 = await replica(t, { admin: `127.0.0.1:${port}` });
  // ::1 on the same port: a second replica, as a dual-stack name would list it.
  const v6 = await replica(t, { admin: `[::1]:${port}`, weights: ['fastapi=20'] });
  t.equal(v6.url, `http://[::1]:${port}`);
  const asked: [string, object][] = [];
  let answer = [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }, { address: '127.0.0.1', family: 4 }];
  const lookup: Lookup = async (name, opts) => {
    asked.push([name, opts]);
    return answer;
  };
  const targets = dnsTargets(`localhost:${port}`, lookup);
  t.strictSame(await targets.list(), [`http://127.0.0.1:${port}`, `http://[::1]:${port}`], 'IPv6 in brackets, each address once');
  t.strictSame(asked, [['localhost', { all: true }]]);

  const { fleet: f, lines } = fleet(targets);
  const desired = { flask: 90, fastapi: 10 };
  t.match(await f.reconcile(desired, 'step 2'), [
    { url: `http://127.0.0.1:${port}`, status: 'corrected' },
    { url: `http://[::1]:${port}`, status: 'corrected', weights: { flask: 80, fastapi: 20 } },
  ]);
  t.strictSame(await weightsOf(v4), desired);
  t.strictSame(await weightsOf(v6), desired);

  // A pod goes away: the name lists one address fewer, and its report goes with it.
  answer = [{ address: '127.0.0.1', family: 4 }];
  t.match(await f.reconcile(desired, 'step 2'), [{ url: `http://127.0.0.1:${port}`, status: 'in_sync' }]);
  t.strictSame(f.replicas.map((r) => r.url), [`http://127.0.0.1:${port}`]);
  t.match(lines.at(-1), { level: INFO, replica: `http://[::1]:${port}`, msg: `replica http://[::1]:${port} is no longer listed` });

  // The name cannot be resolved: reconcile rejects, for the caller to report.
  const failing = fleet(dnsTargets(`drum-splitter-admin.default.svc.cluster.local:${port}`, async () => {
    throw Object.assign(new Error('getaddrinfo ENOTFOUND drum-splitter-admin.default.svc.cluster.local'), { code: 'ENOTFOUND' });
  }));
  await t.rejects(failing.fleet.reconcile(desired, 'step 2'), {
    message: 'cannot resolve drum-splitter-admin.default.svc.cluster.local: getaddrinfo ENOTFOUND drum-splitter-admin.default.svc.cluster.local',
  });
  t.strictSame(failing.fleet.replicas, []);

  // The system's resolver by default.
  const resolved = await dnsTargets(`localhost:${port}`).list();
  t.ok(resolved.length > 0 && resolved.every((u) => u === `http://127.0.0.1:${port}` || u === `http://[::1]:${port}`), resolved.join(' '));
});

t.test('dnsTargets takes only NAME:PORT', async (t) => {
  const bad = ['', 'drum-splitter', 'drum-splitter:', ':9901', 'drum-splitter:0', 'drum-splitter:65536', 'drum-splitter:99999', 'drum-splitter:http',
    'http://drum-splitter:9901', 'drum splitter:9901', '-drum:9901', 'drum-:9901', 'a..b:9901', '127.0.0.1:9901:1', '[::1]:9901'];
  for (const value of bad) {
    t.throws(() => dnsTargets(value), { name: 'InputError', field: '--proxies-dns', message: `--proxies-dns: "${value}" is not NAME:PORT (a headless Service's DNS name and the admin port, e.g. drum-splitter-admin.default.svc.cluster.local:9901)` }, value);
  }
  for (const value of ['drum-splitter-admin.default.svc.cluster.local.:9901', 'a:1', 'x:65535', '10.0.0.3:9901']) {
    t.doesNotThrow(() => dnsTargets(value), value);
  }
});

t.test('staticTargets: URLs or HOST:PORT, each once', async (t) => {
  const targets = staticTargets(['http://10.0.0.3:9901/', '10.0.0.3:9901', 'https://admin.example/drum/', '[::1]:9901']);
  t.strictSame(await targets.list(), ['http://10.0.0.3:9901', 'https://admin.example/drum', 'http://[::1]:9901']);
  t.throws(() => staticTargets(['http://[bad']), { name: 'InputError', field: '--proxy', message: '--proxy: "http://[bad" is not a URL or HOST:PORT' });
});

t.test("a replica's config file changed its weights: reported as file_changed, never written over", async (t) => {
  const r = await replica(t);
  r.store.change([['fastapi', 0]], { source: 'file', who: '/etc/drum-splitter/config.yaml', reason: 'config file changed' });
  const { fleet: f } = fleet(staticTargets([r.url]));
  const [report] = await f.reconcile({ flask: 90, fastapi: 10 }, 'step 2');
  t.match(report, { status: 'file_changed', weights: { flask: 100, fastapi: 0 }, detail: 'its config file set flask=100, fastapi=0' });
  t.strictSame(await weightsOf(r), { flask: 100, fastapi: 0 }, 'left as the file set it');
  t.match(await f.reconcile({ flask: 100, fastapi: 0 }, 'the file'), [{ status: 'in_sync' }], 'once the fleet takes them: in sync');
});
