// Every command's table and help, without its code: main.ts loads a command's code only when it runs.
import { COMMON_FLAGS, wrapped, type Command, type Flag } from '../common/flags.js';
import { SERVE_FLAGS, SETTING_DEFAULTS } from '../config/settings.js';
import { CONTROLLER_COMMAND } from '../fleet/options.js';
import { REPLAY_COMMAND } from '../replay/options.js';

const SERVE: Command = {
  name: 'serve',
  summary: 'run the proxy',
  usage: ['[options]'],
  about: 'A --config file takes the same settings; flags win, setting by setting.',
  flags: SERVE_FLAGS,
  takesArguments: false,
  notes: [
    'Environment (at start; wins over flags, the config file and the state file):',
    '  MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE=NAME',
    '      100% to that upstream',
    '  MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_CANARY_PERCENT=N',
    "      the canary's share (plain or DRUM JSON)",
    '  DRUM_RECORD_REQUESTS=true|false',
    '      recording on or off; on without --record, it writes',
    '      /var/log/drum/recorded_requests.jsonl',
    '  DRUM_RECORD_SAMPLE_RATE=RATE',
    '      the recorded share, 0..1',
    '',
    ...wrapped('Exit codes: 0 stopped cleanly, 1 could not run (e.g. address in use), 2 bad flag, config or environment, 3 stopped but cut requests still in flight at --drain-timeout.', 80),
  ],
};

/** The admin API clients' flags; --admin is the old spelling of --admin-url there, still taken (with a warning). */
export const ADMIN_CLIENT_FLAGS = [
  // serve's admin API, where it listens by default.
  { flag: 'admin-url', kind: 'value', arg: 'URL', default: `http://${SETTING_DEFAULTS.admin}`, help: 'the admin API; HOST:PORT works too' },
  { flag: 'token', kind: 'value', arg: 'TOKEN', help: 'bearer token for writes (default: DRUM_SPLITTER_ADMIN_TOKEN)' },
  { flag: 'reason', kind: 'value', arg: 'TEXT', help: 'why, for the audit trail (set, rollback, rollout commands, on, off)' },
  { flag: 'admin', kind: 'value', arg: 'URL', help: 'the old spelling of --admin-url (with a warning)' },
] as const satisfies readonly Flag[];

/** The admin API clients' exit codes; `rejected` what a 4xx other than 401 means for the command. */
const clientExits = (rejected: string): string[] => wrapped(`Exit codes: 0 done, 1 admin API unreachable or failing, 2 bad usage or ${rejected}, 3 unauthorized.`, 80);

const WEIGHTS: Command = {
  name: 'weights',
  summary: 'the live split: get, set, rollback, history',
  usage: ['get|history [options]', 'set NAME=PERCENT... [options]', 'rollback [options]'],
  about: 'get: the live split; history: its audit trail; set: change it (the baseline takes the rest); rollback: every canary to 0%, at once.',
  flags: ADMIN_CLIENT_FLAGS,
  takesArguments: true,
  notes: clientExits('request rejected'),
};

/** How often --watch looks again by default. */
export const WATCH_INTERVAL = '2s';

/** --json: the answer as the admin API gave it, for a script; without it, a summary. */
const JSON_FLAG = { flag: 'json', kind: 'switch', help: 'print the admin API\'s JSON answer as it came, not the summary' } as const satisfies Flag;

