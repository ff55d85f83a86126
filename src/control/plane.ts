import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { guardedTokens } from '../admin/auth.js';
import { createAdmin, type AdminDeps } from '../admin/server.js';
import { notSaved, type NotWritten } from '../common/atomic-file.js';
import type { Counter } from 'prom-client';
import type { Startup } from '../config/startup.js';
import { createMetrics, type Metrics } from '../observe/metrics.js';
import type { RolloutController } from '../rollout/controller.js';
import type { EvidenceSource } from '../rollout/evidence.js';
import type { RolloutPlan } from '../rollout/plan.js';
import { runRollout } from '../rollout/run.js';
import type { ShadowSwitch } from '../rollout/shadow-phase.js';
import type { VerifyBaseline } from '../rollout/verify.js';
import { readSavedRollout, rolloutStatePath } from '../rollout/saved.js';
import { reportWriteFailure, SnapshotWriter, stateWriteFailures } from '../weights/state-file.js';
import { splitWeightGauge, WeightStore } from '../weights/store.js';

/** What the weights drive: this process's proxy (`serve`), or a fleet's replicas (`controller`). */
export interface Driven {
  /** Where the rollout's numbers come from; asked only when the config has a plan. */
  readonly evidence: (plan: RolloutPlan) => EvidenceSource;
  /** After every check of the rollout (the fleet: bring the replicas to the weights). */
  readonly afterTick?: () => Promise<void>;
  /** The live shadow the rollout switches on for its shadow phase (serve's own, or the replicas'). */
  readonly shadowSwitch?: ShadowSwitch;
  /** The baseline's checks after a rollback (rollout/verify.ts), for the plan. */
  readonly verify?: (plan: RolloutPlan) => VerifyBaseline;
  /** Its part of the admin API. */
  readonly admin: Pick<AdminDeps, 'server' | 'probe' | 'metrics' | 'recording' | 'shadow' | 'series' | 'rolloutExtra' | 'split' | 'routes'>;
  /** Its own files beside --state (serve's cohort rules), for /readyz: what is live and not on disk. */
  readonly files?: readonly { readonly failure: NotWritten | undefined }[];
  /** Once the admin API listens and the rollout runs: what it watches of its own begins. */
  begin(): Promise<void> | void;
  /**
   * At shutdown, beside the admin API's close (`adminClosed` settles once it has closed) and
   * the rollout's: stops and drains it. Also when the admin API cannot listen, before begin().
   * Resolves to the requests cut at the drain timeout.
   */
  close(adminClosed: Promise<void>): Promise<number>;
}

export interface ControlPlaneOptions<D extends Driven> {
  readonly env: NodeJS.ProcessEnv;
  readonly log: Logger;
  /** The weight store's clock. */
  readonly now: () => Date;
  /** The admin API as its token guard's refusal names it: "the admin API". */
  readonly adminName: string;
  /** Starts what the weights drive, once the store holds them; a failure stops start-up, leaving nothing of its own running. */
  readonly drive: (plane: { readonly store: WeightStore; readonly metrics: Metrics; readonly stateFailures: Counter<'file'> }) => Promise<D>;
}

export interface ControlPlane<D extends Driven> {
  readonly store: WeightStore;
  /** The canary controller; undefined without a plan (a single upstream). */
  readonly rollout: RolloutController | undefined;
  readonly admin: FastifyInstance;
  readonly adminAddress: AddressInfo;
  readonly driven: D;
  /** Stops the checks, closes the admin API and what the weights drive, then gives the webhooks and files what is left; resolves to the requests cut. */
  close(): Promise<number>;
}

/**
 * The control plane, as `serve` and `controller` start it: the admin tokens, the --state file's
 * writer, the weight store (the state file's weights, then the environment's), the saved
 * rollout, what the weights drive, the rollout runner on its evidence, the admin API. Watching
 * starts once everything listens: a failed start leaves nothing running.
 */
export async function startControlPlane<D extends Driven>(startup: Startup, opts: ControlPlaneOptions<D>): Promise<ControlPlane<D>> {
  const { config, snapshot, restored, envChange } = startup;
  const { log } = opts;
  const upstreams = config.upstreams.map((u) => u.name);
  const tokens = guardedTokens(opts.env, config.adminTokenFile, config.admin.host, opts.adminName);

  const metrics = createMetrics();
  const stateFailures = stateWriteFailures(metrics.registry);
  const writer = config.state === undefined ? undefined : new SnapshotWriter(config.state, reportWriteFailure(log, stateFailures, 'state'));
  // The state file is written by the store itself, before any listener hears: keeping a
  // decision across restarts is part of accepting it, so no listener (its order, its failure,
  // its unsubscribing) may skip it. Listeners are for those who follow the weights.
  const store = new WeightStore(upstreams, snapshot, { now: opts.now, log, subscriberErrors: metrics.subscriberErrors, persist: writer });
  splitWeightGauge(store, metrics.registry);
  // Read before anything listens: a rollout state that does not fit the plan stops start-up.
  const saved = config.rollout === undefined || config.state === undefined ? undefined : readSavedRollout(rolloutStatePath(config.state), config.rollout);
  if (!restored) writer?.save(snapshot);
  else log.info({ state: config.state, version: snapshot.state.version }, 'weights restored from the state file');
  if (envChange !== undefined) store.change(envChange.shares, { source: 'env', who: 'environment', reason: envChange.reason });

  const driven = await opts.drive({ store, metrics, stateFailures });
  const rollout = config.rollout === undefined
    ? undefined
    : runRollout(config.rollout, {
      store, upstreams, log, saved, statePath: config.state, registry: metrics.registry, stateFailures,
      evidence: driven.evidence(config.rollout), afterTick: driven.afterTick, shadow: driven.shadowSwitch, verify: driven.verify?.(config.rollout),
    });
  let admin: FastifyInstance;
  try {
    // Its certificate (--admin-tls-cert) is read here: one that does not load stops start-up too.
    admin = createAdmin({ ...driven.admin, store, upstreams, tokens, log, tls: config.adminTls, rollout: rollout?.controller, notSaved: () => notSaved([writer, rollout?.file, ...(driven.files ?? [])]) });
    await admin.listen({ host: config.admin.host, port: config.admin.port });
  } catch (err) {
    await driven.close(Promise.resolve());
    throw err;
  }
  rollout?.start();
  await driven.begin();

  return {
    store,
    rollout: rollout?.controller,
    admin,
    adminAddress: admin.server.address() as AddressInfo,
    driven,
    async close() {
      const started = Date.now();
      // The checks stop (one under way ends), and the admin API and what the weights drive
      // close, together: the drain of requests in flight waits for nothing else.
      const stopped = rollout?.stop();
      const adminClosed = admin.close();
      const [cut] = await Promise.all([driven.close(adminClosed), adminClosed, stopped]);
      // Then the webhooks get what is left of the drain timeout, and the files their last write.
      await Promise.all([rollout?.close(config.drainTimeoutMs - (Date.now() - started)), writer?.close()]);
      return cut;
    },
  };
}
