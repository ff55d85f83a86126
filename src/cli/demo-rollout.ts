import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { startApp } from '../app.js';
import { createLogger } from '../common/log.js';
import type { HostPort } from '../proxy/options.js';
import { formatDuration } from '../rollout/plan.js';
import { consoleUrl, demoAdmin, demoHost, runShow, type DemoOptions, type DemoSession } from './demo.js';
import { createStandin, type Faults } from './standin.js';
import { itemLine } from './verify.js';

const CSV = 'x1,x2,x3\n1,2,3\n4,5,6\n';
const LOAD_LOOPS = 8;
/** Each loop's pause between predictions: about 250 a second in all, a DRUM pod's kind of load. */
const PACE_MS = 30;
const CLIENTS = 400;
/** What the canary turns into at 50%: slower by this much a prediction, well over a busy machine's own p99, so the demo's checks see it whatever else runs. */
const SLOW_MS = 50;

/** One prediction from a given local address (a distinct client for the split key); errors are part of the show. */
function predict(url: string, localAddress: string): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'POST', localAddress, headers: { 'content-type': 'text/csv' } }, (res) => {
      res.resume();
      res.on('end', resolve);
      res.on('error', () => resolve());
    });
    req.on('error', () => resolve());
    req.end(CSV);
  });
}

const percent = (n: number): string => `${n}%`.padStart(4);

/**
 * A whole rollout in under a minute: two DRUM stand-ins, steady traffic from 400 client
 * addresses, the seed's plan with holds of seconds, and a canary that turns slow partway —
 * the controller promotes it, then reduces it step by step and rolls it back, printing each
 * decision as it makes it; then it serves on (without the traffic) until Ctrl-C, or ends with
 * --exit. `scale` stretches or shrinks every duration.
 */
export function runRolloutDemo(opts: DemoOptions, more: { scale?: number; print?: (line: string) => void } = {}): Promise<number> {
  const admin = demoAdmin(opts.admin);
  const print = more.print ?? ((line: string) => console.log(line));
  return runShow(opts, print, (session) => rollout(opts, admin, session, more.scale ?? 1));
}

async function rollout(opts: DemoOptions, admin: HostPort, session: DemoSession, scale: number): Promise<string[]> {
  const { print } = session;
  const s = (seconds: number): string => formatDuration(Math.round(seconds * scale * 1000));
  const faults: Faults = { errorRate: 0, addedLatencyMs: 0, extraMemoryMb: 0 };
  const flask = session.add(createStandin('flask'));
  const flaskUrl = await flask.listen({ host: '127.0.0.1', port: 0 });
  const fastapi = session.add(createStandin('fastapi', faults));
  const fastapiUrl = await fastapi.listen({ host: '127.0.0.1', port: 0 });
  // The prediction the rollback's verification replays against the baseline: the demo's own batch (its first row the single).
  const batch = join(session.dir, 'batch.csv');
  writeFileSync(batch, CSV);
  const plan = {
    verify: { requests: [batch] },
    interval: s(1),
    // At 5% the canary has ~12 predictions a second: a window of 10 s holds the 100 latencies a p99 needs to fail it.
    window: s(10),
    minRequests: Math.max(10, Math.round(30 * scale)),
    // The seed's Phase 1 first: the canary takes nothing while the shadow copies half the baseline's predictions to it.
    steps: [{ shadow: 0.5, hold: s(3) }, { weight: 5, hold: s(6) }, { weight: 25, hold: s(6) }, { weight: 50, hold: s(6) }, { weight: 100, hold: s(6) }],
    rollback: { reductionWait: s(3), pingTimeout: s(30) },
  };
  const app = await startApp(
    { flags: { listen: opts.listen, admin: opts.admin, upstreams: [`flask=${flaskUrl}`, `fastapi=${fastapiUrl}`], pollInterval: s(1), rollout: plan } },
    { env: {}, log: createLogger('error') },
  );
  session.add({ close: () => app.close() });
  const controller = app.rollout!;
  const target = `http://${demoHost(app.config.listen.host)}:${app.proxy.address.port}/predict/`;
  const page = consoleUrl(admin.host, app.adminAddress.port);
  print(`drum-splitter rollout demo: flask stand-in ${flaskUrl}, fastapi stand-in ${fastapiUrl}, proxy ${target}`);
  print(`plan: ${controller.view().plan.steps}; checks every ${s(1)} over ${s(10)}; reductions ${s(3)} apart`);
  print(`the shadow phase first: predictions copied to fastapi and compared, its p99 beside flask's, before it takes any traffic`);
  print(`the fastapi stand-in turns slow (+${SLOW_MS} ms a prediction) once it reaches 50%`);
  print(session.about);
  print(`watch it in the console: ${page}\n`);

  let loading = true;
  const loops = Array.from({ length: LOAD_LOOPS }, async (_, loop) => {
    for (let i = loop; loading; i += LOAD_LOOPS) {
      const c = i % CLIENTS;
      await predict(target, `127.0.${1 + Math.floor(c / 250)}.${1 + (c % 250)}`);
      await new Promise((r) => setTimeout(r, PACE_MS));
    }
  });
  // Stopped before the servers close, however the demo ends.
  session.add({
    close: () => {
      loading = false;
      return Promise.all(loops);
    },
  });

  const started = Date.now();
  let shown = 0;
  const show = (): void => {
    for (const d of controller.decisions.slice(shown)) {
      print(`  +${((Date.parse(d.at) - started) / 1000).toFixed(1).padStart(5)}s  ${d.action.padEnd(14)} ${percent(d.from)} → ${percent(d.to)}  ${d.text}`);
    }
    shown = controller.decisions.length;
  };
  await controller.command('start', 'demo', 'the rollout demo');
  const deadline = started + 120_000 * scale;
  // A rollback ends the show once the controller has verified the baseline after it (ROLLBACK_PLAN.md "Verification After Rollback").
  const ended = (): boolean =>
    ['complete', 'aborted', 'paused'].includes(controller.state.phase) || (controller.state.phase === 'rolled_back' && controller.view().lastVerification !== null);
  while (!ended() && Date.now() < deadline) {
    if (controller.state.weight >= 50 && faults.addedLatencyMs === 0) faults.addedLatencyMs = SLOW_MS;
    show();
    await new Promise((r) => setTimeout(r, 100));
  }
  show();
  // Each item of the verification under its decision; none within the deadline: the decisions above say what there is.
  const verification = controller.view().lastVerification;
  if (verification !== null) {
    for (const item of verification.items) print(`        ${itemLine(item).trimStart()}`);
  }
  loading = false;
  await Promise.all(loops);
  print(`\nended ${controller.state.phase} at ${controller.state.weight}%; GET /rollout/decisions has each decision with every check's numbers.`);
  return [
    `\nstill serving, without the demo's traffic: the proxy ${target}, both stand-ins (fastapi still slow), the console ${page}; try:
  npx drum-splitter rollout decisions --admin-url ${page}
  curl -s -X POST -H 'Content-Type: text/csv' --data-binary $'a,b\\n1,2\\n' ${target} -i
Ctrl-C to stop.`,
  ];
}
