/** With --workers, the primary hears every worker's outcomes: the stream a rollout judges from. */
import cluster from 'node:cluster';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { batchOutcomes, startWorkers } from '../src/cluster.js';
import { buildConfig } from '../src/config/config.js';
import { createMetrics } from '../src/observe/metrics.js';
import { Outcomes, type Outcome } from '../src/observe/outcomes.js';
import { freePort, quietLists, send, silentLog, startUpstream } from './helpers/net.js';
import { sampleSum } from './helpers/metrics.js';
import { LocalEvidence } from '../src/rollout/evidence.js';
import { startShadow, type ShadowLine } from '../src/shadow/shadow.js';
import { sleep, until } from './helpers/wait.js';

const WORKER_EXEC_ARGV = process.execArgv.filter((a) => !a.includes('/@tapjs/mock/'));

const outcome = (status: number): Outcome => ({ id: 1, serverType: 'a', upstream: 'a', status, sentStatus: status, origin: 'upstream', method: 'GET', url: '/', client: '', seconds: 0, clientGone: false, bytes: 2, requestComplete: true });

t.test('batchOutcomes: one message per batch, when it is full or a moment after its first outcome, or when asked', async (t) => {
  const bus = new Outcomes(quietLists);
  const sent: number[][] = [];
  const flush = batchOutcomes(bus, (b) => sent.push(b.map((o) => o.status)), 30, 3);
  for (const s of [1, 2, 3, 4]) bus.publish(outcome(s));
  t.same(sent, [[1, 2, 3]], 'full: sent at once');
  await until(() => sent.length === 2);
  t.same(sent, [[1, 2, 3], [4]], 'the rest a moment later');
  bus.publish(outcome(5));
  flush();
  flush();
  t.same(sent, [[1, 2, 3], [4], [5]], 'asked: sent now, and nothing twice');
});

t.test('two real workers: the primary publishes every exchange of both, once; with the canary refusing half of them, each carries its failed attempt, which the primary\'s rollout window charges', async (t) => {
  const up = await startUpstream('flask');
  t.teardown(() => up.close());
  // Workers run the real CLI from source, under the same TypeScript loader as this test.
  cluster.setupPrimary({
    exec: fileURLToPath(new URL('../src/cli/main.ts', import.meta.url)),
    args: ['serve'],
    execArgv: WORKER_EXEC_ARGV,
    silent: true,
  });
  const config = buildConfig({ listen: '127.0.0.1:0', upstreams: [`flask=${up.url}`, `fastapi=http://127.0.0.1:${await freePort()}`], workers: 2, pollInterval: '1h', logLevel: 'silent' });
  const metrics = createMetrics();
  const plane = await startWorkers(config, { log: silentLog, metrics, shares: () => [['fastapi', 5000]], routes: () => [], shadow: startShadow(config, { registry: metrics.registry, log: silentLog }) });
  t.teardown(() => plane.close());
  const seen: Outcome[] = [];
  plane.outcomes.subscribe('test', (o) => seen.push(o));
  const evidence = new LocalEvidence({ plan: config.rollout!, outcomes: plane.outcomes, poller: { subscribe: () => () => undefined, downMs: () => 0 }, now: () => 0 });
  evidence.start(() => true);
  t.teardown(() => evidence.stop());
  const n = 40;
  const url = `http://127.0.0.1:${plane.address.port}`;
  // A new connection each: the primary deals connections to the workers in turn.
  const replies = await Promise.all(Array.from({ length: n }, (_, i) => send(`${url}/predict/${i}`, { headers: { connection: 'close' } })));
  t.ok(replies.every((r) => r.status === 200), 'every client had an answer from the baseline');
  const fellBack = replies.filter((r) => r.headers['x-drum-splitter-fallback'] === 'fastapi').length;
  t.ok(fellBack > 0 && fellBack < n, `${fellBack} of them after the canary refused`);
  const text = await plane.metrics.text();
  t.equal(sampleSum(text, 'drum_fallback_total', { from: 'fastapi', to: 'flask', reason: 'refused' }), fellBack, "both workers' fallbacks, summed");
  t.equal(sampleSum(text, 'drum_requests_total', { server_type: 'fastapi', status: '502', origin: 'proxy' }), fellBack, 'each charged to the canary');
  await plane.close();
  t.equal(seen.length, n, 'every exchange once, the last ones flushed before the workers stopped');
  t.same(new Set(seen.map((o) => o.url)).size, n);
  t.ok(seen.every((o) => o.serverType === 'flask' && o.status === 200));
  t.equal(seen.filter((o) => o.fallback?.from === 'fastapi').length, fellBack, 'the failed attempt crossed to the primary with its outcome');
  t.match(await evidence.gather(0), { canary: { requests: fellBack, errors: fellBack }, baseline: { requests: n, errors: 0 } }, "the primary's window: the canary failed every one it had");
});

