/**
 * The controller's ledger, report, hourly summary and custom checks, on an injected clock: a real
 * store, metrics and webhooks (a real receiver), the evidence handed in by the test.
 */
import { Counter, Registry } from 'prom-client';
import t, { type Test } from 'tap';
import type { Evidence } from '../src/rollout/checks.js';
import { RolloutController, type SavedRollout } from '../src/rollout/controller.js';
import type { EvidenceSource } from '../src/rollout/evidence.js';
import { Notifier, type RolloutEvent } from '../src/rollout/notify.js';
import { parsePlan, type RolloutPlan } from '../src/rollout/plan.js';
import type { RolloutReport } from '../src/rollout/report.js';
import { readSavedRollout, formatSavedRollout } from '../src/rollout/saved.js';
import { WeightStore } from '../src/weights/store.js';
import { ManualClock } from './helpers/clock.js';
import { sampleSum } from './helpers/metrics.js';
import { quietLists, silentLog, startUpstream } from './helpers/net.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const UPSTREAMS = ['flask', 'fastapi'];
const MIN = 60_000;
const MiB = 2 ** 20;
// Ascending, as a window hands them over.
const LAT = Array.from({ length: 200 }, (_, i) => 0.01 + Math.floor(i / 20) / 1000);

const plan = (extra: Record<string, unknown> = {}): RolloutPlan =>
  parsePlan({ settle: 0, confirm: 1, interval: '1m', window: '5m', minRequests: 50, summaryInterval: '1h', steps: [{ weight: 5, hold: '2m' }, { weight: 50, hold: '2h' }], ...extra }, UPSTREAMS);

/** Evidence the test sets: `n` requests a side in the window so far, `errors` of the canary's. */
class Handed implements EvidenceSource {
  n = 100;
  errors = 0;
  resets = 0;
  /** Why there are no numbers, when there are none. */
  unavailable: string | undefined;
  async gather(): Promise<Evidence> {
    return {
      ...(this.unavailable === undefined ? {} : { unavailable: this.unavailable }),
      canary: { requests: this.n, errors: this.errors, latencies: LAT },
      baseline: { requests: this.n * 10, errors: 0, latencies: LAT },
      memory: { canaryRss: 120 * MiB, baselineRss: 100 * MiB, canaryGrowthPerHour: undefined, canaryOom: undefined },
      canaryDownMs: 0,
    };
  }
  reset(): void {
    this.resets++;
  }
}

async function rig(t: Test, p: RolloutPlan, opts: { saved?: SavedRollout; evidence?: EvidenceSource } = {}) {
  // A restart finds the weights where the saved rollout left them.
  const canaryAt = opts.saved?.state.weight ?? 0;
  const clock = new ManualClock(1_700_000_000_000);
  const at = new Date(clock.now).toISOString();
  const store = new WeightStore(UPSTREAMS, { state: { shares: [['fastapi', canaryAt * 100]], version: 1, updatedAt: at, source: 'startup' }, history: [{ at, version: 1, source: 'startup', who: 'startup', reason: null, from: {}, to: {} }] }, { now: () => new Date(clock.now), log: silentLog, subscriberErrors: quietLists.errors });
  const hook = await startUpstream('hook', (_req, res) => res.end());
  const notifier = new Notifier([hook.url], { log: silentLog, failures: new Counter({ name: 'f_total', help: 'f', labelNames: ['reason'], registers: [] }) });
  const evidence = opts.evidence ?? new Handed();
  const registry = new Registry();
  const saves: SavedRollout[] = [];
  const ended: RolloutReport[] = [];
  const controller = new RolloutController({ plan: p, store, upstreams: UPSTREAMS, evidence, registry, notifier, log: silentLog, now: () => clock.now, timers: clock, saved: opts.saved, save: (s) => saves.push(s), onEnd: (r) => ended.push(r) });
  controller.start();
  t.teardown(async () => {
    await controller.stop();
    await hook.close();
  });
  return {
    clock, controller, store, registry, saves, ended, evidence: evidence as Handed,
    /** Every event the webhook received so far. */
    async events(): Promise<RolloutEvent[]> {
      await notifier.flush();
      return hook.seen.map((s) => JSON.parse(s.body.toString()) as RolloutEvent);
    },
  };
}

