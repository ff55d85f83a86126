import { InputError } from '../common/input-error.js';
import { callAdmin, type ClientOptions } from './admin-client.js';

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
  const reason = opts.reason === undefined ? {} : { reason: opts.reason };
  let method: 'GET' | 'PUT' | 'POST' = 'GET';
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

  return callAdmin(opts, method, path, body);
}

