#!/usr/bin/env node
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { helpPage, parseFlags, UsageError, withDefaults, type Command, type FlagValues } from '../common/flags.js';
import { InputError } from '../common/input-error.js';
import { settingsFromFlags } from '../config/settings.js';
import { tuneHeap } from '../heap.js';
import { bundledNode, unsupportedNode } from '../common/node-version.js';
import type { ClientOptions } from './admin-client.js';
import { COMMANDS, GLOBAL_HELP } from './commands.js';

// Each command's code is imported when that command runs (`await import` below), not here: a
// process holds only what it runs. A --workers worker never loads fastify (the admin API is the
// primary's), `serve` neither replay nor the demo, and a `weights` call not the proxy.

/** serve's exit code when shutdown had to cut requests still in flight. */
const EXIT_CUT = 3;

/** A command line, parsed by its command's table: the flags given, and with the table's defaults. */
interface Run {
  readonly given: FlagValues;
  readonly values: FlagValues;
  readonly args: readonly string[];
}

/** The package's root: two levels up from src/cli/main.ts (run from source), three from dist/src/cli/main.js. */
const ROOT = ['../../', '../../../'].map((p) => new URL(p, import.meta.url)).find((u) => existsSync(new URL('package.json', u)))!;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * This command line again under `node`, resolving to its exit code; SIGINT, SIGTERM and SIGHUP
 * sent to this process are passed on. The child has a process group of its own, so a terminal's
 * Ctrl-C reaches it once, through this process: twice would cut its graceful stop short.
 */
function relaunch(node: string, argv: readonly string[]): Promise<number> {
  const child = spawn(node, [fileURLToPath(import.meta.url), ...argv], { stdio: 'inherit', detached: true });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? 128 + constants.signals[signal!])));
}