t.test('the hourly summary: every summaryInterval while the rollout is active, on the loop\'s clock; none before or after', async (t) => {
  const r = await rig(t, plan());
  await r.clock.advance(2 * 3_600_000);
  t.same((await r.events()).length, 0, 'idle: no summaries');
  r.controller.command('start', 'alice', null);
  await r.clock.advance(3_600_000 - 1);
  t.same((await r.events()).map((e) => e.action), ['start', 'promote'], 'an hour less a millisecond: none yet');
  r.evidence.errors = 1;
  await r.clock.advance(1);
  const summary = (await r.events()).at(-1)!;
  t.match(summary, {
    action: 'summary',
    from: 50,
    to: 50,
    phase: 'running',
    summary: {
      step: 1,
      weight: 50,
      heldMs: 58 * MIN,
      upstreams: {
        fastapi: { requests: Number, errorRate: Number, p50: 0.014, p99: 0.019, rss: 120 * MiB },
        flask: { requests: Number, errorRate: 0, p50: 0.014, p99: 0.019, rss: 100 * MiB },
      },
    },
  });
  t.match(summary.text, /^drum-splitter rollout \(fastapi\): running at step 2 of 2 \(50%\), held 58m; fastapi [\d,]+ requests, [\d.]+% errors, p50 14.0 ms, p99 19.0 ms, RSS 120 MB; flask [\d,]+ requests, 0% errors, p50 14.0 ms, p99 19.0 ms, RSS 100 MB$/);
  await r.clock.advance(3_600_000);
  const events = await r.events();
  t.same(events.filter((e) => e.action === 'summary').length, 2, 'the next an hour later');
  const second = events.at(-1)!.summary as { upstreams: Record<string, { requests: number }> };
  // 100 canary requests a window, the window sliding: 20 a minute, for the hour since the last summary.
  t.equal(second.upstreams.fastapi!.requests, 1200, 'requests since the last summary');
  r.controller.command('abort', 'alice', null);
  await r.clock.advance(2 * 3_600_000);
  t.same((await r.events()).filter((e) => e.action === 'summary').length, 2, 'ended: no more');
});

t.test('a summary without numbers (Prometheus down since the start, say): said as unknown', async (t) => {
  const r = await rig(t, plan({ summaryInterval: '30s', interval: '1m' }));
  r.evidence.unavailable = 'Prometheus unreachable';
  r.controller.command('start', 'alice', null);
  await r.clock.advance(MIN);
  const summary = (await r.events()).at(-1)!;
  t.match(summary, { action: 'summary', summary: { step: 0, weight: 5, heldMs: 0, upstreams: { fastapi: { requests: 0, errorRate: null, p50: null, p99: null, rss: null } } } });
  t.match(summary.text, /held 0s; fastapi 0 requests, no errors measured, p50 unknown, p99 unknown, RSS unknown; flask/);
});

t.test('a restored active rollout sends its summaries; stop() ends them', async (t) => {
  const first = await rig(t, plan());
  first.controller.command('start', 'alice', null);
  await first.clock.advance(MIN);
  const saved = first.saves.at(-1)!;
  await first.controller.stop();
  const r = await rig(t, plan(), { saved });
  await r.clock.advance(3_600_000);
  const summaries = async (): Promise<number> => (await r.events()).filter((e) => e.action === 'summary').length;
  t.equal(await summaries(), 1);
  await r.controller.stop();
  await r.clock.advance(3_600_000);
  t.equal(await summaries(), 1, 'stopped: none');
});

t.test('the report: each step with its numbers, kept across a restart, handed over when the rollout ends', async (t) => {
  const r = await rig(t, plan());
  r.controller.command('start', 'alice', 'go');
  await r.clock.advance(3 * MIN);
  t.equal(r.controller.state.weight, 50);
  const running = r.controller.report();
  t.match(running, { phase: 'running', weight: 50, endedAt: null, steps: [{ step: 1, weight: 5, checks: 2 }, { step: 2, weight: 50, endedAt: null }] });
  t.same(running.steps[0]!.decisions.map((d) => d.action), ['start', 'promote']);
  t.equal(running.steps[0]!.upstreams.fastapi!.requests, 100, 'the window\'s 100 requests, counted once');
  t.same(running.steps[0]!.memoryRatio, { last: 1.2, max: 1.2 });
  t.equal(r.ended.length, 0);

  // Restarted from its saved state, read back from the file: the ledger goes on.
  const dir = t.testdir({});
  const file = join(dir, 'state.rollout.json');
  writeFileSync(file, formatSavedRollout(r.saves.at(-1)!));
  const saved = readSavedRollout(file, plan())!;
  t.same(saved.ledger!.steps.map((s) => s.weight), [5, 50]);
  await r.controller.stop();
  const again = await rig(t, plan(), { saved });
  (again.evidence as Handed).errors = 10;
  await again.clock.advance(MIN);
  t.equal(again.controller.state.phase, 'rolled_back');
  t.equal(again.ended.length, 1, 'the end hands the report over once');
  const report = again.ended[0]!;
  t.match(report, { phase: 'rolled_back', weight: 0, endedAt: String, steps: [{ weight: 5 }, { weight: 50, checks: 2 }] });
  t.same(report.steps[1]!.decisions.map((d) => d.action), ['rollback']);
  t.match(report.steps[1]!.decisions[0]!.checks, [{ check: 'error_rate', status: 'rollback' }]);
  t.same(again.controller.report().steps.length, 2);
});

