// `npm run bench:verdicts` (not CI; under 30 minutes here with its defaults): does the rollout
// decide right? Scenarios with a known truth (verdicts-scenarios.ts), each run BENCH_REPEATS times
// against real processes — two DRUM stand-ins and a real `drum-splitter serve` with a plan of
// one-second intervals — under steady traffic from many client addresses. For each run it keeps
// the controller's every verdict (GET /rollout, polled 10 times an interval) and decision (GET
// /rollout/decisions), and the client's every answer with the upstream that gave it; from those
// answers it judges the same intervals by a reference rule, Flagger's default analysis
// (verdicts-judge.ts). It prints, per scenario, the false actions on healthy canaries and the
// detections on faulty ones, each rate with its 95% interval, a row for each judge, then the
// issue's gates. Markdown to stdout, progress to stderr; exit 1 when a gate fails.
// Env: BENCH_REPEATS (20), BENCH_SCENARIOS (comma list of names; default all), BENCH_CONCURRENCY
// (3 runs at once), and the judge's settings, written into the plan when set: BENCH_SETTLE,
// BENCH_CONFIRM (whole numbers), BENCH_P99_FLOOR (a duration, e.g. 5ms); BENCH_JSON=FILE also
// writes every run as seen (verdicts, decisions, the client's intervals), for a closer look.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stepAt } from '../src/rollout/machine.js';
import { quantile } from '../src/rollout/stats.js';
import { parsePlan, type RolloutPlan } from '../src/rollout/plan.js';
import { DRUM_SPLITTER_CLI, envInt, machineLine, median, reportGate, startNode, type Gate } from './common.js';
import { nginxVersion, findNginx } from './nginx.js';
import { freePort, installCleanup, makeTempDir, startChild } from './proc.js';
import {
  checksSince, controllerEvents, faultyOutcome, FLAGGER_THRESHOLD, healthyOutcome, intervalsOf, referenceCheck, referenceEvents, wilson,
  type Event, type IntervalObs, type SeenDecision, type SeenVerdict,
} from './verdicts-judge.js';
import { FixedRateLoad } from './verdicts-load.js';
import { configFile, INTERVAL_MS, MODEL_LATENCY, SCENARIOS, WINDOW_MS, type JudgeKnobs, type Scenario, type StandinSpec } from './verdicts-scenarios.js';

const STANDIN = fileURLToPath(new URL('./verdicts-standin.js', import.meta.url));
const BASELINE = 'flask';
const CANARY = 'fastapi';
/**
 * Client addresses the load cycles through: at 1%, ~6 of them hash to the canary; at 200 a
 * second each comes back within 3 s, inside the proxy's keep-alive, so its connection is reused.
 */
const CLIENTS = 600;
/** Checks a healthy run lasts: the plan's two holds and an inconclusive check or two after each change. */
const HEALTHY_CHECKS = 10;
/** Checks after a fault shows within which each judge must act, or it missed it: the reference needs 5. */
const FAULTY_CAP = 8;
const POLL_MS = 100;
const WARMUP_MS = 500;
/** The issue's default settle and confirm, for the gates' bound when the plan does not say. */
const DEFAULT_SETTLE = 1;
const DEFAULT_CONFIRM = 2;
const TERMINAL = new Set(['complete', 'rolled_back', 'aborted', 'idle']);

interface RolloutView {
  phase: string;
  /** The live split (the rollout's own `weight` stays where it left the canary). */
  weights: Record<string, number>;
  plan: Record<string, unknown>;
  lastVerdict: { at: string; action: string; text: string; checks: { check: string; canaryP99?: unknown; baselineP99?: unknown }[] } | null;
}

interface Sides { readonly baseline: number; readonly canary: number }

interface Judged {
  readonly events: readonly Event[];
  /** The judge's check times. */
  readonly ends: readonly number[];
}

