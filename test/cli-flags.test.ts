/** Every command's flag table: its parser, its defaults, its --help page and its errors, the CLI run as a user runs it. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { COMMANDS } from '../src/cli/commands.js';
import { helpPage, parseFlags, usageLines, UsageError, withDefaults, wrapped, type Command, type Flag } from '../src/common/flags.js';
import { buildConfig } from '../src/config/config.js';
import { settingsFromFlags } from '../src/config/settings.js';

const BUILT_CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));

/** The compiled CLI (`npm test` builds it first), run to its end. */
function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BUILT_CLI, ...args], { encoding: 'utf8', env: { ...process.env, DRUM_SPLITTER_ADMIN_TOKEN: undefined } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const TEST: Command = {
  name: 'x',
  summary: 'a command for the parser',
  usage: ['[options] ARG...'],
  flags: [
    { flag: 'addr', kind: 'value', arg: 'HOST:PORT', default: '127.0.0.1:1', help: 'an address' },
    { flag: 'item', kind: 'list', arg: 'V', default: ['a', 'b'], help: 'repeatable' },
    { flag: 'on', short: 'o', kind: 'switch', help: 'a switch' },
    { flag: 'no-thing', kind: 'off', help: 'a switch that turns something off' },
  ],
  takesArguments: true,
};

t.test('parseFlags: the flags given, by name, and the arguments', async (t) => {
  const cases: [string[], Record<string, unknown>, string[]][] = [
    [[], {}, []],
    [['--addr', 'h:1'], { addr: 'h:1' }, []],
    [['--addr=h:1', '--addr', 'h:2'], { addr: 'h:2' }, []],
    [['--addr=-5'], { addr: '-5' }, []],
    [['--addr='], { addr: '' }, []],
    [['--addr', '-'], { addr: '-' }, []],
    [['--item', 'a', '--item=b=c'], { item: ['a', 'b=c'] }, []],
    [['-o', '--no-thing'], { on: true, 'no-thing': true }, []],
    [['one', '-', '--on', '--', '--on', '-o'], { on: true }, ['one', '-', '--on', '-o']],
  ];
  for (const [args, values, positionals] of cases) t.same(parseFlags(TEST, args), { values, positionals }, args.join(' '));
});

t.test('parseFlags: what it refuses, naming the command', async (t) => {
  const cases: [Command, string[], string][] = [
    [TEST, ['--nope'], 'unknown option --nope'],
    [TEST, ['--nope=1'], 'unknown option --nope'],
    [TEST, ['-x'], 'unknown option -x'],
    [TEST, ['-on'], 'unknown option -on'],
    [TEST, ['--on=yes'], '--on takes no value'],
    [TEST, ['--no-thing='], '--no-thing takes no value'],
    [TEST, ['--addr'], '--addr needs a value, HOST:PORT'],
    [TEST, ['--item', '--on'], '--item needs a value, V (one that starts with "-" as --item=VALUE)'],
    [{ ...TEST, takesArguments: false }, ['--on', 'extra'], 'unexpected argument "extra"'],
    [{ ...TEST, takesArguments: false }, ['--', '--on'], 'unexpected argument "--on"'],
  ];
  for (const [command, args, message] of cases) {
    t.throws(() => parseFlags(command, args), new UsageError('x', message), args.join(' '));
  }
  t.throws(() => parseFlags(TEST, ['--nope']), { name: 'UsageError', command: 'x' });
});

t.test('withDefaults: the table under the values given', async (t) => {
  t.same(withDefaults(TEST.flags, {}), { addr: '127.0.0.1:1', item: ['a', 'b'] });
  t.same(withDefaults(TEST.flags, { item: ['c'], on: true }), { addr: '127.0.0.1:1', item: ['c'], on: true });
});

t.test('usage lines: the help wrapped in its column, the default at its end', async (t) => {
  t.same(wrapped('one two three', 7), ['one two', 'three']);
  t.same(wrapped('a-word-longer-than-the-width b', 5), ['a-word-longer-than-the-width', 'b'], 'a longer word alone on its line');
  t.same(wrapped('', 5), ['']);
  t.equal(usageLines([{ flag: 'x', arg: 'N', help: 'one', default: '5' }]), `  --x N${' '.repeat(22)}one (default 5)`);
  t.equal(usageLines([{ flag: 'a-very-long-flag-name', arg: 'SIZE', help: 'h' }]), '  --a-very-long-flag-name SIZE h', 'a long flag keeps one space');
  t.equal(usageLines([{ flag: 'help', short: 'h', help: 'this page' }]), `  -h, --help${' '.repeat(17)}this page`);
  const long: Pick<Flag, 'flag' | 'help' | 'default'> = { flag: 'x', help: 'words '.repeat(9).trim(), default: ['alpha', 'beta'] };
  t.equal(usageLines([long]), `  --x${' '.repeat(24)}${'words '.repeat(7)}words\n${' '.repeat(29)}words (default alpha, beta)`, 'wrapped at 80 columns; a list joined by ", "');
});

/** Each flag's block of a help page (its lines joined), by flag name. */
function optionBlocks(page: string): Map<string, string> {
  const options = page.split('\nOptions:\n')[1]!.split('\n\n')[0]!;
  const blocks = new Map<string, string>();
  let flag = '';
  for (const line of options.split('\n')) {
    const m = /^ {2}(?:-\w, )?--([a-z][a-z0-9-]*)/.exec(line);
    if (m !== null) flag = m[1]!;
    blocks.set(flag, `${blocks.get(flag) ?? ''} ${line.trim()}`.trim());
  }
  return blocks;
}

/** The default a help block states, "(default X)"; not one stated in words, "(default: …)". */
const statedDefault = (block: string): string | undefined => /\(default ([^:)][^)]*)\)/.exec(block)?.[1];

