import { InputError } from '../common/input-error.js';
import { parseRate, type RecordSettings } from '../record/policy.js';
import { applyWeights, rolledBack, type Share } from '../weights/shares.js';

/** The environment's start-up settings: the seed's runtime parameters and recording switches. */

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

/** Where the seed's replay step reads recorded requests; DRUM_RECORD_REQUESTS=true without --record writes there. */
export const SEED_RECORD_FILE = '/var/log/drum/recorded_requests.jsonl';

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off', '']);

/**
 * The seed's switches: DRUM_RECORD_REQUESTS (true/false) and DRUM_RECORD_SAMPLE_RATE. Like the
 * other start-up environment variables, they win over flags and the config file.
 */
export function recordFromEnv(env: NodeJS.ProcessEnv, settings: RecordSettings): RecordSettings {
  let { file, enabled, sampleRate } = settings;
  const on = env.DRUM_RECORD_REQUESTS?.trim().toLowerCase();
  if (on !== undefined) {
    if (TRUE.has(on)) {
      enabled = true;
      file ??= SEED_RECORD_FILE;
    } else if (FALSE.has(on)) {
      enabled = false;
    } else {
      throw new InputError(`"${env.DRUM_RECORD_REQUESTS}" is not true or false`, 'DRUM_RECORD_REQUESTS');
    }
  }
  if (env.DRUM_RECORD_SAMPLE_RATE !== undefined) sampleRate = parseRate(env.DRUM_RECORD_SAMPLE_RATE, 'DRUM_RECORD_SAMPLE_RATE');
  return { ...settings, file, enabled, sampleRate };
}