interface RunResult {
  readonly scenario: Scenario;
  readonly controller: Judged & { readonly completed: boolean };
  readonly reference: Judged;
  /** When the fault could first be seen (the rollout's start for most). */
  readonly onset: number;
  readonly shadowAt: number | null;
  readonly canaryPerInterval: number;
  /** End to end, as the client saw each side over the run (ms). */
  readonly client: { readonly p50: Sides; readonly p99: Sides };
  /** The canary's p99 over the baseline's in each check that had both, as the rollout measured them (upstream time). */
  readonly judgeP99Ratios: readonly number[];
  /** Predictions the client got no answer to. */
  readonly clientFailures: number;
  /** Checks the poll did not see (a gap over 1.5 intervals between two): the reference judged one longer interval there. */
  readonly unseenChecks: number;
  /** GET /rollout's plan: where settle and confirm show once the rollout has them. */
  readonly planView: Record<string, unknown>;
  /** The controller's words when it first moved (or held) the canary, if it did. */
  readonly said: string | null;
  /** Everything seen, for BENCH_JSON: the controller's verdicts and decisions, the client's intervals with the weight in force. */
  readonly raw: { readonly verdicts: readonly unknown[]; readonly decisions: readonly unknown[]; readonly intervals: readonly (IntervalObs & { weight: number })[] };
}

