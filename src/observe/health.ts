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
