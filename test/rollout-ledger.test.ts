/** The rollout's ledger (pure accumulation of each tick) and the report built from it: Markdown and HTML. */
import t from 'tap';
import type { Evidence, Verdict } from '../src/rollout/checks.js';
import type { Decision } from '../src/rollout/controller.js';
import { EMPTY_LEDGER, ledgerDecided, ledgerReset, ledgerStarted, ledgerTicked, ledgerTotals, MAX_PERIOD_DECISIONS, MAX_POINTS, MAX_STEPS, summarize, type Ledger } from '../src/rollout/ledger.js';
import { buildReport, renderMarkdown, renderReportHtml, reportPaths } from '../src/rollout/report.js';

const SIDES = { baseline: 'flask', canary: 'fastapi' };
const WINDOW = 5 * 60_000;
const T0 = 1_700_000_000_000;
const MiB = 2 ** 20;

function evidence(canary: { requests: number; errors?: number; latencies?: number[] }, baseline: { requests: number; errors?: number; latencies?: number[] }, memory: { canaryRss?: number; baselineRss?: number } = {}): Evidence {
  return {
    canary: { requests: canary.requests, errors: canary.errors ?? 0, latencies: canary.latencies ?? [] },
    baseline: { requests: baseline.requests, errors: baseline.errors ?? 0, latencies: baseline.latencies ?? [] },
    memory: { canaryRss: memory.canaryRss, baselineRss: memory.baselineRss, canaryGrowthPerHour: undefined, canaryOom: undefined },
    canaryDownMs: 0,
  };
}

const verdict = (extra: { canaryP99?: number; baselineP99?: number; memory?: number } = {}): Verdict => ({
  action: 'pass',
  text: 'all checks pass',
  checks: [
    { check: 'p99', status: 'ok', value: 0, limit: 0.2, rollbackLimit: 0.5, text: 'p99', ...(extra.canaryP99 === undefined ? {} : { canaryP99: extra.canaryP99, baselineP99: extra.baselineP99 }) },
    { check: 'memory', status: 'ok', value: extra.memory ?? null, limit: 0.3, rollbackLimit: 0.5, text: 'memory' },
  ],
});

const decision = (action: Decision['action'], from: number, to: number, step: number, at: number, extra: Partial<Decision> = {}): Decision => ({
  at: new Date(at).toISOString(), action, text: `${action} ${from} → ${to}`, from, to, phase: 'running', step, who: 'rollout', reason: null, ...extra,
});

t.test('counts: the window\'s growth while it covers the period, its rate times the time since after', async (t) => {
  let l = ledgerStarted(T0, 0, 5);
  // 1 minute in: the window holds the whole period.
  l = ledgerTicked(l, T0 + 60_000, evidence({ requests: 100, errors: 1 }, { requests: 1900 }), verdict(), SIDES, WINDOW);
  l = ledgerTicked(l, T0 + 120_000, evidence({ requests: 250, errors: 1 }, { requests: 4000 }), verdict(), SIDES, WINDOW);
  t.match(l.steps[0]!.upstreams, { fastapi: { requests: 250, errors: 1 }, flask: { requests: 4000, errors: 0 } }, 'exact while the window covers it');
  // 10 minutes in, the window (5 min) slides: 600 in 5 min is 120 a minute, times the 8 minutes since the last tick.
  l = ledgerTicked(l, T0 + 600_000, evidence({ requests: 600, errors: 5 }, { requests: 6000 }), verdict(), SIDES, WINDOW);
  t.equal(l.steps[0]!.upstreams.fastapi!.requests, 250 + (600 * 480_000) / WINDOW);
  t.equal(l.steps[0]!.upstreams.fastapi!.errors, 1 + (5 * 480_000) / WINDOW);
  t.equal(l.steps[0]!.checks, 3);
  // A window that starts again (a confirmation on fresh exchanges): its counts start from nothing.
  l = ledgerReset(l, T0 + 600_000);
  l = ledgerTicked(l, T0 + 660_000, evidence({ requests: 30 }, { requests: 300 }), verdict(), SIDES, WINDOW);
  t.equal(l.steps[0]!.upstreams.fastapi!.requests, 250 + 960 + 30);
  // A window that shrank (a restart) adds nothing, never a negative count.
  l = ledgerTicked(l, T0 + 720_000, evidence({ requests: 10 }, { requests: 100 }), verdict(), SIDES, WINDOW);
  t.equal(l.steps[0]!.upstreams.fastapi!.requests, 250 + 960 + 30);
  // The first tick after a reset, later than a window: the rate times the time since the reset.
  const late = ledgerTicked(ledgerReset(l, T0 + 720_000), T0 + 720_000 + 2 * WINDOW, evidence({ requests: 60 }, { requests: 100 }), verdict(), SIDES, WINDOW);
  t.equal(late.steps[0]!.upstreams.fastapi!.requests, 1240 + 120);
  // A count that is no measurement (Prometheus's NaN) adds nothing.
  l = ledgerTicked(l, T0 + 780_000, evidence({ requests: NaN }, { requests: 200 }), verdict(), SIDES, WINDOW);
  t.equal(l.steps[0]!.upstreams.fastapi!.requests, 1240);
});