const admin = (port: number, path: string): string => `http://127.0.0.1:${port}${path}`;
async function call<T>(method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown): Promise<T> {
  const res = await fetch(url, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** Stand-ins' specs for one run. */
function standin(name: string, port: number, controlPort: number, faults: Scenario['baseline'], listen = true): StandinSpec {
  return { name, port, controlPort, listen, latency: MODEL_LATENCY, faults };
}

/** The CPU a neighbour burns: busy 50–250 ms, idle as long, on every core. */
const BURNER = 'const b=()=>{const u=Date.now()+50+Math.random()*200;while(Date.now()<u);setTimeout(b,50+Math.random()*200)};b()';

async function runOnce(s: Scenario, logDir: string, knobs: JudgeKnobs, tag: string): Promise<RunResult> {
  const [bPort, bCtl, cPort, cCtl, freshCtl, port, adminPort] = await Promise.all(Array.from({ length: 7 }, () => freePort()));
  const children: { stop(): Promise<void> }[] = [];
  const stopAll = (): Promise<unknown> => Promise.all(children.map((c) => c.stop()));
  try {
    const start = (name: string, spec: StandinSpec): Promise<unknown> =>
      startNode(logDir, `${tag}-${name}`, STANDIN, [JSON.stringify(spec)], spec.controlPort).then((c) => children.push(c));
    const file = join(logDir, `${tag}.yaml`);
    writeFileSync(file, JSON.stringify(configFile(s, `http://127.0.0.1:${bPort}`, `http://127.0.0.1:${cPort}`, knobs)));
    // All at once: the proxy needs its upstreams only for the load, which starts when all answer.
    await Promise.all([
      start('baseline', standin(BASELINE, bPort!, bCtl!, s.baseline)),
      start('canary', standin(CANARY, cPort!, cCtl!, s.canary)),
      ...(s.coldCanary ? [start('canary-fresh', standin(CANARY, cPort!, freshCtl!, s.canary, false))] : []),
      startNode(logDir, `${tag}-proxy`, DRUM_SPLITTER_CLI, ['serve', '--config', file, '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${adminPort}`], port!).then((c) => children.push(c)),
    ]);
    const plan = parsePlan(configFile(s, '', '', {}).rollout, [BASELINE, CANARY]);

    const load = new FixedRateLoad(`http://127.0.0.1:${port}/predict/`, s.plan.rate, CLIENTS);
    load.start();
    children.push({ stop: () => load.stop() });
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    if (s.noisy) {
      for (let i = 0; i < availableParallelism(); i++) children.push(startChild(process.execPath, ['-e', BURNER], { logDir, name: `${tag}-burner` }));
    }
    if (s.fault !== undefined) await call('POST', admin(cCtl!, '/faults'), s.fault);
    await call('POST', admin(adminPort!, '/rollout/start'), { reason: `bench:verdicts ${s.name}` });
    return await watch(s, plan, load, adminPort!, s.coldCanary ? { old: cCtl!, fresh: freshCtl! } : undefined);
  } finally {
    await stopAll();
  }
}

/** Follows one run to its end (see the stop rule below) and gathers what each judge did. */
async function watch(s: Scenario, plan: RolloutPlan, load: FixedRateLoad, adminPort: number, swap: { old: number; fresh: number } | undefined): Promise<RunResult> {
  const verdicts = new Map<string, SeenVerdict & { text: string }>();
  const weights: [number, number][] = [];
  let decisions: (SeenDecision & { from: number; to: number; text: string })[] = [];
  let view: RolloutView | undefined;
  let startAt = Date.now();
  let swapped = false;
  let restoredFor = '';
  let shadowAt: number | null = null;
  const judgeP99Ratios: number[] = [];
  const firstWeight = s.plan.steps[0]!.weight;
  const deadline = Date.now() + (Math.max(HEALTHY_CHECKS, FAULTY_CAP) + 10) * INTERVAL_MS + (s.detectableAfterMs ?? 0);

  const boundaries = (): number[] => {
    const ends = [...verdicts.values()].map((v) => v.at).sort((a, b) => a - b);
    const b = [startAt, ...ends];
    // An ended rollout checks no more; the reference goes on judging one interval at a time.
    if (view !== undefined && TERMINAL.has(view.phase)) {
      for (let t = b.at(-1)! + INTERVAL_MS; t <= Date.now(); t += INTERVAL_MS) b.push(t);
    }
    return b;
  };
  const weightAt = (t: number): number => {
    let w = firstWeight;
    for (const [at, weight] of weights) if (at <= t) w = weight;
    return w;
  };
  let judged: { at: number; intervals: IntervalObs[]; events: Event[] } | undefined;
  /** The reference over the intervals closed so far; judged again only once another has closed. */
  const judgeReference = (b: number[]): { intervals: IntervalObs[]; events: Event[] } => {
    if (judged !== undefined && judged.at === b.at(-1)) return judged;
    const intervals = intervalsOf(load.exchanges, b, BASELINE, CANARY);
    const checks = intervals.map((iv) => referenceCheck(iv, plan.steps[stepAt(plan, weightAt(iv.end))]!));
    judged = { at: b.at(-1)!, intervals, events: referenceEvents(checks, intervals.map((iv) => iv.end)) };
    return judged;
  };
  const onset = (): number => startAt + (s.detectableAfterMs ?? 0);

  for (;;) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    view = await call<RolloutView>('GET', admin(adminPort, '/rollout'));
    weights.push([Date.now(), view.weights[CANARY]!]);
    // Decisions come with checks (and the start): read again when there is a new one.
    if (decisions.length === 0 || (view.lastVerdict !== null && !verdicts.has(view.lastVerdict.at))) {
      const all = (await call<{ decisions: { at: string; action: string; from: number; to: number; text: string }[] }>('GET', admin(adminPort, '/rollout/decisions'))).decisions;
      decisions = all.map((d) => ({ ...d, at: Date.parse(d.at) }));
    }
    if (view.lastVerdict !== null && !verdicts.has(view.lastVerdict.at)) {
      const v = view.lastVerdict;
      verdicts.set(v.at, { at: Date.parse(v.at), action: v.action, text: v.text });
      const p99 = v.checks.find((c) => c.check === 'p99');
      if (typeof p99?.canaryP99 === 'number' && typeof p99.baselineP99 === 'number' && p99.baselineP99 > 0) judgeP99Ratios.push(p99.canaryP99 / p99.baselineP99);
    }
    startAt = decisions.find((d) => d.action === 'start')?.at ?? startAt;
    if (swap !== undefined && !swapped && view.weights[CANARY]! > firstWeight) {
      // The promotion: a fresh process takes the canary's port, the old one drains.
      swapped = true;
      await call('POST', admin(swap.fresh, '/listen'));
      await call('POST', admin(swap.old, '/drain'));
    }
    if (s.shadowSample !== undefined && shadowAt === null) {
      const shadow = await call<{ counts: { mismatch: number } }>('GET', admin(adminPort, '/shadow'));
      if (shadow.counts.mismatch > 0) shadowAt = Date.now();
    }
    // Once the controller has moved the canary down, it goes back to where it was, so the
    // reference judges the same share to the end of the run.
    const moved = decisions.filter((d) => d.action === 'reduce' || d.action === 'rollback').at(-1);
    if (moved !== undefined && restoredFor !== String(moved.at) && view.weights[CANARY]! < moved.from) {
      restoredFor = String(moved.at);
      await call('PUT', admin(adminPort, '/weights'), { weights: { [CANARY]: moved.from }, reason: 'bench:verdicts: the reference judges on' });
    }

    const b = boundaries();
    const ctrlEnds = [...verdicts.values()].map((v) => v.at);
    const ctrl = controllerEvents([...verdicts.values()], decisions);
    const ref = judgeReference(b);
    const refEnds = b.slice(1);
    let done: boolean;
    if (s.truth === 'healthy') {
      done = refEnds.length >= HEALTHY_CHECKS;
    } else if (s.expect === undefined) {
      done = shadowAt !== null || checksSince(refEnds, onset()) >= FAULTY_CAP;
    } else {
      const over = (ends: readonly number[], events: readonly Event[]): boolean => faultyOutcome(events, s.expect!, onset(), ends).detected || checksSince(ends, onset()) >= FAULTY_CAP;
      // A rollout that ended (a faulty canary promoted to the end) checks no more.
      done = (over(ctrlEnds, ctrl) || TERMINAL.has(view.phase)) && over(refEnds, ref.events);
    }
    if (done || Date.now() > deadline) {
      const until = s.truth === 'healthy' ? refEnds[HEALTHY_CHECKS - 1] ?? Infinity : Infinity;
      const rollout = load.exchanges.filter((e) => e.end > startAt);
      const q = (name: string, p: number): number => quantile(rollout.filter((e) => e.upstream === name).map((e) => e.ms).sort((x, y) => x - y), p);
      const sorted = [...ctrlEnds].sort((x, y) => x - y);
      // What the controller said when it first moved the canary (or else first held it), for the report.
      const first = decisions.find((d) => (d.action === 'rollback' || d.action === 'reduce') && d.at <= until)
        ?? [...verdicts.values()].find((v) => v.action === 'miss' && v.at <= until);
      return {
        scenario: s,
        controller: { events: ctrl.filter((e) => e.at <= until), ends: sorted, completed: decisions.some((d) => d.action === 'complete' && d.at <= until) },
        reference: { events: ref.events.filter((e) => e.at <= until), ends: refEnds },
        onset: onset(),
        shadowAt,
        canaryPerInterval: median(ref.intervals.filter((iv) => weightAt(iv.end) > 0).map((iv) => iv.canary.requests)),
        client: { p50: { baseline: q(BASELINE, 0.5), canary: q(CANARY, 0.5) }, p99: { baseline: q(BASELINE, 0.99), canary: q(CANARY, 0.99) } },
        judgeP99Ratios,
        clientFailures: rollout.filter((e) => e.status === 0).length,
        unseenChecks: sorted.filter((t, i) => i > 0 && t - sorted[i - 1]! > 1.5 * INTERVAL_MS).length,
        planView: view.plan,
        said: first === undefined ? null : `${'from' in first ? first.action : 'hold'}: ${first.text}`,
        raw: { verdicts: [...verdicts.values()], decisions, intervals: ref.intervals.map((i) => ({ ...i, weight: weightAt(i.end) })) },
      };
    }
  }
}

/** Runs `tasks` with at most `limit` at once, in order of the list. */
async function pool<T>(tasks: readonly (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, async () => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]!();
    }
  }));
  return out;
}

