import { InputError } from './input-error.js';
import { parsePercent, toPercent } from './percent.js';
import { checkShares, type Share } from './split.js';

/** Where a weight change came from, as this version writes it. */
export type Source = 'startup' | 'env' | 'file' | 'admin';

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
  if (asked === null || typeof asked !== 'object' || Array.isArray(asked)) {
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
  const rest = 10000 - shares.reduce((sum, [, h]) => sum + h, 0);
  const baselineGets = (next.get(baseline) ?? 0) + rest;
  if (baselineAsked !== undefined && baselineAsked !== baselineGets) {
    throw new InputError(
      `${baseline} is the baseline and takes the rest, ${toPercent(baselineGets)}%; leave it out or send ${toPercent(baselineGets)}`,
      `${field}.${baseline}`,
    );
  }
  return shares;
}

/** Rollback: every listed share to 0 — all traffic to the baseline — keeping line order. */
export function rolledBack(current: readonly Share[]): Share[] {
  return current.map(([name]) => [name, 0]);
}

/** DRUM's runtime-parameter value: plain, or {"type": ..., "payload": ...}. */
function runtimeParam(env: NodeJS.ProcessEnv, name: string, type: 'numeric' | 'string'): unknown {
  const raw = env[`MLOPS_RUNTIME_PARAM_${name}`];
  if (raw === undefined || raw.trim() === '') return undefined;
  const field = `MLOPS_RUNTIME_PARAM_${name}`;
  if (!raw.trim().startsWith('{')) return raw.trim();
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new InputError(`${JSON.stringify(raw)} is neither a plain value nor DRUM's JSON form`, field);
  }
  const p = parsed as { type?: unknown; payload?: unknown };
  if (p.type !== type || p.payload === undefined || p.payload === null) {
    throw new InputError(`expected {"type": "${type}", "payload": ...}, got ${raw}`, field);
  }
  return p.payload;
}

/**
 * The seed's runtime parameters, the rollback levers of its runbook:
 * DRUM_SERVER_TYPE=<upstream> sends 100% there (Level 1 rollback; wins), else
 * DRUM_FASTAPI_CANARY_PERCENT sets the canary's share — the upstream named "fastapi" if
 * there is one, else the first after the baseline. Undefined when neither is set.
 */
export function sharesFromEnv(
  env: NodeJS.ProcessEnv,
  upstreams: readonly string[],
  current: readonly Share[],
): { shares: Share[]; reason: string } | undefined {
  const serverType = runtimeParam(env, 'DRUM_SERVER_TYPE', 'string');
  if (serverType !== undefined) {
    const asked = String(serverType);
    // DRUM's values are lower case; an upstream spelled otherwise matches too.
    const name = upstreams.includes(asked) ? asked : upstreams.find((u) => u.toLowerCase() === asked.toLowerCase());
    if (name === undefined) {
      throw new InputError(`"${String(serverType)}" is not an upstream (have: ${upstreams.join(', ')})`, 'MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE');
    }
    const shares: Share[] = rolledBack(current);
    if (name !== upstreams[0]) {
      const i = shares.findIndex(([n]) => n === name);
      if (i === -1) shares.push([name, 10000]);
      else shares[i] = [name, 10000];
    }
    return { shares, reason: `MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE=${name}` };
  }
  const canaryPercent = runtimeParam(env, 'DRUM_FASTAPI_CANARY_PERCENT', 'numeric');
  if (canaryPercent === undefined) return undefined;
  const canary = upstreams.includes('fastapi') ? 'fastapi' : upstreams[1];
  if (canary === undefined || canary === upstreams[0]) {
    throw new InputError('there is no canary upstream to give a share to', 'MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_CANARY_PERCENT');
  }
  const shares = applyWeights(upstreams, current, { [canary]: canaryPercent }, 'MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_CANARY_PERCENT');
  return { shares, reason: `MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_CANARY_PERCENT=${String(canaryPercent)}` };
}

/** What --state keeps across restarts. */
export interface Snapshot {
  readonly state: WeightState;
  readonly history: readonly HistoryEntry[];
}
