/**
 * Pure statistics for the canary controller, which compares a baseline and a canary backend:
 * latency quantiles, a one-sided Mann–Whitney U test (is the canary slower?), exact tests on
 * error counts (is the canary's rate over a limit? worse than the baseline's?) and a
 * least-squares growth rate (is the canary's RSS climbing?). Inputs must not contain NaN.
 */

/**
 * Exact sample quantile by the nearest-rank method: the value at 1-based rank ceil(q·n) of the
 * ascending-sorted sample (q = 0 gives the first element). No interpolation, so the result is
 * always an observed value: p99 of 1..100 is 99, p99 of 1..1000 is 990. Empty sample → NaN.
 */
export function quantile(sorted: readonly number[], q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile q must be within [0, 1], got ${q}`);
  const n = sorted.length;
  if (n === 0) return NaN;
  // q·n carries binary rounding (0.07 * 100 is 7.000000000000001): snap to the integer it is
  // meant to be, or ceil would step one rank too high.
  const exact = q * n;
  const near = Math.round(exact);
  const rank = Math.abs(exact - near) < 1e-9 * n ? near : Math.ceil(exact);
  return sorted[Math.max(rank, 1) - 1]!;
}

export interface MannWhitney {
  /** The canary's U: pairs (c, b) with c > b, plus half the pairs with c = b. */
  u: number;
  /** (U − n1·n2/2 − 0.5) / σ, σ tie-corrected: the continuity-corrected standard score. */
  z: number;
  /** One-sided p-value of "canary values tend to be larger than baseline values". */
  p: number;
  n1: number;
  n2: number;
}

/**
 * One-sided Mann–Whitney U test, alternative "the canary is slower": the normal approximation with
 * the tie-corrected variance and a continuity correction, as
 * scipy.stats.mannwhitneyu(canary, baseline, alternative='greater', method='asymptotic', use_continuity=True).
 * Either sample empty, or every value equal (no variance), → p = 1 and z = 0: no evidence either way.
 * O(n log n): each sample is sorted once and the two are merged, tie group by tie group.
 */
export function mannWhitneyGreater(canary: readonly number[], baseline: readonly number[]): MannWhitney {
  // Float64Array sorts numerically, and faster than an array of numbers with a comparator.
  return mannWhitneyGroups(tieGroups(Float64Array.from(canary).sort(), Float64Array.from(baseline).sort()));
}

/** Two ascending samples merged into groups of equal values: [how many of the canary's, of the baseline's], ascending. */
function* tieGroups(c: Float64Array, b: Float64Array): Generator<readonly [number, number]> {
  let i = 0;
  let j = 0;
  while (i < c.length || j < b.length) {
    const v = Math.min(i < c.length ? c[i]! : Infinity, j < b.length ? b[j]! : Infinity);
    const [i0, j0] = [i, j];
    while (i < c.length && c[i] === v) i++;
    while (j < b.length && b[j] === v) j++;
    yield [i - i0, j - j0];
  }
}

/** A histogram's bucket as Prometheus exposes it: the count of observations ≤ `le` (cumulative), +Inf last. */
export interface HistogramBucket {
  readonly le: number;
  readonly count: number;
}

/**
 * The same test on two histograms with the same bucket bounds (a metric's `_bucket` series from
 * Prometheus): each bucket is one tie group, since the observations in it are known only to lie
 * within its bounds. Coarse buckets make ties, and ties lower the variance the test credits, so
 * the test is conservative rather than wrong. Counts may be fractional (increase() extrapolates).
 */
export function mannWhitneyGreaterBinned(canary: readonly HistogramBucket[], baseline: readonly HistogramBucket[]): MannWhitney {
  if (canary.length !== baseline.length || canary.some((b, k) => b.le !== baseline[k]!.le)) {
    throw new RangeError('the two histograms need the same bucket bounds');
  }
  return mannWhitneyGroups(canary.map((b, k) => [b.count - (canary[k - 1]?.count ?? 0), baseline[k]!.count - (baseline[k - 1]?.count ?? 0)] as const));
}

/** The U test from tie groups in ascending order of value. */
function mannWhitneyGroups(groups: Iterable<readonly [inC: number, inB: number]>): MannWhitney {
  let n1 = 0;
  let n2 = 0;
  let u = 0;
  let ties = 0;
  for (const [inC, inB] of groups) {
    // The n2 baseline values passed so far are all below this group; its own pairs split half and half.
    u += inC * (n2 + inB / 2);
    n1 += inC;
    n2 += inB;
    const t = inC + inB;
    ties += t * t * t - t;
  }
  if (n1 === 0 || n2 === 0) return { u: 0, z: 0, p: 1, n1, n2 };
  const n = n1 + n2;
  const variance = ((n1 * n2) / 12) * (n + 1 - ties / (n * (n - 1)));
  if (!(variance > 0)) return { u, z: 0, p: 1, n1, n2 };
  // scipy subtracts the 0.5 whatever the sign of U − μ, since the p-value is always an upper tail.
  const z = (u - (n1 * n2) / 2 - 0.5) / Math.sqrt(variance);
  return { u, z, p: Math.min(1, 0.5 * erfc(z / Math.SQRT2)), n1, n2 };
}

/**
 * A quantile from cumulative buckets as PromQL's histogram_quantile computes it: the bucket
 * holding rank q·total, interpolated linearly between its bounds (the first bucket's lower bound
 * is 0); a rank in the +Inf bucket gives the highest finite bound. NaN with no observations.
 */
export function histogramQuantile(buckets: readonly HistogramBucket[], q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile q must be within [0, 1], got ${q}`);
  const total = buckets.at(-1)?.count ?? 0;
  if (!(total > 0)) return NaN;
  const rank = q * total;
  const k = buckets.findIndex((b) => b.count >= rank);
  if (buckets[k]!.le === Infinity) return buckets[k - 1]?.le ?? NaN;
  const lower = k === 0 ? 0 : buckets[k - 1]!.le;
  const below = k === 0 ? 0 : buckets[k - 1]!.count;
  const inBucket = buckets[k]!.count - below;
  return inBucket === 0 ? lower : lower + (buckets[k]!.le - lower) * ((rank - below) / inBucket);
}

