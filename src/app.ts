import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { RolloutController } from './rollout/controller.js';
import { LocalEvidence } from './rollout/evidence.js';
import { verifyUpstream } from './rollout/verify.js';
import { verifyRequestSource } from './replay/verify-input.js';
import { startWorkers, type TrafficPlane } from './cluster.js';
import type { Config, RawSettings } from './config/config.js';
import { resolveStartup } from './config/startup.js';
import { createLogger } from './common/log.js';
import { startControlPlane, type Driven } from './control/plane.js';
import { watchWeights, type ConfigWatcher } from './config/watch.js';
import { probeUpstreams } from './observe/health.js';
import type { Metrics } from './observe/metrics.js';
import { startProxy } from './proxy/listener.js';
import { startShadow, type Shadow, type ShadowFinished } from './shadow/shadow.js';
import { ShadowPhaseSwitch } from './rollout/shadow-phase.js';
import { Subscribers } from './common/subscribers.js';
import { UpstreamPoller } from './observe/poller.js';
import { Series } from './observe/series.js';
import type { WeightStore } from './weights/store.js';
import { AtomicFile } from './common/atomic-file.js';
import type { Counter } from 'prom-client';
import { formatRouteSnapshot, routesStatePath, RouteStore, type RouteSnapshot } from './weights/route-store.js';
import { reportWriteFailure } from './weights/state-file.js';

export interface RunningApp {
  /** The configuration the start resolved. */
  readonly config: Config;
  readonly log: Logger;
  /** The traffic listener: this process's, or (--workers) the workers' as the primary sees them; its outcomes are every process's. */
  readonly proxy: TrafficPlane;
  readonly admin: FastifyInstance;
  readonly adminAddress: AddressInfo;
  readonly store: WeightStore;
  /** The cohort rules, live. */
  readonly routes: RouteStore;
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
  const startup = resolveStartup({ file: settings.file?.settings, flags: settings.flags, env, at: now().toISOString() });
  const { config } = startup;
  const log = opts.log ?? createLogger(config.logLevel);
  const plane = await startControlPlane(startup, { env, log, now, adminName: 'the admin API', drive: ({ store, metrics, stateFailures }) => startTraffic(config, { store, metrics, stateFailures, log, file: settings.file, seriesMs: opts.seriesIntervalMs ?? SERIES_INTERVAL_MS, routes: startup.routes, routesRestored: startup.routesRestored, now }) });
  const { proxy, shadow, routes } = plane.driven;
  return {
    config,
    log,
    proxy,
    admin: plane.admin,
    adminAddress: plane.adminAddress,
    store: plane.store,
    routes,
    metrics: proxy.metrics,
    rollout: plane.rollout,
    shadow,
    close: () => plane.close(),
  };
}

/**
 * What `serve`'s weights drive: the proxy (this process, or --workers), its shadow, the upstream
 * polls, the console's series and the watched config file; the rollout judges its exchanges.
 */
