import type { Comparison } from './answers.js';

/**
 * Noise cancelling as Twitter's Diffy does it. Some answers differ from call to call of the very
 * same server (a timestamp, a request id, float jitter), and a difference there says nothing about
 * the canary. So a share of the requests also goes to the baseline a second time, and each field
 * (Difference.field) is counted twice per route: how often the canary's answer differs from the
 * baseline's there, and how often the baseline's second answer differs from its first. A field
 * counts against the canary only where the first clearly exceeds the second; elsewhere its
 * differences are noise, not counted. Diffy sends every request three times and compares counts;
 * here the noise pairs are a sample, so the two are compared as rates.
 */

/** Diffy's defaults (its threshold.relative 20 and threshold.absolute 0.03, in percent). */
export const NOISE_THRESHOLDS = { relative: 0.2, absolute: 0.0003 } as const;

/** Fields counted at most, over all routes; differences at others count against the canary (no noise known). */
export const MAX_FIELDS = 1000;

/** Of `of` pairs compared, `differences` differed at the field. */
export interface Count {
  readonly differences: number;
  readonly of: number;
}

export interface FieldJudgement {
  /** The share of baseline–canary pairs that differed at the field. */
  readonly rate: number;
  /** The share of baseline–baseline pairs that did; null before any such pair. */
  readonly noiseRate: number | null;
  /** |rate − noiseRate| / (rate + noiseRate): Diffy's relative difference. */
  readonly relative: number | null;
  /** |rate − noiseRate|, a share of the requests: Diffy's absolute difference. */
  readonly absolute: number | null;
  /**
   * real: the field's differences count against the canary (no noise pair yet, or the canary
   * differs there more often than the baseline from itself, by both thresholds); noise: they do not.
   */
  readonly verdict: 'real' | 'noise';
}

/** Diffy's rule for one field: real only where the canary's rate is over the baseline's own, by both thresholds. */
export function judgeField(raw: Count, noise: Count): FieldJudgement {
  const rate = raw.of === 0 ? 0 : raw.differences / raw.of;
  if (noise.of === 0) return { rate, noiseRate: null, relative: null, absolute: null, verdict: 'real' };
  const noiseRate = noise.differences / noise.of;
  const absolute = Math.abs(rate - noiseRate);
  const relative = rate + noiseRate === 0 ? 0 : absolute / (rate + noiseRate);
  const real = rate > noiseRate && relative > NOISE_THRESHOLDS.relative && absolute > NOISE_THRESHOLDS.absolute;
  return { rate, noiseRate, relative, absolute, verdict: real ? 'real' : 'noise' };
}

/** The comparison with the differences at the given fields taken out: it matches if nothing else differs. */
export function discount(c: Comparison, noise: ReadonlySet<string>): Comparison {
  if (!c.fields.some((f) => noise.has(f))) return c;
  const fields = c.fields.filter((f) => !noise.has(f));
  return { ...c, match: fields.length === 0, differences: c.differences.filter((d) => !noise.has(d.field)), fields };
}

/** One pair compared: where the canary's answer differed, and, if the baseline answered twice, where its two did. */
export interface Observation {
  readonly route: string;
  readonly fields: readonly string[];
  readonly noise?: readonly string[];
}

/** A field in the noise report: one that differed in a noise pair, so its rates are all known. */
export interface NoiseField {
  readonly route: string;
  readonly field: string;
  /** Baseline–canary pairs that differed at the field, of those compared on its route. */
  readonly differences: number;
  readonly compared: number;
  /** Baseline–baseline pairs that differed at the field, of those on its route. */
  readonly noiseDifferences: number;
  readonly noisePairs: number;
  readonly rate: number;
  readonly noiseRate: number;
  readonly relative: number;
  readonly absolute: number;
  readonly verdict: FieldJudgement['verdict'];
  /** Pairs whose difference here was not counted against the canary, being noise when they were judged. */
  readonly discounted: number;
}

