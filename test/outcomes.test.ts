/** One outcome per exchange: what metrics, the access log and (next) the rollout windows are built from. */
import t from 'tap';
import { Outcomes, type Outcome } from '../src/outcomes.js';
import { sampleSum } from './helpers/metrics.js';
import { freePort, rawExchange, send, startTestProxy, startUpstream } from './helpers/net.js';

t.test('Outcomes: listeners hear each outcome once, until they unsubscribe', async (t) => {
  const bus = new Outcomes();
  const a: number[] = [];
  const b: number[] = [];
  const offA = bus.subscribe((o) => a.push(o.status));
  bus.subscribe((o) => b.push(o.status));
  const outcome = (status: number): Outcome => ({ serverType: 'x', upstream: 'x', status, origin: 'upstream', method: 'GET', url: '/', client: '', seconds: 0, clientGone: false });
  bus.publish(outcome(200));
  offA();
  bus.publish(outcome(500));
  t.same([a, b], [[200], [200, 500]]);
});

t.test('every exchange publishes exactly one outcome, and the counters are built from them', async (t) => {
  const up = await startUpstream('flask');
  const down = `http://127.0.0.1:${await freePort()}`;
  const proxy = await startTestProxy({ upstreams: [`flask=${up.url}`, `fastapi=${down}`], overrideHeader: 'X-Force' });
  t.teardown(async () => {
    await proxy.close(0);
    await up.close();
  });
  const seen: Outcome[] = [];
  proxy.outcomes.subscribe((o) => seen.push(o));
  t.equal((await send(`${proxy.url}/predict/`, { method: 'POST', body: 'a,b\n1,2\n' })).status, 200);
  t.equal((await send(`${proxy.url}/ping`, { headers: { 'x-force': 'fastapi' } })).status, 502);
  await rawExchange(proxy.address.port, 'GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n');
  await rawExchange(proxy.address.port, 'BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n');
  await new Promise((r) => setTimeout(r, 20));
  t.match(seen, [
    { serverType: 'flask', upstream: 'flask', status: 200, origin: 'upstream', method: 'POST', url: '/predict/', client: '127.0.0.1', clientGone: false },
    { serverType: 'fastapi', upstream: 'fastapi', status: 502, origin: 'proxy', method: 'GET', url: '/ping' },
    { serverType: 'none', upstream: undefined, status: 400, origin: 'proxy', method: 'GET', url: '/x' },
    { serverType: 'none', upstream: undefined, status: 400, origin: 'proxy', method: undefined, client: '127.0.0.1' },
  ]);
  t.equal(seen.length, 4, 'one each');
  t.ok(seen[0]!.seconds > 0 && seen[0]!.seconds < 5, 'timed');
  const text = await proxy.metrics.text();
  t.equal(sampleSum(text, 'drum_requests_total'), seen.length, 'drum_requests_total counts exactly the outcomes');
  t.equal(sampleSum(text, 'drum_request_duration_seconds_count'), 2, 'only the exchanges counted against an upstream are timed');
});
