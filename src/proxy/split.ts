import murmurhash from 'murmurhash';
import type { Share } from '../weights/shares.js';

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
