import { readKept } from '../common/atomic-file.js';
import { InputError } from '../common/input-error.js';
import type { SavedRollout } from './controller.js';
import { PHASES } from './machine.js';
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
  if (saved?.format !== 1 || !PHASES.includes(s?.phase) || !Number.isInteger(s.step) || typeof s.weight !== 'number' || !Array.isArray(saved.decisions)) {
    throw new InputError(`rollout state ${path} is not a drum-splitter rollout state (format 1); fix or remove it`, '--state');
  }
  if (s.step >= plan.steps.length) {
    throw new InputError(`rollout state ${path} is at step ${s.step + 1}, but the plan has ${plan.steps.length}; remove it to start over`, '--state');
  }
  return saved;
}
