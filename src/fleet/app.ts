import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { request } from 'undici';
import { InputError } from '../common/input-error.js';
import { createLogger } from '../common/log.js';
import type { Config, RawSettings } from '../config/config.js';
import { resolveStartup } from '../config/startup.js';
import { startControlPlane, type Driven } from '../control/plane.js';
import type { Metrics } from '../observe/metrics.js';
import type { RolloutController } from '../rollout/controller.js';
import type { RolloutPlan } from '../rollout/plan.js';
import { identityAt, verifyUrl } from '../rollout/verify.js';
import { verifyRequestSource } from '../replay/verify-input.js';
import { applyWeights } from '../weights/shares.js';
import type { WeightStore } from '../weights/store.js';
import { CONTROLLER_ADMIN } from './options.js';
import { PrometheusEvidence } from './prometheus.js';
import { dnsTargets, Fleet, replicasGauge, staticTargets, type ReplicaTargets } from './replicas.js';
import { FleetShadow, replicaMismatch } from './shadow.js';

export interface ControllerSettings {
  /** The replicas' config file, already read: the upstreams and the rollout plan. */
  readonly file: RawSettings;
  readonly prometheus: string;
  readonly proxies?: readonly string[] | undefined;
  readonly proxiesDns?: string | undefined;
  readonly admin?: string | undefined;
  readonly adminTokenFile?: string | undefined;
  /** The token sent to the replicas. */
  readonly token?: string | undefined;
  readonly state?: string | undefined;
  readonly logLevel?: string | undefined;
}

export interface RunningController {
  readonly config: Config;
  readonly log: Logger;
  readonly admin: FastifyInstance;
  readonly adminAddress: AddressInfo;
  /** The fleet's weights: what every replica is brought to. */
  readonly store: WeightStore;
  readonly rollout: RolloutController;
  readonly fleet: Fleet;
  close(): Promise<void>;
}

const TIMEOUT_MS = 5000;

/**
 * `drum-splitter controller`: the rollout's controller, checks and state machine as the proxy
 * runs them, fed by Prometheus (the fleet's numbers), its weights applied to every replica. Each
 * tick: ask Prometheus, judge, then bring every replica to the fleet's weights (a replica that
 * restarted or drifted is corrected, and each renews the controller's claim on it). A change of
 * the weights (a decision, a person through this admin API) is applied at once.
 */
export async function startController(settings: ControllerSettings, opts: { env: NodeJS.ProcessEnv; log?: Logger }): Promise<RunningController> {
  const { env } = opts;
  if ((settings.proxies?.length ?? 0) > 0 === (settings.proxiesDns !== undefined)) {
    throw new InputError('name the replicas with --proxy URL (repeatable) or --proxies-dns NAME:PORT, one of the two', 'proxy');
  }
  let prometheus: URL;
  try {
    prometheus = new URL(settings.prometheus);
  } catch {
    throw new InputError(`--prometheus "${settings.prometheus}" is not a URL`, 'prometheus');
  }
  const targets = settings.proxiesDns !== undefined ? dnsTargets(settings.proxiesDns) : staticTargets(settings.proxies!);
  // The replicas' state file is theirs; the controller's admin address (default 127.0.0.1:9902) and state come from its flags.
  const { state: _replicasState, ...file } = settings.file;
  const given = { admin: settings.admin ?? CONTROLLER_ADMIN, adminTokenFile: settings.adminTokenFile, state: settings.state, logLevel: settings.logLevel };
  const flags: RawSettings = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
  const startup = resolveStartup({ file, flags, env: {}, at: new Date().toISOString() });
  const { config } = startup;
  const plan = config.rollout;
  if (plan === undefined) throw new InputError('the config names one upstream: there is no canary to roll out', 'upstreams');
  const log = opts.log ?? createLogger(config.logLevel);
  const plane = await startControlPlane(startup, {
    env, log, now: () => new Date(), adminName: "the controller's admin API",
    drive: ({ store, metrics }) => driveFleet(config, plan, { store, metrics, log, prometheus, targets, token: settings.token ?? env.DRUM_SPLITTER_ADMIN_TOKEN }),
  });
  const { store, driven: { fleet } } = plane;
  const adminAddress = plane.adminAddress;
  log.info({ admin: `${adminAddress.address}:${adminAddress.port}`, prometheus: prometheus.href, weights: store.view().weights, replicas: fleet.replicas.map((r) => `${r.url} ${r.status}`) }, 'controller running');
  return {
    config,
    log,
    admin: plane.admin,
    adminAddress,
    store,
    // A plan, so a rollout.
    rollout: plane.rollout!,
    fleet,
    async close() {
      await plane.close();
    },
  };
}

/**
 * What the controller's weights drive: every replica, brought to them at each tick and at once
 * on a change; Prometheus is the rollout's evidence.
 */