// ---- the report ----

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
/** "3/20 (5.2–36.0%)": a count of runs with its rate's 95% interval. */
const rate = (k: number, n: number): string => {
  const [lo, hi] = wilson(k, n);
  return `${k}/${n} (${pct(lo)}–${pct(hi)})`;
};
const fixed = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : '–');
const ms = (x: number): string => fixed(x, 1);
const ratio = (xs: readonly number[]): string => (xs.length === 0 ? '–' : `${fixed(median([...xs]), 2)}×`);
const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;

interface Summary { readonly scenario: Scenario; readonly runs: readonly RunResult[]; readonly broken: readonly string[] }

function healthyTable(sums: readonly Summary[]): string[] {
  const head = ['scenario', 'judge', 'runs', 'false reductions', 'false rollbacks', 'holds', 'completed', 'canary req / interval', 'rollout\'s p99 canary ÷ baseline, median check', 'client p50, p99 ms: baseline / canary'];
  const rows: string[][] = [];
  for (const { scenario: s, runs } of sums) {
    const n = runs.length;
    const client = (p: 'p50' | 'p99'): string => `${ms(median(runs.map((r) => r.client[p].baseline)))} / ${ms(median(runs.map((r) => r.client[p].canary)))}`;
    const common = [fixed(median(runs.map((r) => r.canaryPerInterval)), 0), ratio(runs.flatMap((r) => r.judgeP99Ratios)), `${client('p50')}, ${client('p99')}`];
    const out = (j: 'controller' | 'reference') => runs.map((r) => healthyOutcome(r[j].events, Infinity));
    const c = out('controller');
    const f = out('reference');
    rows.push([`${s.name}: ${s.what}`, 'drum-splitter', String(n), rate(c.filter((o) => o.reduce).length, n), rate(c.filter((o) => o.rollback).length, n),
      rate(c.filter((o) => o.hold).length, n), `${runs.filter((r) => r.controller.completed).length}/${n}`, ...common]);
    rows.push(['', `reference (Flagger, threshold ${FLAGGER_THRESHOLD})`, String(n), '–', rate(f.filter((o) => o.rollback).length, n), rate(f.filter((o) => o.hold).length, n), '–', '', '', '']);
  }
  return [line(head), line(head.map((_, i) => (i < 2 ? '---' : '---:'))), ...rows.map(line)];
}

