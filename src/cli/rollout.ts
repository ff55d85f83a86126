import { readFileSync } from 'node:fs';
import { UsageError, type FlagValues } from '../common/flags.js';
import { InputError } from '../common/input-error.js';
import { isObject, parseJson } from '../common/json-shape.js';
import { callAdmin, type ClientOptions } from './admin-client.js';
import { WATCH_INTERVAL } from './commands.js';

const COMMANDS = ['start', 'pause', 'resume', 'approve', 'abort', 'retry', 'promote'];
const KNOWN = ['status', 'decisions', 'report', ...COMMANDS];

/** Which commands take which of the rollout's own flags (commands.ts ROLLOUT_FLAGS). */
const TAKES: Readonly<Record<string, readonly string[]>> = {
  'at-step': ['start', 'retry'],
  'from-current': ['start'],
  force: ['start', 'retry'],
  'replay-report': ['start'],
  full: ['promote'],
  html: ['report'],
  md: ['report'],
  json: ['status', 'decisions'],
  watch: ['status', 'decisions'],
  interval: ['status', 'decisions'],
};

/**
 * `drum-splitter rollout status|decisions|report|start|pause|resume|approve|abort|retry|promote`:
 * an admin API call each; status and decisions as a summary, --json as the API answers, --watch again and again.
 */
export async function rolloutCommand(sub: string | undefined, args: readonly string[], opts: ClientOptions, flags: FlagValues = {}): Promise<number> {
  if (args.length > 0) throw new InputError(`rollout ${String(sub)} takes no arguments`);
  if (sub === undefined || !KNOWN.includes(sub)) throw new InputError(`unknown rollout command "${sub ?? ''}" (${KNOWN.join(', ')})`);
  const misplaced = Object.keys(TAKES).find((flag) => flags[flag] !== undefined && !TAKES[flag]!.includes(sub));
  if (misplaced !== undefined) throw new UsageError('rollout', `--${misplaced} goes with rollout ${TAKES[misplaced]!.join(' or ')}, not ${sub}`);
  if (sub === 'status' || sub === 'decisions') {
    if (flags.interval !== undefined && flags.watch !== true) throw new UsageError('rollout', '--interval goes with --watch');
    const { parseInterval, readRollout } = await import('./rollout-status.js');
    const intervalMs = parseInterval((flags.interval as string | undefined) ?? WATCH_INTERVAL);
    return readRollout(sub, opts, { json: flags.json === true, watch: flags.watch === true, intervalMs });
  }
  if (sub === 'report') return (await import('./rollout-report.js')).rolloutReportCommand(opts, { html: flags.html as string | undefined, md: flags.md as string | undefined });
  const body: Record<string, unknown> = opts.reason === undefined ? {} : { reason: opts.reason };
  if (flags['at-step'] !== undefined) body.atStep = stepNumber(flags['at-step'] as string);
  if (flags['from-current'] === true) body.fromCurrent = true;
  if (flags.force === true) body.force = true;
  // Read and parsed here; the admin API judges it (passing, whole), as it does a POST's.
  if (flags['replay-report'] !== undefined) body.replayReport = readReport(flags['replay-report'] as string);
  if (sub === 'promote') {
    if (flags.full !== true) throw new UsageError('rollout', 'rollout promote needs --full (the canary to 100% now); to go one step on, rollout approve');
    if (opts.reason === undefined) throw new UsageError('rollout', 'rollout promote --full needs --reason TEXT: a full promotion is recorded with why');
    body.full = true;
  }
  return callAdmin(opts, 'POST', `/rollout/${sub}`, Object.keys(body).length === 0 ? undefined : body);
}

/** --at-step N: a whole number from 1, as GET /rollout's step.index + 1 (the console's "step N of M"). */
function stepNumber(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError('rollout', `--at-step ${value}: not a step number; steps count from 1 (the console's "step N of M")`);
  return Number(value);
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
