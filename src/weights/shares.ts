import { InputError } from '../common/input-error.js';
import { isObject } from '../common/json-shape.js';
import { parsePercent, toPercent } from '../common/percent.js';

/** One `split_clients` line: an upstream and its share in hundredths of a percent. */
export type Share = readonly [upstream: string, hundredths: number];

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

/** The same lines in the same order: the same bucket for every key. */
export function sameShares(a: readonly Share[], b: readonly Share[]): boolean {
  return a.length === b.length && a.every(([name, h], i) => b[i]![0] === name && b[i]![1] === h);
}

/** Where a weight change came from, as this version writes it. */
export type Source = 'startup' | 'env' | 'file' | 'admin' | 'rollout';

/**
 * A source as recorded: one of ours, or a word a newer version wrote (a rollout controller's,
 * say), kept as it is so that this version can still start from that version's state file.
 */
export type RecordedSource = Source | (string & {});

/** Every upstream's effective share in percent, the baseline's being the rest. */
export type Percentages = Record<string, number>;

/** The split in force: the listed shares (split_clients lines) and their provenance. */
export interface WeightState {
  readonly shares: readonly Share[];
  readonly version: number;
  readonly updatedAt: string;
  readonly source: RecordedSource;
}

/** One line of the audit trail. */
export interface HistoryEntry {
  readonly at: string;
  readonly version: number;
  readonly source: RecordedSource;
  readonly who: string;
  readonly reason: string | null;
  readonly from: Percentages;
  readonly to: Percentages;
}

/**
 * The upstreams in config order, first the baseline. Effective percentages: each listed
 * share, and the baseline also whatever the shares leave (nginx's `*`).
 */
export function percentages(upstreams: readonly string[], shares: readonly Share[]): Percentages {
  const listed = new Map(shares);
  const rest = 10000 - shares.reduce((sum, [, h]) => sum + h, 0);
  const out: Percentages = {};
  upstreams.forEach((name, i) => {
    out[name] = toPercent((listed.get(name) ?? 0) + (i === 0 ? rest : 0));
  });
  return out;
}

/**
 * A weight change as asked for ({"fastapi": 10}), validated against the upstreams and applied
 * to `current`: a named share takes its new value in its old place (new ones are appended, as
 * extra split_clients lines), others keep theirs. The baseline's line, if it has one, is never
 * rewritten (that would move the canary's hash range, and so its clients); the baseline may be
 * named only with the share it gets anyway, so a GET's weights can be sent back as they are.
 */
export function applyWeights(
  upstreams: readonly string[],
  current: readonly Share[],
  asked: unknown,
  field = 'weights',
): Share[] {
  if (!isObject(asked)) {
    throw new InputError('must be an object of upstream name to percent, e.g. {"fastapi": 10}', field);
  }
  const baseline = upstreams[0]!;
  const next = new Map(current);
  let baselineAsked: number | undefined;
  for (const [name, value] of Object.entries(asked)) {
    const hundredths = parsePercent(value, `${field}.${name}`);
    if (name === baseline) baselineAsked = hundredths;
    else next.set(name, hundredths);
  }
  const shares = [...next];
  checkShares(shares, upstreams, field);
  checkBaselineAsked(upstreams, shares, baselineAsked, field);
  return shares;
}

/**
 * The baseline takes whatever the shares leave (nginx's `*`): a person may name it only with
 * the share it gets anyway (so a GET's weights can be sent back as they are), never with a
 * share it would not get. One rule for every writer of weights: the admin API (applyWeights)
 * and a config file's or the flags' weights (buildConfig), where its own line is what it asks.
 */
export function checkBaselineAsked(upstreams: readonly string[], shares: readonly Share[], asked: number | undefined, field: string): void {
  const baseline = upstreams[0]!;
  const gets = percentages(upstreams, shares)[baseline]!;
  if (asked !== undefined && toPercent(asked) !== gets) {
    throw new InputError(`${baseline} is the baseline and takes the rest, ${gets}%; leave it out or send ${gets}`, `${field}.${baseline}`);
  }
}

/** Rollback: every listed share to 0 — all traffic to the baseline — keeping line order. */
export function rolledBack(current: readonly Share[]): Share[] {
  return current.map(([name]) => [name, 0]);
}


/** What --state keeps across restarts. */
export interface Snapshot {
  readonly state: WeightState;
  readonly history: readonly HistoryEntry[];
}
