import { hash } from 'node:crypto';
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
 * How a key picks its upstream: `murmur2`, nginx's split_clients (the default); `md5-mod-100`,
 * the seed's Option B feature flag, `int(md5(key), 16) % 100 < percent`.
 */
export const SPLIT_HASHES = ['murmur2', 'md5-mod-100'] as const;
export type SplitHash = (typeof SPLIT_HASHES)[number];

/** The hash each table is looked up with: a key's bytes to a number in the table's space. */
export const HASH_FUNCTIONS: Readonly<Record<SplitHash, (key: Uint8Array) => number>> = {
  murmur2: hashKey,
  'md5-mod-100': md5Bucket,
};

/**
 * Builds the table exactly as nginx's split_clients does: shares in the order listed,
 * each adding `percent * 0xffffffff / 10000` (integer division) to a running bound, and
 * `rest` (the baseline) as the trailing `*`. A 0% share is left out: nginx refuses 0%,
 * and leaving it out yields the same buckets as a config without that line. The shares
 * must have passed checkShares.
 *
 * With md5-mod-100 the hash is a bucket 0..99 and the shares are cumulative ranges in the
 * same order: a bucket goes to the first upstream whose running total of percents it is
 * under, `bucket < total` as the seed compares it. With 100 buckets a fraction rounds up:
 * 37.55% takes buckets 0..37, as `bucket < 37.55` does.
 */
export function compileSplit(shares: readonly Share[], rest: string | undefined, hash: SplitHash = 'murmur2'): SplitTable {
  const upstreams: string[] = [];
  const thresholds: number[] = [];
  let bound = 0;
  let total = 0;
  for (const [upstream, hundredths] of shares) {
    if (hundredths === 0) continue;
    total += hundredths;
    bound = hash === 'murmur2' ? bound + Math.floor((hundredths * HASH_SPACE) / 10000) : Math.ceil(total / 100);
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

/**
 * The seed's Option B bucket: `int(hashlib.md5(key).hexdigest(), 16) % 100`. The digest's 16
 * bytes are one big-endian number; its remainder is taken a byte at a time (r * 256 + byte stays
 * far below 2^53), exact without a BigInt.
 */
export function md5Bucket(key: Uint8Array): number {
  const digest = hash('md5', key, 'buffer');
  let r = 0;
  for (let i = 0; i < digest.length; i++) r = (r * 256 + digest[i]!) % 100;
  return r;
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