/** `serve`: runs until a signal. Its defaults are buildConfig's, applied after the config file: it reads the flags given. */
async function serve({ given }: Run): Promise<number> {
  tuneHeap(); // before the heap grows and before undici compiles its parser
  // A worker takes the primary's config: the file may have been edited since the primary read it.
  const { isWorker, runWorker } = await import('../cluster.js');
  if (isWorker()) {
    await runWorker();
    return -1;
  }
  const [{ startApp }, { readConfigFile }, { describeRoute }] = await Promise.all([import('../app.js'), import('../config/config.js'), import('../weights/routes.js')]);
  const path = given.config as string | undefined;
  const app = await startApp(
    { flags: settingsFromFlags(given), ...(path === undefined ? {} : { file: { path, settings: readConfigFile(path) } }) },
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
      split: { key: config.key, hash: config.splitHash },
      routes: app.routes.state.routes.map(describeRoute),
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
  return -1; // keeps running until a signal
}

/** `controller`: runs until a signal. */
async function controller({ values: v }: Run): Promise<number> {
  const [path, prometheus] = [v.config as string | undefined, v.prometheus as string | undefined];
  if (path === undefined || prometheus === undefined) throw new UsageError('controller', 'needs --config FILE and --prometheus URL');
  const [{ startController }, { readConfigFile }] = await Promise.all([import('../fleet/app.js'), import('../config/config.js')]);
  const flag = (name: string): string | undefined => v[name] as string | undefined;
  const running = await startController(
    {
      file: readConfigFile(path),
      prometheus,
      proxies: (v.proxy as readonly string[] | undefined) ?? [],
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
  return -1;
}

/** `weights`, `rollout`, `recording` and `shadow`: admin API calls. */
async function adminClient({ given, values, args: [sub, ...args] }: Run, command: 'weights' | 'rollout' | 'recording' | 'shadow'): Promise<number> {
  if (given.admin !== undefined) console.error(`drum-splitter: warning: --admin URL is the old spelling for ${command}; use --admin-url URL`);
  const { TOKEN_ENV } = await import('./admin-client.js');
  const flag = values.token as string | undefined;
  // Set but empty is not set, as serve takes it.
  const fromEnv = process.env[TOKEN_ENV] || undefined;
  const client: ClientOptions = {
    admin: (given['admin-url'] ?? given.admin ?? values['admin-url']) as string,
    token: flag ?? fromEnv,
    tokenFrom: flag !== undefined ? '--token' : fromEnv === undefined ? undefined : TOKEN_ENV,
    reason: values.reason as string | undefined,
  };
  if (command === 'weights') return (await import('./weights.js')).weightsCommand(sub, args, client);
  if (command === 'rollout') return (await import('./rollout.js')).rolloutCommand(sub, args, client, given);
  return (await import('./switches.js')).switchCommand(command, sub, args, client, given);
}

/** `demo`: the split or a rollout; it serves on after the show until a signal, unless --exit. */
async function demo({ values }: Run): Promise<number> {
  const opts = { listen: values.listen as string, admin: values.admin as string, keep: values.keep === true, exit: values.exit === true };
  if (values.rollout === true) return (await import('./demo-rollout.js')).runRolloutDemo(opts);
  return (await import('./demo.js')).runDemo(opts);
}

/** Each command's code; -1: it keeps running (a server) until a signal. */
const RUN: Readonly<Record<string, (run: Run) => Promise<number>>> = {
  serve,
  controller,
  replay: async ({ given, args }) => (await import('../replay/command.js')).replayCommand(given, args),
  weights: (run) => adminClient(run, 'weights'),
  rollout: (run) => adminClient(run, 'rollout'),
  recording: (run) => adminClient(run, 'recording'),
  shadow: (run) => adminClient(run, 'shadow'),
  check: async ({ values }) => (await import('./check.js')).checkCommand((values.config as readonly string[] | undefined) ?? []),
  verify: async ({ values }) => (await import('./verify.js')).verifyCommand(values),
  demo,
  standin: async ({ values, args }) => (await import('./standin-command.js')).standinCommand(values, args),
};

function commandNamed(name: string): Command {
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) throw new UsageError(undefined, `unknown command "${name}"; commands: ${COMMANDS.map((c) => c.name).join(', ')}`);
  return command;
}

/**
 * The command line: `drum-splitter COMMAND [options]`, the command's options by its own table;
 * `drum-splitter [help|--help|-h] [COMMAND]` a help page. Resolves to the exit code, -1 for a
 * command that keeps running.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--version') {
    console.log(version());
    return 0;
  }
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
    console.log(rest[0] === undefined ? GLOBAL_HELP : helpPage(commandNamed(rest[0])));
    return first === undefined ? 2 : 0;
  }
  if (first.startsWith('-')) throw new UsageError(undefined, `unknown option ${first} before the command`);
  const command = commandNamed(first);
  const { values: given, positionals } = parseFlags(command, rest);
  if (given.help === true) {
    console.log(helpPage(command));
    return 0;
  }
  if (given.version === true) {
    console.log(version());
    return 0;
  }
  // Before a command loads undici, which fails on an older Node with a message about its own internals.
  const old = unsupportedNode(process.versions.node);
  if (old !== undefined) {
    // Started by an older node (npm link, a global install, `node dist/...`): the Node `npm ci` brought runs it instead.
    return relaunch(bundledNode(ROOT, process.platform, process.arch, old), argv);
  }
  return RUN[command.name]!({ given, values: withDefaults(command.flags, given), args: positionals });
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      const who = err.command === undefined ? 'drum-splitter' : `drum-splitter ${err.command}`;
      console.error(`${who}: ${err.message} (see ${who} --help)`);
      process.exitCode = 2;
    } else if (err instanceof InputError) {
      console.error(`drum-splitter: ${err.message}`);
      process.exitCode = 2;
    } else {
      const e = err as NodeJS.ErrnoException;
      console.error(`drum-splitter: ${e.code === 'EADDRINUSE' ? `address in use: ${e.message}` : e.message}`);
      process.exitCode = 1;
    }
  },
);