async function driveFleet(
  config: Config,
  plan: RolloutPlan,
  deps: { readonly store: WeightStore; readonly metrics: Metrics; readonly log: Logger; readonly prometheus: URL; readonly targets: ReplicaTargets; readonly token: string | undefined },
): Promise<Driven & { readonly fleet: Fleet }> {
  const { store, metrics, log, prometheus } = deps;
  const upstreams = config.upstreams.map((u) => u.name);
  const fleet = new Fleet({
    targets: deps.targets, baseline: plan.baseline, token: deps.token, timeoutMs: TIMEOUT_MS, now: Date.now, log,
    // Renewed every interval; three missed ones (a controller gone) free the replicas. The pod's name and port say whose.
    claim: { controller: `http://${hostname()}:${config.admin.port}`, ttlSeconds: Math.min(3600, Math.max(30, Math.ceil((3 * plan.intervalMs) / 1000))) },
  });
  replicasGauge(fleet, metrics.registry);
  const replicaCalls = { token: deps.token, timeoutMs: TIMEOUT_MS };
  // The shadow phase switches every replica's live shadow; a change is applied at once.
  const shadows = new FleetShadow({ ...replicaCalls, log, changed: () => void reconcile() });
  const replicaUrls = (): string[] => fleet.replicas.map((r) => r.url);

  /** One reconcile at a time; a change meanwhile runs one more after it. None once closing: the claims are released. */
  let reconciling: Promise<void> | undefined;
  let again = false;
  let listingFailed = false;
  let closing = false;
  const reconcile = (): Promise<void> => {
    if (closing) return Promise.resolve();
    if (reconciling !== undefined) {
      again = true;
      return reconciling;
    }
    reconciling = (async () => {
      do {
        again = false;
        const reason = store.history.at(-1)!.reason ?? "the fleet's weights";
        try {
          const reports = await fleet.reconcile(store.view().weights, reason);
          await shadows.sync(reports.map((r) => r.url));
          // A replica's ConfigMap changed its weights: a person's change (ROLLBACK_PLAN's kubectl
          // patch), taken as the fleet's — which pauses a running rollout — and sent to the rest.
          const edited = reports.find((r) => r.status === 'file_changed');
          if (edited !== undefined) adopt(edited.url, edited.weights!);
          // Their return is said by the replicas' own reports (in sync again, corrected).
          listingFailed = false;
        } catch (err) {
          if (!listingFailed) log.error({ err: (err as Error).message }, 'fleet: cannot list the replicas; retrying every interval');
          listingFailed = true;
        }
      } while (again);
    })().finally(() => (reconciling = undefined));
    return reconciling;
  };

  // The canaries' shares only: the baseline takes the rest, as on the replica.
  const adopt = (url: string, weights: Readonly<Record<string, number>>): void => {
    const canaries = Object.fromEntries(upstreams.slice(1).map((name) => [name, weights[name]]));
    store.change(applyWeights(upstreams, store.state.shares, canaries), { source: 'file', who: `${url}'s config file`, reason: 'the config file (ConfigMap) changed' });
  };
  store.subscribe('fleet', () => void reconcile());

  return {
    fleet,
    evidence: () => new PrometheusEvidence({
      url: prometheus.href, plan, timeoutMs: TIMEOUT_MS, log, now: Date.now,
      // The replicas' shadow copies to the canary, and is on: by their config, or for the shadow phase.
      shadow: config.shadow.upstream === plan.canary && (config.shadow.sampleRate > 0 || plan.steps[0]!.shadow !== undefined),
      mismatchSample: () => replicaMismatch(replicaUrls(), replicaCalls),
    }),
    shadowSwitch: shadows,
    // Each tick: the check on Prometheus's answer, then the replicas follow (and their claims are renewed).
    afterTick: reconcile,
    // The baseline as the replicas reach it: the config's URL (a Service), not through one replica, whose own proxy may be what failed.
    // Prometheus has no /info/: the canary's identity, which the baseline's must differ from, is read at its URL now.
    verify: (p) => {
      const requests = verifyRequestSource(p.verify.requests, () => undefined);
      const [baseline, canary] = [p.baseline, p.canary].map((name) => config.upstreams.find((u) => u.name === name)!);
      return async (canaryIdentity, signal) => {
        const identity = canaryIdentity ?? (await identityAt(canary!.name, canary!.url, p.verify.timeoutMs));
        return verifyUrl(baseline!.name, baseline!.url, { timeoutMs: p.verify.timeoutMs, canaryIdentity: identity, requests, signal });
      };
    },
    admin: {
      server: 'controller',
      probe: async () => ({ prometheus: await ready(prometheus) }),
      metrics,
      rolloutExtra: () => ({ fleet: { prometheus: prometheus.href, replicas: fleet.replicas } }),
    },
    // First of all, where the replicas are: a restarted controller reads them before it acts.
    begin: reconcile,
    async close(adminClosed) {
      // After the admin API: a change it accepted last reaches the replicas. Then the replicas are let go.
      await adminClosed;
      closing = true;
      await reconciling;
      await fleet.release();
      return 0;
    },
  };
}

/** Prometheus's own readiness endpoint answers 200. */
async function ready(prometheus: URL): Promise<boolean> {
  try {
    const res = await request(new URL('/-/ready', prometheus), { headersTimeout: 2000, bodyTimeout: 2000 });
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false;
  }
}