t.test('latencies, memory and ratios: the last measured, the highest ratio; no numbers leave the last', async (t) => {
  let l = ledgerStarted(T0, 0, 5);
  const lat = Array.from({ length: 100 }, (_, i) => (i + 1) / 1000);
  l = ledgerTicked(l, T0 + 60_000, evidence({ requests: 100, latencies: lat }, { requests: 100, latencies: lat }, { canaryRss: 300 * MiB, baselineRss: 200 * MiB }), verdict({ canaryP99: 0.12, baselineP99: 0.1, memory: 0.5 }), SIDES, WINDOW);
  l = ledgerTicked(l, T0 + 120_000, evidence({ requests: 100 }, { requests: 100 }), verdict({ canaryP99: 0.1, baselineP99: 0.1 }), SIDES, WINDOW);
  const s = l.steps[0]!;
  t.match(s.upstreams.fastapi, { p50: 0.05, p99: 0.099, rss: 300 * MiB }, 'the last window with latencies and memory');
  t.same(s.p99Ratio, { last: 1, max: 1.2 });
  t.same(s.memoryRatio, { last: 1.5, max: 1.5 });
  t.same(l.points.map((p) => [p.p99Ratio, p.memoryRatio, p.errorRate]), [[1.2, 1.5, 0], [1, null, 0]]);
  // A baseline p99 of 0 gives no ratio; histograms read as samples do.
  l = ledgerTicked(l, T0 + 180_000, { ...evidence({ requests: 0 }, { requests: 10 }), canary: { requests: 0, errors: 0, latencies: { histogram: [{ le: 0.1, count: 10 }, { le: Infinity, count: 10 }] } } }, verdict({ canaryP99: 0.1, baselineP99: 0 }), SIDES, WINDOW);
  t.equal(l.points.at(-1)!.p99Ratio, null);
  t.equal(l.points.at(-1)!.errorRate, null, 'no requests: no error rate');
  t.equal(l.steps[0]!.upstreams.fastapi!.p50, 0.05, 'from the histogram');
});

t.test('ticks change nothing before a start, after the end, or without numbers', async (t) => {
  const e = evidence({ requests: 1 }, { requests: 1 });
  t.equal(ledgerTicked(EMPTY_LEDGER, T0, e, verdict(), SIDES, WINDOW), EMPTY_LEDGER);
  const ended = ledgerDecided(ledgerStarted(T0, 0, 5), decision('abort', 5, 0, 0, T0 + 1), false, T0 + 1);
  t.equal(ledgerTicked(ended, T0 + 2, e, verdict(), SIDES, WINDOW), ended);
  const l = ledgerStarted(T0, 0, 5);
  t.equal(ledgerTicked(l, T0 + 2, { ...e, unavailable: 'Prometheus down' }, verdict(), SIDES, WINDOW), l);
});

