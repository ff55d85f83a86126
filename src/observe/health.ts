import { isObject, parseJson } from '../common/json-shape.js';
import type { Dispatcher } from 'undici';

/** An upstream as polled: its name, path prefix and connection pool (the proxy's Backend is one). */
export interface Backend {
  readonly name: string;
  /** Prefixed to every polled path. */
  readonly basePath: string;
  readonly pool: Pick<Dispatcher, 'request'>;
}

/** GET `path` on an upstream within `timeoutMs`, body discarded; resolves to the status. */
export async function getStatus(b: Backend, path: string, timeoutMs: number): Promise<number> {
  const res = await b.pool.request({
    method: 'GET',
    path: b.basePath + path,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
  });
  await res.body.dump();
  return res.statusCode;
}

/**
 * Whether each upstream answers GET /ping with any HTTP response within `timeoutMs`.
 * Any status counts: an upstream that is not DRUM still answers.
 */
export async function probeUpstreams(backends: Iterable<Backend>, timeoutMs: number): Promise<Record<string, boolean>> {
  const entries = await Promise.all(
    [...backends].map(async (b): Promise<[string, boolean]> => {
      try {
        await getStatus(b, '/ping', timeoutMs);
        return [b.name, true];
      } catch {
        return [b.name, false];
      }
    }),
  );
  return Object.fromEntries(entries);
}

export const MiB = 1024 * 1024;
/** DRUM's /stats/ is a few hundred bytes; an upstream answering more is not DRUM. */
const STATS_LIMIT = 64 * 1024;

/** DRUM's /stats/ memory, in bytes; the container fields only where DRUM reports them. */
export interface DrumMemory {
  readonly rss: number;
  readonly containerMaxUsed: number | undefined;
  readonly containerLimit: number | undefined;
}

/** GET `path`'s JSON within `timeoutMs`, reading at most STATS_LIMIT bytes; undefined when unreachable, not 200, too big or not JSON. */
async function readSmallJson(b: Backend, path: string, timeoutMs: number): Promise<unknown> {
  try {
    const res = await b.pool.request({
      method: 'GET',
      path: b.basePath + path,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > STATS_LIMIT) {
        res.body.destroy();
        return undefined;
      }
      chunks.push(chunk);
    }
    return res.statusCode === 200 ? parseJson(Buffer.concat(chunks).toString('utf8')) : undefined;
  } catch {
    // unreachable or timed out
    return undefined;
  }
}

/**
 * DRUM's GET /stats/ `mem_info` (values in MB); undefined when the upstream is unreachable,
 * answers otherwise than 200, or is not DRUM.
 */
export async function readMemInfo(b: Backend, timeoutMs: number): Promise<Record<string, unknown> | undefined> {
  const parsed = await readSmallJson(b, '/stats/', timeoutMs);
  return isObject(parsed) && isObject(parsed.mem_info) ? parsed.mem_info : undefined;
}

/** The fields of DRUM's /info/ that say which server and model answer: a change in any is a new canary. */
const IDENTITY_FIELDS = ['drumServer', 'drumVersion', 'language', 'modelMetadata'] as const;

/**
 * Which server and model an upstream is, from DRUM's GET /info/: its identity fields as one JSON
 * text (keys in a fixed order, so equal answers give equal texts); undefined when there is no
 * usable /info/ (unreachable, or not DRUM).
 */
export async function readIdentity(b: Backend, timeoutMs: number): Promise<string | undefined> {
  const info = await readSmallJson(b, '/info/', timeoutMs);
  if (!isObject(info) || !IDENTITY_FIELDS.some((f) => info[f] !== undefined)) return undefined;
  return JSON.stringify(IDENTITY_FIELDS.map((f) => info[f] ?? null));
}

/** An identity as people read it: "fastapi 1.16.6 my-model". */
export function describeIdentity(identity: string): string {
  const [server, version, , metadata] = JSON.parse(identity) as unknown[];
  const model = isObject(metadata) && typeof metadata.name === 'string' ? metadata.name : undefined;
  return [server, version, model].filter((x) => typeof x === 'string' && x !== '').join(' ') || identity;
}

/** A mem_info field in MB, if it is a number. */
export function memoryMb(mem: Record<string, unknown> | undefined, field: string): number | undefined {
  const v = mem?.[field];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** The memory a mem_info reports, in bytes; undefined without drum_rss (an upstream that is not DRUM). */
export function drumMemory(mem: Record<string, unknown> | undefined): DrumMemory | undefined {
  const mb = (field: string): number | undefined => {
    const v = memoryMb(mem, field);
    return v === undefined ? undefined : v * MiB;
  };
  const rss = mb('drum_rss');
  return rss === undefined ? undefined : { rss, containerMaxUsed: mb('container_max_used'), containerLimit: mb('container_limit') };
}
