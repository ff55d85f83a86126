import t from 'tap';
import { binomialAtLeast, fisherGreater, growthPerHour, histogramQuantile, mannWhitneyGreater, mannWhitneyGreaterBinned, quantile, slope, type HistogramBucket } from '../src/rollout/stats.js';

const range = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));
const oneTo = (n: number): number[] => range(n, (i) => i + 1);

t.test('quantile: nearest rank, always an observed value', async (t) => {
  const cases: [string, readonly number[], number, number][] = [
    ['p50 of 1..4', [1, 2, 3, 4], 0.5, 2],
    ['p50 of 1..5', [1, 2, 3, 4, 5], 0.5, 3],
    ['p99 of 1..100', oneTo(100), 0.99, 99],
    ['p99 of 1..1000', oneTo(1000), 0.99, 990],
    ['p7 of 1..100 (0.07·100 rounds up to 7.000000000000001)', oneTo(100), 0.07, 7],
    ['p90 of 10 values', [3, 5, 8, 13, 21, 34, 55, 89, 144, 233], 0.9, 144],
    ['q=1 is the maximum', [1, 2, 30], 1, 30],
    ['q=0 is the first element', [4, 9], 0, 4],
    ['single element', [42], 0.99, 42],
    ['single element, q=0', [42], 0, 42],
    ['empty', [], 0.5, NaN],
  ];
  for (const [name, sorted, q, want] of cases) t.same(quantile(sorted, q), want, name);
  for (const q of [-0.01, 1.01, NaN]) t.throws(() => quantile([1, 2], q), RangeError, `q=${q} rejected`);
});

/*
 * Reference values from scipy 1.17.1 (Debian python3-scipy), each line's u and p printed by
 *   python3 -c "from scipy.stats import mannwhitneyu, norm; r = mannwhitneyu(CANARY, BASELINE, alternative='greater',
 *     method='asymptotic', use_continuity=True); print(repr(float(r.statistic)), repr(float(r.pvalue)), repr(float(norm.isf(r.pvalue))))"
 * with CANARY and BASELINE the Python lists below (generated ones as list comprehensions, e.g.
 * [125 + (i*53) % 97 for i in range(20)]); z is norm.isf(p), the standard score that p belongs to.
 */
const mwCases: { name: string; canary: number[]; baseline: number[]; u: number; p: number; z: number }[] = [
  {
    // [12.1, 14.3, 15.8, 19.2, 22.5] vs [10.2, 11.7, 13.4, 16.0, 17.9, 18.4]
    name: 'no ties',
    canary: [12.1, 14.3, 15.8, 19.2, 22.5],
    baseline: [10.2, 11.7, 13.4, 16.0, 17.9, 18.4],
    u: 20,
    p: 0.20565689588812947,
    z: 0.8215838362577492,
  },
  {
    // [3,4,4,5,6,6,7] vs [2,3,3,4,5,5,6]
    name: 'with ties',
    canary: [3, 4, 4, 5, 6, 6, 7],
    baseline: [2, 3, 3, 4, 5, 5, 6],
    u: 34,
    p: 0.12085032620881708,
    z: 1.1707465890016364,
  },
  {
    // [100+i for i in range(100)] vs [i for i in range(100)]
    name: 'canary clearly slower: p tiny',
    canary: range(100, (i) => 100 + i),
    baseline: range(100, (i) => i),
    u: 10000,
    p: 1.2810718345817004e-34,
    z: 12.215722741186958,
  },
  {
    // [1,2,3,4,5,6,7,8] vs [5+i for i in range(16)]
    name: 'canary faster: p near 1',
    canary: [1, 2, 3, 4, 5, 6, 7, 8],
    baseline: range(16, (i) => 5 + i),
    u: 8,
    p: 0.9997328232051862,
    z: -3.4629168040557334,
  },
  {
    // a = [(i*37) % 101 for i in range(60)]; a vs a
    name: 'equal distributions',
    canary: range(60, (i) => (i * 37) % 101),
    baseline: range(60, (i) => (i * 37) % 101),
    u: 1800,
    p: 0.5010470598481013,
    z: -0.002624592833724217,
  },
  {
    // [125 + (i*53) % 97 for i in range(20)] vs [100 + (i*37) % 101 for i in range(2000)]
    name: 'unequal sizes, 20 vs 2000',
    canary: range(20, (i) => 125 + ((i * 53) % 97)),
    baseline: range(2000, (i) => 100 + ((i * 37) % 101)),
    u: 26568.5,
    p: 0.005692596785757715,
    z: 2.5306483261887243,
  },
];

