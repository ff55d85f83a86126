import { InputError } from '../common/input-error.js';

/** What is recorded: the settings, and the pure decisions the request path makes on them. */

/** Request recording for replay (see line.ts for the file format). */
export interface RecordSettings {
  /** The JSONL file; undefined = no file, so recording cannot be switched on. */
  readonly file: string | undefined;
  /** Whether recording is on at start (it can be switched at runtime). */
  readonly enabled: boolean;
  /** Share of matching requests recorded, 0..1. */
  readonly sampleRate: number;
  /** Routes recorded (exact, a trailing slash optional). */
  readonly paths: readonly string[];
  /** Bytes of a request (and response) body kept in a record; the rest is forwarded, not kept. */
  readonly maxBody: number;
  /** Start a new numbered file when the current one would pass this size; undefined = never. */
  readonly rotateBytes: number | undefined;
  /** Bytes of records waiting for the disk before new ones are dropped. */
  readonly queueBytes: number;
  /** Bytes of bodies held in memory at once for records still in flight; past it, requests pass unrecorded. */
  readonly memoryBytes: number;
  /** Also record the response's status and body (capped at maxBody). */
  readonly responses: boolean;
  /** Lower-case header names whose values are recorded as "[REDACTED]". */
  readonly redact: readonly string[];
}

/** A share from 0 to 1, e.g. a sample rate. */
export function parseRate(value: unknown, field: string): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(value) ? Number(value) : NaN;
  if (!(n >= 0 && n <= 1)) throw new InputError(`"${String(value)}" is not a rate from 0 to 1, e.g. 0.01 for 1%`, field);
  return n;
}

/** Sampling decision: rate in [0,1]; `random` injected (default Math.random). rate 0 never, 1 always. */
export function sampled(rate: number, random: () => number = Math.random): boolean {
  if (rate >= 1) return true;
  if (!(rate > 0)) return false; // 0, negative and NaN: never
  return random() < rate;
}

/** DRUM's prediction routes (custom_model_runner's Flask and FastAPI servers). */
export const DEFAULT_RECORD_PATHS: readonly string[] = Object.freeze([
  '/predict/',
  '/predictions/',
  '/transform/',
  '/invocations',
  '/predictUnstructured/',
  '/predictionsUnstructured/',
]);

const withoutTrailingSlash = (path: string): string => (path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path);

/**
 * A test of whether a path is one of the record paths (exact DRUM routes like "/predict/",
 * ignoring the query string; a trailing slash optional). Compiled once: it runs on every request.
 */
export function recordable(paths: readonly string[]): (path: string) => boolean {
  const routes = new Set(paths.map(withoutTrailingSlash));
  return (path) => {
    const query = path.indexOf('?');
    return routes.has(withoutTrailingSlash(query < 0 ? path : path.slice(0, query)));
  };
}