/** rollout's own flags, each for some of its commands (cli/rollout.ts says which). */
const ROLLOUT_FLAGS = [
  { ...JSON_FLAG, help: `status, decisions: ${JSON_FLAG.help}` },
  { flag: 'watch', short: 'w', kind: 'switch', help: 'status, decisions: look again every --interval until Ctrl-C (on a terminal, redrawn in place; else each new state printed once)' },
  { flag: 'interval', kind: 'value', arg: 'DURATION', default: WATCH_INTERVAL, help: 'status, decisions --watch: how often' },
  { flag: 'at-step', kind: 'value', arg: 'N', help: 'start, retry: at step N of the plan, counted from 1 (GET /rollout\'s step.index + 1)' },
  { flag: 'from-current', kind: 'switch', help: "start: at the step that holds the canary's current weight (the last not above it)" },
  { flag: 'force', kind: 'switch', help: 'start, retry: even if it lowers the canary (e.g. one set to 10% by hand, to a first step of 1%)' },
  { flag: 'full', kind: 'switch', help: 'promote: the canary to 100% now (needs --reason)' },
  { flag: 'html', kind: 'value', arg: 'FILE', help: 'report: write the self-contained HTML page here' },
  { flag: 'md', kind: 'value', arg: 'FILE', help: 'report: write the Markdown here' },
  { flag: 'replay-report', kind: 'value', arg: 'FILE', help: "start: a passing drum-splitter replay report (the JSON file the replay wrote) stands in for the plan's shadow phase" },
] as const satisfies readonly Flag[];

const ROLLOUT: Command = {
  name: 'rollout',
  summary: 'the canary controller: status, start, pause, abort...',
  usage: [
    'status|decisions [--json] [--watch] [options]',
    'start [--at-step N | --from-current] [--force] [options]',
    'start --replay-report FILE [options]',
    'pause|resume|approve|abort [options]',
    'retry [--at-step N] [--force] [options]',
    'promote --full --reason TEXT [options]',
    'report [--html FILE] [--md FILE] [options]',
  ],
  about:
    'status: where the rollout is (the step, the weights, time held, the next check, the last verdict with each check, the last decisions); ' +
    'decisions: why, a line each with its numbers; retry: after a rollback or an abort, back at the step that failed; ' +
    'promote --full: the canary to 100% now; report: the summary report per step, with charts (Markdown on stdout without --html or --md); ' +
    'the others: what they say.',
  flags: [...ADMIN_CLIENT_FLAGS, ...ROLLOUT_FLAGS],
  takesArguments: true,
  notes: clientExits('request rejected (or not possible now, a 409)'),
};

/** recording and shadow: a runtime switch of the proxy's, and its sample rate (admin/switch.ts). */
function switchTable(name: 'recording' | 'shadow', summary: string, about: string): Command {
  return {
    name,
    summary,
    usage: ['on [--sample RATE] [options]', 'off|status [options]'],
    about,
    flags: [
      ...ADMIN_CLIENT_FLAGS,
      { flag: 'sample', kind: 'value', arg: 'RATE', help: 'on: the share sampled, 0..1 (0.05 for 5%); without it, the rate it had' },
      JSON_FLAG,
    ],
    takesArguments: true,
    notes: clientExits('request rejected'),
  };
}

const RECORDING = switchTable(
  'recording',
  "the proxy's request recording: on, off, status",
  "on: record a sample of the prediction requests to the file serve records to (its record setting); off: stop; status: whether it records, what and where. A change is logged, with the reason given.",
);

const SHADOW = switchTable(
  'shadow',
  'the live shadow: on, off, status',
  "on: copy a sample of the baseline's prediction requests to the canary and compare the answers; off: stop; status: what is copied where, and how many answers matched. A change is logged, with the reason given.",
);

const CHECK: Command = {
  name: 'check',
  summary: 'validate config files as serve reads them, starting nothing',
  usage: ['--config FILE [--config FILE...]'],
  flags: [{ flag: 'config', kind: 'list', arg: 'FILE', help: 'a config file (repeatable): its settings and rollout plan; or a Kubernetes ConfigMap, its config the value of its one data key' }],
  takesArguments: false,
  notes: ['Exit codes: 0 every file good, 2 a problem (a line for each).'],
};

