/** One outcome per exchange: what metrics, the access log and (next) the rollout windows are built from. */
import t from 'tap';
import { Outcomes, type Outcome } from '../src/observe/outcomes.js';
import { sampleSum } from './helpers/metrics.js';
import { until } from './helpers/wait.js';
import { freePort, quietLists, rawExchange, send, startTestProxy, startUpstream } from './helpers/net.js';

t.test('Outcomes: listeners hear each outcome once, until they unsubscribe', async (t) => {
  const bus = new Outcomes(quietLists);
  const a: number[] = [];
  const b: number[] = [];
  const offA = bus.subscribe('a', (o) => a.push(o.status));
  bus.subscribe('b', (o) => b.push(o.status));
  const outcome = (status: number): Outcome => ({ id: 1, serverType: 'x', upstream: 'x', status, sentStatus: status, origin: 'upstream', method: 'GET', url: '/', client: '', seconds: 0, clientGone: false, bytes: 0, requestComplete: true });
  bus.publish(outcome(200));
  offA();
  bus.publish(outcome(500));
  t.same([a, b], [[200], [200, 500]]);
});

t.test('every exchange publishes exactly one outcome, and the counters are built from them', async (t) => {
  const up = await startUpstream('flask');
  const down = `http://127.0.0.1:${await freePort()}`;
  const proxy = await startTestProxy({ upstreams: [`flask=${up.url}`, `fastapi=${down}`], weights: ['fastapi=100'], overrideHeader: 'X-Force' });
  t.teardown(async () => {
    await proxy.close(0);
    await up.close();
  });
  const seen: Outcome[] = [];
  proxy.outcomes.subscribe('test', (o) => seen.push(o));
  const ok = await send(`${proxy.url}/predict/`, { method: 'POST', body: 'a,b\n1,2\n', headers: { 'x-force': 'flask' } });
  t.equal(ok.status, 200);
  // The split's fastapi refuses: the baseline answers (--fallback connect), one outcome carrying the failed attempt.
  const fellBack = await send(`${proxy.url}/ping`);
  t.equal(fellBack.status, 200);
  await rawExchange(proxy.address.port, 'GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n');
  await rawExchange(proxy.address.port, 'BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n');
  await until(() => seen.length >= 4);
  t.match(seen, [
    { id: 1, serverType: 'flask', upstream: 'flask', status: 200, sentStatus: 200, origin: 'upstream', method: 'POST', url: '/predict/', client: '127.0.0.1', clientGone: false, bytes: ok.body.length, requestComplete: true },
    { id: 2, serverType: 'flask', upstream: 'flask', status: 200, sentStatus: 200, origin: 'upstream', method: 'GET', url: '/ping', bytes: fellBack.body.length, fallback: { from: 'fastapi', reason: 'refused', status: 502 } },
    { id: 0, serverType: 'none', upstream: undefined, status: 400, origin: 'proxy', method: 'GET', url: '/x' },
    { id: 0, serverType: 'none', upstream: undefined, status: 400, origin: 'proxy', method: undefined, client: '127.0.0.1' },
  ]);
  t.ok(seen.every((o) => o.bytes > 0), 'every answer had a body, and its bytes are counted');
  t.equal(seen.length, 4, 'one each');
  t.ok(seen[0]!.seconds > 0 && seen[0]!.seconds < 5, 'timed');
  const text = await proxy.metrics.text();
  t.equal(sampleSum(text, 'drum_requests_total'), seen.length + 1, 'drum_requests_total counts exactly the outcomes, and the failed attempt one carries');
  t.equal(sampleSum(text, 'drum_requests_total', { server_type: 'fastapi', status: '502', origin: 'proxy' }), 1, 'the failed attempt, against the upstream that failed');
  t.equal(sampleSum(text, 'drum_request_duration_seconds_count'), 3, 'only the exchanges counted against an upstream are timed');
});

t.test('a subscriber that throws during a real exchange: the client has its answer, the other subscribers still hear, it is counted, nothing is uncaught', async (t) => {
  const up = await startUpstream('flask');
  const proxy = await startTestProxy({ upstreams: [`flask=${up.url}`] });
  t.teardown(async () => {
    await proxy.close(0);
    await up.close();
  });
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => void uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  t.teardown(() => void process.off('uncaughtException', onUncaught));
  proxy.outcomes.subscribe('broken', () => {
    throw new Error('a window that broke');
  });
  const after: Outcome[] = [];
  proxy.outcomes.subscribe('after', (o) => after.push(o));
  const answers = [await send(`${proxy.url}/predict/`, { method: 'POST', body: 'a,b\n1,2\n' }), await send(`${proxy.url}/ping`)];
  t.same(answers.map((a) => a.status), [200, 200], 'each client had its answer');
  await until(() => after.length === 2);
  t.same(after.map((o) => o.url), ['/predict/', '/ping'], 'the subscriber after the broken one heard both');
  const text = await proxy.metrics.text();
  t.equal(sampleSum(text, 'drum_subscriber_errors_total', { subscriber: 'outcomes/broken' }), 2, 'counted');
  t.equal(sampleSum(text, 'drum_requests_total'), 2, 'the metrics, subscribed before it, counted both');
  t.same(uncaught, [], 'no uncaught exception');
});

t.test('a client that leaves before the answer: 499, no status line sent, its bytes so far', async (t) => {
  const up = await startUpstream('slow', (_req, res) => setTimeout(() => res.end('late'), 300));
  const proxy = await startTestProxy({ upstreams: [`slow=${up.url}`] });
  t.teardown(async () => {
    await proxy.close(0);
    await up.close();
  });
  const ended = new Promise<Outcome>((resolve) => proxy.outcomes.subscribe('test', resolve));
  await t.rejects(send(`${proxy.url}/predict/`, { method: 'POST', body: 'x', signal: AbortSignal.timeout(50) }));
  t.match(await ended, { status: 499, sentStatus: 0, clientGone: true, origin: 'proxy', bytes: 0, requestComplete: true, upstream: 'slow' });
});
