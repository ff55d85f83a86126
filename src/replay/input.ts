import { constants } from 'node:buffer';
import { open, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { endToEnd } from '../common/headers.js';
import { InputError } from '../common/input-error.js';
import { isObject } from '../common/json-shape.js';
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
  if (!isObject(d)) return { skip: 'malformed', detail: 'not a JSON object' };
  const o = d;
  if (typeof o.method !== 'string' || o.method === '') return { skip: 'malformed', detail: 'no method' };
  if (typeof o.path !== 'string' || !o.path.startsWith('/')) return { skip: 'malformed', detail: 'no path starting with /' };
  const headers = o.headers ?? {};
  if (!isObject(headers) || Object.values(headers).some((v) => typeof v !== 'string')) {
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

/** A recording's line is read whole into a string to be parsed: none can be longer than a string. */
export const MAX_LINE = constants.MAX_STRING_LENGTH;

/** The replay's input: how many records it holds and what was skipped, then the records themselves. */
export interface Recordings {
  /** Records to replay: the lines that parse, in all the files. */
  readonly count: number;
  readonly skipped: Skipped;
  /**
   * The records in the order given, read again line by line as they are asked for: only the
   * lines being replayed are in memory, whatever the files' size. The files as they were read
   * for `count` (kept open, up to the length read then), however they change meanwhile.
   */
  records(): AsyncGenerator<ReplayRecord>;
  close(): Promise<void>;
}

/** An open recording and how many of its bytes were read. */
interface Opened {
  readonly path: string;
  readonly handle: FileHandle;
  bytes: number;
}

/**
 * Opens the files and reads each through once, line by line: the records counted, malformed and
 * truncated lines skipped and counted (blank ones passed over), or with `strict` a malformed one
 * an InputError naming its line. Nothing is kept but the counts.
 */
export async function openRecordings(paths: readonly string[], strict: boolean, maxLine = MAX_LINE): Promise<Recordings> {
  const files: Opened[] = [];
  const close = async (): Promise<void> => void (await Promise.all(files.map((f) => f.handle.close())));
  const skipped: Skipped = { counts: { malformed: 0, truncated: 0 }, first: [] };
  let count = 0;
  try {
    for (const path of paths) files.push({ path, handle: await open(path).catch((err: Error) => cannotRead(path, err)), bytes: 0 });
    for (const file of files) {
      for await (const { number, parsed } of parsedLines(file, Infinity, maxLine)) {
        if ('record' in parsed) {
          count++;
          continue;
        }
        const source = `${file.path}:${number}`;
        if (strict && parsed.skip === 'malformed') throw new InputError(`${source}: ${parsed.detail} (--strict stops at a malformed line)`);
        skipped.counts[parsed.skip]++;
        if (skipped.first.length < FIRST_SKIPPED) skipped.first.push({ source, reason: parsed.skip, detail: parsed.detail });
      }
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    count,
    skipped,
    async *records() {
      for (const file of files) {
        for await (const { number, parsed } of parsedLines(file, file.bytes, maxLine)) {
          if ('record' in parsed) yield { ...parsed.record, source: `${file.path}:${number}` };
        }
      }
    },
    close,
  };
}

function cannotRead(path: string, err: Error): never {
  throw new InputError(`cannot read ${path}: ${err.message}`);
}

/** Bytes read from a recording at a time, into one buffer reused: reading makes no garbage but the lines. */
const READ_BYTES = 1024 * 1024;

/**
 * The file's non-blank lines from its start, each parsed, with its number; up to `end` bytes
 * (Infinity: its end, counted in file.bytes). One line at a time is held, as text, and a line
 * longer than `maxLine` bytes is not held at all: it is malformed.
 */
async function* parsedLines(file: Opened, end: number, maxLine: number): AsyncGenerator<{ number: number; parsed: Parsed }> {
  const buffer = Buffer.allocUnsafe(READ_BYTES);
  // Both recorders write ASCII (JSON escapes); a stray invalid byte decodes as U+FFFD, never throws.
  const decoder = new StringDecoder('utf8');
  /** The line so far, or undefined once it is too long (the rest is counted, not held). */
  let text: string | undefined = '';
  let length = 0;
  let number = 0;
  const add = (piece: Buffer): void => {
    length += piece.length;
    if (length > maxLine) text = undefined;
    else text += decoder.write(piece);
  };
  const line = (): { number: number; parsed: Parsed } | undefined => {
    number++;
    // A character the line ends in the middle of is U+FFFD here, not carried into the next line.
    const rest = decoder.end();
    const held = text === undefined ? undefined : (text + rest).replace(/\r$/, '');
    text = '';
    length = 0;
    if (held === undefined) return { number, parsed: { skip: 'malformed', detail: `longer than ${maxLine} bytes` } };
    return held.trim() === '' ? undefined : { number, parsed: parseLine(held) };
  };
  for (let position = 0; position < end; ) {
    let read: number;
    try {
      ({ bytesRead: read } = await file.handle.read(buffer, 0, Math.min(READ_BYTES, end - position), position));
    } catch (err) {
      cannotRead(file.path, err as Error);
    }
    if (read === 0) break;
    position += read;
    if (end === Infinity) file.bytes = position;
    const chunk = buffer.subarray(0, read);
    let from = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, from)) {
      add(chunk.subarray(from, nl));
      from = nl + 1;
      const parsed = line();
      if (parsed !== undefined) yield parsed;
    }
    add(chunk.subarray(from));
  }
  // The last line, if the file does not end with a newline.
  if (length > 0) {
    const parsed = line();
    if (parsed !== undefined) yield parsed;
  }
}
