/**
 * A command's flags, declared once in a table: parsing, defaults and the command's --help page
 * are derived from it. Every command has its own table, so one flag name may mean different
 * things to two commands (`--admin` is HOST:PORT for serve, a URL for weights).
 */
import { InputError } from './input-error.js';

/** How a flag is given: a value, a repeatable value, a switch, or a switch that turns a setting off. */
type FlagKind = 'value' | 'list' | 'switch' | 'off';

export interface Flag {
  /** The flag, without its dashes. */
  readonly flag: string;
  /** A one-letter alias, given as -X. */
  readonly short?: string;
  readonly kind: FlagKind;
  /** The value's name in the usage text, for 'value' and 'list' flags. */
  readonly arg?: string;
  /** What the command uses when the flag is not given; the help shows it as "(default …)". */
  readonly default?: string | readonly string[];
  /** The usage text, wrapped when shown, without the default (a default in words is written "(default: …)"). */
  readonly help: string;
}

export interface Command {
  readonly name: string;
  /** What it does, one line: on the short global page and atop its own. */
  readonly summary: string;
  /** Its forms after `drum-splitter NAME`, a line each. */
  readonly usage: readonly string[];
  /** What the forms do, between them and the options; wrapped when shown. */
  readonly about?: string;
  readonly flags: readonly Flag[];
  /** Whether it takes arguments besides its flags (weights set NAME=PERCENT, replay FILE…). */
  readonly takesArguments: boolean;
  /** Lines after the options (environment, exit codes), as shown. */
  readonly notes?: readonly string[];
}

/** Flag values by flag name: a string, a list for 'list' flags, true for a switch given. */
export type FlagValues = Readonly<Record<string, string | readonly string[] | true>>;

interface Parsed {
  /** The flags given, and only those: a default is the caller's to apply (see withDefaults). */
  readonly values: FlagValues;
  readonly positionals: readonly string[];
}

/** A command line the CLI refuses; it prints it naming the command (none: the CLI itself) and its --help. */
export class UsageError extends InputError {
  // Declared, not a class field: no initializer of its own, which the coverage of two transpilers placed on different lines.
  declare readonly command: string | undefined;

  constructor(command: string | undefined, message: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/** The flags every command takes, last in its table. */
export const COMMON_FLAGS: readonly Flag[] = [
  { flag: 'help', short: 'h', kind: 'switch', help: 'this page' },
  { flag: 'version', kind: 'switch', help: "drum-splitter's version" },
];

/**
 * `args` (what follows the command's name) by the command's table: `--name VALUE`,
 * `--name=VALUE`, `-X` for a short alias, `--` before arguments that start with a dash. A value
 * that starts with a dash must be given as --name=VALUE (so a forgotten value does not swallow
 * the next flag). Throws a UsageError at the first flag the table does not know, a missing
 * value, a value given to a switch, or an argument to a command that takes none.
 */
export function parseFlags(command: Command, args: readonly string[]): Parsed {
  const fail = (message: string): never => {
    throw new UsageError(command.name, message);
  };
  const values: Record<string, string | string[] | true> = {};
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const long = arg.startsWith('--');
    const eq = long ? arg.indexOf('=') : -1;
    const name = long ? arg.slice(2, eq < 0 ? undefined : eq) : arg.slice(1);
    const flag = command.flags.find((f) => (long ? f.flag : f.short) === name) ?? fail(`unknown option ${long ? `--${name}` : arg}`);
    const dashed = `--${flag.flag}`;
    if (flag.kind === 'switch' || flag.kind === 'off') {
      if (eq >= 0) fail(`${dashed} takes no value`);
      values[flag.flag] = true;
      continue;
    }
    let value: string;
    if (eq >= 0) {
      value = arg.slice(eq + 1);
    } else {
      const next = args[i + 1];
      if (next === undefined) fail(`${dashed} needs a value, ${flag.arg!}`);
      if (next!.startsWith('-') && next !== '-') fail(`${dashed} needs a value, ${flag.arg!} (one that starts with "-" as ${dashed}=VALUE)`);
      value = next!;
      i++;
    }
    values[flag.flag] = flag.kind === 'list' ? [...((values[flag.flag] as string[] | undefined) ?? []), value] : value;
  }
  if (!command.takesArguments && positionals.length > 0) fail(`unexpected argument "${positionals[0]!}"`);
  return { values, positionals };
}

/** The table's defaults under the values given. */
export function withDefaults<T>(flags: readonly Flag[], values: Readonly<Record<string, T>>): Readonly<Record<string, T | string | readonly string[]>> {
  return { ...Object.fromEntries(flags.flatMap((f) => (f.default === undefined ? [] : [[f.flag, f.default]]))), ...values };
}

/** Where each flag's help starts, and how wide it may run: 80 columns in all. */
const COLUMN = 29;
const WIDTH = 80 - COLUMN;

/** A flag's help with its default at the end, "(default X)"; a list's items joined by ", ". */
function helpWithDefault({ help, default: value }: Pick<Flag, 'help' | 'default'>): string {
  return value === undefined ? help : `${help} (default ${typeof value === 'string' ? value : value.join(', ')})`;
}

/** Usage lines for `--NAME ARG   help`, the help wrapped in a column from 29 to 80. */
export function usageLines(flags: readonly Pick<Flag, 'flag' | 'short' | 'arg' | 'default' | 'help'>[]): string {
  return flags
    .map((f) => {
      const head = `  ${f.short === undefined ? '' : `-${f.short}, `}--${f.flag}${f.arg === undefined ? '' : ` ${f.arg}`}`;
      const [first, ...rest] = wrapped(helpWithDefault(f), WIDTH);
      return [`${head.padEnd(COLUMN - 1)} ${first!}`, ...rest.map((l) => `${' '.repeat(COLUMN)}${l}`)].join('\n');
    })
    .join('\n');
}

/** `text`'s words in lines of at most `width` (a longer word alone on its line). */
export function wrapped(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  return [...lines, line];
}

/** `drum-splitter NAME --help`: its forms, what it does, its options, then its notes. */
export function helpPage(command: Command): string {
  return [
    `drum-splitter ${command.name}: ${command.summary}`,
    '',
    'Usage:',
    ...command.usage.map((form) => `  drum-splitter ${command.name} ${form}`),
    ...(command.about === undefined ? [] : ['', ...wrapped(command.about, 80)]),
    '',
    'Options:',
    usageLines(command.flags),
    ...(command.notes === undefined ? [] : ['', ...command.notes]),
  ].join('\n');
}
