import { request } from 'undici';
import { baseUrl } from '../common/base-url.js';
import { parseJson } from '../common/json-shape.js';

/** Exit codes of the admin clients (weights, rollout): what a script can branch on. */
export const EXIT = { ok: 0, unreachable: 1, rejected: 2, unauthorized: 3 } as const;

export interface ClientOptions {
  /** Admin API base URL, or HOST:PORT. */
  readonly admin: string;
  readonly token: string | undefined;
  readonly reason: string | undefined;
}


/**
 * One admin API call: its JSON answer on stdout, its error as one line on stderr. Resolves to
 * the exit code.
 */
export async function callAdmin(opts: ClientOptions, method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<number> {
  return askAdmin(opts, method, path, body, (json, text) => {
    console.log(json === undefined ? text : JSON.stringify(json, null, 2));
    return EXIT.ok;
  });
}

/**
 * One admin API call, its 2xx answer handed to `answered` (parsed JSON, or undefined, and the
 * text); its error as one line on stderr. Resolves to the exit code.
 */
export async function askAdmin(
  opts: ClientOptions,
  method: 'GET' | 'PUT' | 'POST',
  path: string,
  body: unknown,
  answered: (json: unknown, text: string) => number | Promise<number>,
): Promise<number> {
  const base = baseUrl(opts.admin, '--admin');
  // Every write is JSON, one with nothing to say as {}: the admin API takes no other.
  const sent = method === 'GET' ? undefined : JSON.stringify(body ?? {});
  let status: number;
  let text: string;
  try {
    // undici rather than fetch: fetch refuses some ports outright (6000, 5060, …).
    const res = await request(base + path, {
      method,
      headers: {
        ...(sent === undefined ? {} : { 'content-type': 'application/json' }),
        ...(opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }),
      },
      body: sent,
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    status = res.statusCode;
    text = await res.body.text();
  } catch (err) {
    console.error(`drum-splitter: cannot reach the admin API at ${base}: ${(err as Error).message}`);
    return EXIT.unreachable;
  }
  const json = parseJson(text);
  if (status >= 200 && status < 300) {
    const code = await answered(json, text);
    // E.g. a rollback applied but not yet on disk: for the person, not only inside the JSON.
    const warning = (json as { warning?: unknown } | undefined)?.warning;
    if (typeof warning === 'string') console.error(`drum-splitter: warning: ${warning}`);
    return code;
  }
  const message = (json as { message?: unknown } | undefined)?.message;
  console.error(`drum-splitter: ${status} from ${base}${path}: ${typeof message === 'string' ? message : text}`);
  if (status === 401) return EXIT.unauthorized;
  return status >= 500 ? EXIT.unreachable : EXIT.rejected;
}
