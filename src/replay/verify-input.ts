import { open, readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { isObject } from '../common/json-shape.js';
import { DEFAULT_RECORD_PATHS } from '../record/policy.js';
import type { VerifyRequest, VerifyRequests } from '../rollout/verify.js';
import { parseLine } from './input.js';

/**
 * The predictions a verification after a rollback replays (rollout/verify.ts): the files given
 * (`rollout.verify.requests`, `verify --request`), or else the recording's newest lines.
 */

/** How much of the recording's end is read for recent predictions: a few thousand lines of small bodies. */
const TAIL_BYTES = 1 << 20;

/** DRUM's prediction routes, as the recorder's defaults name them. */
const isPrediction = (method: string, path: string): boolean => method === 'POST' && DEFAULT_RECORD_PATHS.some((p) => path.split('?')[0]!.endsWith(p));

const TYPES: Readonly<Record<string, string>> = { '.csv': 'text/csv', '.json': 'application/json' };

/** Prediction requests in recording lines, newest first; a line the upstream did not answer 2xx, or not a prediction, is left out. */
function fromLines(text: string, where: (index: number) => string): VerifyRequest[] {
  const found: VerifyRequest[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const parsed = parseLine(line);
    if (!('record' in parsed) || !isPrediction(parsed.record.method, parsed.record.path)) return;
    // Our recorder's lines say how the upstream answered; the seed's do not (taken as they are).
    const status = (JSON.parse(line) as Record<string, unknown>).status;
    if (typeof status === 'number' && (status < 200 || status > 299)) return;
    found.push({ ...parsed.record, source: where(i) });
  });
  return found.reverse();
}

/**
 * One file of requests: a .jsonl recording (its predictions), or a body posted to /predict/ —
 * .csv as text/csv, .json as application/json, anything else as application/octet-stream.
 */
export async function readRequestFile(file: string): Promise<VerifyRequest[]> {
  const data = await readFile(file);
  if (extname(file) === '.jsonl') return fromLines(data.toString('utf8'), (i) => `${file}:${i + 1}`);
  const type = TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
  return [{ method: 'POST', path: '/predict/', headers: ['Content-Type', type], body: data, source: file }];
}

/** The last TAIL_BYTES of a --record file, its predictions newest first (its first, partial line left out). */
export async function recentRecorded(file: string): Promise<VerifyRequest[]> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const start = Math.max(0, size - TAIL_BYTES);
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(size - start), 0, size - start, start);
    let text = buffer.subarray(0, bytesRead).toString('utf8');
    if (start > 0) text = text.slice(text.indexOf('\n') + 1);
    // Line numbers are not known from the middle of a file: counted from its end instead.
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    return fromLines(text, (i) => `${file}, line ${lines - i} from the end`);
  } finally {
    await handle.close();
  }
}

/** Where a verification's predictions come from: the files given; else the recording; else none. */
export function verifyRequestSource(files: readonly string[], recording: () => string | undefined): () => Promise<VerifyRequests> {
  if (files.length > 0) {
    return async () => {
      const requests: VerifyRequest[] = [];
      // A file that cannot be read is said as Node says it (ENOENT: no such file or directory, open '…').
      for (const file of files) requests.push(...(await readRequestFile(file)));
      return { requests, from: `in ${files.join(', ')}` };
    };
  }
  return async () => {
    // Read when the verification runs: the recording may have been switched on since start-up.
    const recordFile = recording();
    if (recordFile === undefined) return { requests: [], from: '(no request files given, and no recording)' };
    try {
      return { requests: await recentRecorded(recordFile), from: `in the recording ${recordFile}` };
    } catch (err) {
      // No recording yet (nothing sampled so far): nothing to replay, which is no failure of the baseline.
      if (isObject(err) && err.code === 'ENOENT') return { requests: [], from: `(the recording ${recordFile} is not written yet)` };
      throw new Error(`cannot read the recording ${recordFile}: ${(err as Error).message}`);
    }
  };
}
