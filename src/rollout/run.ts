import { Counter, type Registry } from 'prom-client';
import { AtomicFile } from '../common/atomic-file.js';
import { reportWriteFailure } from '../weights/state-file.js';
import { RolloutController, type ControllerDeps, type SavedRollout } from './controller.js';
import { Notifier } from './notify.js';
import { describePlan, type RolloutPlan } from './plan.js';
import { formatSavedRollout, rolloutStatePath } from './saved.js';

/** Shutdown gives the webhooks what is left of the drain timeout, at most this long. */
export const WEBHOOK_FLUSH_MS = 5000;

export interface RunningRollout {
  readonly controller: RolloutController;
  start(): void;
  /** The saved rollout's file, with --state. */
  readonly file: AtomicFile<SavedRollout> | undefined;
  /** Stops the checks: no more decisions of its own. */
  stop(): void;
  /**
   * After the drain: the webhooks still queued get min(5 s, `leftMs`), the rest are dropped
   * (Notifier.close); the saved state not yet on disk gets its last write.
   */
  close(leftMs: number): Promise<void>;
}

/**
 * The canary controller with its webhooks and saved state, as a process runs it: the proxy on
 * its own exchanges, the fleet controller on Prometheus's numbers. start() begins the checks.
 */
export function runRollout(
  plan: RolloutPlan,
  deps: Pick<ControllerDeps, 'store' | 'upstreams' | 'evidence' | 'log' | 'saved'> & {
    readonly registry: Registry;
    readonly statePath: string | undefined;
    /** drum_state_write_failures_total, which the --state file's writer counts in too. */
    readonly stateFailures: Counter<'file'>;
    /** The check timer; default: setInterval, unref'd. */
    readonly setInterval?: ControllerDeps['setInterval'];
  },
): RunningRollout {
  const { log, registry, statePath } = deps;
  const failures = new Counter({ name: 'drum_rollout_notify_failures_total', help: 'Rollout webhooks not delivered, by reason.', labelNames: ['reason'], registers: [registry] });
  const notifier = new Notifier(plan.notify, { log, failures });
  const file = statePath === undefined
    ? undefined
    : new AtomicFile(rolloutStatePath(statePath), { what: 'the rollout state', format: formatSavedRollout, onError: reportWriteFailure(log, deps.stateFailures, 'rollout') });
  const controller = new RolloutController({
    store: deps.store,
    upstreams: deps.upstreams,
    evidence: deps.evidence,
    log,
    saved: deps.saved,
    plan,
    registry,
    notifier,
    now: Date.now,
    setInterval: deps.setInterval ?? ((fn, ms) => setInterval(fn, ms).unref()),
    clearInterval: (timer) => clearInterval(timer as NodeJS.Timeout),
    ...(file === undefined ? {} : { save: (saved: SavedRollout) => file.save(saved) }),
  });
  return {
    controller,
    file,
    start() {
      controller.start();
      log.info({ canary: plan.canary, baseline: plan.baseline, steps: describePlan(plan), phase: controller.state.phase }, 'rollout plan loaded; POST /rollout/start (or drum-splitter rollout start) to begin');
    },
    stop() {
      controller.stop();
    },
    async close(leftMs) {
      await Promise.all([notifier.close(Math.min(WEBHOOK_FLUSH_MS, Math.max(0, leftMs))), file?.close()]);
    },
  };
}