t.test('mannWhitneyGreater: u and p as scipy computes them', async (t) => {
  for (const { name, canary, baseline, u, p, z } of mwCases) {
    const got = mannWhitneyGreater(canary, baseline);
    t.equal(got.u, u, `${name}: u`);
    t.equal(got.n1, canary.length, `${name}: n1`);
    t.equal(got.n2, baseline.length, `${name}: n2`);
    if (p < 1e-6) t.ok(Math.abs(got.p - p) <= 1e-4 * p, `${name}: p ${got.p} within 1e-4 relative of ${p}`);
    else t.ok(Math.abs(got.p - p) <= 1e-6, `${name}: p ${got.p} within 1e-6 of ${p}`);
    t.ok(Math.abs(got.z - z) <= 1e-6, `${name}: z ${got.z} near ${z}`);
  }
});

t.test('mannWhitneyGreater: degenerate samples give no evidence (p = 1)', async (t) => {
  t.same(mannWhitneyGreater([], [1, 2]), { u: 0, z: 0, p: 1, n1: 0, n2: 2 }, 'empty canary');
  t.same(mannWhitneyGreater([1, 2, 3], []), { u: 0, z: 0, p: 1, n1: 3, n2: 0 }, 'empty baseline');
  t.same(mannWhitneyGreater([], []), { u: 0, z: 0, p: 1, n1: 0, n2: 0 }, 'both empty');
  // Every pair a tie: U = n1·n2/2 and the tie-corrected variance is exactly 0.
  t.same(mannWhitneyGreater([5, 5, 5], [5, 5]), { u: 3, z: 0, p: 1, n1: 3, n2: 2 }, 'all values identical');
});

t.test('mannWhitneyGreater: the input arrays are left unsorted', async (t) => {
  const canary = [3, 1, 2];
  const baseline = [0.5, 9, 1];
  mannWhitneyGreater(canary, baseline);
  t.same(canary, [3, 1, 2]);
  t.same(baseline, [0.5, 9, 1]);
});

t.test('mannWhitneyGreater: 50,000 values a side (sorting, not pairwise comparison)', async (t) => {
  // [(i*7919) % 10007 + 30 for i in range(50000)] vs [(i*104729) % 10009 for i in range(50000)]
  // scipy: u 1257275854.5, p 0.05546221868993484 (same command as above)
  const got = mannWhitneyGreater(
    range(50_000, (i) => ((i * 7919) % 10007) + 30),
    range(50_000, (i) => (i * 104729) % 10009),
  );
  t.equal(got.u, 1257275854.5);
  t.ok(Math.abs(got.p - 0.05546221868993484) <= 1e-6, `p ${got.p}`);
  // Wholly separated: z ≈ 38.7, past where the normal tail is representable; scipy prints p 0.0.
  // [1000+i for i in range(1000)] vs [i for i in range(1000)] → u 1000000.0, p 0.0
  const apart = mannWhitneyGreater(range(1000, (i) => 1000 + i), range(1000, (i) => i));
  t.equal(apart.u, 1_000_000);
  t.equal(apart.p, 0);
  t.ok(apart.z > 37, `z ${apart.z}`);
  t.equal(mannWhitneyGreater(range(1000, (i) => i), range(1000, (i) => 1000 + i)).p, 1, 'the mirror image: p = 1');
});

/** Cumulative buckets of `values` for the bounds `les` (+Inf added), as Prometheus exposes a histogram. */
const bucketsOf = (values: readonly number[], les: readonly number[]): HistogramBucket[] =>
  [...les, Infinity].map((le) => ({ le, count: values.filter((v) => v <= le).length }));

t.test('mannWhitneyGreaterBinned: a histogram is the sample with each bucket one tie group', async (t) => {
  const les = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
  // Each value stands for its bucket: the test on the samples so mapped must equal the test on the buckets.
  const bucketOf = (v: number): number => les.find((le) => v <= le) ?? Infinity;
  const cases: [string, number[], number[]][] = [
    ['the canary slower', range(300, (i) => 0.004 + ((i * 37) % 100) / 400), range(3000, (i) => 0.003 + ((i * 53) % 100) / 600)],
    ['alike', range(200, (i) => ((i * 7) % 100) / 300), range(2000, (i) => ((i * 7) % 100) / 300)],
    ['the canary faster', range(100, (i) => 0.001 * (i % 9)), range(500, (i) => 0.02 + (i % 50) / 100)],
    ['some in +Inf', range(50, (i) => (i % 5 === 0 ? 3 : 0.2)), range(80, () => 0.2)],
  ];
  for (const [name, c, b] of cases) {
    const binned = mannWhitneyGreaterBinned(bucketsOf(c, les), bucketsOf(b, les));
    const sampled = mannWhitneyGreater(c.map(bucketOf), b.map(bucketOf));
    t.equal(binned.u, sampled.u, `${name}: u`);
    t.ok(Math.abs(binned.p - sampled.p) <= 1e-12 * Math.max(1, sampled.p), `${name}: p ${binned.p} vs ${sampled.p}`);
    t.same([binned.n1, binned.n2], [c.length, b.length], `${name}: n`);
  }
  t.ok(mannWhitneyGreaterBinned(bucketsOf(cases[0]![1], les), bucketsOf(cases[0]![2], les)).p < 0.01, 'the slower canary is found slower');
  t.same(mannWhitneyGreaterBinned(bucketsOf([], les), bucketsOf([0.1], les)), { u: 0, z: 0, p: 1, n1: 0, n2: 1 }, 'no canary observations: no evidence');
  t.throws(() => mannWhitneyGreaterBinned(bucketsOf([1], les), bucketsOf([1], les.slice(1))), RangeError, 'different bounds refused');
  t.throws(() => mannWhitneyGreaterBinned(bucketsOf([1], [0.1]), bucketsOf([1], [0.2])), RangeError, 'same count, other bounds refused');
});

