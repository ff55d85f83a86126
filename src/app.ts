import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Gauge } from 'prom-client';
import type { RolloutController } from './rollout/controller.js';
import { LocalEvidence } from './rollout/evidence.js';
import { runRollout } from './rollout/run.js';
import { readSavedRollout, rolloutStatePath } from './rollout/saved.js';
import { createAdmin } from './admin/server.js';
import { startWorkers, type TrafficPlane } from './cluster.js';
import { guardedTokens } from './admin/auth.js';
import { buildConfig, type Config, type RawSettings } from './config/config.js';
import { resolveStartup } from './config/startup.js';
import { notSaved } from './common/atomic-file.js';
import { createLogger } from './common/log.js';
import { watchConfig, type ConfigWatcher } from './config/watch.js';
import { probeUpstreams } from './observe/health.js';
import { createMetrics, type Metrics } from './observe/metrics.js';
import { startProxy } from './proxy/listener.js';
import { startShadow, type Shadow } from './shadow/shadow.js';
import { sameShares, type Share } from './weights/shares.js';
import { reportWriteFailure, SnapshotWriter, stateWriteFailures } from './weights/state-file.js';
import { UpstreamPoller } from './observe/poller.js';
import { Series } from './observe/series.js';
import { WeightStore } from './weights/store.js';

export interface RunningApp {
  /** The configuration the start resolved. */
  readonly config: Config;
  readonly log: Logger;
  /** The traffic listener: this process's, or (--workers) the workers' as the primary sees them; its outcomes are every process's. */
  readonly proxy: TrafficPlane;
  readonly admin: FastifyInstance;
  readonly adminAddress: AddressInfo;
  readonly store: WeightStore;
  readonly metrics: Metrics;
  /** The canary controller; undefined with a single upstream. */
  readonly rollout: RolloutController | undefined;
  readonly shadow: Shadow;
  /** Drains and stops everything; resolves to the number of requests cut at the drain timeout. */
  close(): Promise<number>;
}

/** The settings a start reads; see resolveStartup for which wins. */
export interface AppSettings {
  /** The --config file's settings, and its path to watch for weight changes. */
  readonly file?: { readonly path: string; readonly settings: RawSettings };
  readonly flags?: RawSettings;
}

export interface AppOptions {
  readonly env: NodeJS.ProcessEnv;
  /** Default: JSON lines on stdout at the config's log level. */
  readonly log?: Logger;
  readonly now?: () => Date;
  /** The console's sample interval (GET /series); default 10 s. */
  readonly seriesIntervalMs?: number;
}

const PROBE_TIMEOUT_MS = 2000;
const SERIES_INTERVAL_MS = 10_000;