t.test('decisions: each in the period it was made in; a new weight or step opens the next; the end closes it', async (t) => {
  let l: Ledger = EMPTY_LEDGER;
  t.equal(ledgerDecided(l, decision('pause', 0, 0, 0, T0), true, T0), l, 'nothing started: nothing recorded');
  l = ledgerDecided(l, decision('start', 0, 5, 0, T0), true, T0);
  l = ledgerDecided(l, decision('suspect', 5, 5, 0, T0 + 1000), true, T0 + 1000);
  l = ledgerDecided(l, decision('promote', 5, 50, 1, T0 + 2000), true, T0 + 2000);
  l = ledgerDecided(l, decision('reduce', 50, 25, 0, T0 + 3000), true, T0 + 3000);
  l = ledgerDecided(l, decision('pause', 25, 25, 0, T0 + 4000, { phase: 'paused' }), true, T0 + 4000);
  const windowBefore = l.window;
  l = ledgerDecided(l, decision('resume', 25, 25, 1, T0 + 4500), true, T0 + 4500);
  t.equal(l.window, windowBefore, 'another step at the same weight: the evidence\'s window goes on');
  l = ledgerDecided(l, decision('rollback', 25, 0, 0, T0 + 5000, { phase: 'rolled_back' }), false, T0 + 5000);
  t.same(l.steps.map((s) => [s.step, s.weight, s.startedAt - T0, s.endedAt! - T0, s.decisions.map((d) => d.action)]), [
    [0, 5, 0, 2000, ['start', 'suspect', 'promote']],
    [1, 50, 2000, 3000, ['reduce']],
    [0, 25, 3000, 4500, ['pause', 'resume']],
    [1, 25, 4500, 5000, ['rollback']],
  ]);
  t.equal(l.endedAt, T0 + 5000);
  t.equal(ledgerDecided(l, decision('pause', 0, 0, 0, T0 + 6000), true, T0 + 6000), l, 'after the end: nothing');
  const verified = ledgerDecided(l, decision('verified', 0, 0, 0, T0 + 6500), false, T0 + 6500);
  t.same([verified.endedAt, verified.steps.length, verified.steps.at(-1)!.decisions.at(-1)!.action], [T0 + 5000, l.steps.length, 'verified'], "after the end: the baseline's verification, in the last period");
  const again = ledgerDecided(l, decision('start', 0, 5, 0, T0 + 7000), true, T0 + 7000);
  t.same([again.startedAt, again.endedAt, again.steps.length], [T0 + 7000, null, 1], 'a new start: a new ledger');
  const retried = ledgerDecided(l, decision('retry', 0, 5, 0, T0 + 8000), true, T0 + 8000);
  t.same([retried.startedAt, retried.endedAt, retried.steps.length, retried.steps[0]!.decisions.map((d) => d.action)], [T0 + 8000, null, 1, ['retry']], 'a retry after the end: a new ledger too');
});

t.test('kept bounded: points thinned in their older half, periods cut to the newest', async (t) => {
  let l = ledgerStarted(T0, 0, 5);
  for (let i = 1; i <= MAX_POINTS + 1; i++) l = ledgerTicked(l, T0 + i, evidence({ requests: i }, { requests: i }), verdict(), SIDES, WINDOW);
  t.ok(l.points.length <= MAX_POINTS, `${l.points.length} points`);
  t.equal(l.points.at(-1)!.at, T0 + MAX_POINTS + 1, 'the newest kept');
  t.equal(l.points.at(-2)!.at, T0 + MAX_POINTS, 'with its detail');
  let m = ledgerStarted(T0, 0, 1);
  for (let i = 1; i <= MAX_STEPS + 5; i++) m = ledgerDecided(m, decision('pause', 1, 1 + (i % 2), 0, T0 + i), true, T0 + i);
  t.equal(m.steps.length, MAX_STEPS);
  t.equal(m.steps.at(-1)!.startedAt, T0 + MAX_STEPS + 5);
  let d = ledgerStarted(T0, 0, 1);
  for (let i = 1; i <= MAX_PERIOD_DECISIONS + 3; i++) d = ledgerDecided(d, decision('suspect', 1, 1, 0, T0 + i), true, T0 + i);
  t.same([d.steps[0]!.decisions.length, d.steps[0]!.omitted, d.steps[0]!.decisions[0]!.at], [MAX_PERIOD_DECISIONS, 3, new Date(T0 + 4).toISOString()], 'a period keeps its newest decisions, and counts the rest');
  const r = buildReport(d, { canary: 'fastapi', baseline: 'flask', phase: 'running', note: null, weight: 1 }, T0 + 1000);
  t.match(renderMarkdown(r), /- \(period 1: 3 earlier decisions not kept\)\n- \*\*/);
  t.match(renderReportHtml(r), /<ul><li>\(period 1: 3 earlier decisions not kept\)<\/li><li class="decision suspect">/);
});

