import { UsageError, type FlagValues } from '../common/flags.js';
import { InputError } from '../common/input-error.js';
import { isObject } from '../common/json-shape.js';
import { parseRate } from '../record/policy.js';
import { asJson, askAdmin, EXIT, type ClientOptions } from './admin-client.js';
import { recordingSummary, shadowSummary, type ShadowAnswer } from './summaries.js';

const SUBCOMMANDS = ['on', 'off', 'status'];

/** Each switch's summary of its GET/PUT answer; undefined for an answer it cannot read. */
const SUMMARIES = {
  recording: (json: unknown) => (isObject(json) && typeof json.enabled === 'boolean' && Array.isArray(json.paths) ? recordingSummary(json as unknown as Parameters<typeof recordingSummary>[0]) : undefined),
  shadow: (json: unknown) => (isObject(json) && typeof json.enabled === 'boolean' && isObject(json.counts) ? shadowSummary(json as unknown as ShadowAnswer) : undefined),
} as const;

/**
 * `drum-splitter recording|shadow on|off|status`: GET or PUT /recording, /shadow (admin/switch.ts).
 * Prints the switch as it is after the call, a summary (or --json).
 */
export async function switchCommand(name: 'recording' | 'shadow', sub: string | undefined, args: readonly string[], opts: ClientOptions, flags: FlagValues): Promise<number> {
  if (sub === undefined || !SUBCOMMANDS.includes(sub)) throw new InputError(`unknown ${name} command "${sub ?? ''}" (${SUBCOMMANDS.join(', ')})`);
  if (args.length > 0) throw new InputError(`${name} ${sub} takes no arguments`);
  if (flags.sample !== undefined && sub !== 'on') throw new UsageError(name, `--sample goes with ${name} on, not ${sub}`);
  const reason = opts.reason === undefined ? {} : { reason: opts.reason };
  const sampleRate = flags.sample === undefined ? {} : { sampleRate: parseRate(flags.sample, '--sample') };
  const [method, body] = sub === 'status' ? (['GET', undefined] as const) : (['PUT', { enabled: sub === 'on', ...sampleRate, ...reason }] as const);
  return askAdmin(opts, method, `/${name}`, body, (json, text) => {
    const summary = flags.json === true ? asJson(json, text) : SUMMARIES[name](json);
    if (summary === undefined) {
      console.error(`drum-splitter: the admin API answered /${name} with nothing this drum-splitter can read (another version?); --json prints it as it came`);
      return EXIT.unreachable;
    }
    console.log(summary);
    return EXIT.ok;
  });
}
