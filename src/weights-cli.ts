import { InputError } from './input-error.js';

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

  let res: Response;
  try {
    res = await fetch(base + path, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    // fetch's own message is "fetch failed"; the cause says why (ECONNREFUSED, or "bad port"
    // for the ports fetch refuses, such as 6000).
    const { cause } = err as { cause?: { code?: string; message?: string } };
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    console.error(`drum-splitter: cannot reach the admin API at ${base}: ${why}`);
    return EXIT.unreachable;
  }
  const text = await res.text();
  if (res.ok) {
    console.log(JSON.stringify(JSON.parse(text), null, 2));
    return EXIT.ok;
  }
  let message = text;
  try {
    message = (JSON.parse(text) as { message?: string }).message ?? text;
  } catch {
    // not JSON: show it as it came
  }
  console.error(`drum-splitter: ${res.status} from ${base}${path}: ${message}`);
  if (res.status === 401) return EXIT.unauthorized;
  return res.status >= 500 ? EXIT.unreachable : EXIT.rejected;
}
