// What the CLI needs of `drum-splitter controller` before any command runs: its flags and its
// part of --help, declared once here. Apart from app.ts so that other commands load none of it.
import type { ParseArgsConfig } from 'node:util';
import { usageLines } from '../config/settings.js';

/** The controller's own admin listener, beside a replica's 9901 on one machine. */
export const CONTROLLER_ADMIN = '127.0.0.1:9902';

const FLAGS = [
  { flag: 'config', arg: 'FILE', multiple: false, help: ["the replicas' config file: the upstreams and the rollout plan (required)"] },
  { flag: 'prometheus', arg: 'URL', multiple: false, help: ["the Prometheus that scrapes every replica's /metrics (required)"] },
  { flag: 'proxy', arg: 'URL', multiple: true, help: ["a replica's admin API, repeatable"] },
  { flag: 'proxies-dns', arg: 'NAME:PORT', multiple: false, help: ["or every address of a headless Service's NAME, resolved", 'at every interval'] },
  { flag: 'admin', arg: 'HOST:PORT', multiple: false, help: [`the controller's admin API: rollout and weights (default ${CONTROLLER_ADMIN})`] },
  { flag: 'admin-token-file', arg: 'FILE', multiple: false, help: ["tokens its admin API takes, NAME:TOKEN per line (as serve's)"] },
  { flag: 'token', arg: 'TOKEN', multiple: false, help: ["the token it sends to the replicas (default DRUM_SPLITTER_ADMIN_TOKEN)"] },
  { flag: 'state', arg: 'FILE', multiple: false, help: ["keep the fleet's weights and the rollout here across restarts"] },
  { flag: 'log-level', arg: 'LEVEL', multiple: false, help: ['fatal|error|warn|info|debug|trace|silent (default info)'] },
] as const;

/** parseArgs's options for `controller`. */
export const CONTROLLER_OPTIONS = Object.fromEntries(
  FLAGS.map((f) => [f.flag, f.multiple ? { type: 'string', multiple: true } : { type: 'string' }]),
) as Record<(typeof FLAGS)[number]['flag'], { type: 'string'; multiple?: true }> satisfies NonNullable<ParseArgsConfig['options']>;

/** The controller part of --help. */
export const CONTROLLER_USAGE: readonly string[] = [
  "  one judge for a fleet of replicas: the rollout's checks on Prometheus's numbers, each",
  '  decision applied to every replica and kept there',
  usageLines(FLAGS),
];
