#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { allOptions, COMMAND_FLAGS, SETTING_KEYS, SETTINGS, settingsFromFlags, usageLines, WEIGHTS_FLAGS, wrapped } from '../config/settings.js';
import { InputError } from '../common/input-error.js';
import { REPLAY_OPTIONS, REPLAY_USAGE } from '../replay/options.js';
import { CONTROLLER_OPTIONS, CONTROLLER_USAGE } from '../fleet/options.js';
import { tuneHeap } from '../heap.js';
import { unsupportedNode } from '../common/node-version.js';

// Each command's code is imported when that command runs (`await import` below), not here: a
// process holds only what it runs. A --workers worker never loads fastify (the admin API is the
// primary's), `serve` neither replay nor the demo, and a `weights` call not the proxy.

/** --config's help: the keys a file may hold, wrapped. */
const configHelp = [...wrapped(['YAML file with these settings (' + SETTING_KEYS[0]!, ...SETTING_KEYS.slice(1, -1), `${SETTING_KEYS.at(-1)!}); watched, its`], 64), 'weights re-applied when they change'];

const USAGE = `drum-splitter — canary traffic splitter for DRUM model servers

Usage:
  drum-splitter serve [options]     run the proxy
  drum-splitter demo [--listen H:P] two built-in DRUM stand-ins behind the proxy at 5%
  drum-splitter demo --rollout      a whole rollout in half a minute; the canary turns slow
  drum-splitter weights get|history            read the live split, or its audit trail
  drum-splitter weights set NAME=PERCENT ...   change it (the baseline takes the rest)
  drum-splitter weights rollback               every canary to 0%, at once
  drum-splitter rollout status|decisions       the canary controller: where it is, why
  drum-splitter rollout start|pause|resume|approve|abort
  drum-splitter replay --baseline URL --canary URL FILE...   recorded requests to both, compared
  drum-splitter controller --config FILE --prometheus URL --proxy URL...   a fleet's rollout
  drum-splitter check --config FILE            validate a config file (settings, rollout plan) as
                                               serve reads it, starting nothing; --config repeatable
  drum-splitter --help | --version

Options for serve (a --config file takes the same settings; flags win):
${usageLines(SETTINGS.slice(0, 4))}
${usageLines([{ flag: 'config', arg: 'FILE', help: configHelp }])}
${usageLines(SETTINGS.slice(4))}

Options for weights and rollout:
${usageLines(WEIGHTS_FLAGS)}

Replay:
${REPLAY_USAGE.join('\n')}

Controller:
${CONTROLLER_USAGE.join('\n')}

Options for demo:
${usageLines([{ flag: 'listen', arg: 'HOST:PORT', help: ['the proxy (default 127.0.0.1:8000)'] }, { flag: 'rollout', help: ['a whole rollout instead: promoted, then the canary turns', 'slow and is reduced step by step and rolled back'] }])}

Environment (at start; wins over flags, the config file and the state file):
  MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE=NAME          100% to that upstream
  MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_CANARY_PERCENT=N  the canary's share (plain or DRUM JSON)
  DRUM_RECORD_REQUESTS=true|false    recording on or off (on without --record writes
                                     /var/log/drum/recorded_requests.jsonl)
  DRUM_RECORD_SAMPLE_RATE=RATE       the recorded share, 0..1

Exit codes: serve: 0 stopped cleanly, 1 could not run (e.g. address in use), 2 bad flag,
config or environment, 3 stopped but cut requests still in flight at --drain-timeout.
weights and rollout: 0 done, 1 admin API unreachable or failing, 2 bad usage or request
rejected (for rollout also: not possible now, a 409), 3 unauthorized.
controller: as serve, without 3.
check: 0 every file good, 2 a problem (a line for each).`;

/** serve's exit code when shutdown had to cut requests still in flight. */
const EXIT_CUT = 3;

/** Every command's flags; replay's are declared with it (the replay layer sits above config). */
const TAKES: Readonly<Record<string, Readonly<Record<string, unknown>>>> = { ...COMMAND_FLAGS, replay: REPLAY_OPTIONS, controller: CONTROLLER_OPTIONS };
const OPTIONS = { ...allOptions(), ...REPLAY_OPTIONS, ...CONTROLLER_OPTIONS };

type Values = Readonly<Record<string, string | boolean | string[] | undefined>>;
/** parseArgs' record of each argument, in order. */
type Token = { readonly kind: string; readonly name?: string; readonly value?: string };

function version(): string {
  // The package root is two levels up from src/cli/main.ts (run from source), three from dist/src/cli/main.js.
  const path = ['../../package.json', '../../../package.json']
    .map((p) => new URL(p, import.meta.url))
    .find((u) => existsSync(u))!;
  const pkg = JSON.parse(readFileSync(path, 'utf8')) as { version: string };
  return pkg.version;
}

