import { request } from 'undici';
import { baseUrl } from '../common/base-url.js';
import { parseJson } from '../common/json-shape.js';

/** Exit codes of the admin clients (weights, rollout, recording, shadow): what a script can branch on. */
export const EXIT = { ok: 0, unreachable: 1, rejected: 2, unauthorized: 3 } as const;

/** Where the CLI's token came from, for a message about it. */
export const TOKEN_ENV = 'DRUM_SPLITTER_ADMIN_TOKEN';

export interface ClientOptions {
  /** Admin API base URL, or HOST:PORT. */
  readonly admin: string;
  readonly token: string | undefined;
  /** Where the token came from (--token, or the environment), named when the admin API refuses it. */
  readonly tokenFrom?: '--token' | typeof TOKEN_ENV | undefined;
  readonly reason: string | undefined;
  /** Ends a call in flight (a --watch's Ctrl-C), which then reads as unreachable. */
  readonly signal?: AbortSignal;
}

/** An admin API call's outcome: its status and body (the JSON parsed, or undefined), or why it could not be made. */
export type AdminAnswer =
  | { readonly status: number; readonly json: unknown; readonly text: string }
  | { readonly unreachable: string };

/**
 * One admin API call, made: its answer whatever the status, or why the admin API could not be
 * reached. Throws an InputError for an admin address that is not one.
 */
export async function requestAdmin(opts: ClientOptions, method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<AdminAnswer> {
  const base = baseUrl(opts.admin, '--admin');
  // Every write is JSON, one with nothing to say as {}: the admin API takes no other.
  const sent = method === 'GET' ? undefined : JSON.stringify(body ?? {});
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
      signal: opts.signal,
    });
    const text = await res.body.text();
    return { status: res.statusCode, json: parseJson(text), text };
  } catch (err) {
    return { unreachable: `cannot reach the admin API at ${base}: ${(err as Error).message}` };
  }
}

/** What an answer that is no 2xx means: its one line for stderr (without "drum-splitter: ") and the exit code. */
export function failure(opts: ClientOptions, path: string, answer: AdminAnswer): { readonly line: string; readonly code: number } {
  if ('unreachable' in answer) return { line: answer.unreachable, code: EXIT.unreachable };
  const { status, json, text } = answer;
  const at = `${status} from ${baseUrl(opts.admin, '--admin')}${path}`;
  if (status === 401) {
    // The two ways to get here call for different fixes: give a token, or give the right one.
    const why = opts.token === undefined
      ? `this needs the admin token: give --token TOKEN or set ${TOKEN_ENV}`
      : `the admin API refused the token (from ${opts.tokenFrom ?? '--token'}): it is not one the admin API was started with`;
    return { line: `${at}: ${why}`, code: EXIT.unauthorized };
  }
  const message = (json as { message?: unknown } | undefined)?.message;
  return { line: `${at}: ${typeof message === 'string' ? message : text}`, code: status >= 500 ? EXIT.unreachable : EXIT.rejected };
}

/** An answer as --json prints it: its JSON indented, or the text as it came when it is not JSON. */
export const asJson = (json: unknown, text: string): string => (json === undefined ? text : JSON.stringify(json, null, 2));

/**
 * One admin API call: its JSON answer on stdout, its error as one line on stderr. Resolves to
 * the exit code.
 */
export async function callAdmin(opts: ClientOptions, method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown): Promise<number> {
  return askAdmin(opts, method, path, body, (json, text) => {
    console.log(asJson(json, text));
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
  const answer = await requestAdmin(opts, method, path, body);
  if ('unreachable' in answer || answer.status < 200 || answer.status >= 300) {
    const { line, code } = failure(opts, path, answer);
    console.error(`drum-splitter: ${line}`);
    return code;
  }
  const code = await answered(answer.json, answer.text);
  // E.g. a rollback applied but not yet on disk: for the person, not only inside the JSON.
  const warning = (answer.json as { warning?: unknown } | undefined)?.warning;
  if (typeof warning === 'string') console.error(`drum-splitter: warning: ${warning}`);
  return code;
}
