import t from 'tap';
import { parsePlan } from '../src/rollout/plan.js';
import { DEFAULT_MIN_P99_DIFFERENCE_MS, MIN_P99_SAMPLES, outcome, p99Criterion, percentile, summarize, type Criterion, type ResultRow } from '../src/replay/report.js';

// The seed's generate_report (CANARY_DEPLOYMENT.md), checked against values its Python gives.

t.test('percentile interpolates between closest ranks as the seed does', async (t) => {
  t.equal(percentile([], 0.5), 0);
  t.equal(percentile([4, 1, 3, 2], 0.5), 2.5);
  t.equal(percentile([4, 1, 3, 2], 0.99), 3.9699999999999998);
  t.equal(percentile([10, 20], 0.95), 19.5);
  t.equal(percentile([7], 0.99), 7);
});

const row = (flask: number, fastapi: number, more: Partial<ResultRow> = {}): ResultRow => ({
  path: '/predict/',
  method: 'POST',
  flask_status: 200,
  fastapi_status: 200,
  flask_latency_ms: flask,
  fastapi_latency_ms: fastapi,
  diff: null,
  error: null,
  route: '/predict/',
  kind: 'json',
  differences: [],
  source: 'rec.jsonl:1',
  ...more,
});

t.test('summary: match rate and latency improvement formatted as the seed formats them', async (t) => {
  const summary = summarize([row(10, 8), row(20, 25, { diff: 'Status mismatch: Flask=200, FastAPI=500' }), row(30, 40), row(1, 1, { error: 'canary: timeout after 30000 ms' })]);
  t.match(summary, { total_requests: 4, errors: 1, response_mismatches: 1, match_rate: '50.00%' });
  t.strictSame(summary.flask_latency, { p50: 20, p95: 29, p99: 29.8 }, 'the errored request is left out');
  // Python: f"{(1 - 25 / 20) * 100:.1f}%" and f"{(1 - 39.7 / 29.8) * 100:.1f}%"
  t.strictSame(summary.latency_improvement, { p50: '-25.0%', p99: '-33.2%' });
});

t.test("p99: the rollout's test and floor, inconclusive under 100 latencies a side", async (t) => {
  t.equal(DEFAULT_MIN_P99_DIFFERENCE_MS, parsePlan(undefined, ['flask', 'fastapi']).minP99DifferenceMs, "the default floor is the rollout's");
  const steady = (n: number, ms: number): number[] => Array.from({ length: n }, (_, i) => ms + (i % 10) / 10);
  const slowTail = (n: number, ms: number, tail: number): number[] => steady(n, ms).map((x, i) => (i % 50 === 0 ? x + tail : x));
  // [baseline ms, canary ms, floor ms] → verdict, note
  const table: [number[], number[], number, Criterion['verdict'], RegExp][] = [
    [steady(99, 10), steady(99, 10), 5, 'inconclusive', /^p99: 99 canary and 99 baseline requests, fewer than 100 each \(the p99 of fewer than 100 latencies is their slowest/],
    [steady(100, 10), steady(200, 10), 5, 'pass', /^canary p99 10\.9 ms vs baseline 10\.9 ms \(\+0%, \+0\.0 ms; Mann–Whitney p=0\.\d+, n=200\/100\)$/],
    [steady(200, 10), steady(200, 20), 5, 'fail', /^canary p99 20\.9 ms vs baseline 10\.9 ms \(\+91\.7%, \+10\.0 ms; Mann–Whitney p=\d.*\) not under \+20%$/],
    [steady(200, 2), steady(200, 4), 5, 'pass', /\+2\.0 ms; .*; under the 5\.0 ms floor, so not a regression$/],
    [steady(200, 2), steady(200, 4), 0, 'fail', /not under \+20%$/],
    [steady(200, 10), slowTail(200, 10, 30), 5, 'pass', /; not significant, so not a regression$/],
  ];
  for (const [baseline, canary, floor, verdict, note] of table) {
    const c = p99Criterion(baseline, canary, floor);
    t.equal(c.verdict, verdict, note.source);
    t.equal(c.pass, verdict === 'inconclusive' ? null : verdict === 'pass');
    t.match(c.note, note);
    t.match(c.test, { samples: { baseline: baseline.length, canary: canary.length }, min_samples: MIN_P99_SAMPLES, min_difference_ms: floor });
  }
  const judged = p99Criterion(steady(200, 10), steady(200, 20), 5);
  t.match(judged, { name: 'canary_p99_within_20_percent', threshold: 1.2 });
  t.ok(Math.abs(judged.value! - 20.9 / 10.9) < 1e-9, 'the ratio of the nearest-rank p99s');
  t.match(judged.test, { p99_ms: { baseline: 10.9, canary: 20.9 } });
  t.ok(Math.abs(judged.test!.difference_ms! - 10) < 1e-9);
  t.ok(judged.test!.p! < 1e-10);
});

t.test('outcome: fail if one fails, else inconclusive if one is; not measured fails nothing', async (t) => {
  const c = (verdict: Criterion['verdict']): Criterion => ({ name: 'x', threshold: 1, value: null, verdict, pass: verdict === 'pass' ? true : verdict === 'fail' ? false : null });
  const table: [Criterion['verdict'][], string][] = [
    [['pass', 'pass'], 'pass'],
    [['pass', 'not measured'], 'pass'],
    [['inconclusive', 'pass'], 'inconclusive'],
    [['inconclusive', 'fail'], 'fail'],
    [['fail', 'not measured'], 'fail'],
    [[], 'pass'],
  ];
  for (const [verdicts, want] of table) t.equal(outcome(verdicts.map(c)), want, verdicts.join(' '));
});
