import t from 'tap';
import { parsePlan } from '../src/rollout/plan.js';
import { criteria, DEFAULT_MIN_P99_DIFFERENCE_MS, mismatchGroups, MIN_P99_SAMPLES, outcome, p99Criterion, percentile, summarize, type Criterion, type ResultRow } from '../src/replay/report.js';
import { criterionLine, groupLine, share, verdictCounts } from '../src/replay/shown.js';

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

const noMemory = { flask: { before: null, after: null }, fastapi: { before: null, after: null } };

t.test('error_responses_match with no error answer on either side: not measured, not a pass', async (t) => {
  const [, , errors, oom] = criteria([row(10, 10)], noMemory);
  t.strictSame(errors, { name: 'error_responses_match', threshold: 1, value: null, verdict: 'not measured', pass: null, note: 'no error answers to compare' });
  t.match(oom, { name: 'no_oom', verdict: 'not measured', pass: null });
  const [, , measured] = criteria([row(10, 10, { flask_status: 422, fastapi_status: 422 }), row(10, 10, { fastapi_status: 500, diff: 'Status mismatch: Flask=200, FastAPI=500' })], noMemory);
  t.match(measured, { value: 0.5, verdict: 'fail', note: '1 of 2 error answers match' });
});

t.test('share: a percent with one decimal, never rounded to all or nothing', async (t) => {
  const table: [number, string][] = [
    [1, '100.0%'],
    [0, '0.0%'],
    [0.9656862745098039, '96.6%'],
    [0.9999, '>99.9%'],
    [0.0004, '<0.1%'],
    [0.5, '50.0%'],
  ];
  for (const [x, want] of table) t.equal(share(x), want, String(x));
});

t.test('criterionLine: the verdict, the value rounded, what it was judged against, the note', async (t) => {
  const p99 = p99Criterion(Array.from({ length: 200 }, (_, i) => 10 + (i % 10) / 10), Array.from({ length: 200 }, (_, i) => 20 + (i % 10) / 10), 5);
  const table: [Criterion, string][] = [
    [{ name: 'match_rate', threshold: 1, value: 0.9656862745098039, verdict: 'fail', pass: false, note: '197 of 204 requests match' }, 'FAIL match_rate: 96.6% (criterion: 100%); 197 of 204 requests match'],
    [{ name: 'match_rate', threshold: 1, value: null, verdict: 'fail', pass: false, note: 'no requests replayed' }, 'FAIL match_rate: no requests replayed (criterion: 100%)'],
    [
      p99,
      'FAIL canary_p99_within_20_percent: 191.7% of the baseline\'s p99 (criterion: at most 120%, unless under 5 ms more or not slower by Mann–Whitney p < 0.01); canary p99 20.9 ms vs baseline 10.9 ms (+91.7%, +10.0 ms; Mann–Whitney p=' +
        /p=([^,]+),/.exec(p99.note!)![1] +
        ', n=200/200) not under +20%',
    ],
    [{ ...p99, test: { ...p99.test!, min_difference_ms: 0 }, note: undefined } as Criterion, 'FAIL canary_p99_within_20_percent: 191.7% of the baseline\'s p99 (criterion: at most 120%, unless not slower by Mann–Whitney p < 0.01)'],
    [{ name: 'error_responses_match', threshold: 1, value: 1, verdict: 'pass', pass: true, note: '3 of 3 error answers match' }, 'pass error_responses_match: 100.0% (criterion: 100%); 3 of 3 error answers match'],
    [{ name: 'no_oom', threshold: 0, value: 1, verdict: 'fail', pass: false }, 'FAIL no_oom: 1 at the limit (criterion: 0 backends at their container memory limit)'],
    [{ name: 'no_oom', threshold: 0, value: null, verdict: 'not measured', pass: null, note: 'no container limits in /stats/' }, 'not measured no_oom: no container limits in /stats/ (criterion: 0 backends at their container memory limit)'],
  ];
  for (const [c, want] of table) t.equal(criterionLine(c), want, c.name);
});

t.test('verdictCounts: each verdict with its criteria, none left out, none counted twice', async (t) => {
  const c = (name: string, verdict: Criterion['verdict']): Criterion => ({ name, threshold: 1, value: null, verdict, pass: null });
  t.equal(verdictCounts([c('a', 'pass'), c('b', 'not measured'), c('c', 'pass')]), '2 pass (a, c), 1 not measured (b)');
  t.equal(verdictCounts([c('a', 'inconclusive'), c('b', 'fail'), c('c', 'not measured'), c('d', 'fail')]), '2 fail (b, d), 1 inconclusive (a), 1 not measured (c)');
});

t.test('mismatchGroups: one group per way of differing, its count, how many sets of values, the first request', async (t) => {
  const changed = (source: string, baseline: number, canary: number, more: Partial<ResultRow> = {}): ResultRow =>
    row(1, 1, { diff: 'd', source, differences: [{ path: '$.predictions[0]', field: '$.predictions[*]', kind: 'changed', baseline, canary }], ...more });
  const status = (source: string): ResultRow => row(1, 1, { diff: 's', source, fastapi_status: 500, differences: [{ path: '$', field: '$status', kind: 'status', baseline: 200, canary: 500 }] });
  const rows = [
    status('r:1'),
    changed('r:2', 1, 2),
    row(1, 1, { source: 'r:3' }), // a match
    changed('r:4', 1, 2),
    changed('r:5', 3, 4),
    status('r:6'),
    changed('r:7', 1, 2, { route: '/other', path: '/other?x=1' }),
    changed('r:8', 1, 2),
    row(1, 1, { source: 'r:9', diff: 'x', error: 'canary: timeout' }), // an error, not a mismatch
  ];
  const groups = mismatchGroups(rows);
  t.same(
    groups.map((g) => [g.count, g.variants, g.example.source]),
    [
      [4, 2, 'r:2'],
      [2, 1, 'r:1'],
      [1, 1, 'r:7'],
    ],
    'most first; ties in order of first appearance; the same field with other values is the same way of differing',
  );
  t.same(
    groups.map(groupLine),
    [
      '4 × POST /predict/ 200 vs 200 at $.predictions[*] (changed), 2 different values; e.g. r:2',
      '2 × POST /predict/ 200 vs 500 at $status (status), all alike; e.g. r:1',
      '1 × POST /other 200 vs 200 at $.predictions[*] (changed); e.g. r:7',
    ],
  );
  t.same(mismatchGroups([row(1, 1)]), [], 'no mismatch, no group');
  const items = [0, 1].map((i) => ({ path: `$.p[${i}]`, field: '$.p[*]', kind: 'changed' as const, baseline: 1, canary: 2 }));
  t.equal(groupLine(mismatchGroups([row(1, 1, { diff: 'd', differences: items })])[0]!), '1 × POST /predict/ 200 vs 200 at $.p[*] (changed); e.g. rec.jsonl:1', 'a field named once, however many of its items differ');
});
