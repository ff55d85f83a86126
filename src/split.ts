import murmurhash from 'murmurhash';
import { InputError } from './input-error.js';
import { toPercent } from './percent.js';

/** One `split_clients` line: an upstream and its share in hundredths of a percent. */
export type Share = readonly [upstream: string, hundredths: number];

/**
 * A compiled split_clients table. thresholds[i] is the exclusive upper bound of the
 * hash range that goes to upstreams[i]; 0 marks the `*` entry, which takes any hash.
 */
export interface SplitTable {
  readonly upstreams: readonly string[];
  readonly thresholds: readonly number[];
}

const HASH_SPACE = 0xffffffff;

/**
 * The one check of split_clients lines, whoever wrote them (config file and flags, state
 * file, admin API, environment, the store itself): each names an upstream, once, with a
 * whole number of hundredths from 0 to 10000, and together they make at most 100%. A
 * problem with one line names `field.upstream`; the total names `field`.
 */
export function checkShares(shares: readonly Share[], upstreams: readonly string[], field: string): void {
  const seen = new Set<string>();
  let sum = 0;
  for (const [name, hundredths] of shares) {
    if (!upstreams.includes(name)) throw new InputError(`"${name}" is not an upstream (have: ${upstreams.join(', ')})`, `${field}.${name}`);
    if (seen.has(name)) throw new InputError(`"${name}" is weighted twice`, `${field}.${name}`);
    if (!Number.isInteger(hundredths) || hundredths < 0 || hundredths > 10000) {
      throw new InputError(`${hundredths} is not a whole number of hundredths of a percent from 0 to 10000`, `${field}.${name}`);
    }
    seen.add(name);
    sum += hundredths;
  }
  if (sum > 10000) throw new InputError(`weights add up to ${toPercent(sum)}%, over 100%`, field);
}

/**
 * Builds the table exactly as nginx's split_clients does: shares in the order listed,
 * each adding `percent * 0xffffffff / 10000` (integer division) to a running bound, and
 * `rest` (the baseline) as the trailing `*`. A 0% share is left out: nginx refuses 0%,
 * and leaving it out yields the same buckets as a config without that line. The shares
 * must have passed checkShares.
 */
export function compileSplit(shares: readonly Share[], rest: string | undefined): SplitTable {
  const upstreams: string[] = [];
  const thresholds: number[] = [];
  let bound = 0;
  for (const [upstream, hundredths] of shares) {
    if (hundredths === 0) continue;
    bound += Math.floor((hundredths * HASH_SPACE) / 10000);
    upstreams.push(upstream);
    thresholds.push(bound);
  }
  if (rest !== undefined) {
    upstreams.push(rest);
    thresholds.push(0);
  }
  return { upstreams, thresholds };
}

/** nginx's ngx_murmur_hash2 (MurmurHash2, seed 0) over the key's bytes. */
export function hashKey(key: Uint8Array): number {
  return murmurhash.v2(key, 0);
}

/** The upstream a hash falls to, or undefined where nginx would yield an empty value. */
export function pickByHash(table: SplitTable, hash: number): string | undefined {
  const { thresholds, upstreams } = table;
  for (let i = 0; i < thresholds.length; i++) {
    const bound = thresholds[i]!;
    if (hash < bound || bound === 0) return upstreams[i];
  }
  return undefined;
}

/** The same lines in the same order: the same bucket for every key. */
export function sameShares(a: readonly Share[], b: readonly Share[]): boolean {
  return a.length === b.length && a.every(([name, h], i) => b[i]![0] === name && b[i]![1] === h);
}
