/** Each rollout check's verdict, at the seed's thresholds just under and just over; and the window they read. */
import t from 'tap';
import {
  errorRateCheck,
  judge,
  memoryCheck,
  oomCheck,
  p99Check,
  pingCheck,
  rssGrowthCheck,
  type CheckResult,
  type MemoryEvidence,
  type SideStats,
} from '../src/rollout/checks.js';
import { RssHistory } from '../src/rollout/evidence.js';
import { DEFAULT_ROLLBACK, DEFAULT_STEPS } from '../src/rollout/plan.js';
import { ExchangeWindow } from '../src/rollout/window.js';

const MiB = 2 ** 20;
const OPTS = { minRequests: 200, minP99Difference: 0 };
const side = (requests: number, errors: number, latencies: number[] = []): SideStats => ({ requests, errors, latencies: [...latencies].sort((a, b) => a - b) });
/** n latencies of `base` seconds spread by up to 10%, deterministic. */
const spread = (n: number, base: number): number[] => Array.from({ length: n }, (_, i) => base * (1 + ((i * 37) % 100) / 1000));

t.test('error rate: the immediate trigger over 1% with 99% confidence, the step criterion (< 0.1%) against the baseline', async (t) => {
  const [step, rollback, min] = [0.001, 0.01, 200];
  const clean = side(100_000, 0);
  const table: [string, SideStats, SideStats, string][] = [
    ['no errors', side(10_000, 0), clean, 'ok'],
    ['just under 0.1%', side(10_000, 9), clean, 'ok'],
    ['at 0.1%, the baseline clean: not under, and worse', side(10_000, 10), clean, 'miss'],
    ['at 0.1%, the baseline as bad: not the canary\'s fault', side(10_000, 10), side(100_000, 100), 'ok'],
    ['0.3% on both sides (one server): not worse', side(2_000, 6), side(40_000, 120), 'ok'],
    ['just over 1%: not over it with confidence, a miss', side(10_000, 101), clean, 'miss'],
    ['1.5% of 10,000: over 1% with confidence', side(10_000, 150), clean, 'rollback'],
    ['5 errors in 100: over 1% at once, whatever the sample size', side(100, 5), clean, 'rollback'],
    ['1 error in 27, the baseline erring as often: says almost nothing', side(27, 1), side(3_000, 9), 'inconclusive'],
    ['few requests, no errors', side(50, 0), clean, 'inconclusive'],
    ['few requests, 3 errors in 50: not yet conclusive (p ≈ 0.014)', side(50, 3), clean, 'inconclusive'],
    ['few requests, 4 errors in 50', side(50, 4), clean, 'rollback'],
    ['no requests', side(0, 0), clean, 'inconclusive'],
    ['at 100%, no baseline: 0.3% of 10,000 is over 0.1% with confidence', side(10_000, 30), side(0, 0), 'miss'],
    ['at 100%, no baseline: 0.12% of 10,000 is not', side(10_000, 12), side(0, 0), 'ok'],
  ];
  for (const [name, canary, baseline, status] of table) t.equal(errorRateCheck(canary, baseline, step, rollback, min).status, status, name);
  t.match(errorRateCheck(side(1204, 58), clean, step, rollback, min), { value: 58 / 1204, text: /^canary error rate 4.82% \(58 of 1,204\) over 1% with 99% confidence \(exact binomial test p=\d/ });
  t.match(errorRateCheck(side(10_000, 10), side(100_000, 100), step, rollback, min).text, /not under 0.1%, but not worse than the baseline's 0.1% \(100 of 100,000\); Fisher exact test p=0.5/);
  t.match(errorRateCheck(side(10_000, 10), clean, step, rollback, min).text, /and worse than the baseline's 0% \(0 of 100,000\); Fisher exact test p=/);
  t.match(errorRateCheck(side(10_000, 12), side(0, 0), step, rollback, min).text, /not significantly over it \(exact binomial test p=0.\d+; no baseline traffic\)/);
  t.equal(errorRateCheck(side(0, 0), clean, step, rollback, min).value, null);
  t.equal(errorRateCheck(side(2_000, 6), side(40_000, 120), step, rollback, min).text, "canary error rate 0.3% (6 of 2,000) not under 0.1%, but not worse than the baseline's 0.3% (120 of 40,000); Fisher exact test p=0.56", "the README's example");
});

t.test('p99: the increase counts only when the canary is significantly slower', async (t) => {
  const baseline = side(2000, 0, spread(2000, 0.1));
  const table: [string, SideStats, string][] = [
    ['the same', side(2000, 0, spread(2000, 0.1)), 'ok'],
    ['15% slower: under the 20% of the 10% step', side(2000, 0, spread(2000, 0.115)), 'ok'],
    ['25% slower: over 20%, under 50%', side(2000, 0, spread(2000, 0.125)), 'miss'],
    ['twice as slow: over 50%', side(2000, 0, spread(2000, 0.2)), 'reduce'],
    ['faster', side(2000, 0, spread(2000, 0.05)), 'ok'],
    ['too few canary requests', side(20, 0, spread(20, 0.2)), 'inconclusive'],
  ];
  for (const [name, canary, status] of table) t.equal(p99Check(canary, baseline, 0.2, 0.5, 200, 0).status, status, name);
  // A few slow outliers in a small canary: its p99 is far over, but the bulk is not slower (p ≈ 0.28).
  const noisy = side(200, 0, [...spread(195, 0.1), ...Array(5).fill(0.5)]);
  const check = p99Check(noisy, baseline, 0.2, 0.5, 200, 0);
  t.match(check, { status: 'ok', text: /not significant, so not a regression/ });
  t.ok((check.value as number) > 0.5, 'the raw p99 increase is over the rollback limit');
  t.equal(p99Check(side(300, 0, []), side(300, 0, []), 0.2, 0.5, 200, 0).status, 'inconclusive', 'counted but no samples');
  const zero = side(300, 0, Array(300).fill(0));
  t.equal(p99Check(side(300, 0, spread(300, 0.1)), zero, 0.2, 0.5, 200, 0).value, Infinity, 'a zero baseline p99: any canary latency is an infinite increase');
  t.equal(p99Check(zero, zero, 0.2, 0.5, 200, 0).value, 0);
  t.match(p99Check(side(2000, 0, spread(2000, 0.05)), baseline, 0.2, 0.5, 200, 0).text, /\(-50%, -5\d\.\d ms;/);
  // The absolute floor: 25% slower is +27.5 ms here; under a 30 ms floor it does not count, over a 20 ms one it does.
  const slower = side(2000, 0, spread(2000, 0.125));
  t.match(p99Check(slower, baseline, 0.2, 0.5, 200, 0.03), { status: 'ok', difference: /./, text: /\+27\.\d ms; Mann–Whitney p=.*; under the 30\.0 ms floor, so not a regression$/ });
  t.match(p99Check(slower, baseline, 0.2, 0.5, 200, 0.02), { status: 'miss' });
  t.match(p99Check(side(2000, 0, spread(2000, 0.2)), baseline, 0.2, 0.5, 200, 0.2), { status: 'ok', text: /under the 200\.0 ms floor/ }, 'twice as slow, but by less than the floor: no reduction either');
  // Fewer than 100 latencies a side: three times as slow and significant, but a p99 of 60 is the slowest one or so.
  t.match(p99Check(side(60, 0, spread(60, 0.3)), side(60, 0, spread(60, 0.1)), 0.2, 0.5, 50, 0), { status: 'inconclusive', text: /; fewer than 100 latencies a side, so each p99 is little more than the slowest one: judged again with more$/ });
  t.match(p99Check(side(60, 0, spread(60, 0.1)), side(60, 0, spread(60, 0.1)), 0.2, 0.5, 50, 0), { status: 'ok' }, 'one that does not look slower passes on as few');
  t.match(p99Check(side(100, 0, spread(100, 0.3)), side(100, 0, spread(100, 0.1)), 0.2, 0.5, 50, 0), { status: 'reduce' }, 'from 100 a side it counts');
});

t.test('memory: canary RSS over baseline, the seed 30% step limit and 50% reduction', async (t) => {
  const mem = (canary: number | undefined, baseline: number | undefined): MemoryEvidence => ({
    canaryRss: canary === undefined ? undefined : canary * MiB,
    baselineRss: baseline === undefined ? undefined : baseline * MiB,
    canaryGrowthPerHour: undefined,
    canaryOom: undefined,
  });
  const table: [string, MemoryEvidence, string][] = [
    ['equal', mem(100, 100), 'ok'],
    ['+29%', mem(129, 100), 'ok'],
    ['+30%: not under', mem(130, 100), 'miss'],
    ['+50%: not over', mem(150, 100), 'miss'],
    ['+51%', mem(151, 100), 'reduce'],
    ['less', mem(80, 100), 'ok'],
    ['no canary stats', mem(undefined, 100), 'unavailable'],
    ['no baseline stats', mem(100, undefined), 'unavailable'],
    ['a zero baseline', mem(100, 0), 'unavailable'],
  ];
  for (const [name, m, status] of table) t.equal(memoryCheck(m, 0.3, 0.5).status, status, name);
  t.match(memoryCheck(mem(80, 100), 0.3, 0.5).text, /\(-20%\)/);
});

t.test('RSS growth (> 10%/h), OOM and /ping (> 30 s): immediate', async (t) => {
  const g = (canaryGrowthPerHour: number | undefined): MemoryEvidence => ({ canaryRss: 1, baselineRss: 1, canaryGrowthPerHour, canaryOom: undefined });
  t.equal(rssGrowthCheck(g(0.099), 0.1).status, 'ok');
  t.equal(rssGrowthCheck(g(0.101), 0.1).status, 'rollback');
  t.equal(rssGrowthCheck(g(undefined), 0.1).status, 'unavailable');
  t.equal(rssGrowthCheck(g(NaN), 0.1).status, 'unavailable');
  t.equal(oomCheck({ ...g(0), canaryOom: true }).status, 'rollback');
  t.equal(oomCheck({ ...g(0), canaryOom: false }).status, 'ok');
  t.equal(oomCheck(g(0)).status, 'unavailable');
  t.match(pingCheck(0, 30_000), { status: 'ok', text: 'canary answers /ping' });
  t.match(pingCheck(29_999, 30_000), { status: 'ok', text: 'canary silent for 30 s' });
  t.equal(pingCheck(30_000, 30_000).status, 'rollback');
});

t.test('p99 from histograms (the fleet, from Prometheus): the same verdicts as from samples', async (t) => {
  const les = [0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.5, 1, 2.5];
  const hist = (values: number[]): SideStats => ({
    requests: values.length,
    errors: 0,
    latencies: { histogram: [...les, Infinity].map((le) => ({ le, count: values.filter((v) => v <= le).length })) },
  });
  const baseline = hist(spread(2000, 0.1));
  const table: [string, number[], string][] = [
    ['the same', spread(2000, 0.1), 'ok'],
    ['twice as slow: over 50%', spread(2000, 0.2), 'reduce'],
    ['faster', spread(2000, 0.05), 'ok'],
    ['too few canary requests', spread(20, 0.2), 'inconclusive'],
  ];
  for (const [name, canary, status] of table) t.equal(p99Check(hist(canary), baseline, 0.2, 0.5, 200, 0).status, status, name);
  t.match(p99Check(hist(spread(2000, 0.2)), baseline, 0.2, 0.5, 200, 0).text, /canary p99 .* vs baseline .*, n=2,000\/2,000\)/);
  const counted = { requests: 300, errors: 0, latencies: { histogram: [{ le: Infinity, count: 0 }] } };
  t.equal(p99Check(counted, counted, 0.2, 0.5, 200, 0).status, 'inconclusive', 'counted but no observations in the histograms');
  t.throws(() => p99Check(hist(spread(300, 0.1)), side(300, 0, spread(300, 0.1)), 0.2, 0.5, 200, 0), TypeError, 'a histogram and a sample are not compared');
  t.throws(() => p99Check(side(300, 0, spread(300, 0.1)), hist(spread(300, 0.1)), 0.2, 0.5, 200, 0), TypeError);
});

t.test('judge: the most severe status decides, with the deciding checks as its text', async (t) => {
  const step = DEFAULT_STEPS[2]!;
  const fine = { canaryRss: 100 * MiB, baselineRss: 100 * MiB, canaryGrowthPerHour: 0, canaryOom: false };
  const base = { baseline: side(5000, 0, spread(5000, 0.1)), canary: side(500, 0, spread(500, 0.1)), memory: fine, canaryDownMs: 0 };
  t.match(judge(base, step, DEFAULT_ROLLBACK, OPTS), { action: 'pass', text: 'all checks pass' });
  t.equal(judge(base, step, DEFAULT_ROLLBACK, OPTS).checks.length, 6);
  t.match(judge({ ...base, canary: side(500, 4, spread(500, 0.1)) }, step, DEFAULT_ROLLBACK, OPTS), { action: 'miss', text: /not under 0.1%, and worse than the baseline's/ });
  t.match(judge({ ...base, canary: side(500, 1, spread(500, 0.1)) }, step, DEFAULT_ROLLBACK, OPTS), { action: 'pass' }, 'one error in 500 against a clean baseline of 5,000: Fisher p = 0.09, not worse');
  t.match(judge({ ...base, canary: side(100, 0, spread(100, 0.1)) }, step, DEFAULT_ROLLBACK, OPTS), { action: 'inconclusive' });
  t.match(judge({ ...base, memory: { ...fine, canaryRss: 200 * MiB } }, step, DEFAULT_ROLLBACK, OPTS), { action: 'reduce' });
  const worst = judge({ ...base, canary: side(500, 50, spread(500, 0.3)), canaryDownMs: 60_000 }, step, DEFAULT_ROLLBACK, OPTS);
  t.match(worst, { action: 'rollback', text: /error rate 10% .*; canary has not answered \/ping/ }, 'every immediate trigger named, the reduction not');
  t.same(judge({ ...base, canary: side(500, 50, spread(500, 0.3)), unavailable: 'Prometheus unreachable' }, step, DEFAULT_ROLLBACK, OPTS), { action: 'inconclusive', checks: [], text: 'Prometheus unreachable' }, 'no numbers: inconclusive, whatever they would have said');
});

t.test('numbers that are no measurement (NaN, ±Inf, below zero), from Prometheus or our own polls: inconclusive and said, never ok', async (t) => {
  const [step, rollback, min] = [0.001, 0.01, 200];
  const fine = { canaryRss: 100 * MiB, baselineRss: 100 * MiB, canaryGrowthPerHour: 0, canaryOom: false };
  for (const [x, spelt] of [[NaN, 'NaN'], [Infinity, '+Inf'], [-Infinity, '-Inf'], [-1, '-1']] as const) {
    const results: [string, CheckResult, string][] = [
      ['canary requests', errorRateCheck(side(x, 0), side(1000, 0), step, rollback, min), `error rate unavailable (not a measurement: canary requests ${spelt})`],
      ['canary errors', errorRateCheck(side(10_000, x), side(1000, 0), step, rollback, min), `error rate unavailable (not a measurement: canary errors ${spelt})`],
      ['both', errorRateCheck(side(x, x), side(1000, 0), step, rollback, min), `error rate unavailable (not a measurement: canary requests ${spelt}, canary errors ${spelt})`],
      ['a canary latency', p99Check(side(2000, 0, [...spread(1999, 0.1), x]), side(2000, 0, spread(2000, 0.1)), 0.2, 0.5, min, 0), `p99 unavailable (not a measurement: a canary latency ${spelt})`],
      ['a bucket count', p99Check({ requests: 300, errors: 0, latencies: { histogram: [{ le: 0.1, count: x }, { le: Infinity, count: 300 }] } }, { requests: 300, errors: 0, latencies: { histogram: [{ le: 0.1, count: 150 }, { le: Infinity, count: 300 }] } }, 0.2, 0.5, min, 0), `p99 unavailable (not a measurement: a canary latency ${spelt})`],
      ['baseline requests', p99Check(side(2000, 0, spread(2000, 0.1)), side(x, 0, spread(2000, 0.1)), 0.2, 0.5, min, 0), `p99 unavailable (not a measurement: baseline requests ${spelt})`],
      ['canary RSS', memoryCheck({ ...fine, canaryRss: x }, 0.3, 0.5), `memory unavailable (not a measurement: canary RSS ${spelt})`],
      ['baseline RSS', memoryCheck({ ...fine, baselineRss: x }, 0.3, 0.5), `memory unavailable (not a measurement: baseline RSS ${spelt})`],
      ['silence', pingCheck(x * 1000, 30_000), `/ping unavailable (not a measurement: canary silent for ${spelt} s)`],
    ];
    for (const [name, result, text] of results) t.match(result, { status: 'inconclusive', value: null, text }, `${name} ${spelt}`);
  }
  const base = { baseline: side(5000, 0, spread(5000, 0.1)), canary: side(500, 0, spread(500, 0.1)), memory: fine, canaryDownMs: 0 };
  t.match(judge({ ...base, canaryDownMs: NaN }, DEFAULT_STEPS[2]!, DEFAULT_ROLLBACK, OPTS), { action: 'inconclusive', text: '/ping unavailable (not a measurement: canary silent for NaN s)' }, 'a NaN silence is no pass');
  t.match(judge({ ...base, memory: { ...fine, canaryRss: -1 } }, DEFAULT_STEPS[2]!, DEFAULT_ROLLBACK, OPTS), { action: 'inconclusive' }, 'a DRUM reporting a negative drum_rss');
  t.match(judge({ ...base, canary: side(500, 50), canaryDownMs: NaN }, DEFAULT_STEPS[2]!, DEFAULT_ROLLBACK, OPTS), { action: 'rollback', text: /^canary error rate 10%/ }, 'one unknown does not hide a rollback the rest shows');
});

t.test('the RSS history leaves out sizes that are no measurement', async (t) => {
  const h = new RssHistory();
  const at = (min: number): number => min * 60_000;
  for (const [min, rss] of [[0, 100], [5, NaN], [10, 110], [12, Infinity], [15, -5], [20, 120]] as const) h.add(at(min), rss * MiB);
  t.ok(Math.abs(h.growthPerHour(at(20))! - 0.6) < 1e-9, 'the three sizes alone: +20 MB in 20 min over 100 MB, 60% an hour');
  const none = new RssHistory();
  for (const min of [0, 10, 20]) none.add(at(min), NaN);
  t.equal(none.growthPerHour(at(20)), undefined, 'nothing to fit');
});

t.test('the window: exact counts, a bounded uniform latency sample per bucket, old buckets leave', async (t) => {
  let draws = 0;
  const w = new ExchangeWindow({ windowMs: 300, bucketMs: 100, samplePerBucket: 3, random: () => [0.1, 0.9][draws++ % 2]! });
  for (let i = 0; i < 5; i++) w.add({ serverType: 'a', status: i === 0 ? 503 : 200, seconds: i }, 10);
  // 5 values, 3 kept: i=3 draws 0.1 → slot floor(0.1*4)=0 replaced; i=4 draws 0.9 → floor(0.9*5)=4 ≥ 3, dropped.
  t.same(w.stats('a', 50), { requests: 5, errors: 1, latencies: [1, 2, 3] });
  t.same(w.stats('b', 50), { requests: 0, errors: 0, latencies: [] });
  w.add({ serverType: 'a', status: 500, seconds: 9 }, 150);
  w.add({ serverType: 'b', status: 200, seconds: 1 }, 150);
  t.same(w.stats('a', 399), { requests: 6, errors: 2, latencies: [1, 2, 3, 9] }, 'both buckets in the window');
  t.same(w.stats('a', 400), { requests: 1, errors: 1, latencies: [9] }, 'the first bucket [0,100) has left the window (100, 400]');
  w.clear();
  t.same(w.stats('b', 400), { requests: 0, errors: 0, latencies: [] });
});