interface Detection { readonly detected: number; readonly n: number; readonly times: readonly number[] }

function detections(runs: readonly RunResult[], judge: 'controller' | 'reference', expected: NonNullable<Scenario['expect']>): Detection {
  const outs = runs.map((r) => faultyOutcome(r[judge].events, expected, r.onset, r[judge].ends));
  const times = outs.flatMap((o) => (o.detected ? [o.intervals] : []));
  return { detected: times.length, n: runs.length, times };
}

const timing = (d: Detection): string => (d.times.length === 0 ? '–' : `${median([...d.times])} / ${Math.max(...d.times)}`);

function faultyTable(sums: readonly Summary[], bounds: { immediate: number; gradual: number }): string[] {
  const head = ['scenario', 'expected', 'judge', 'detected', 'intervals to detect, median / max', 'bound', 'canary req / interval', 'p99 canary ÷ baseline: rollout\'s median check, client'];
  const rows: string[][] = [];
  for (const { scenario: s, runs } of sums) {
    if (s.notMeasurable !== undefined) {
      rows.push([`${s.name}: ${s.what}`, s.expect!, '–', 'not measurable', '', '', '', '']);
      continue;
    }
    const common = [fixed(median(runs.map((r) => r.canaryPerInterval)), 0), `${ratio(runs.flatMap((r) => r.judgeP99Ratios))}, ${ratio(runs.map((r) => r.client.p99.canary / r.client.p99.baseline))}`];
    if (s.expect === undefined) {
      // Wrong answers are the shadow's to find; the rollout takes no input from it yet.
      const times = runs.flatMap((r) => (r.shadowAt === null ? [] : [checksSince(r.reference.ends.filter((t) => t <= r.shadowAt!), r.onset) + 1]));
      const acted = (j: 'controller' | 'reference') => runs.filter((r) => r[j].events.length > 0).length;
      rows.push([`${s.name}: ${s.what}`, 'a mismatch', 'shadow (GET /shadow)', rate(times.length, runs.length), timing({ detected: times.length, n: runs.length, times }), '', ...common]);
      rows.push(['', 'none yet', 'drum-splitter rollout', `acted in ${rate(acted('controller'), runs.length)}`, '', '', '', '']);
      rows.push(['', '', `reference (Flagger, threshold ${FLAGGER_THRESHOLD})`, `acted in ${rate(acted('reference'), runs.length)}`, '', '', '', '']);
      continue;
    }
    const bound = String(bounds[s.trigger!]);
    const c = detections(runs, 'controller', s.expect);
    const f = detections(runs, 'reference', s.expect);
    rows.push([`${s.name}: ${s.what}`, `${s.expect} (${s.trigger})`, 'drum-splitter', rate(c.detected, c.n), timing(c), bound, ...common]);
    rows.push(['', '', `reference (Flagger, threshold ${FLAGGER_THRESHOLD})`, rate(f.detected, f.n), timing(f), '', '', '']);
  }
  return [line(head), line(head.map((_, i) => (i < 3 ? '---' : '---:'))), ...rows.map(line)];
}