// erfc by W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev approximations for the
// error function", Math. Comp. 23 (1969); the coefficients of his CALERF, netlib specfun), accurate to
// about 1e-16 relative. erfc is computed directly rather than as 1 − erf so that the tiny p-values of a
// clearly slower canary keep their relative precision.
const A = [3.1611237438705656, 113.86415415105016, 377.48523768530202, 3209.3775891384695, 0.18577770618460315];
const B = [23.601290952344122, 244.02463793444417, 1282.6165260773723, 2844.2368334391706];
const C = [
  0.56418849698867009, 8.8831497943883759, 66.119190637141634, 298.63513819740013, 881.95222124176909, 1712.0476126340706,
  2051.0783778260715, 1230.3393547979972, 2.1531153547440383e-8,
];
const D = [15.744926110709835, 117.6939508913125, 537.18110186200986, 1621.3895745666902, 3290.7992357334597, 4362.6190901432472, 3439.3676741437216, 1230.3393548037495];
const P = [0.30532663496123236, 0.36034489994980445, 0.12578172611122925, 0.016083785148742275, 6.5874916152983678e-4, 0.016315387137302097];
const Q = [2.5685201922898224, 1.8729528499234604, 0.52790510295142842, 0.060518341312441319, 0.0023352049762686918];
const ONE_OVER_SQRT_PI = 0.56418958354775628;
/** Beyond this erfc(x) is below the smallest normal double: taken as 0. */
const X_BIG = 26.543;

function erfc(x: number): number {
  const y = Math.abs(x);
  if (y <= 0.46875) {
    // Small |x|: erf by a rational function of x², then 1 − erf loses nothing as erf is below 0.5 here.
    const ysq = y * y;
    let num = A[4]! * ysq;
    let den = ysq;
    for (let k = 0; k < 3; k++) {
      num = (num + A[k]!) * ysq;
      den = (den + B[k]!) * ysq;
    }
    return 1 - (x * (num + A[3]!)) / (den + B[3]!);
  }
  let r: number;
  if (y >= X_BIG) {
    r = 0;
  } else {
    let num: number;
    let den: number;
    if (y <= 4) {
      num = C[8]! * y;
      den = y;
      for (let k = 0; k < 7; k++) {
        num = (num + C[k]!) * y;
        den = (den + D[k]!) * y;
      }
      r = (num + C[7]!) / (den + D[7]!);
    } else {
      const inv = 1 / (y * y);
      num = P[5]! * inv;
      den = inv;
      for (let k = 0; k < 4; k++) {
        num = (num + P[k]!) * inv;
        den = (den + Q[k]!) * inv;
      }
      r = (ONE_OVER_SQRT_PI - (inv * (num + P[4]!)) / (den + Q[4]!)) / y;
    }
    // exp(−y²) in two factors, y² split at a multiple of 1/16, to avoid the rounding error of squaring y.
    const head = Math.trunc(y * 16) / 16;
    r *= Math.exp(-head * head) * Math.exp(-(y - head) * (y + head));
  }
  return x < 0 ? 2 - r : r;
}

/** Least-squares slope, and the fitted y at the first point's x; both NaN with fewer than 2 points or no spread in x. */
function fit(points: readonly (readonly [number, number])[]): { slope: number; atFirst: number } {
  const n = points.length;
  if (n < 2) return { slope: NaN, atFirst: NaN };
  // x measured from the first point: timestamps in ms are ~1.7e12, whose squares would swamp the
  // slope's digits, and equal x then give exactly zero spread rather than rounding noise.
  const x0 = points[0]![0];
  let mx = 0;
  let my = 0;
  for (const [x, y] of points) {
    mx += x - x0;
    my += y;
  }
  mx /= n;
  my /= n;
  let sxx = 0;
  let sxy = 0;
  for (const [x, y] of points) {
    sxx += (x - x0 - mx) * (x - x0 - mx);
    sxy += (x - x0 - mx) * (y - my);
  }
  if (sxx === 0) return { slope: NaN, atFirst: NaN };
  const slope = sxy / sxx;
  return { slope, atFirst: my - slope * mx };
}

