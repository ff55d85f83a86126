import { readFile } from 'node:fs/promises';
import { endToEnd } from '../common/headers.js';
import { InputError } from '../common/input-error.js';
import { REDACTED } from '../record/line.js';

/** One request to replay, as read from a recording line. */
export interface ReplayRecord {
  readonly method: string;
  /** Path with query, as recorded; appended to each backend's URL. */
  readonly path: string;
  /** Flat [name, value, ...], ready to send. */
  readonly headers: readonly string[];
  readonly body: Uint8Array;
  /** "FILE:LINE", for the report. */
  readonly source: string;
}

export type SkipReason = 'malformed' | 'truncated';

export interface SkippedLine {
  readonly source: string;
  readonly reason: SkipReason;
  readonly detail: string;
}

export interface Skipped {
  readonly counts: Record<SkipReason, number>;
  /** The first FIRST_SKIPPED lines skipped, in reading order. */
  readonly first: SkippedLine[];
}

export const FIRST_SKIPPED = 10;

/**
 * Not resent: undici sets Host and Content-Length for the request it sends; hop-by-hop
 * headers (common/headers.ts) belonged to the recorded connection.
 */
const NOT_RESENT = new Set(['host', 'content-length']);

type Parsed = { record: Omit<ReplayRecord, 'source'> } | { skip: SkipReason; detail: string };

/**
 * One line of either recorder: the seed middleware's (timestamp, method, path, headers,
 * body_hex, content_type) or ours, which adds id, upstream, status, latency_ms,
 * body_truncated and response, none of which a replay needs.
 */
export function parseLine(line: string): Parsed {
  let d: unknown;
  try {
    d = JSON.parse(line);
  } catch {
    return { skip: 'malformed', detail: 'not JSON' };
  }
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return { skip: 'malformed', detail: 'not a JSON object' };
  const o = d as Record<string, unknown>;
  if (typeof o.method !== 'string' || o.method === '') return { skip: 'malformed', detail: 'no method' };
  if (typeof o.path !== 'string' || !o.path.startsWith('/')) return { skip: 'malformed', detail: 'no path starting with /' };
  const headers = o.headers ?? {};
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers) || Object.values(headers).some((v) => typeof v !== 'string')) {
    return { skip: 'malformed', detail: 'headers are not an object of strings' };
  }
  const hex = o.body_hex ?? '';
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) return { skip: 'malformed', detail: 'body_hex is not hex' };
  // A cut body resent as if whole would be a different request.
  if (o.body_truncated === true) return { skip: 'truncated', detail: 'body_truncated' };

  // A redacted value resent is no credential, only noise.
  const raw = Object.entries(headers as Record<string, string>).filter(([, v]) => v !== REDACTED).flat();
  const sent = endToEnd(raw, NOT_RESENT);
  // WSGI keeps Content-Type out of the HTTP_* variables, so the seed middleware's headers
  // lack it and only its content_type field has it.
  if (typeof o.content_type === 'string' && o.content_type !== '' && !sent.some((v, i) => i % 2 === 0 && v.toLowerCase() === 'content-type')) {
    sent.push('Content-Type', o.content_type);
  }
  return { record: { method: o.method, path: o.path, headers: sent, body: Buffer.from(hex, 'hex') } };
}

/**
 * Every record of the files, in the order given. Blank lines are passed over; malformed and
 * truncated ones are skipped and counted, or with `strict` a malformed one is an InputError.
 */
export async function readRecords(files: readonly string[], strict: boolean): Promise<{ records: ReplayRecord[]; skipped: Skipped }> {
  const records: ReplayRecord[] = [];
  const skipped: Skipped = { counts: { malformed: 0, truncated: 0 }, first: [] };
  for (const file of files) {
    let text: string;
    try {
      // Both recorders write ASCII (JSON escapes); a stray invalid byte decodes as U+FFFD, never throws.
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new InputError(`cannot read ${file}: ${(err as Error).message}`);
    }
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.replace(/\r$/, '');
      if (line.trim() === '') continue;
      const source = `${file}:${i + 1}`;
      const parsed = parseLine(line);
      if ('record' in parsed) {
        records.push({ ...parsed.record, source });
        continue;
      }
      if (strict && parsed.skip === 'malformed') throw new InputError(`${source}: ${parsed.detail} (--strict stops at a malformed line)`);
      skipped.counts[parsed.skip]++;
      if (skipped.first.length < FIRST_SKIPPED) skipped.first.push({ source, reason: parsed.skip, detail: parsed.detail });
    }
  }
  return { records, skipped };
}
