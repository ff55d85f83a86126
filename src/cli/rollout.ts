import { readFileSync } from 'node:fs';
import { InputError } from '../common/input-error.js';
import { isObject, parseJson } from '../common/json-shape.js';
import { callAdmin, type ClientOptions } from './admin-client.js';

const COMMANDS = ['start', 'pause', 'resume', 'approve', 'abort'];

/** `drum-splitter rollout status|decisions|start|pause|resume|approve|abort`: one admin API call each. */
export async function rolloutCommand(sub: string | undefined, args: readonly string[], opts: ClientOptions & { readonly replayReport?: string | undefined }): Promise<number> {
  if (args.length > 0) throw new InputError(`rollout ${String(sub)} takes no arguments`);
  if (opts.replayReport !== undefined) {
    if (sub !== 'start') throw new InputError(`--replay-report goes with rollout start, not rollout ${String(sub)}`);
    // Read and parsed here; the admin API judges it (passing, whole), as it does a POST's.
    return callAdmin(opts, 'POST', '/rollout/start', { ...(opts.reason === undefined ? {} : { reason: opts.reason }), replayReport: readReport(opts.replayReport) });
  }
  if (sub === 'status') return callAdmin(opts, 'GET', '/rollout');
  if (sub === 'decisions') return callAdmin(opts, 'GET', '/rollout/decisions');
  if (sub !== undefined && COMMANDS.includes(sub)) return callAdmin(opts, 'POST', `/rollout/${sub}`, opts.reason === undefined ? undefined : { reason: opts.reason });
  throw new InputError(`unknown rollout command "${sub ?? ''}" (status, decisions, ${COMMANDS.join(', ')})`);
}

/** The report file's JSON; one line naming the file when it cannot be read or is not JSON. */
function readReport(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read ${file}: ${(err as Error).message}`, '--replay-report');
  }
  const json = parseJson(text);
  if (json === undefined) throw new InputError(`${file} is not JSON: give the --output file of drum-splitter replay`, '--replay-report');
  // What the verdict is read from; the per-request results (often megabytes) stay behind.
  if (!isObject(json)) return json;
  const { summary, criteria, interrupted } = json;
  return { summary, criteria, interrupted };
}
