import { compareAnswers, type Comparison, type CompareOptions } from '../compare/answers.js';
import type { NoiseTally, Observation } from '../compare/noise.js';
import type { ResultRow } from './report.js';
import type { Exchange } from './run.js';

/** Differences named in a result's `diff` line; all of them are in its `differences`. */
const LISTED = 5;

/** What diffText needs of each answer. */
interface Side {
  readonly status: number;
  readonly bytes: number;
}

/** The seed's `diff` text where it has one (status, binary), else the first differences by path. */
function diffText(c: Comparison, flask: Side, fastapi: Side): string | null {
  if (c.match) return null;
  if (c.differences.some((d) => d.kind === 'status')) return `Status mismatch: Flask=${flask.status}, FastAPI=${fastapi.status}`;
  if (c.kind === 'bytes') return `Binary diff: ${flask.bytes} vs ${fastapi.bytes} bytes`;
  const listed = c.differences.slice(0, LISTED).map((d) => `${d.path} (${d.kind})`);
  return `differences at ${listed.join(', ')}${c.differences.length > LISTED ? ', …' : ''}`;
}

/**
 * One exchange judged: its result row as the answers compare, and what the noise bookkeeping
 * needs to judge it again once every exchange is in (the comparison, and where the baseline's
 * second answer differed from its first).
 */
export interface Judged {
  readonly row: ResultRow;
  readonly compared?: { readonly comparison: Comparison; readonly observation: Observation; readonly sides: readonly [Side, Side] };
}

/** One exchange as a result row: both answers compared, or why there was nothing to compare. */
export function judge(e: Exchange, opts: CompareOptions): Judged {
  const { baseline: b, canary: c, record } = e;
  const route = record.path.replace(/\?.*$/s, '');
  // Key order is the output's: the seed's fields as it writes them, then ours.
  const row = (diff: string | null, error: string | null, comparison?: Comparison): ResultRow => ({
    path: record.path,
    flask_status: b.answer?.status ?? 0,
    fastapi_status: c.answer?.status ?? 0,
    flask_latency_ms: b.latencyMs,
    fastapi_latency_ms: c.latencyMs,
    diff,
    error,
    method: record.method,
    route,
    kind: comparison?.kind ?? null,
    differences: comparison?.differences ?? [],
    source: record.source,
  });
  if (b.answer === undefined || c.answer === undefined) {
    return { row: row(null, [b.error && `baseline: ${b.error}`, c.error && `canary: ${c.error}`].filter(Boolean).join('; ')) };
  }
  const comparison = compareAnswers(b.answer, c.answer, opts);
  const sides = [
    { status: b.answer.status, bytes: b.answer.body.length },
    { status: c.answer.status, bytes: c.answer.body.length },
  ] as const;
  // Fields that differ between two answers of the baseline itself (a timestamp, a request id).
  const noise = e.again?.answer === undefined ? undefined : compareAnswers(b.answer, e.again.answer, opts).fields;
  const observation: Observation = noise === undefined ? { route, fields: comparison.fields } : { route, fields: comparison.fields, noise };
  return { row: row(diffText(comparison, ...sides), null, comparison), compared: { comparison, observation, sides } };
}

/** The row again with the differences at fields the tally (of every exchange) finds noisy left out, and counted there as discounted. */
export function withoutNoise(j: Judged, tally: NoiseTally): ResultRow {
  if (j.compared === undefined) return j.row;
  const { comparison, observation, sides } = j.compared;
  const judged = tally.judge(observation.route, comparison);
  if (judged.discounted.length === 0) return j.row;
  tally.discount(observation, judged.discounted);
  return { ...j.row, diff: diffText(judged.comparison, ...sides), differences: judged.comparison.differences };
}
