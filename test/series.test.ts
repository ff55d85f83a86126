/** The console's samples (GET /series): each interval's rate, errors, p50/p99 and memory, an hour of them, on an injected clock. */
import { fastify } from 'fastify';
import t from 'tap';
import { request } from 'undici';
import { startApp } from '../src/app.js';
import { consoleAssets, consoleRoutes } from '../src/admin/console.js';
import { Outcomes, type Outcome } from '../src/observe/outcomes.js';
import type { PollSample } from '../src/observe/poller.js';
import { Series } from '../src/observe/series.js';
import { quietLists, send, silentLog, startUpstream } from './helpers/net.js';
import { until } from './helpers/wait.js';

const outcome = (serverType: string, status: number, seconds: number): Outcome => ({
  id: 1, serverType, upstream: serverType, status, sentStatus: status, origin: 'upstream', method: 'POST', url: '/predict/', client: '', seconds, clientGone: false, bytes: 1, requestComplete: true,
});

function rig() {
  let now = Date.parse('2026-11-30T00:00:00Z');
  const outcomes = new Outcomes(quietLists);
  const polls = new Set<(s: PollSample) => void>();
  const series = new Series({ upstreams: ['flask', 'fastapi'], intervalMs: 10_000, now: () => now, random: () => 0.5 });
  series.listen(outcomes, { subscribe: (_name, l) => (polls.add(l), () => polls.delete(l)) });
  return { series, outcomes, poll: (s: PollSample) => polls.forEach((l) => l(s)), advance: (ms: number) => (now += ms), polls };
}

t.test('a point per interval: rate, error rate, nearest-rank p50 and p99, the last RSS', async (t) => {
  const r = rig();
  for (let i = 1; i <= 100; i++) r.outcomes.publish(outcome('flask', i <= 2 ? 503 : 200, i / 1000));
  r.outcomes.publish(outcome('none', 400, 0));
  r.poll({ upstream: 'flask', at: 0, kind: 'stats', memory: { rss: 100 * 2 ** 20, containerMaxUsed: undefined, containerLimit: undefined } });
  r.poll({ upstream: 'fastapi', at: 0, kind: 'stats', memory: undefined });
  r.poll({ upstream: 'fastapi', at: 0, kind: 'ping', answered: true });
  r.advance(10_000);
  r.series.tick();
  const view = r.series.view();
  t.same({ ...view, samples: [] }, { intervalMs: 10_000, upstreams: ['flask', 'fastapi'], baseline: 'flask', samples: [], ping: { flask: null, fastapi: true } }, 'ping: the last answer, or null before any');
  t.same(view.samples, [{
    at: '2026-11-30T00:00:10.000Z',
    upstreams: {
      flask: { rps: 10, errorRate: 0.02, p50: 0.05, p99: 0.099, rss: 100 * 2 ** 20 },
      fastapi: { rps: 0, errorRate: null, p50: null, p99: null, rss: null },
    },
  }], "a request counted against no upstream is nobody's; no /stats/ is no memory");
  r.series.tick();
  t.match(r.series.view().samples[1]!.upstreams.flask, { rps: 0, errorRate: null, rss: 100 * 2 ** 20 }, 'the next interval starts empty; memory stays the last known');
});

t.test("the split's exchanges only: those a cohort rule took are left out, one it handed on to the split is in", async (t) => {
  const r = rig();
  for (let i = 0; i < 10; i++) r.outcomes.publish(outcome('fastapi', 200, 0.01));
  for (let i = 0; i < 30; i++) r.outcomes.publish({ ...outcome('fastapi', 500, 1), route: 'beta', routed: true });
  r.outcomes.publish({ ...outcome('fastapi', 200, 0.01), route: 'pinned', routed: false });
  r.advance(10_000);
  r.series.tick();
  t.match(r.series.view().samples[0]!.upstreams.fastapi, { rps: 1.1, errorRate: 0, p99: 0.01 });
});

