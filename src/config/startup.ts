import { percentages, type Share, type Snapshot } from '../weights/shares.js';
import { readSnapshot } from '../weights/state-file.js';
import { readRouteSnapshot, routesStatePath, startRoutes, type RouteSnapshot } from '../weights/route-store.js';
import { buildConfig, type Config, type RawSettings } from './config.js';
import { recordFromEnv, sharesFromEnv } from './env.js';

/** What a start reads, weakest first. */
export interface StartupLayers {
  /** The --config file's settings. */
  readonly file?: RawSettings;
  /** The command line's settings. */
  readonly flags?: RawSettings;
  /** The --state file: the weights and audit trail a restart resumes (default: readSnapshot). */
  readonly readState?: (path: string, upstreams: readonly string[]) => Snapshot | undefined;
  /** The seed's runtime parameters and recording switches. */
  readonly env: NodeJS.ProcessEnv;
  /** The start's time, stamped on the first audit entry. */
  readonly at: string;
}

export interface Startup {
  /** Defaults, then the file, then flags; recording's switches then the environment. */
  readonly config: Config;
  /** The weights to start from: the state file's when there is one, else the config's. */
  readonly snapshot: Snapshot;
  readonly restored: boolean;
  /** The cohort rules to start from: the state file's (`.routes.json` beside it) when there is one, else the config's. */
  readonly routes: RouteSnapshot;
  readonly routesRestored: boolean;
  /** The environment's weights on top, applied as an audited change (source "env"); undefined when it sets none. */
  readonly envChange: { readonly shares: Share[]; readonly reason: string } | undefined;
}

/**
 * The start-up precedence, in one place. Settings: defaults < config file < flags. Weights:
 * the config's < the state file's (the latest decision before a restart) < the environment's
 * (the seed's rollback lever). Cohort rules: the config's < the state file's. Recording on/off
 * and rate: the config's < the environment's.
 */
export function resolveStartup(layers: StartupLayers): Startup {
  const built = buildConfig({ ...layers.file, ...layers.flags });
  const config: Config = { ...built, record: recordFromEnv(layers.env, built.record) };
  const upstreams = config.upstreams.map((u) => u.name);
  const stored = config.state === undefined ? undefined : (layers.readState ?? readSnapshot)(config.state, upstreams);
  const { at } = layers;
  const snapshot: Snapshot = stored ?? {
    state: { shares: config.weights, version: 1, updatedAt: at, source: 'startup' },
    history: [{ at, version: 1, source: 'startup', who: 'startup', reason: 'initial weights', from: {}, to: percentages(upstreams, config.weights) }],
  };
  const storedRoutes = config.state === undefined ? undefined : readRouteSnapshot(routesStatePath(config.state), upstreams);
  return {
    config,
    snapshot,
    restored: stored !== undefined,
    routes: storedRoutes ?? startRoutes(config.routes, at),
    routesRestored: storedRoutes !== undefined,
    envChange: sharesFromEnv(layers.env, upstreams, snapshot.state.shares),
  };
}
