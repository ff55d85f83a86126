/**
 * A real Prometheus (Debian's) scrapes drum-splitter and answers the seed's dashboard queries,
 * as written in CANARY_DEPLOYMENT.md, per server_type; and the fleet controller's, which leave out
 * what cohort rules took.
 */
import t from 'tap';
import { startApp } from '../src/app.js';
import { send, silentLog, startUpstream } from './helpers/net.js';
import { prometheusMissing, startPrometheus } from './helpers/prometheus.js';
import { fleetQueries } from '../src/fleet/prometheus.js';
const MiB = 1024 * 1024;

const SEED_QUERIES = {
  rate: 'sum(rate(drum_requests_total[5m])) by (server_type)',
  p99: 'histogram_quantile(0.99, sum(rate(drum_request_duration_seconds_bucket[5m])) by (le, server_type))',
  errors: 'sum(rate(drum_requests_total{status=~"5.."}[5m])) by (server_type) / sum(rate(drum_requests_total[5m])) by (server_type)',
  memory: 'avg(drum_memory_bytes{type="rss"}) by (server_type)',
};

const drumLike = (rssMb: number) => (req: { url?: string }, res: { statusCode: number; end: (s: string) => void }) => {
  if (req.url === '/stats/') return res.end(JSON.stringify({ mem_info: { drum_rss: rssMb } }));
  res.statusCode = req.url === '/fail' ? 500 : 200;
  res.end('{}');
};

t.test('the seed dashboard queries, on a real Prometheus', { skip: prometheusMissing }, async (t) => {
  const flask = await startUpstream('flask', drumLike(100));
  const fastapi = await startUpstream('fastapi', drumLike(150));
  const app = await startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', overrideHeader: 'X-To', pollInterval: '500ms', upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`], weights: ['fastapi=5'],
    routes: [{ name: 'beta', match: { header: { 'x-beta': '1' } }, upstream: 'fastapi' }] } },
    { env: {}, log: silentLog },
  );
  const { query, eventually } = await startPrometheus(t, [`127.0.0.1:${app.adminAddress.port}`]);
  t.teardown(async () => {
    await app.close();
    await Promise.all([flask.close(), fastapi.close()]);
  });

  // Traffic only once Prometheus scrapes the proxy, so it lands across several scrapes.
  await eventually('up{job="drum-splitter"} == 1', (r) => Object.keys(r).length > 0);

  // Traffic for about 6 s: per round 7 good and 3 failing on flask, 5 good on fastapi and 5 more
  // the beta rule takes there — so flask's error rate is 3/10 whatever the timing.
  const traffic = `http://127.0.0.1:${app.proxy.address.port}`;
  const until = Date.now() + 6000;
  while (Date.now() < until) {
    await Promise.all([
      ...Array.from({ length: 7 }, () => send(`${traffic}/predict/`, { headers: { 'x-to': 'flask' } })),
      ...Array.from({ length: 3 }, () => send(`${traffic}/fail`, { headers: { 'x-to': 'flask' } })),
      ...Array.from({ length: 5 }, () => send(`${traffic}/predict/`, { method: 'POST', body: 'a,b\n1,2\n', headers: { 'x-to': 'fastapi' } })),
      ...Array.from({ length: 5 }, () => send(`${traffic}/predict/`, { headers: { 'x-beta': '1' } })),
    ]);
    await new Promise((r) => setTimeout(r, 50));
  }
  // Until the scrapes after the last round are in: the count has not moved for 2.5 s
  // (more than two scrape intervals).
  let total = -1;
  let since = Date.now();
  await eventually('sum(drum_requests_total)', (r) => {
    const now = Object.values(r)[0] ?? 0;
    if (now !== total) [total, since] = [now, Date.now()];
    return now > 0 && Date.now() - since > 2500;
  });

  const rate = await query(SEED_QUERIES.rate);
  t.ok(rate.flask! > 0 && rate.fastapi! > 0, `request rate per server_type: ${JSON.stringify(rate)}`);
  t.ok(Math.abs(rate.flask! / rate.fastapi! - 1) < 0.1, 'flask gets the rate of fastapi, as sent: every request counts, the routed too');

  // The fleet controller's queries: the split's requests (route=""), and apart from them the beta rule's.
  const fleet = fleetQueries({ baseline: 'flask', canary: 'fastapi' }, 60);
  const one = async (q: string): Promise<number | undefined> => Object.values(await query(q))[0];
  const [split, routed, flaskRouted, matched] = await Promise.all([one(fleet['requests:fastapi']!), one(fleet['routed:fastapi']!), one(fleet['routed:flask']!), query('drum_route_matches_total', 'route')]);
  t.ok(split! > 0 && Math.abs(routed! / split! - 1) < 0.1, `fastapi: the split's ${split} requests judged, the beta rule's ${routed} apart`);
  t.equal(flaskRouted, undefined, 'no rule took any to flask: no series');
  t.ok(matched.beta! > 0 && Object.keys(matched).length === 1, `drum_route_matches_total{route="beta"} ${matched.beta}`);

  const p99 = await query(SEED_QUERIES.p99);
  for (const s of ['flask', 'fastapi']) t.ok(p99[s]! > 0 && p99[s]! <= 30, `${s} p99 ${p99[s]} s`);

  const errors = await query(SEED_QUERIES.errors);
  t.ok(Math.abs(errors.flask! - 0.3) < 0.02, `flask error rate ${errors.flask} ≈ 3/10`);
  // No 5xx series exists for fastapi, so the seed's division has no result for it: Prometheus
  // drops series without a match on the other side (the panel shows no line, not 0).
  t.same(Object.keys(errors), ['flask'], 'fastapi, which had no 5xx, has no error-rate series');

  t.same(await query(SEED_QUERIES.memory), { flask: 100 * MiB, fastapi: 150 * MiB }, 'memory per server_type, in bytes');
});