t.test('bounded: a uniform sample of latencies, an hour of points; stop() stops listening', async (t) => {
  const r = rig();
  for (let i = 0; i < 5000; i++) r.outcomes.publish(outcome('fastapi', 200, i < 2000 ? 0.01 : 0.02));
  r.series.tick();
  const p = r.series.view().samples[0]!.upstreams.fastapi!;
  t.equal(p.rps, 500, 'every request counted');
  t.ok(p.p99 === 0.02 && p.p50 !== null, 'latencies from the reservoir');
  for (let i = 0; i < 400; i++) r.series.tick();
  t.equal(r.series.view().samples.length, 360, 'an hour of 10 s points');
  r.series.stop();
  t.equal(r.polls.size, 0);
  r.outcomes.publish(outcome('fastapi', 200, 1));
  r.series.tick();
  t.equal(r.series.view().samples.at(-1)!.upstreams.fastapi!.rps, 0, 'nothing heard after stop');
});

t.test('the console routes: our files, uPlot bundled, a 404 for anything else (the CSP: admin.test.ts, on every answer)', async (t) => {
  const dir = t.testdir({ 'index.html': '<!doctype html><title>console</title>', 'app.js': 'void 0;', 'notes.txt': 'not served' });
  const app = fastify();
  const about = { server: 'proxy', reads: ['/weights', '/series'] } as const;
  consoleRoutes(app, { about, series: () => ({ intervalMs: 1, upstreams: ['a'], baseline: 'a', samples: [], ping: { a: true } }), assets: consoleAssets(dir) });
  t.teardown(() => app.close());
  const page = await app.inject('/');
  t.match(page, { statusCode: 200, body: '<!doctype html><title>console</title>', headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' } });
  t.match(await app.inject('/console/app.js'), { statusCode: 200, headers: { 'content-type': 'text/javascript; charset=utf-8' } });
  t.match(await app.inject('/console/vendor/uPlot.iife.min.js'), { statusCode: 200, body: /uPlot/ });
  t.match(await app.inject('/console/vendor/uPlot.min.css'), { statusCode: 200, headers: { 'content-type': 'text/css; charset=utf-8' } });
  for (const path of ['/console/notes.txt', '/console/../package.json', '/console/nothing.js']) t.equal((await app.inject(path)).statusCode, 404, path);
  t.same((await app.inject('/series')).json(), { intervalMs: 1, upstreams: ['a'], baseline: 'a', samples: [], ping: { a: true } });
  t.same((await app.inject('/about')).json(), about);
  t.notOk(consoleAssets(undefined).has('index.html'), 'no console files: only the vendored ones');
  // A fleet controller: the same page, no samples of its own.
  const controller = fastify();
  consoleRoutes(controller, { about: { server: 'controller', reads: ['/weights'] }, assets: consoleAssets(dir) });
  t.teardown(() => controller.close());
  t.equal((await controller.inject('/')).body, '<!doctype html><title>console</title>');
  t.equal((await controller.inject('/series')).statusCode, 404);
});

t.test('in the app: GET /series shows the traffic, a point per interval', async (t) => {
  const flask = await startUpstream('flask');
  const fastapi = await startUpstream('fastapi');
  const app = await startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', overrideHeader: 'X-To', upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`] } }, { env: {}, log: silentLog, seriesIntervalMs: 100 });
  t.teardown(() => Promise.all([app.close(), flask.close(), fastapi.close()]));
  for (let i = 0; i < 20; i++) await send(`http://127.0.0.1:${app.proxy.address.port}/predict/`, { headers: { 'x-to': i % 2 === 0 ? 'flask' : 'fastapi' } });
  type View = { samples: { upstreams: Record<string, { rps: number }> }[] };
  let view: View = { samples: [] };
  const total = (name: string): number => view.samples.reduce((n, s) => n + s.upstreams[name]!.rps * 0.1, 0);
  // Once the interval with the last request has ended.
  await until(async () => {
    view = (await (await request(`http://127.0.0.1:${app.adminAddress.port}/series`)).body.json()) as View;
    return Math.round(total('flask') + total('fastapi')) >= 20;
  });
  t.same([Math.round(total('flask')), Math.round(total('fastapi'))], [10, 10], 'every request in some interval');
});