t.test('the summary: requests and error rate since the last one, the latest latencies and memory', async (t) => {
  let l = ledgerStarted(T0, 0, 5);
  l = ledgerTicked(l, T0 + 60_000, evidence({ requests: 100, errors: 2, latencies: [0.01, 0.02] }, { requests: 1000 }, { canaryRss: 100 * MiB }), verdict(), SIDES, WINDOW);
  const before = ledgerTotals(l);
  l = ledgerTicked(l, T0 + 120_000, evidence({ requests: 300, errors: 4, latencies: [0.03] }, { requests: 1000 }), verdict(), SIDES, WINDOW);
  t.same(summarize(l, before, ['fastapi', 'flask', 'other']), {
    fastapi: { requests: 200, errorRate: 0.01, p50: 0.03, p99: 0.03, rss: 100 * MiB },
    flask: { requests: 0, errorRate: null, p50: null, p99: null, rss: null },
    other: { requests: 0, errorRate: null, p50: null, p99: null, rss: null },
  });
  t.same(summarize(EMPTY_LEDGER, {}, ['fastapi']), { fastapi: { requests: 0, errorRate: null, p50: null, p99: null, rss: null } });
});

/** A rollout of three periods: promoted, then rolled back with its checks. */
function sample(): Ledger {
  const lat = Array.from({ length: 100 }, (_, i) => (i + 1) / 1000);
  let l = ledgerDecided(EMPTY_LEDGER, decision('start', 0, 5, 0, T0), true, T0);
  l = ledgerTicked(l, T0 + 60_000, evidence({ requests: 100, errors: 1, latencies: lat }, { requests: 1900, latencies: lat }, { canaryRss: 150 * MiB, baselineRss: 100 * MiB }), verdict({ canaryP99: 0.11, baselineP99: 0.1, memory: 0.5 }), SIDES, WINDOW);
  l = ledgerDecided(l, decision('promote', 5, 50, 1, T0 + 60_000, { text: '5% held | passing → canary to 50%' }), true, T0 + 60_000);
  l = ledgerTicked(l, T0 + 120_000, evidence({ requests: 1000, errors: 50 }, { requests: 1000 }), verdict({ canaryP99: 0.2, baselineP99: 0.1 }), SIDES, WINDOW);
  const checks = [{ check: 'error_rate', status: 'rollback' as const, value: 0.05, limit: 0.001, rollbackLimit: 0.01, text: 'canary error rate 5% <over> 1%' }];
  return ledgerDecided(l, decision('rollback', 50, 0, 1, T0 + 120_000, { phase: 'rolled_back', checks, reason: 'r&d', who: 'rollout' }), false, T0 + 120_000);
}

t.test('the report: per period its duration, requests, error rates, ratios and decisions', async (t) => {
  const r = buildReport(sample(), { canary: 'fastapi', baseline: 'flask', phase: 'rolled_back', note: 'canary error rate 5%', weight: 0 }, T0 + 200_000);
  t.match(r, { format: 1, phase: 'rolled_back', startedAt: new Date(T0).toISOString(), endedAt: new Date(T0 + 120_000).toISOString(), weight: 0 });
  t.same(r.steps.map((s) => [s.step, s.weight, s.durationMs, s.upstreams.fastapi!.requests, s.upstreams.fastapi!.errorRate, s.p99Ratio.last]), [
    [1, 5, 60_000, 100, 0.01, 0.11 / 0.1],
    [2, 50, 60_000, 1000, 0.05, 2],
  ]);
  t.same(r.steps[1]!.upstreams.flask, { requests: 1000, errors: 0, errorRate: 0, p50: null, p99: null, rss: null });
  t.equal(r.points.length, 2);
  const open = buildReport(ledgerStarted(T0, 0, 5), { canary: 'fastapi', baseline: 'flask', phase: 'running', note: null, weight: 5 }, T0 + 5000);
  t.same([open.endedAt, open.steps[0]!.durationMs, open.steps[0]!.upstreams.fastapi!.errorRate], [null, 5000, null], 'a period under way lasts until now');
  t.same(reportPaths('/data/state.json'), { html: '/data/state.rollout-report.html', md: '/data/state.rollout-report.md' });
  t.same(reportPaths('/data/state'), { html: '/data/state.rollout-report.html', md: '/data/state.rollout-report.md' });
});