/** A value as a help page states it: a list's items joined by ", ". */
const shown = (value: unknown): string | undefined => (value === undefined ? undefined : Array.isArray(value) ? value.join(', ') : String(value));

for (const command of COMMANDS) {
  t.test(`${command.name} --help: every flag, its value, its default; nothing else; 80 columns`, async (t) => {
    const page = helpPage(command);
    const blocks = optionBlocks(page);
    t.same([...blocks.keys()], command.flags.map((f) => f.flag), 'a block for each flag, in the table order');
    for (const f of command.flags) {
      t.match(blocks.get(f.flag), new RegExp(`^(-${f.short ?? ''}, )?--${f.flag}${f.arg === undefined ? ' {2,}\\w' : ` ${f.arg.replace(/[|]/g, '\\|')} `}`), `--${f.flag}`);
    }
    const mentioned = new Set([...page.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((m) => m[1]!));
    t.same([...mentioned].filter((m) => !command.flags.some((f) => f.flag === m)), [], 'it mentions no flag the command does not take');
    t.same(page.split('\n').filter((l) => l.length > 80), [], 'no line over 80 columns');

    // The default each flag's help states is the one parsing no flags gives the command.
    const parsed = withDefaults(command.flags, parseFlags(command, []).values);
    for (const f of command.flags) t.equal(statedDefault(blocks.get(f.flag)!), shown(parsed[f.flag]), `--${f.flag}: the default stated is the one used`);
  });
}

t.test("serve: its help's stated defaults, given as flags, build the config no flags build", async (t) => {
  const serve = COMMANDS.find((c) => c.name === 'serve')!;
  const blocks = optionBlocks(helpPage(serve));
  const args = serve.flags.flatMap((f) => {
    const stated = statedDefault(blocks.get(f.flag)!);
    if (stated === undefined) return [];
    return f.kind === 'list' ? stated.split(', ').flatMap((item) => [`--${f.flag}`, item]) : [`--${f.flag}`, stated];
  });
  t.ok(args.length >= 30, `${args.length / 2} values stated`);
  t.same(parseFlags(serve, []).values, {}, 'no flags: no settings from flags, so a config file is not overridden by defaults');
  t.same(buildConfig(settingsFromFlags(parseFlags(serve, args).values)), buildConfig({}));
});

t.test('the CLI: CMD --help and CMD -h print that command page; an unknown, foreign or valueless flag is one line and exit 2', async (t) => {
  for (const command of COMMANDS) {
    const name = command.name;
    const page = { code: 0, stdout: `${helpPage(command)}\n`, stderr: '' };
    t.same(cli([name, '--help']), page, `${name} --help`);
    t.same(cli([name, '-h']), page, `${name} -h`);
    const refused = (message: string) => ({ code: 2, stdout: '', stderr: `drum-splitter ${name}: ${message} (see drum-splitter ${name} --help)\n` });
    t.same(cli([name, '--frobnicate']), refused('unknown option --frobnicate'), `${name} --frobnicate`);
    // A flag of another command, given to this one.
    const foreign = COMMANDS.flatMap((c) => c.flags).find((f) => !command.flags.some((o) => o.flag === f.flag))!;
    t.same(cli([name, `--${foreign.flag}`, 'x']), refused(`unknown option --${foreign.flag}`), `${name} --${foreign.flag}`);
    const valued = command.flags.find((f) => f.arg !== undefined)!;
    t.same(cli([name, `--${valued.flag}`]), refused(`--${valued.flag} needs a value, ${valued.arg!}`), `${name} --${valued.flag} without its value`);
  }
});