const VERIFY: Command = {
  name: 'verify',
  summary: "a rollback's checks of the baseline, against one upstream",
  usage: ['--upstream URL [--request FILE...] [--timeout DURATION]'],
  about:
    "ROLLBACK_PLAN.md's verification after a rollback: /ping and /health/ answer 200, /info/ names a DRUM server, " +
    'one single and one batch prediction succeed, /stats/ reports memory. A prediction with no request to replay is skipped, which fails nothing.',
  flags: [
    { flag: 'upstream', kind: 'value', arg: 'URL', help: 'the DRUM server to check' },
    { flag: 'request', kind: 'list', arg: 'FILE', help: 'requests to replay (repeatable): a .jsonl recording, or a body posted to /predict/ (.csv, .json)' },
    { flag: 'timeout', kind: 'value', arg: 'DURATION', default: '10s', help: 'each request at most this long' },
  ],
  takesArguments: false,
  notes: ['Exit codes: 0 verified, 1 an item failed, 2 bad usage.'],
};

const DEMO: Command = {
  name: 'demo',
  summary: 'two DRUM stand-ins behind the proxy at 5%, or a rollout',
  usage: ['[--listen HOST:PORT] [--admin HOST:PORT] [--keep] [--exit]', '--rollout [options]'],
  about:
    'Two built-in DRUM stand-ins behind the proxy at 5%: the split, recording, live shadow and replay. ' +
    'With --rollout, a whole rollout in under a minute: the shadow phase passes, the canary is promoted, turns slow, and is reduced step by step and rolled back. ' +
    "Either then serves on (proxy, stand-ins, console) until Ctrl-C; its files, in a drum-splitter-demo-* folder of the system's temp directory, are removed when it ends.",
  flags: [
    { flag: 'listen', kind: 'value', arg: 'HOST:PORT', default: '127.0.0.1:8000', help: 'the proxy' },
    { flag: 'admin', kind: 'value', arg: 'HOST:PORT', default: '127.0.0.1:0', help: 'the console (the admin API), on loopback: it has no token; port 0 a free one' },
    { flag: 'rollout', kind: 'switch', help: 'a whole rollout instead of the split' },
    { flag: 'keep', kind: 'switch', help: "keep its files (the recording, the replay's reports) when it ends" },
    { flag: 'exit', kind: 'switch', help: 'end when the show ends instead of serving on' },
  ],
  takesArguments: false,
};

const STANDIN: Command = {
  name: 'standin',
  summary: 'a DRUM server stand-in (flask or fastapi) to try it with',
  usage: ['flask|fastapi [--listen HOST:PORT] [fault options]'],
  about:
    'Answers like a DRUM server without a model: GET /ping, /health/, /info/ (drumServer names it), /stats/ ' +
    '(mem_info.drum_rss, the memory the rollout watches); POST /predict/ with a CSV, one prediction a row. ' +
    'The fault flags make a bad canary, for trying a rollback.',
  flags: [
    { flag: 'listen', kind: 'value', arg: 'HOST:PORT', default: '127.0.0.1:8080', help: 'where it answers' },
    { flag: 'latency', kind: 'value', arg: 'DURATION', help: 'added to every prediction (e.g. 50ms)' },
    { flag: 'error-rate', kind: 'value', arg: 'R', default: '0', help: 'share of predictions answered 500, 0..1' },
    { flag: 'memory-mb', kind: 'value', arg: 'N', default: '0', help: 'megabytes added to the drum_rss /stats/ reports' },
  ],
  takesArguments: true,
  notes: ['Exit codes: 0 stopped by a signal, 1 could not listen, 2 bad usage.'],
};

/** Every command, in the order the global --help lists them. */
export const COMMANDS: readonly Command[] = [SERVE, CONTROLLER_COMMAND, REPLAY_COMMAND, WEIGHTS, ROLLOUT, RECORDING, SHADOW, CHECK, VERIFY, DEMO, STANDIN].map((c) => ({ ...c, flags: [...c.flags, ...COMMON_FLAGS] }));

/** `drum-splitter --help`: a line for each command. */
export const GLOBAL_HELP = [
  'drum-splitter: canary traffic splitter for DRUM model servers',
  '',
  'Usage: drum-splitter COMMAND [options]',
  '',
  'Commands:',
  ...COMMANDS.map((c) => `  ${c.name.padEnd(12)}${c.summary}`),
  '',
  'drum-splitter COMMAND --help: its options.',
  'drum-splitter --version: the version.',
].join('\n');