t.test('two real workers: close(graceMs) drains for that long, not for the drain timeout', async (t) => {
  const hung = await startUpstream('hung', () => {}); // never answers
  t.teardown(() => hung.close());
  cluster.setupPrimary({ exec: fileURLToPath(new URL('../src/cli/main.ts', import.meta.url)), args: ['serve'], execArgv: WORKER_EXEC_ARGV, silent: true });
  const config = buildConfig({ listen: '127.0.0.1:0', upstreams: [`flask=${hung.url}`], workers: 2, pollInterval: '1h', logLevel: 'silent', timeout: '60s', drainTimeout: '30s' });
  const metrics = createMetrics();
  const plane = await startWorkers(config, { log: silentLog, metrics, shares: () => [], routes: () => [], shadow: startShadow(config, { registry: metrics.registry, log: silentLog }) });
  t.teardown(() => plane.close());
  const answer = send(`http://127.0.0.1:${plane.address.port}/predict/`).catch((err: Error) => err);
  await until(() => hung.seen.length === 1);
  const started = Date.now();
  t.equal(await plane.close(100), 1, 'the request in flight was cut');
  t.ok(Date.now() - started < 5000, `stopped after ${Date.now() - started} ms, not after the 30 s drain timeout`);
  t.type(await answer, Error, 'its connection cut');
});

t.test('two real workers with a shadow: each copies, the primary counts and logs, and a switch reaches both; the noise counts come to the primary', async (t) => {
  // A random "t" in every answer: noise, which each worker's noise sample finds.
  const answer = (v: string): string => JSON.stringify({ v, t: Math.random() });
  const flask = await startUpstream('flask', (_req, res, body) => res.end(answer(body.toString())));
  const fastapi = await startUpstream('fastapi', (_req, res, body) => res.end(answer(body.toString() === '7' ? 'seven' : body.toString())));
  t.teardown(() => Promise.all([flask.close(), fastapi.close()]));
  cluster.setupPrimary({ exec: fileURLToPath(new URL('../src/cli/main.ts', import.meta.url)), args: ['serve'], execArgv: WORKER_EXEC_ARGV, silent: true });
  const log = join(mkdtempSync(join(tmpdir(), 'shadow-workers-')), 'mismatches.jsonl');
  const config = buildConfig({
    listen: '127.0.0.1:0',
    upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`],
    workers: 2,
    pollInterval: '1h',
    logLevel: 'silent',
    shadowSample: 1,
    shadowNoiseSample: 1,
    shadowLog: log,
  });
  const metrics = createMetrics();
  const shadow = startShadow(config, { registry: metrics.registry, log: silentLog, onChange: () => plane.setShares([]) });
  const plane = await startWorkers(config, { log: silentLog, metrics, shares: () => [], routes: () => [], shadow });
  t.teardown(() => plane.close());
  const url = `http://127.0.0.1:${plane.address.port}/predict/`;
  // A new connection each: the primary deals connections to the workers in turn.
  const n = 20;
  await Promise.all(Array.from({ length: n }, (_, i) => send(url, { method: 'POST', body: String(i), headers: { connection: 'close' } })));
  await until(() => shadow.shadow.view().counts.match + shadow.shadow.view().counts.mismatch === n);
  t.match(shadow.shadow.view().counts, { match: n - 1, mismatch: 1 });
  const copies = fastapi.seen.filter((s) => s.headers['x-drum-splitter-shadow'] === '1');
  t.equal(copies.length, n);
  t.equal(flask.seen.filter((s) => s.headers['x-drum-splitter-shadow'] === '1').length, n, 'and each to the baseline again');
  t.match(shadow.shadow.view().noise, {
    routes: { '/predict/': { compared: n, noisePairs: n } },
    fields: [{ route: '/predict/', field: '$.t', differences: n, noiseDifferences: n, verdict: 'noise', discounted: n }],
    discounted: n - 1,
  });

  shadow.shadow.change({ enabled: false });
  await sleep(200); // the message to the workers
  await Promise.all(Array.from({ length: 4 }, () => send(url, { method: 'POST', body: 'x', headers: { connection: 'close' } })));
  await plane.close();
  await shadow.close();
  t.equal(fastapi.seen.length, n, 'no copies once switched off, in either worker');
  const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ShadowLine);
  t.match(lines, [{ body_hex: Buffer.from('7').toString('hex'), differences: [{ field: '$.v', baseline: '7', canary: 'seven' }] }], 'the mismatch, written once by the primary');
  t.equal(lines[0]!.differences.length, 1, 'without the noise');
});