t.test('a saved rollout from before the ledger: a report of no steps until the next start', async (t) => {
  const r = await rig(t, plan(), { saved: { format: 1, state: { phase: 'complete', step: 1, weight: 50, heldMs: 0, lastCheckAt: null, reduceAt: null, note: 'done', settling: 0, strikes: 0, canary: null }, decisions: [] } });
  t.match(r.controller.report(), { phase: 'complete', startedAt: null, steps: [] });
});

t.test('a corrupt ledger in the saved state stops start-up, naming the entry', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'state.rollout.json');
  const state = { phase: 'complete', step: 1, weight: 50, heldMs: 0, lastCheckAt: null, reduceAt: null, note: null };
  const good = { startedAt: 1, endedAt: 2, points: [{ at: 1, weight: 5, p99Ratio: null, memoryRatio: 1.1, errorRate: 0 }], steps: [{ step: 0, weight: 5, startedAt: 1, endedAt: 2, checks: 1, p99Ratio: { last: null, max: null }, memoryRatio: { last: 1, max: 1 }, upstreams: { fastapi: { requests: 1, errors: 0, p50: null, p99: 0.1, rss: null } }, decisions: [], omitted: 0 }] };
  writeFileSync(file, JSON.stringify({ format: 1, state, decisions: [], ledger: good }));
  t.match(readSavedRollout(file, plan())!.ledger, { startedAt: 1, steps: [{ weight: 5 }], points: [{ memoryRatio: 1.1 }], window: { lastAt: null } });
  const bad = { ...good, steps: [{ ...good.steps[0], upstreams: { fastapi: { requests: -1 } } }] };
  writeFileSync(file, JSON.stringify({ format: 1, state, decisions: [], ledger: bad }));
  t.throws(() => readSavedRollout(file, plan()), { message: /ledger.steps\[0\].upstreams.fastapi.requests must be a number, 0 or more/ });
  writeFileSync(file, JSON.stringify({ format: 1, state, decisions: [], ledger: { ...good, steps: [{ ...good.steps[0], decisions: [{ action: 'x' }] }] } }));
  t.throws(() => readSavedRollout(file, plan()), { message: /ledger.steps\[0\].decisions\[0\].at must be a string/ });
});

t.test('a custom check: beside the built-in ones in the verdict, the decision and drum_canary_check; a failing one holds the step', async (t) => {
  let answer = '{"pass": false, "value": 3, "why": "2 of 50 acceptance tests fail"}';
  const acceptance = await startUpstream('acceptance', (_req, res) => res.end(answer));
  t.teardown(() => acceptance.close());
  const r = await rig(t, plan({ checks: [{ name: 'acceptance', webhook: acceptance.url }] }));
  t.same(r.controller.view().plan.checks, ['acceptance'], 'GET /rollout names the checks of one\'s own');
  // Each tick run by hand and awaited: the webhook is real I/O, which the clock does not wait for.
  const minute = (): Promise<unknown> => {
    r.clock.now += MIN;
    return r.controller.tick();
  };
  await minute();
  t.equal(acceptance.seen.length, 0, 'idle: the webhook is not asked');
  r.controller.command('start', 'alice', null);
  await minute();
  t.match(r.controller.view().lastVerdict, { action: 'miss', text: 'acceptance: fails (value 3, 2 of 50 acceptance tests fail)' });
  t.match(r.controller.view().lastVerdict!.checks.at(-1), { check: 'acceptance', custom: 'webhook', status: 'miss', value: 3 });
  t.equal(sampleSum(await r.registry.metrics(), 'drum_canary_check', { check: 'acceptance' }), 3);
  for (let i = 0; i < 5; i++) await minute();
  t.equal(r.controller.state.weight, 5, 'held at 5% while it fails');
  t.same(r.controller.state.heldMs, 0);
  t.same(JSON.parse(acceptance.seen[0]!.body.toString()), { check: 'acceptance', canary: 'fastapi', baseline: 'flask', phase: 'running', step: 0, weight: 5, heldMs: 0, at: new Date(r.clock.now - 5 * MIN).toISOString(), windowMs: 300_000 });
  answer = '{"pass": true, "value": 0}';
  for (let i = 0; i < 3; i++) await minute();
  t.equal(r.controller.state.weight, 50, 'passing again: promoted');
  t.match(r.controller.decisions.find((d) => d.action === 'promote')!.checks!.at(-1), { check: 'acceptance', status: 'ok' });
});
