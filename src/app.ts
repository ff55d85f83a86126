import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Gauge } from 'prom-client';
import { createAdmin } from './admin.js';
import { startWorkers } from './cluster.js';
import { loadTokens } from './auth.js';
import { buildConfig, type Config, type RawSettings } from './config.js';
import { watchConfig, type ConfigWatcher } from './config-watch.js';
import { probeUpstreams } from './health.js';
import { createMetrics, type Metrics } from './metrics.js';
import { InputError } from './input-error.js';
import { startProxy, type RunningProxy } from './server.js';
import { sameShares, type Share } from './split.js';
import { recordFromEnv } from './recording.js';
import { readSnapshot, SnapshotWriter } from './state-file.js';
import { UpstreamPoller } from './upstream-poller.js';
import { WeightStore } from './weight-store.js';
import { percentages, sharesFromEnv, type Snapshot } from './weights.js';

export interface RunningApp {
  /** The traffic listener: this process's, or (--workers) the workers' as the primary sees them; its outcomes are every process's. */
  readonly proxy: Pick<RunningProxy, 'address' | 'backends' | 'recording' | 'metrics' | 'outcomes' | 'close'>;
  readonly admin: FastifyInstance;
  readonly adminAddress: AddressInfo;
  readonly store: WeightStore;
  readonly metrics: Metrics;
  /** Drains and stops everything; resolves to the number of requests cut at the drain timeout. */
  close(): Promise<number>;
}

export interface AppOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly log: Logger;
  /** The --config file and what it said at start, to watch and re-apply its weights. */
  readonly configFile?: { readonly path: string; readonly settings: RawSettings };
  readonly now?: () => Date;
}

const PROBE_TIMEOUT_MS = 2000;

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/**
 * The whole process: the traffic proxy, the admin API and the live weights behind both.
 * Start-up weights, weakest first: config file and flags; the --state file (the latest
 * decision before a restart); the seed's MLOPS_RUNTIME_PARAM_* variables (its rollback lever).
 */
export async function startApp(config: Config, opts: AppOptions): Promise<RunningApp> {
  const { env, log } = opts;
  const now = opts.now ?? (() => new Date());
  const upstreams = config.upstreams.map((u) => u.name);

  const tokens = loadTokens(env, config.adminTokenFile);
  if (tokens.size === 0 && !isLoopback(config.admin.host)) {
    throw new InputError(
      `the admin API on ${config.admin.host} is reachable from other hosts; set DRUM_SPLITTER_ADMIN_TOKEN or --admin-token-file`,
      'admin',
    );
  }

  const stored = config.state === undefined ? undefined : readSnapshot(config.state, upstreams);
  const at = now().toISOString();
  const snapshot: Snapshot = stored ?? {
    state: { shares: config.weights, version: 1, updatedAt: at, source: 'startup' },
    history: [{ at, version: 1, source: 'startup', who: 'startup', reason: 'initial weights', from: {}, to: percentages(upstreams, config.weights) }],
  };
  const writer = config.state === undefined ? undefined : new SnapshotWriter(config.state, (err) => log.error({ err: err.message }, 'cannot write the state file'));
  // The state file is written by the store itself, before any listener hears: keeping a
  // decision across restarts is part of accepting it, so no listener (its order, its failure,
  // its unsubscribing) may skip it. Listeners are for those who follow the weights.
  const store = new WeightStore(upstreams, snapshot, { now, log, persist: (s) => writer?.save(s) });
  if (stored === undefined) writer?.save(snapshot);
  else log.info({ state: config.state, version: stored.state.version }, 'weights restored from the state file');

  const fromEnv = sharesFromEnv(env, upstreams, store.state.shares);
  if (fromEnv !== undefined) store.change(fromEnv.shares, { source: 'env', who: 'environment', reason: fromEnv.reason });

  const metrics = createMetrics();
  new Gauge({
    name: 'drum_split_weight_percent',
    help: "Each upstream's share of the traffic now, in percent.",
    labelNames: ['server_type'],
    registers: [metrics.registry],
    collect() {
      for (const [name, percent] of Object.entries(store.view().weights)) this.set({ server_type: name }, percent);
    },
  });
  const trafficConfig = { ...config, record: recordFromEnv(env, config.record) };
  let proxy: RunningApp['proxy'];
  if (config.workers > 1) {
    const workers = await startWorkers(trafficConfig, { log, metrics, shares: () => store.state.shares });
    store.subscribe((s) => workers.weightsChanged(s.state.shares));
    proxy = workers;
  } else {
    proxy = await startProxy(trafficConfig, log, { routes: store.routes, metrics });
  }
  const poller = new UpstreamPoller(proxy.backends.values(), metrics, { intervalMs: config.pollIntervalMs, timeoutMs: PROBE_TIMEOUT_MS, now: Date.now, log });
  poller.start();
  const admin = createAdmin({ store, upstreams, tokens, recording: proxy.recording, probe: () => probeUpstreams(proxy.backends.values(), PROBE_TIMEOUT_MS), metrics: proxy.metrics, log });
  let adminAddress: AddressInfo;
  try {
    await admin.listen({ host: config.admin.host, port: config.admin.port });
    adminAddress = admin.server.address() as AddressInfo;
  } catch (err) {
    poller.stop();
    await proxy.close(0);
    throw err;
  }

  let watcher: ConfigWatcher | undefined;
  if (opts.configFile !== undefined) {
    const { path } = opts.configFile;
    const nameUrls = (c: Config): string[] => c.upstreams.map((u) => `${u.name}=${u.url.href}`);
    const running = nameUrls(config);
    /** The file's weights, checked against the running upstreams (which flags may have set). */
    const weightsIn = (settings: RawSettings): readonly Share[] => buildConfig({ ...settings, upstreams: running }).weights;
    let fileWeights: readonly Share[] | undefined;
    try {
      fileWeights = weightsIn(opts.configFile.settings);
    } catch {
      // Valid only with the flags that override it: any valid edit of the file applies.
    }
    watcher = watchConfig(
      path,
      (settings) => {
        // An empty file is more likely half-written than meant: "no weights" would roll back.
        if (Object.keys(settings).length === 0) {
          log.error({ file: path }, 'config file change rejected: the file is empty; keeping the current weights');
          return;
        }
        let weights: readonly Share[];
        try {
          if (settings.upstreams !== undefined && nameUrls(buildConfig({ upstreams: settings.upstreams })).join(' ') !== running.join(' ')) {
            log.warn({ file: path }, 'upstreams changed in the config file; they take effect on restart, weights not applied');
            return;
          }
          weights = weightsIn(settings);
        } catch (err) {
          log.error({ file: path, err: (err as Error).message }, 'config file change rejected; keeping the current weights');
          return;
        }
        if (fileWeights !== undefined && sameShares(weights, fileWeights)) return;
        fileWeights = weights;
        store.change(weights, { source: 'file', who: path, reason: 'config file changed' });
      },
      (err) => log.error({ file: path, err: err.message }, 'config file change rejected; keeping the current weights'),
    );
  }

  return {
    proxy,
    admin,
    adminAddress,
    store,
    metrics: proxy.metrics,
    async close() {
      watcher?.close();
      poller.stop();
      const [, cut] = await Promise.all([admin.close(), proxy.close()]);
      await writer?.flush();
      return cut;
    },
  };
}
