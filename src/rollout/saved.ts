import { readKept } from '../common/atomic-file.js';
import { InputError } from '../common/input-error.js';
import type { SavedRollout } from './controller.js';
import { ACTIVE, PHASES } from './machine.js';
import type { RolloutPlan } from './plan.js';

/** The rollout's own state file, beside the --state file: /data/state.json → /data/state.rollout.json. */
export function rolloutStatePath(statePath: string): string {
  return statePath.endsWith('.json') ? `${statePath.slice(0, -5)}.rollout.json` : `${statePath}.rollout.json`;
}

export function formatSavedRollout(saved: SavedRollout): string {
  return `${JSON.stringify(saved, null, 2)}\n`;
}

/**
 * The saved rollout; undefined if there is none yet. A file that cannot be read, is not ours, or
 * is at a step the plan no longer has stops start-up (never a silent restart of the rollout).
 */
export function readSavedRollout(path: string, plan: RolloutPlan): SavedRollout | undefined {
  const text = readKept(path, 'rollout state');
  if (text === undefined) return undefined;
  let saved: SavedRollout;
  try {
    saved = JSON.parse(text) as SavedRollout;
  } catch (err) {
    throw new InputError(`rollout state ${path} is not JSON (${(err as Error).message}); fix or remove it`, '--state');
  }
  const s = saved?.state;
  // JSON has no NaN or Infinity: a number is a time.
  const time = (v: unknown): boolean => v === null || typeof v === 'number';
  const shaped =
    saved?.format === 1 &&
    PHASES.includes(s?.phase) &&
    Number.isInteger(s.step) &&
    s.step >= (ACTIVE.has(s.phase) ? 0 : -1) &&
    typeof s.weight === 'number' &&
    typeof s.heldMs === 'number' &&
    s.heldMs >= 0 &&
    time(s.lastCheckAt) &&
    time(s.reduceAt) &&
    (s.phase !== 'reducing' || s.reduceAt !== null) &&
    Array.isArray(saved.decisions);
  if (!shaped) throw new InputError(`rollout state ${path} is not a drum-splitter rollout state (format 1); fix or remove it`, '--state');
  const last = s.phase === 'awaiting_approval' ? plan.steps.length - 2 : plan.steps.length - 1;
  if (s.step > last) {
    throw new InputError(`rollout state ${path} is ${s.phase} at step ${s.step + 1}, which the plan (${plan.steps.length} steps) cannot continue; remove it to start over`, '--state');
  }
  return saved;
}
