import { compareAnswers, noisyPaths, type Answer, type Comparison } from '../compare/answers.js';
import type { ResultRow } from './report.js';
import type { Exchange } from './run.js';

/** Differences named in a result's `diff` line; all of them are in its `differences`. */
const LISTED = 5;

/** The seed's `diff` text where it has one (status, binary), else the first differences by path. */
function diffText(c: Comparison, flask: Answer, fastapi: Answer): string | null {
  if (c.match) return null;
  if (c.differences.some((d) => d.kind === 'status')) return `Status mismatch: Flask=${flask.status}, FastAPI=${fastapi.status}`;
  if (c.kind === 'bytes') return `Binary diff: ${flask.body.length} vs ${fastapi.body.length} bytes`;
  const listed = c.differences.slice(0, LISTED).map((d) => `${d.path} (${d.kind})`);
  return `differences at ${listed.join(', ')}${c.differences.length > LISTED ? ', …' : ''}`;
}

/** One exchange as a result row: both answers compared, or why there was nothing to compare. */
export function judge(e: Exchange, ignore: readonly string[]): ResultRow {
  const { baseline: b, canary: c, record } = e;
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
    route: record.path.replace(/\?.*$/s, ''),
    kind: comparison?.kind ?? null,
    differences: comparison?.differences ?? [],
    source: record.source,
  });
  if (b.answer === undefined || c.answer === undefined) {
    return row(null, [b.error && `baseline: ${b.error}`, c.error && `canary: ${c.error}`].filter(Boolean).join('; '));
  }
  // Paths that differ between two answers of the baseline itself (a timestamp, a request id).
  const noise = e.again?.answer === undefined ? undefined : noisyPaths(b.answer, e.again.answer);
  const comparison = compareAnswers(b.answer, c.answer, noise === undefined ? { ignore } : { ignore, noise });
  return row(diffText(comparison, b.answer, c.answer), null, comparison);
}