export interface NoiseReport {
  readonly thresholds: typeof NOISE_THRESHOLDS;
  /** Pairs compared and, of them, those with a second baseline answer, by route. */
  readonly routes: Readonly<Record<string, { readonly compared: number; readonly noisePairs: number }>>;
  /** Every field that differed between two answers of the baseline, by route then field, each in the order first seen. */
  readonly fields: readonly NoiseField[];
  /** Pairs whose every difference was noise: counted as matches. */
  readonly discounted: number;
  /** Differences at fields past MAX_FIELDS, not counted per field (so never noise). */
  readonly untracked: number;
}

interface FieldCounts {
  differences: number;
  noise: number;
  discounted: number;
}

interface RouteCounts {
  compared: number;
  noisePairs: number;
  readonly fields: Map<string, FieldCounts>;
}

/** The counts behind the judgements, pair by pair: what the replay and the live shadow keep. */
export class NoiseTally {
  readonly #routes = new Map<string, RouteCounts>();
  #fields = 0;
  #untracked = 0;
  #discounted = 0;

  add(o: Observation): void {
    let route = this.#routes.get(o.route);
    if (route === undefined) this.#routes.set(o.route, (route = { compared: 0, noisePairs: 0, fields: new Map() }));
    route.compared += 1;
    for (const f of o.fields) {
      const counts = this.#counts(route, f);
      if (counts !== undefined) counts.differences += 1;
    }
    if (o.noise === undefined) return;
    route.noisePairs += 1;
    for (const f of o.noise) {
      const counts = this.#counts(route, f);
      if (counts !== undefined) counts.noise += 1;
    }
  }

  #counts(route: RouteCounts, field: string): FieldCounts | undefined {
    let counts = route.fields.get(field);
    if (counts !== undefined) return counts;
    if (this.#fields >= MAX_FIELDS) {
      this.#untracked += 1;
      return undefined;
    }
    this.#fields += 1;
    route.fields.set(field, (counts = { differences: 0, noise: 0, discounted: 0 }));
    return counts;
  }

  #judge(route: RouteCounts, counts: FieldCounts): FieldJudgement {
    return judgeField({ differences: counts.differences, of: route.compared }, { differences: counts.noise, of: route.noisePairs });
  }

  /**
   * A comparison on `route` as the counts so far judge it (add its observation first, so that it
   * counts too): its differences at noise fields taken out, and which fields those were.
   */
  judge(route: string, c: Comparison): { readonly comparison: Comparison; readonly discounted: readonly string[] } {
    const counts = this.#routes.get(route);
    if (counts === undefined) return { comparison: c, discounted: [] };
    const discounted = c.fields.filter((f) => {
      const field = counts.fields.get(f);
      return field !== undefined && this.#judge(counts, field).verdict === 'noise';
    });
    return { comparison: discount(c, new Set(discounted)), discounted };
  }

  /** Counts that an added pair's differences at `discounted` (fields judge found noisy) were not counted against the canary. */
  discount(o: Observation, discounted: readonly string[]): void {
    const { fields } = this.#routes.get(o.route)!;
    for (const f of discounted) fields.get(f)!.discounted += 1;
    if (discounted.length > 0 && discounted.length === o.fields.length) this.#discounted += 1;
  }

  report(): NoiseReport {
    const routes: Record<string, { compared: number; noisePairs: number }> = {};
    const fields: NoiseField[] = [];
    for (const [route, r] of this.#routes) {
      routes[route] = { compared: r.compared, noisePairs: r.noisePairs };
      for (const [field, f] of r.fields) {
        if (f.noise === 0) continue;
        const { rate, noiseRate, relative, absolute, verdict } = this.#judge(r, f);
        // It differed in a noise pair, so its route has some: none of these is null.
        const known = { rate, noiseRate: noiseRate!, relative: relative!, absolute: absolute!, verdict };
        fields.push({ route, field, differences: f.differences, compared: r.compared, noiseDifferences: f.noise, noisePairs: r.noisePairs, ...known, discounted: f.discounted });
      }
    }
    return { thresholds: NOISE_THRESHOLDS, routes, fields, discounted: this.#discounted, untracked: this.#untracked };
  }
}