t.test("histogramQuantile: PromQL's histogram_quantile", async (t) => {
  const b = (...pairs: [number, number][]): HistogramBucket[] => pairs.map(([le, count]) => ({ le, count }));
  const cases: [string, HistogramBucket[], number, number][] = [
    ['in the first bucket, from 0', b([0.1, 10], [0.2, 20], [Infinity, 20]), 0.5, 0.1],
    ['interpolated in the second', b([0.1, 10], [0.2, 20], [Infinity, 20]), 0.75, 0.15],
    ['rank in +Inf: the highest finite bound', b([0.1, 10], [Infinity, 20]), 0.99, 0.1],
    ['fractional counts (increase())', b([0.5, 2.5], [1, 5], [Infinity, 5]), 0.99, 0.5 + 0.5 * ((4.95 - 2.5) / 2.5)],
    ['an empty bucket before the rank', b([0.1, 0], [0.2, 0], [0.4, 4], [Infinity, 4]), 0.5, 0.3],
    ['q=0 in an empty first bucket: its lower bound', b([0.1, 0], [0.2, 4], [Infinity, 4]), 0, 0],
    ['no observations', b([0.1, 0], [Infinity, 0]), 0.99, NaN],
    ['only +Inf', b([Infinity, 3]), 0.5, NaN],
    ['no buckets', [], 0.5, NaN],
  ];
  for (const [name, buckets, q, want] of cases) {
    const got = histogramQuantile(buckets, q);
    t.ok(Number.isNaN(want) ? Number.isNaN(got) : Math.abs(got - want) < 1e-12, `${name}: ${got}, want ${want}`);
  }
  t.throws(() => histogramQuantile(b([1, 1], [Infinity, 1]), 1.5), RangeError);
});

t.test('slope: ordinary least squares', async (t) => {
  const cases: [string, (readonly [number, number])[], number][] = [
    ['exact line', [[0, 1], [1, 3], [2, 5], [3, 7]], 2],
    ['exact falling line, unordered x', [[3, -5], [0, 4], [1, 1]], -3],
    ['flat', [[1, 7], [2, 7], [5, 7]], 0],
    // numpy: x = np.arange(10.0); y = 2*x + 1 + np.array([0.3,-0.2,0.1,-0.4,0.25,0,-0.1,0.35,-0.3,0.05]); np.polyfit(x, y, 1)[0]
    ['noisy line (numpy.polyfit)', range(10, (i) => [i, 2 * i + 1 + [0.3, -0.2, 0.1, -0.4, 0.25, 0, -0.1, 0.35, -0.3, 0.05][i]!] as const), 1.9936363636363639],
    ['no points', [], NaN],
    ['one point', [[1, 2]], NaN],
    ['all x equal', [[0.1, 1], [0.1, 2], [0.1, 3]], NaN],
  ];
  for (const [name, points, want] of cases) {
    const got = slope(points);
    if (Number.isNaN(want)) t.ok(Number.isNaN(got), `${name}: NaN`);
    else t.ok(Math.abs(got - want) <= 1e-12 * Math.max(1, Math.abs(want)), `${name}: ${got} ≈ ${want}`);
  }
});

