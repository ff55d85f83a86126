/** With --workers, the primary hears every worker's outcomes: the stream a rollout judges from. */
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { batchOutcomes, startWorkers } from '../src/cluster.js';
import { buildConfig } from '../src/config/config.js';
import { createMetrics } from '../src/observe/metrics.js';
import { Outcomes, type Outcome } from '../src/observe/outcomes.js';
import { send, silentLog, startUpstream } from './helpers/net.js';

const outcome = (status: number): Outcome => ({ id: 1, serverType: 'a', upstream: 'a', status, sentStatus: status, origin: 'upstream', method: 'GET', url: '/', client: '', seconds: 0, clientGone: false, bytes: 2, requestComplete: true });

t.test('batchOutcomes: one message per batch, when it is full or a moment after its first outcome, or when asked', async (t) => {
  const bus = new Outcomes();
  const sent: number[][] = [];
  const flush = batchOutcomes(bus, (b) => sent.push(b.map((o) => o.status)), 30, 3);
  for (const s of [1, 2, 3, 4]) bus.publish(outcome(s));
  t.same(sent, [[1, 2, 3]], 'full: sent at once');
  await new Promise((r) => setTimeout(r, 60));
  t.same(sent, [[1, 2, 3], [4]], 'the rest a moment later');
  bus.publish(outcome(5));
  flush();
  flush();
  t.same(sent, [[1, 2, 3], [4], [5]], 'asked: sent now, and nothing twice');
});

t.test('two real workers: the primary publishes every exchange of both, once', async (t) => {
  const up = await startUpstream('flask');
  t.teardown(() => up.close());
  // Workers run the real CLI from source, under the same TypeScript loader as this test.
  cluster.setupPrimary({
    exec: fileURLToPath(new URL('../src/cli/main.ts', import.meta.url)),
    args: ['serve'],
    execArgv: process.execArgv.filter((a) => !a.includes('/@tapjs/mock/')),
    silent: true,
  });
  const config = buildConfig({ listen: '127.0.0.1:0', upstreams: [`flask=${up.url}`], workers: 2, pollInterval: '1h', logLevel: 'silent' });
  const plane = await startWorkers(config, { log: silentLog, metrics: createMetrics(), shares: () => [] });
  t.teardown(() => plane.close());
  const seen: Outcome[] = [];
  plane.outcomes.subscribe((o) => seen.push(o));
  const n = 40;
  const url = `http://127.0.0.1:${plane.address.port}`;
  const replies = await Promise.all(Array.from({ length: n }, (_, i) => send(`${url}/predict/?i=${i}`)));
  t.ok(replies.every((r) => r.status === 200));
  await plane.close();
  t.equal(seen.length, n, 'every exchange once, the last ones flushed before the workers stopped');
  t.same(new Set(seen.map((o) => o.url)).size, n);
  t.ok(seen.every((o) => o.serverType === 'flask' && o.status === 200));
});
