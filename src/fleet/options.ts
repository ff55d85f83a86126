// What the CLI needs of `drum-splitter controller` before it runs: its flags and its --help.
// Apart from app.ts so that other commands load none of it.
import { wrapped, type Command, type Flag } from '../common/flags.js';

/** The controller's own admin listener, beside a replica's 9901 on one machine. */
export const CONTROLLER_ADMIN = '127.0.0.1:9902';

export const CONTROLLER_FLAGS = [
  { flag: 'config', kind: 'value', arg: 'FILE', help: "the replicas' config file: the upstreams and the rollout plan (required)" },
  { flag: 'prometheus', kind: 'value', arg: 'URL', help: "the Prometheus that scrapes every replica's /metrics (required)" },
  { flag: 'proxy', kind: 'list', arg: 'URL', help: "a replica's admin API, repeatable" },
  { flag: 'proxies-dns', kind: 'value', arg: 'NAME:PORT', help: "or every address of a headless Service's NAME, resolved at every interval" },
  { flag: 'admin', kind: 'value', arg: 'HOST:PORT', default: CONTROLLER_ADMIN, help: "the controller's admin API: rollout and weights" },
  { flag: 'admin-token-file', kind: 'value', arg: 'FILE', help: "tokens its admin API takes, NAME:TOKEN per line (as serve's)" },
  { flag: 'token', kind: 'value', arg: 'TOKEN', help: 'the token it sends to the replicas (default: DRUM_SPLITTER_ADMIN_TOKEN)' },
  { flag: 'state', kind: 'value', arg: 'FILE', help: "keep the fleet's weights and the rollout here across restarts" },
  // The config file's logLevel when not given, as for serve; the flag wins over the file.
  { flag: 'log-level', kind: 'value', arg: 'LEVEL', help: "fatal|error|warn|info|debug|trace|silent (default: the config file's, else info)" },
] as const satisfies readonly Flag[];

export const CONTROLLER_COMMAND: Command = {
  name: 'controller',
  summary: "a fleet's rollout: one judge on Prometheus's numbers",
  usage: ['--config FILE --prometheus URL REPLICAS [options]'],
  about:
    "REPLICAS: --proxy URL (repeatable) or --proxies-dns NAME:PORT. One judge for a fleet of replicas: the rollout's checks on " +
    "Prometheus's numbers, each decision applied to every replica and kept there.",
  flags: CONTROLLER_FLAGS,
  takesArguments: false,
  notes: wrapped('Exit codes: 0 stopped cleanly, 1 could not run (e.g. address in use), 2 bad flag or config.', 80),
};