function gates(sums: readonly Summary[], bounds: { immediate: number; gradual: number; how: string }, command: string): { lines: string[]; failed: boolean } {
  const healthy = sums.filter((x) => x.scenario.truth === 'healthy' && x.runs.length > 0);
  const faulty = sums.filter((x) => x.scenario.truth === 'faulty' && x.scenario.expect !== undefined && x.runs.length > 0);
  const falseActions = (j: 'controller' | 'reference', x: Summary): number => x.runs.filter((r) => {
    const o = healthyOutcome(r[j].events, Infinity);
    return o.reduce || o.rollback;
  }).length;
  const gateList: Gate[] = [];
  if (healthy.length > 0) {
    const bad = healthy.filter((x) => falseActions('controller', x) > 0);
    const n = healthy.reduce((a, x) => a + x.runs.length, 0);
    gateList.push({
      name: 'verdicts: no false reduction or rollback on a healthy canary',
      bar: '0 in every healthy scenario',
      figure: bad.length === 0 ? `0 in ${n} runs of ${healthy.length} scenarios` : bad.map((x) => `${x.scenario.name} ${falseActions('controller', x)}/${x.runs.length}`).join(', '),
      met: bad.length === 0,
      command,
    });
    const ours = healthy.reduce((a, x) => a + falseActions('controller', x), 0);
    const theirs = healthy.reduce((a, x) => a + falseActions('reference', x), 0);
    gateList.push({
      name: 'verdicts: fewer false actions than the reference rule (Flagger\'s default analysis)',
      bar: 'fewer runs with a false reduction or rollback',
      figure: `${ours} vs ${theirs} of ${n} healthy runs`,
      met: ours === 0 && theirs === 0 ? 'not shown' : ours < theirs,
      command,
    });
  }
  const measured = faulty.filter((x) => x.scenario.notMeasurable === undefined);
  if (measured.length > 0) {
    const misses: string[] = [];
    for (const x of measured) {
      const d = detections(x.runs, 'controller', x.scenario.expect!);
      const bound = bounds[x.scenario.trigger!];
      const late = d.times.filter((t) => t > bound).length;
      if (d.detected < d.n || late > 0) misses.push(`${x.scenario.name} ${d.detected}/${d.n}${late > 0 ? ` (${late} later than ${bound})` : ''}`);
    }
    const unmeasured = sums.filter((x) => x.scenario.notMeasurable !== undefined).map((x) => x.scenario.name);
    gateList.push({
      name: 'verdicts: every fault detected, in time',
      bar: `N of N; immediate triggers within ${bounds.immediate} intervals, gradual within settle + confirm + 1 = ${bounds.gradual} (${bounds.how})`,
      figure: (misses.length === 0 ? `all ${measured.length} scenarios` : `missed or late: ${misses.join(', ')}`) + (unmeasured.length > 0 ? `; not measurable: ${unmeasured.join(', ')}` : ''),
      met: misses.length === 0,
      command,
    });
  }
  return { lines: gateList.map(reportGate), failed: gateList.some((g) => g.met === false) };
}

/** A whole number ≥ 0 from the environment, or undefined when unset. */
function envCount(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new Error(`${name} must be a whole number ≥ 0, got "${v}"`);
  return Number(v);
}