t.test('Markdown: tables GitHub renders, mermaid charts, each decision with its checks', async (t) => {
  const md = renderMarkdown(buildReport(sample(), { canary: 'fastapi', baseline: 'flask', phase: 'rolled_back', note: 'canary error rate 5%', weight: 0 }, T0 + 200_000));
  t.match(md, /^# Rollout report: fastapi over flask\n\nrolled back at 0% \(2023-11-14T22:13:20.000Z → 2023-11-14T22:15:20.000Z\): canary error rate 5%/);
  t.match(md, /\| 1 \| 1 \| 5% \| 2023-11-14T22:13:20.000Z \| 1m \| 1 \| 100 \| 1% \| 1,900 \| 0% \| 1.10× \(max 1.10×\) \| 1.50× \(max 1.50×\) \|/);
  t.match(md, /\| 2 \| 2 \| 50% \| .* \| 1m \| 1 \| 1,000 \| 5% \| 1,000 \| 0% \| 2.00× \(max 2.00×\) \| — \|/);
  t.match(md, /```mermaid\nxychart-beta\n  title "canary weight per period \(%\)"\n  x-axis \["1: 5%", "2: 50%"\]\n  y-axis "%"\n  bar \[5, 50\]\n```/);
  t.match(md, /bar \[1.1, 2\]/);
  t.match(md, /bar \[1.5, 0\]/, 'no memory ratio: drawn as 0');
  t.match(md, /- \*\*2023-11-14T22:14:20.000Z\*\* \(period 1, 5% → 50%\) `promote` by rollout: 5% held \\\| passing → canary to 50%/, 'a pipe in a decision does not break the list');
  t.match(md, /`rollback` by rollout \(r&d\): .*\n  - error_rate rollback: canary error rate 5% <over> 1%/);
  t.match(md, /\| 1 \| fastapi \| 50.0 ms \| 99.0 ms \| 150 MB \|/);
  t.match(md, /\| 2 \| flask \| — \| — \| — \|/);
  const none = renderMarkdown(buildReport(EMPTY_LEDGER, { canary: 'fastapi', baseline: 'flask', phase: 'idle', note: null, weight: 0 }, T0));
  t.equal(none, `# Rollout report: fastapi over flask\n\nNo rollout has run yet (idle).\n\nGenerated ${new Date(T0).toISOString()}.\n\n`);
});

t.test('HTML: self-contained (no script, nothing fetched), escaped, with its charts', async (t) => {
  const html = renderReportHtml(buildReport(sample(), { canary: 'fastapi', baseline: 'fl<a>sk', phase: 'rolled_back', note: null, weight: 0 }, T0 + 200_000));
  t.notMatch(html, /<script|<link|src=|url\(|@import/i, 'nothing to fetch, nothing to run');
  t.match(html, /<title>Rollout report: fastapi over fl&#60;a&#62;sk<\/title>/);
  t.match(html, /<svg class="chart" id="weight-chart"[^]*<path class="series" d="M56,\d/);
  t.equal((html.match(/<rect class="bar"/g) ?? []).length, 3, 'two p99 bars, one memory bar');
  t.match(html, /<li class="decision rollback">.*<code>rollback<\/code> by rollout \(r&#38;d\).*<ul><li>error_rate rollback: canary error rate 5% &#60;over&#62; 1%<\/li><\/ul>/);
  t.match(html, /<td>1,000<\/td><td>5%<\/td>/);
  const none = renderReportHtml(buildReport(EMPTY_LEDGER, { canary: 'fastapi', baseline: 'flask', phase: 'idle', note: null, weight: 0 }, T0));
  t.match(none, /No rollout has run yet \(idle\)/);
  t.notMatch(none, /<svg/);
  // A rollout still running: its weight line runs to now; no decisions in a period: "None." only when there are none at all.
  const running = renderReportHtml(buildReport(ledgerStarted(T0, 0, 5), { canary: 'fastapi', baseline: 'flask', phase: 'running', note: null, weight: 5 }, T0));
  t.match(running, /<p>None.<\/p>/);
  t.match(running, /running at 5% \(2023-11-14T22:13:20.000Z → now\)/);
});