t.test('growthPerHour: relative to the fitted start', async (t) => {
  const T0 = 1.7e12; // a realistic epoch in ms, to show the large x does not cost precision
  const H = 3_600_000;
  const noisy = [200.0, 201.1, 201.9, 203.4, 204.0, 204.8, 206.3, 206.9, 208.2, 209.0];
  const cases: [string, (readonly [number, number])[], number][] = [
    ['+10% per hour, exact', range(7, (i) => [T0 + i * 600_000, 100e6 + (i * 10e6) / 6] as const), 0.1],
    ['−20% per hour, exact', [[T0, 50], [T0 + H / 2, 45], [T0 + H, 40]], -0.2],
    ['flat', [[T0, 3], [T0 + H, 3]], 0],
    // numpy: t = 1.7e12 + 60e3*np.arange(10); v = 1e6*np.array(NOISY); b, a = np.polyfit(t - t[0], v, 1); b*3.6e6/a
    ['noisy RSS, one sample a minute (numpy.polyfit)', range(10, (i) => [T0 + i * 60_000, noisy[i]! * 1e6] as const), 0.3002817413432722],
    ['fitted start 0', [[T0, 0], [T0 + H, 10]], NaN],
    ['fitted start negative', [[T0, -5], [T0 + H, 5]], NaN],
    ['no points', [], NaN],
    ['one point', [[T0, 1]], NaN],
    ['all times equal', [[T0, 1], [T0, 2]], NaN],
  ];
  for (const [name, points, want] of cases) {
    const got = growthPerHour(points);
    if (Number.isNaN(want)) t.ok(Number.isNaN(got), `${name}: NaN`);
    else t.ok(Math.abs(got - want) <= 1e-9, `${name}: ${got} ≈ ${want}`);
  }
});

// scipy 1.17.1: binomtest(k, n, p, alternative='greater').pvalue
t.test('binomialAtLeast: the exact one-sided binomial test, as scipy computes it', async (t) => {
  const table: [k: number, n: number, p: number, expected: number][] = [
    [1, 27, 0.01, 0.23765728565289623], // one error in 27 says little: no immediate rollback at 1%
    [5, 100, 0.01, 0.0034323215877545207], // five in 100 does
    [3, 200, 0.01, 0.3233213054643432],
    [20, 1000, 0.01, 0.003288359787727457],
    [0, 10, 0.1, 1],
    [2, 200, 0.001, 0.017457510966081852],
    [10, 10, 0.5, 0.0009765625],
    [7, 5000, 0.001, 0.23774335854749404],
    [3, 1000, 0.01, 0.9973205680062085], // at or below the mean: one minus the lower tail
    [9, 1000, 0.01, 0.6683127368008389],
    [1, 200, 0.01, 0.8660203251420381],
    [60, 10000, 0.01, 0.9999941895317661], // the lower tail summed only as far as it counts
    [60, 5000, 0.01, 0.09117523546410738],
  ];
  for (const [k, n, p, expected] of table) t.ok(Math.abs(binomialAtLeast(k, n, p) - expected) <= 1e-9 * Math.max(expected, 1e-12), `P(X ≥ ${k} | ${n}, ${p})`);
  t.equal(binomialAtLeast(11, 10, 0.5), 0, 'more events than trials');
  t.equal(binomialAtLeast(3, 10, 0), 0, 'a rate of 0 makes no event');
  t.equal(binomialAtLeast(3, 10, 1), 1, 'a rate of 1 makes every one');
  t.equal(binomialAtLeast(4.6, 100.4, 0.01), binomialAtLeast(5, 100, 0.01), "Prometheus's fractional counts are rounded");
  t.ok(binomialAtLeast(5000, 100000, 0.01) < 1e-300 || binomialAtLeast(5000, 100000, 0.01) === 0, 'a far tail underflows to 0, not NaN');
});

// scipy 1.17.1: fisher_exact([[a, n1 - a], [b, n2 - b]], alternative='greater')[1]
t.test('fisherGreater: the one-sided Fisher exact test, as scipy computes it', async (t) => {
  const table: [a: number, n1: number, b: number, n2: number, expected: number][] = [
    [1, 27, 3, 1000, 0.1012279434879561],
    [5, 100, 1, 2000, 1.2832142005539904e-6],
    [0, 50, 5, 1000, 1],
    [2, 200, 600, 200000, 0.12209754082410601], // the canary at the baseline's 0.3%: not worse
    [40, 10000, 200, 190000, 2.5955685566225405e-11],
    [1, 1, 0, 1, 0.5],
    [3, 10, 3, 10, 0.6857585139318885],
    [52, 10500, 20, 200000, 2.0002178998265523e-51],
  ];
  for (const [a, n1, b, n2, expected] of table) t.ok(Math.abs(fisherGreater(a, n1, b, n2) - expected) <= 1e-9 * expected, `${a}/${n1} vs ${b}/${n2}`);
  t.equal(fisherGreater(0, 100, 0, 1000), 1, 'no errors anywhere: no evidence');
  t.equal(fisherGreater(3, 100, 0, 0), 1, 'no baseline: nothing to compare with');
  t.ok(fisherGreater(100000, 200000, 100000, 200000) > 0.49, 'a tail of 100,000 terms, summed without spreading them into a call');
});
