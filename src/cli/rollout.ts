import { InputError } from '../common/input-error.js';
import { callAdmin, type ClientOptions } from './admin-client.js';

const COMMANDS = ['start', 'pause', 'resume', 'approve', 'abort'];

/** `drum-splitter rollout status|decisions|start|pause|resume|approve|abort`: one admin API call each. */
export async function rolloutCommand(sub: string | undefined, args: readonly string[], opts: ClientOptions): Promise<number> {
  if (args.length > 0) throw new InputError(`rollout ${String(sub)} takes no arguments`);
  if (sub === 'status') return callAdmin(opts, 'GET', '/rollout');
  if (sub === 'decisions') return callAdmin(opts, 'GET', '/rollout/decisions');
  if (sub !== undefined && COMMANDS.includes(sub)) return callAdmin(opts, 'POST', `/rollout/${sub}`, opts.reason === undefined ? undefined : { reason: opts.reason });
  throw new InputError(`unknown rollout command "${sub ?? ''}" (status, decisions, report, ${COMMANDS.join(', ')})`);
}
