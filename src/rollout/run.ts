import type { Logger } from 'pino';
import type { Counter, Registry } from 'prom-client';
import { AtomicFile } from '../common/atomic-file.js';
import { UNREF_TIMERS } from '../common/timers.js';
import { reportWriteFailure } from '../weights/state-file.js';
import { RolloutController, type ControllerDeps, type SavedRollout } from './controller.js';
import { Notifier, notifyFailures } from './notify.js';
import { describePlan, type RolloutPlan } from './plan.js';
import { renderMarkdown, renderReportHtml, reportPaths, type RolloutReport } from './report.js';
import { formatSavedRollout, rolloutStatePath } from './saved.js';

/** Shutdown gives the webhooks what is left of the drain timeout, at most this long. */
export const WEBHOOK_FLUSH_MS = 5000;

export interface RunningRollout {
  readonly controller: RolloutController;
  start(): void;
  /** The saved rollout's file, with --state. */
  readonly file: AtomicFile<SavedRollout> | undefined;
  /** Stops the checks: no more decisions of its own; resolves once a check under way has ended. */
  stop(): Promise<void>;
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
  deps: Pick<ControllerDeps, 'store' | 'upstreams' | 'evidence' | 'log' | 'saved' | 'afterTick' | 'shadow' | 'verify'> & {
    readonly registry: Registry;
    readonly statePath: string | undefined;
    /** drum_state_write_failures_total, which the --state file's writer counts in too. */
    readonly stateFailures: Counter<'file'>;
  },
): RunningRollout {
  const { log, registry, statePath } = deps;
  const notifier = new Notifier(plan.notify, { log, failures: notifyFailures(registry), context: { canary: plan.canary, baseline: plan.baseline } });
  const file = statePath === undefined
    ? undefined
    : new AtomicFile(rolloutStatePath(statePath), { what: 'the rollout state', format: formatSavedRollout, onError: reportWriteFailure(log, deps.stateFailures, 'rollout') });
  let writing: Promise<void> = Promise.resolve();
  const controller = new RolloutController({
    store: deps.store,
    upstreams: deps.upstreams,
    evidence: deps.evidence,
    afterTick: deps.afterTick,
    shadow: deps.shadow,
    verify: deps.verify,
    log,
    saved: deps.saved,
    plan,
    registry,
    notifier,
    now: Date.now,
    timers: UNREF_TIMERS,
    onEnd: (report) => (writing = writing.then(() => writeReport(report, statePath, log))),
    ...(file === undefined ? {} : { save: (saved: SavedRollout) => file.save(saved) }),
  });
  return {
    controller,
    file,
    start() {
      controller.start();
      log.info({ canary: plan.canary, baseline: plan.baseline, steps: describePlan(plan), phase: controller.state.phase }, 'rollout plan loaded; POST /rollout/start (or drum-splitter rollout start) to begin');
    },
    stop: () => controller.stop(),
    async close(leftMs) {
      await Promise.all([notifier.close(Math.min(WEBHOOK_FLUSH_MS, Math.max(0, leftMs))), file?.close(), writing]);
    },
  };
}

/**
 * A rollout that ended: its report beside the --state file (HTML and Markdown). Without --state
 * there is nowhere of ours to write it: said, with how to get it (rollout report).
 */
async function writeReport(report: RolloutReport, statePath: string | undefined, log: Logger): Promise<void> {
  if (statePath === undefined) {
    log.info({ phase: report.phase }, 'rollout ended; its report is not written without --state: drum-splitter rollout report --admin-url URL --html FILE --md FILE writes it');
    return;
  }
  const paths = reportPaths(statePath);
  // Whole or not at all, as the state beside it: a reader never sees half a page. A failure is said once, below.
  const write = (path: string, text: string): Promise<void> => new AtomicFile<string>(path, { what: 'the rollout report', format: (s) => s, onError: () => {} }).trySave(text);
  try {
    await Promise.all([write(paths.html, renderReportHtml(report)), write(paths.md, renderMarkdown(report))]);
    log.info({ phase: report.phase, ...paths }, 'rollout ended; its report is written');
  } catch (err) {
    log.error({ err: (err as Error).message, ...paths }, 'rollout ended; its report cannot be written');
  }
}