/** The whole process: the traffic proxy, the admin API and the live weights behind both. */
export async function startApp(settings: AppSettings, opts: AppOptions): Promise<RunningApp> {
  const { env } = opts;
  const now = opts.now ?? (() => new Date());
  const { config, snapshot, restored, envChange } = resolveStartup({ file: settings.file?.settings, flags: settings.flags, env, at: now().toISOString() });
  const log = opts.log ?? createLogger(config.logLevel);
  const upstreams = config.upstreams.map((u) => u.name);

  const tokens = guardedTokens(env, config.adminTokenFile, config.admin.host, 'the admin API');

  const metrics = createMetrics();
  const stateFailures = stateWriteFailures(metrics.registry);
  const writer = config.state === undefined ? undefined : new SnapshotWriter(config.state, reportWriteFailure(log, stateFailures, 'state'));
  // The state file is written by the store itself, before any listener hears: keeping a
  // decision across restarts is part of accepting it, so no listener (its order, its failure,
  // its unsubscribing) may skip it. Listeners are for those who follow the weights.
  const store = new WeightStore(upstreams, snapshot, { now, log, persist: writer });
  // Read before anything listens: a rollout state that does not fit the plan stops start-up.
  const savedRollout = config.rollout === undefined || config.state === undefined ? undefined : readSavedRollout(rolloutStatePath(config.state), config.rollout);
  if (!restored) writer?.save(snapshot);
  else log.info({ state: config.state, version: snapshot.state.version }, 'weights restored from the state file');
  if (envChange !== undefined) store.change(envChange.shares, { source: 'env', who: 'environment', reason: envChange.reason });

  new Gauge({
    name: 'drum_split_weight_percent',
    help: "Each upstream's share of the traffic now, in percent.",
    labelNames: ['server_type'],
    registers: [metrics.registry],
    collect() {
      for (const [name, percent] of Object.entries(store.view().weights)) this.set({ server_type: name }, percent);
    },
  });
  // With --workers, a runtime switch of the shadow is passed on to them once they run.
  let tellWorkers = (): void => {};
  const shadow = startShadow(config, { registry: metrics.registry, log, onChange: () => tellWorkers() });
  let proxy: RunningApp['proxy'];
  try {
    if (config.workers > 1) {
      const workers = await startWorkers(config, { log, metrics, shares: () => store.state.shares, shadow });
      tellWorkers = workers.sync;
      proxy = workers;
    } else {
      proxy = await startProxy(config, log, { shares: store.state.shares, metrics, shadow: shadow.shadow });
    }
  } catch (err) {
    await shadow.close();
    throw err;
  }
  store.subscribe((s) => proxy.setShares(s.state.shares));
  const poller = new UpstreamPoller(proxy.backends.values(), metrics, { intervalMs: config.pollIntervalMs, timeoutMs: PROBE_TIMEOUT_MS, now: Date.now, log });
  const seriesMs = opts.seriesIntervalMs ?? SERIES_INTERVAL_MS;
  const series = new Series({ upstreams, intervalMs: seriesMs, now: Date.now, random: Math.random });
  series.listen(proxy.outcomes, poller);
  const rollout = config.rollout === undefined
    ? undefined
    : runRollout(config.rollout, {
      store, upstreams, log, saved: savedRollout, statePath: config.state, registry: metrics.registry, stateFailures,
      evidence: new LocalEvidence({ plan: config.rollout, outcomes: proxy.outcomes, poller, now: Date.now }),
    });
  const admin = createAdmin({
    store,
    upstreams,
    tokens,
    recording: proxy.recording,
    probe: () => probeUpstreams(proxy.backends.values(), PROBE_TIMEOUT_MS),
    metrics: proxy.metrics,
    log,
    rollout: rollout?.controller,
    shadow: shadow.shadow,
    series: () => series.view(),
    notSaved: () => notSaved([writer, rollout?.file]),
  });
  let adminAddress: AddressInfo;
  try {
    await admin.listen({ host: config.admin.host, port: config.admin.port });
    adminAddress = admin.server.address() as AddressInfo;
  } catch (err) {
    await proxy.close(0);
    await shadow.close();
    throw err;
  }
  // Watching starts once everything listens: a failed start leaves nothing running.
  rollout?.start();
  poller.start();
  const seriesTimer = setInterval(() => series.tick(), seriesMs).unref();

  let watcher: ConfigWatcher | undefined;
  if (settings.file !== undefined) {
    const { path } = settings.file;
    const nameUrls = (c: Config): string[] => c.upstreams.map((u) => `${u.name}=${u.url.href}`);
    const running = nameUrls(config);
    /** The file's weights, checked against the running upstreams (which flags may have set). */
    const weightsIn = (settings: RawSettings): readonly Share[] => buildConfig({ ...settings, upstreams: running }).weights;
    let fileWeights: readonly Share[] | undefined;
    try {
      fileWeights = weightsIn(settings.file.settings);
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
    config,
    log,
    proxy,
    admin,
    adminAddress,
    store,
    metrics: proxy.metrics,
    rollout: rollout?.controller,
    shadow: shadow.shadow,
    async close() {
      const started = Date.now();
      watcher?.close();
      poller.stop();
      clearInterval(seriesTimer);
      series.stop();
      await rollout?.stop();
      // The listeners close and the requests in flight drain first: nothing else may hold them.
      const [, cut] = await Promise.all([admin.close(), proxy.close()]);
      await Promise.all([rollout?.close(config.drainTimeoutMs - (Date.now() - started)), writer?.close(), shadow.close()]);
      return cut;
    },
  };
}