async function serve(v: Values): Promise<void> {
  tuneHeap(); // before the heap grows and before undici compiles its parser
  // A worker takes the primary's config: the file may have been edited since the primary read it.
  const { isWorker, runWorker } = await import('../cluster.js');
  if (isWorker()) return runWorker();
  const [{ startApp }, { readConfigFile }] = await Promise.all([import('../app.js'), import('../config/config.js')]);
  const path = v.config as string | undefined;
  const app = await startApp(
    { flags: settingsFromFlags(v), ...(path === undefined ? {} : { file: { path, settings: readConfigFile(path) } }) },
    { env: process.env },
  );
  const { config, log } = app;
  const { address, port } = app.proxy.address;
  log.info(
    {
      listen: `${address}:${port}`,
      admin: `${app.adminAddress.address}:${app.adminAddress.port}`,
      upstreams: Object.fromEntries(config.upstreams.map((u) => [u.name, u.url.href])),
      baseline: config.upstreams[0]!.name,
      weights: app.store.view().weights,
      source: app.store.view().source,
      recording: app.proxy.recording.enabled ? { file: app.proxy.recording.file, sampleRate: app.proxy.recording.sampleRate } : 'off',
      workers: config.workers,
    },
    'listening',
  );
  const stop = (signal: string): void => {
    log.info({ signal, drainTimeoutMs: config.drainTimeoutMs }, 'shutting down');
    void app.close().then((cut) => {
      log.info({ cut }, cut === 0 ? 'stopped: every request in flight was answered' : `stopped: ${cut} requests cut at the drain timeout`);
      process.exit(cut === 0 ? 0 : EXIT_CUT);
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

async function controller(v: Values): Promise<void> {
  const [path, prometheus] = [v.config as string | undefined, v.prometheus as string | undefined];
  if (path === undefined || prometheus === undefined) throw new InputError('controller needs --config FILE and --prometheus URL (see --help)');
  const [{ startController }, { readConfigFile }] = await Promise.all([import('../fleet/app.js'), import('../config/config.js')]);
  const flag = (name: string): string | undefined => v[name] as string | undefined;
  const running = await startController(
    {
      file: readConfigFile(path),
      prometheus,
      proxies: (v.proxy as string[] | undefined) ?? [],
      proxiesDns: flag('proxies-dns'),
      admin: flag('admin'),
      adminTokenFile: flag('admin-token-file'),
      token: flag('token'),
      state: flag('state'),
      logLevel: flag('log-level'),
    },
    { env: process.env },
  );
  const stop = (signal: string): void => {
    running.log.info({ signal }, 'controller stopping');
    void running.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    throw new InputError((err as Error).message.split('\n')[0]!);
  }
  const { values, positionals, tokens } = parsed as { values: Values; positionals: string[]; tokens: readonly Token[] };
  if (values.version) {
    console.log(version());
    return 0;
  }
  const [command, ...extra] = positionals;
  if (values.help || command === undefined || command === 'help') {
    console.log(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  // Before a command loads undici, which fails on an older Node with a message about its own internals.
  const old = unsupportedNode(process.versions.node);
  if (old !== undefined) throw new InputError(old);
  const takes = TAKES[command];
  if (takes === undefined) throw new InputError(`unknown command "${command}" (try serve, controller, demo, weights, rollout, replay, check or --help)`);
  const foreign = Object.keys(values).find((flag) => !(flag in takes));
  if (foreign !== undefined) throw new InputError(`--${foreign} is not an option of ${command} (see --help)`);
  if (command === 'weights' || command === 'rollout') {
    const [sub, ...args] = extra;
    if (values.admin !== undefined) console.error(`drum-splitter: warning: --admin URL is the old spelling for ${command}; use --admin-url URL`);
    const client = {
      admin: (values['admin-url'] ?? values.admin ?? 'http://127.0.0.1:9901') as string,
      token: (values.token as string | undefined) ?? process.env.DRUM_SPLITTER_ADMIN_TOKEN,
      reason: values.reason as string | undefined,
    };
    if (command === 'weights') return (await import('./weights.js')).weightsCommand(sub, args, client);
    return (await import('./rollout.js')).rolloutCommand(sub, args, client);
  }
  if (command === 'replay') return (await import('../replay/command.js')).replayCommand(values, extra);
  if (extra.length > 0) throw new InputError(`unexpected argument "${extra[0]}"`);
  if (command === 'check') {
    // Every --config given: values keeps only the last, as serve takes one file.
    const files = tokens.flatMap((t) => (t.kind === 'option' && t.name === 'config' ? [t.value!] : []));
    return (await import('./check.js')).checkCommand(files);
  }
  if (command === 'serve') {
    await serve(values);
    return -1; // keeps running until a signal
  }
  if (command === 'controller') {
    await controller(values);
    return -1;
  }
  const listen = (values.listen as string | undefined) ?? '127.0.0.1:8000';
  if (values.rollout === true) {
    await (await import('./demo-rollout.js')).runRolloutDemo(listen);
    return 0;
  }
  await (await import('./demo.js')).runDemo(listen);
  return -1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof InputError) {
      console.error(`drum-splitter: ${err.message}`);
      process.exitCode = 2;
    } else {
      const e = err as NodeJS.ErrnoException;
      console.error(`drum-splitter: ${e.code === 'EADDRINUSE' ? `address in use: ${e.message}` : e.message}`);
      process.exitCode = 1;
    }
  },
);