/** Ordinary least-squares slope of y on x; NaN with fewer than 2 points or when every x is equal. */
export function slope(points: readonly (readonly [x: number, y: number])[]): number {
  return fit(points).slope;
}

/**
 * Relative growth per hour: the least-squares slope of value on time (ms) × 3 600 000, divided by the
 * fitted value at the first point's time, so 0.1 means "10% of the starting level per hour". Dividing
 * by the fitted rather than the observed start keeps one noisy first sample from skewing the rate.
 * NaN when there is no slope, or the fitted start is ≤ 0 (no level to be relative to).
 */
export function growthPerHour(points: readonly (readonly [ms: number, value: number])[]): number {
  const { slope: perMs, atFirst } = fit(points);
  // NaN > 0 is false, so a missing fit falls through to NaN with a non-positive start.
  return atFirst > 0 ? (perMs * 3_600_000) / atFirst : NaN;
}

// ln Γ(x) for x ≥ 1 by Lanczos' approximation (g = 7, nine terms; the coefficients are Paul
// Godfrey's), about 15 significant digits: enough for the log-factorials of the exact tests.
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];
const HALF_LN_2PI = 0.91893853320467274;

function lnGamma(x: number): number {
  const z = x - 1;
  let a = LANCZOS[0]!;
  for (let i = 1; i < LANCZOS.length; i++) a += LANCZOS[i]! / (z + i);
  const t = z + 7.5;
  return HALF_LN_2PI + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

const lnChoose = (n: number, k: number): number => lnGamma(n + 1) - lnGamma(k + 1) - lnGamma(n - k + 1);

/** Σ exp(terms), the terms given as logs, without overflow or underflow of the largest. */
function sumExp(logs: readonly number[]): number {
  let top = -Infinity;
  for (const l of logs) if (l > top) top = l; // not Math.max(...logs): a long tail is more arguments than a call takes
  let sum = 0;
  for (const l of logs) sum += Math.exp(l - top);
  return Math.exp(top) * sum;
}

/**
 * P(X ≥ k) for X ~ Binomial(n, p): the one-sided exact test of "the rate is above p" having seen
 * k events in n trials (scipy.stats.binomtest(k, n, p, alternative='greater').pvalue). Below
 * SIGNIFICANCE it says the rate is over p with that confidence — equivalently, the one-sided
 * Clopper–Pearson lower bound of k/n is above p. Counts are rounded (Prometheus's are fractional).
 */
export function binomialAtLeast(k: number, n: number, p: number): number {
  k = Math.round(k);
  n = Math.round(n);
  if (k <= 0) return 1;
  if (k > n || p <= 0) return 0;
  if (p >= 1) return 1;
  const lnP = Math.log(p);
  const lnQ = Math.log1p(-p);
  const term = (x: number): number => lnChoose(n, x) + x * lnP + (n - x) * lnQ;
  // Sum the shorter tail: above the mean the terms fall away fast, so stop once they no longer count.
  if (k > n * p) {
    const logs: number[] = [];
    for (let x = k; x <= n; x++) {
      const t = term(x);
      logs.push(t);
      if (t < logs[0]! - 40) break;
    }
    return Math.min(1, sumExp(logs));
  }
  const below: number[] = [];
  for (let x = k - 1; x >= 0; x--) {
    const t = term(x);
    below.push(t);
    if (t < below[0]! - 40) break;
  }
  return Math.max(0, 1 - sumExp(below));
}

/**
 * One-sided Fisher's exact test of "the canary's error rate is above the baseline's": with
 * `errors` of `requests` on each side and the margins fixed, the probability that the canary
 * holds at least as many of all the errors as it did (hypergeometric upper tail; scipy's
 * fisher_exact([[ce, cn − ce], [be, bn − be]], alternative='greater')). Counts are rounded.
 */
export function fisherGreater(canaryErrors: number, canaryRequests: number, baselineErrors: number, baselineRequests: number): number {
  const a = Math.round(canaryErrors);
  const n1 = Math.round(canaryRequests);
  const n = n1 + Math.round(baselineRequests);
  const k = a + Math.round(baselineErrors);
  if (k === 0 || n1 === 0 || n1 === n) return 1;
  const whole = lnChoose(n, n1);
  const logs: number[] = [];
  for (let x = a; x <= Math.min(k, n1); x++) logs.push(lnChoose(k, x) + lnChoose(n - k, n1 - x) - whole);
  return Math.min(1, sumExp(logs));
}
