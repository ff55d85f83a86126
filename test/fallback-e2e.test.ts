/**
 * Issue 29's bar for --fallback, end to end on short real durations: steady predictions through
 * the proxy at 50% canary with a rollout running; the canary's process is killed; no client
 * sees a failure, and the rollout rolls back at its next check, judged on the canary's
 * failures that no client saw.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Agent, request } from 'undici';
import { startApp } from '../src/app.js';
import { readConfigFile } from '../src/config/config.js';
import { behaving, silentLog, startUpstream, waitForLine } from './helpers/net.js';
import { sampleSum } from './helpers/metrics.js';
import { sleep, until } from './helpers/wait.js';

const TOKEN = 'fallback-e2e-token-0123456789';
const INTERVAL_MS = 1000;

/** The canary: a process of its own, answering every request 200, so that it can be killed. */
const CANARY = `
const server = require('node:http').createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"predictions":[1]}'));
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

/**
 * Predictions from `clients` loops, every answer counted. pause() holds them between requests
 * and resolves once none is in flight: a request the canary had already taken when it died is
 * not sent again (it may have acted on it; nginx does not either), so the kill lands between
 * requests, as a crash between two predictions does.
 */
function load(url: (i: number) => string, clients = 4) {
  const agent = new Agent({ connections: 2 * clients });
  const statuses = new Map<string, number>();
  let fallbacks = 0;
  let inFlight = 0;
  let running = true;
  let gate: Promise<void> | undefined;
  let open = (): void => {};
  const loop = async (c: number): Promise<void> => {
    for (let i = c; running; i += clients) {
      if (gate !== undefined) await gate;
      inFlight++;
      let outcome: string;
      try {
        const res = await request(url(i), { method: 'POST', body: 'a,b\n1,2\n', dispatcher: agent });
        await res.body.dump();
        outcome = String(res.statusCode);
        if (res.headers['x-drum-splitter-fallback'] === 'fastapi') fallbacks++;
      } catch (err) {
        outcome = (err as { code?: string }).code ?? (err as Error).message;
      }
      inFlight--;
      statuses.set(outcome, (statuses.get(outcome) ?? 0) + 1);
      await sleep(5);
    }
  };
  const loops = Array.from({ length: clients }, (_, c) => loop(c));
  let stopped: Promise<void> | undefined;
  return {
    statuses,
    get fallbacks() {
      return fallbacks;
    },
    async pause(): Promise<void> {
      gate = new Promise((r) => (open = r));
      await until(() => inFlight === 0);
    },
    resume(): void {
      gate = undefined;
      open();
    },
    stop(): Promise<void> {
      running = false;
      this.resume();
      return (stopped ??= Promise.all(loops).then(() => agent.close()));
    },
  };
}

t.test('the canary killed at 50% under steady load: 0 failed requests, and the rollout rolls back at its next check', async (t) => {
  const canary = spawn(process.execPath, ['-e', CANARY], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void canary.kill('SIGKILL'));
  const canaryPort = Number(await waitForLine(canary, /^\d+$/));
  const flask = await startUpstream('flask', behaving(1));
  const dir = t.testdir({});
  const path = join(dir, 'drum.yaml');
  const plan = { interval: `${INTERVAL_MS}ms`, window: '3s', minRequests: 20, steps: [{ weight: 50, hold: '1h' }], rollback: { maxErrorRate: 0.01 } };
  writeFileSync(path, JSON.stringify({ upstreams: { flask: flask.url, fastapi: `http://127.0.0.1:${canaryPort}` }, rollout: plan }));
  const app = await startApp(
    { file: { path, settings: readConfigFile(path) }, flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', pollInterval: '1h' } },
    { env: { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, log: silentLog },
  );
  const traffic = load((i) => `http://127.0.0.1:${app.proxy.address.port}/predict/${i % 500}`);
  t.teardown(async () => {
    await traffic.stop();
    await app.close();
    await flask.close();
  });
  const admin = `http://127.0.0.1:${app.adminAddress.port}`;
  const started = await request(`${admin}/rollout/start`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
  t.equal(started.statusCode, 200);
  await started.body.dump();
  const rollout = app.rollout!;
  t.equal(app.store.view().weights.fastapi, 50);

  // Past the settling check, and just after a check: the next one judges a whole interval of the dead canary.
  await until(() => rollout.view().lastVerdict !== null, 10_000);
  const verdictAt = rollout.view().lastVerdict!.at;
  await until(() => rollout.view().lastVerdict!.at !== verdictAt, 5000);
  t.equal(rollout.state.phase, 'running', 'the healthy canary held its step');
  await traffic.pause();
  canary.kill('SIGKILL');
  await once(canary, 'exit');
  const killedAt = Date.now();
  traffic.resume();

  await until(() => rollout.state.phase === 'rolled_back', 10_000);
  const rolledBackMs = Date.now() - killedAt;
  await sleep(200); // requests after the rollback: all to the baseline
  await traffic.stop();

  t.same([...traffic.statuses.keys()], ['200'], `every request answered 200: ${JSON.stringify(Object.fromEntries(traffic.statuses))}`);
  t.ok(traffic.fallbacks > 0, `${traffic.fallbacks} of them the baseline's answers for the dead canary`);
  const decision = rollout.decisions.find((d) => d.action === 'rollback')!;
  t.match(decision, { from: 50, to: 0, text: /^canary error rate [\d.]+% \(\d+ of \d+\) over 1%/ }, "judged on the canary's failures, which no client saw");
  // The check after the kill is one interval away; a busy machine may run it late, so three are allowed.
  t.ok(rolledBackMs < 3 * INTERVAL_MS, `rolled back ${rolledBackMs} ms after the kill (interval ${INTERVAL_MS} ms)`);
  t.equal(app.store.view().weights.fastapi, 0);

  const metrics = await (await request(`${admin}/metrics`)).body.text();
  t.equal(sampleSum(metrics, 'drum_fallback_total', { from: 'fastapi', to: 'flask', reason: 'refused' }), traffic.fallbacks, 'each fallback counted, as refused');
  t.ok(sampleSum(metrics, 'drum_requests_total', { server_type: 'fastapi', status: '502', origin: 'proxy' }) >= traffic.fallbacks, 'and charged to the canary');
});
