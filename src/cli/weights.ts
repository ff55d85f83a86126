import { request } from 'undici';
import { InputError } from '../common/input-error.js';

/** Exit codes of `drum-splitter weights`: what a script can branch on. */
export const EXIT = { ok: 0, unreachable: 1, rejected: 2, unauthorized: 3 } as const;

export interface ClientOptions {
  /** Admin API base URL, or HOST:PORT. */
  readonly admin: string;
  readonly token: string | undefined;
  readonly reason: string | undefined;
}

function baseUrl(admin: string): string {
  const url = /^https?:\/\//.test(admin) ? admin : `http://${admin}`;
  try {
    return new URL(url).href.replace(/\/$/, '');
  } catch {
    throw new InputError(`"${admin}" is not a URL or HOST:PORT`, '--admin');
  }
}

/** NAME=PERCENT arguments as the admin API's {"weights": {...}}; values stay text for it to check. */
export function weightArgs(args: readonly string[]): Record<string, string> {
  if (args.length === 0) throw new InputError('weights set needs NAME=PERCENT, e.g. weights set fastapi=10');
  const weights: Record<string, string> = {};
  for (const arg of args) {
    const m = /^([^=]+)=(.+)$/.exec(arg);
    if (m === null) throw new InputError(`"${arg}" is not NAME=PERCENT`);
    weights[m[1]!] = m[2]!;
  }
  return weights;
}

/**
 * `drum-splitter weights get|set|rollback|history`: one admin API call, its JSON answer on
 * stdout, its error as one line on stderr. Resolves to the exit code.
 */
export async function weightsCommand(sub: string | undefined, args: readonly string[], opts: ClientOptions): Promise<number> {
  const base = baseUrl(opts.admin);
  const reason = opts.reason === undefined ? {} : { reason: opts.reason };
  let method = 'GET';
  let path: string;
  let body: unknown;
  if (sub === 'get' || sub === 'history') {
    if (args.length > 0) throw new InputError(`weights ${sub} takes no arguments`);
    path = sub === 'get' ? '/weights' : '/history';
  } else if (sub === 'set') {
    [method, path, body] = ['PUT', '/weights', { weights: weightArgs(args), ...reason }];
  } else if (sub === 'rollback') {
    if (args.length > 0) throw new InputError('weights rollback takes no arguments');
    [method, path, body] = ['POST', '/rollback', reason];
  } else {
    throw new InputError(`unknown weights command "${sub ?? ''}" (get, set, rollback, history)`);
  }

  let status: number;
  let text: string;
  try {
    // undici rather than fetch: fetch refuses some ports outright (6000, 5060, …).
    const res = await request(base + path, {
      method: method as 'GET' | 'PUT' | 'POST',
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
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
    console.log(json === undefined ? text : JSON.stringify(json, null, 2));
    return EXIT.ok;
  }
  const message = (json as { message?: unknown } | undefined)?.message;
  console.error(`drum-splitter: ${status} from ${base}${path}: ${typeof message === 'string' ? message : text}`);
  if (status === 401) return EXIT.unauthorized;
  return status >= 500 ? EXIT.unreachable : EXIT.rejected;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