async function main(): Promise<number> {
  if (!existsSync(DRUM_SPLITTER_CLI) || !existsSync(STANDIN)) {
    process.stderr.write('bench:verdicts: dist/ is missing: run `npm run build` first\n');
    return 2;
  }
  installCleanup();
  const repeats = envInt('BENCH_REPEATS', 20);
  const concurrency = envInt('BENCH_CONCURRENCY', 3);
  const names = (process.env.BENCH_SCENARIOS ?? '').split(',').map((n) => n.trim()).filter((n) => n !== '');
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`BENCH_SCENARIOS: unknown ${unknown.join(', ')}; the scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const chosen = names.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => names.includes(s.name));
  const settle = envCount('BENCH_SETTLE');
  const confirm = envCount('BENCH_CONFIRM');
  const floor = process.env.BENCH_P99_FLOOR;
  const knobs: JudgeKnobs = { ...(settle === undefined ? {} : { settle }), ...(confirm === undefined ? {} : { confirm }), ...(floor === undefined || floor === '' ? {} : { minP99Difference: floor }) };

  const logDir = makeTempDir('bench-verdicts-');
  // Every run's plan checked once, as serve would read it: a judge setting this build does not
  // know (BENCH_SETTLE before the rollout has settle) is one line here, not hundreds of broken runs.
  for (const s of chosen) {
    const file = join(logDir, `check-${s.name}.yaml`);
    writeFileSync(file, JSON.stringify(configFile(s, 'http://127.0.0.1:1', 'http://127.0.0.1:2', knobs)));
    const r = spawnSync(process.execPath, [DRUM_SPLITTER_CLI, 'check', '--config', file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`the plan of ${s.name} is refused: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  const results = new Map<string, RunResult[]>(chosen.map((s) => [s.name, []]));
  const broken = new Map<string, string[]>(chosen.map((s) => [s.name, []]));
  const runnable = chosen.filter((s) => s.notMeasurable === undefined);
  const total = runnable.length * repeats;
  const began = Date.now();
  // The machine may be shared: how busy it was is part of the result.
  const load0 = loadavg().map((x) => x.toFixed(1)).join(' ');
  let finished = 0;
  const task = (s: Scenario, r: number) => async (): Promise<void> => {
    const tag = `${s.name}-${r}`;
    let error = '';
    // One retry: a port another run took between freePort() and its bind is the likely cause.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const res = await runOnce(s, logDir, knobs, `${tag}-${attempt}`);
        results.get(s.name)!.push(res);
        const h = healthyOutcome(res.controller.events, Infinity);
        process.stderr.write(`bench:verdicts: ${tag}: ${h.rollback ? 'rollback' : h.reduce ? 'reduce' : h.hold ? 'hold' : 'no action'}` +
          `, reference ${healthyOutcome(res.reference.events, Infinity).rollback ? 'rollback' : 'no rollback'} [${++finished}/${total}, ${((Date.now() - began) / 60_000).toFixed(1)} min]\n`);
        return;
      } catch (e) {
        error = (e as Error).message.split('\n')[0]!;
      }
    }
    broken.get(s.name)!.push(error);
    process.stderr.write(`bench:verdicts: ${tag}: broken: ${error} [${++finished}/${total}]\n`);
  };
  // Round-robin, so a busier stretch of the machine falls on every scenario alike; the noisy
  // neighbour's burners would load every run beside it, so its runs come last, one at a time.
  const together: (() => Promise<void>)[] = [];
  for (let r = 1; r <= repeats; r++) for (const s of runnable.filter((x) => !x.noisy)) together.push(task(s, r));
  await pool(together, concurrency);
  const alone: (() => Promise<void>)[] = [];
  for (let r = 1; r <= repeats; r++) for (const s of runnable.filter((x) => x.noisy)) alone.push(task(s, r));
  await pool(alone, 1);
  const minutes = (Date.now() - began) / 60_000;
  const json = process.env.BENCH_JSON;
  if (json !== undefined && json !== '') {
    writeFileSync(json, JSON.stringify([...results.values()].flat().map((r) => ({ scenario: r.scenario.name, onset: r.onset, shadowAt: r.shadowAt, ...r.raw }))));
  }

  const sums: Summary[] = chosen.map((s) => ({ scenario: s, runs: results.get(s.name)!, broken: broken.get(s.name)! }));
  const planView = sums.flatMap((x) => x.runs).at(0)?.planView ?? {};
  const fromPlan = (key: string): number | undefined => (typeof planView[key] === 'number' ? (planView[key] as number) : undefined);
  const s = settle ?? fromPlan('settle');
  const c = confirm ?? fromPlan('confirm');
  const bounds = {
    immediate: 2,
    gradual: (s ?? DEFAULT_SETTLE) + (c ?? DEFAULT_CONFIRM) + 1,
    how: s === undefined && c === undefined ? `settle and confirm not in GET /rollout's plan: the issue's defaults ${DEFAULT_SETTLE} and ${DEFAULT_CONFIRM}` : `settle ${s ?? DEFAULT_SETTLE}, confirm ${c ?? DEFAULT_CONFIRM}`,
  };
  const env = [`BENCH_REPEATS=${repeats}`, ...(names.length > 0 ? [`BENCH_SCENARIOS=${names.join(',')}`] : []), ...(concurrency !== 3 ? [`BENCH_CONCURRENCY=${concurrency}`] : []),
    ...(settle === undefined ? [] : [`BENCH_SETTLE=${settle}`]), ...(confirm === undefined ? [] : [`BENCH_CONFIRM=${confirm}`]), ...(knobs.minP99Difference === undefined ? [] : [`BENCH_P99_FLOOR=${knobs.minP99Difference}`])];
  const command = `${env.join(' ')} npm run bench:verdicts`;
  const healthy = sums.filter((x) => x.scenario.truth === 'healthy');
  const faulty = sums.filter((x) => x.scenario.truth === 'faulty');
  const g = gates(sums, bounds, command);
  const brokenRuns = sums.filter((x) => x.broken.length > 0).map((x) => `${x.scenario.name} ${x.broken.length} (${x.broken[0]})`);
  const all = sums.flatMap((x) => x.runs);
  const failures = all.reduce((a, r) => a + r.clientFailures, 0);
  const unseen = all.reduce((a, r) => a + r.unseenChecks, 0);
  const nginx = findNginx();
  const sample = configFile(SCENARIOS[0]!, '…', '…', knobs).rollout as Record<string, unknown>;
  process.stdout.write([
    `command: \`${command}\` (${minutes.toFixed(1)} min, ${concurrency} runs at once; load average ${load0} at the start, ${loadavg().map((x) => x.toFixed(1)).join(' ')} at the end)`,
    machineLine(nginx === null ? null : nginxVersion(nginx)),
    '',
    `- each run: two stand-in processes (\`bench/verdicts-standin.ts\`: the demo's \`createStandin\`, the same code on both sides, so "identical" is exact; they start in ~0.1 s, so a fresh process per run costs little), each answering a prediction after a lognormal service time fitted to the issue's gunicorn stand-in (p50 ${MODEL_LATENCY.medianMs} ms, p99 ${MODEL_LATENCY.p99Ms} ms), so the baseline's p99 is known by construction and a latency fault of +x% multiplies the canary's every draw by 1 + x (its p99 with it; the proxy's own time, and this machine's scheduling, dilute it end to end: the last column); then \`drum-splitter serve --config\` with the run's plan (checks every ${INTERVAL_MS / 1000} s over ${WINDOW_MS / 1000} s, ${JSON.stringify(sample.rollback)}${Object.keys(knobs).length > 0 ? `, ${JSON.stringify(knobs)}` : ''}) and \`--poll-interval\` 500ms; the load: POST /predict/ at a fixed rate (open loop), from ${CLIENTS} client addresses (127.0.x.y) in turn`,
    `- healthy runs last ${HEALTHY_CHECKS} checks; faulty ones start faulty (the fault set as the rollout starts) and last until each judge has acted, or ${FAULTY_CAP} checks after the fault is visible; once the controller has reduced or rolled back the canary, the bench puts it back, so the reference judges the same share to the end. Holds: runs with a check that missed a criterion; completed: runs that reached the plan's end`,
    `- reference: Flagger's default analysis over the same intervals, from the client's answers (X-Drum-Splitter-Upstream): each interval, the canary's 5xx rate over the step's maxErrorRate, or its p99 over the interval's baseline p99 × (1 + maxP99Increase), or no canary request at all, is a failed check (a hold); at ${FLAGGER_THRESHOLD} failed checks, rollback (\`bench/verdicts-judge.ts\` cites Flagger's code and docs)`,
    `- rates: runs with the action of N, with Wilson's 95% interval; intervals to detect: checks from the fault's start (ping: from the end of pingTimeout) to the one that acted, that one included`,
    ...(failures > 0 ? [`- predictions the client got no answer to: ${failures}`] : []),
    ...(unseen > 0 ? [`- checks the bench's poll missed (the reference judged a double interval there): ${unseen}`] : []),
    ...(brokenRuns.length > 0 ? [`- runs that broke (left out): ${brokenRuns.join('; ')}`] : []),
    '',
    ...(healthy.length > 0 ? ['### Healthy canaries: false actions', '', ...healthyTable(healthy), ''] : []),
    ...(faulty.length > 0 ? ['### Faulty canaries: detections', '', ...faultyTable(faulty, bounds), ''] : []),
    ...(all.some((r) => r.said !== null) ? ['What the controller said, the first run that acted per scenario:', '', ...sums.flatMap((x) => {
      const r = x.runs.find((run) => run.said !== null);
      return r === undefined ? [] : [`- ${x.scenario.name}: ${r.said}`];
    }), ''] : []),
    ...faulty.filter((x) => x.scenario.notMeasurable !== undefined).map((x) => `- ${x.scenario.name}: not measurable: ${x.scenario.notMeasurable}`),
    ...faulty.filter((x) => x.scenario.expect === undefined).map((x) => `- ${x.scenario.name}: found by the shadow's mismatch count; the rollout does not act on shadow mismatches yet (another issue wires that)`),
    '',
    ...g.lines,
    '',
  ].join('\n'));
  return g.failed ? 1 : 0;
}

main().then((code) => process.exit(code), (e: unknown) => {
  process.stderr.write(`bench:verdicts: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