async function startTraffic(
  config: Config,
  deps: {
    readonly store: WeightStore;
    readonly metrics: Metrics;
    readonly stateFailures: Counter<'file'>;
    readonly log: Logger;
    readonly file: AppSettings['file'];
    readonly seriesMs: number;
    /** The cohort rules to start from (the state file's, else the config's), and whether they were restored. */
    readonly routes: RouteSnapshot;
    readonly routesRestored: boolean;
    readonly now: () => Date;
  },
): Promise<Driven & { readonly proxy: TrafficPlane; readonly shadow: Shadow; readonly routes: RouteStore }> {
  const { store, metrics, log, seriesMs, routesRestored } = deps;
  const routesAtStart = deps.routes;
  // The cohort rules' own file beside --state, written as the weights' is (durable or refused).
  const routesFile = config.state === undefined
    ? undefined
    : new AtomicFile<RouteSnapshot>(routesStatePath(config.state), { what: 'the cohort rules file', format: formatRouteSnapshot, onError: reportWriteFailure(log, deps.stateFailures, 'routes') });
  const routes = new RouteStore(config.upstreams.map((u) => u.name), routesAtStart, { now: deps.now, log, subscriberErrors: metrics.subscriberErrors, persist: routesFile });
  if (!routesRestored) routesFile?.save(routesAtStart);
  else log.info({ state: routesStatePath(config.state!), version: routesAtStart.state.version }, 'cohort rules restored from the state file');
  // With --workers, a runtime switch of the shadow is passed on to them once they run.
  let tellWorkers = (): void => {};
  // Every finished copy (the workers' too), for the rollout's mismatch check and shadow phase.
  const shadowResults = new Subscribers<ShadowFinished>('shadow', { log, errors: metrics.subscriberErrors });
  const shadow = startShadow(config, { registry: metrics.registry, log, onChange: () => tellWorkers(), onFinished: (f) => shadowResults.publish(f) });
  let proxy: TrafficPlane;
  try {
    if (config.workers > 1) {
      const workers = await startWorkers(config, { log, metrics, shares: () => store.state.shares, routes: () => routes.state.routes, shadow });
      tellWorkers = () => workers.setShares(store.state.shares);
      proxy = workers;
    } else {
      proxy = await startProxy(config, log, { shares: store.state.shares, routes: routes.state.routes, metrics, shadow: shadow.shadow });
    }
  } catch (err) {
    await Promise.all([shadow.close(), routesFile?.close()]);
    throw err;
  }
  store.subscribe('split', (s) => proxy.setShares(s.state.shares));
  routes.subscribe('proxy', (s) => proxy.setRoutes(s.state.routes));
  // Each rule's matches since the start, every process's (GET /routes; drum_route_matches_total counts the same).
  const matches = new Map<string, number>();
  proxy.outcomes.subscribe('routes', (o) => {
    if (o.route !== undefined) matches.set(o.route, (matches.get(o.route) ?? 0) + 1);
  });
  const poller = new UpstreamPoller(proxy.backends.values(), metrics, { intervalMs: config.pollIntervalMs, timeoutMs: PROBE_TIMEOUT_MS, now: Date.now, log });
  const series = new Series({ upstreams: config.upstreams.map((u) => u.name), intervalMs: seriesMs, now: Date.now, random: Math.random });
  series.listen(proxy.outcomes, poller);
  let seriesTimer: NodeJS.Timeout | undefined;
  let watcher: ConfigWatcher | undefined;
  return {
    proxy,
    shadow: shadow.shadow,
    routes,
    files: routesFile === undefined ? [] : [routesFile],
    evidence: (plan) => new LocalEvidence({
      plan, outcomes: proxy.outcomes, poller, now: Date.now,
      // The shadow's pairs are evidence of the canary only when it copies to the canary.
      ...(config.shadow.upstream === plan.canary ? { shadow: { subscribe: (name, fn) => shadowResults.subscribe(name, fn), get enabled() { return shadow.shadow.enabled; } } } : {}),
    }),
    shadowSwitch: new ShadowPhaseSwitch(shadow.shadow, log),
    // The baseline as this proxy reaches it; the predictions from the plan's files, else this process's recording.
    verify: (plan) => {
      const requests = verifyRequestSource(plan.verify.requests, () => proxy.recording.file);
      return (canaryIdentity, signal) => verifyUpstream(proxy.backends.get(plan.baseline)!, { timeoutMs: plan.verify.timeoutMs, canaryIdentity, requests, signal });
    },
    admin: {
      server: 'proxy',
      recording: proxy.recording,
      probe: () => probeUpstreams(proxy.backends.values(), PROBE_TIMEOUT_MS),
      metrics: proxy.metrics,
      shadow: shadow.shadow,
      series: () => series.view(),
      split: { key: config.key, hash: config.splitHash },
      routes: { store: routes, matches: () => matches },
    },
    begin() {
      poller.start();
      seriesTimer = setInterval(() => series.tick(), seriesMs).unref();
      if (deps.file !== undefined) watcher = watchWeights(deps.file, config, { store, routes, log });
    },
    async close() {
      watcher?.close();
      poller.stop();
      clearInterval(seriesTimer);
      series.stop();
      // The listeners close and the requests in flight drain first: nothing else may hold them.
      const cut = await proxy.close();
      await Promise.all([shadow.close(), routesFile?.close()]);
      return cut;
    },
  };
}
