/** The rollout's saved state beside --state: where it goes, and what start-up refuses. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { INITIAL } from '../src/rollout/machine.js';
import { parsePlan } from '../src/rollout/plan.js';
import { formatSavedRollout, readSavedRollout, rolloutStatePath } from '../src/rollout/saved.js';

const plan = parsePlan({ steps: [{ weight: 5, hold: '1h' }, { weight: 50, hold: '1h' }] }, ['flask', 'fastapi']);

t.test('beside the state file', async (t) => {
  t.equal(rolloutStatePath('/data/state.json'), '/data/state.rollout.json');
  t.equal(rolloutStatePath('/data/drum-state'), '/data/drum-state.rollout.json');
});

t.test('written and read back; none yet is undefined', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'state.rollout.json');
  t.equal(readSavedRollout(path, plan), undefined);
  const saved = { format: 1 as const, state: { ...INITIAL, phase: 'running' as const, step: 1, weight: 50 }, decisions: [] };
  writeFileSync(path, formatSavedRollout(saved));
  t.same(readSavedRollout(path, plan), saved);
});

t.test('anything else stops start-up with one line naming the file', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'state.rollout.json');
  const cases: [string, string, RegExp][] = [
    ['not JSON', '{"format": 1,', /is not JSON/],
    ['null', 'null', /is not a drum-splitter rollout state/],
    ['another format', JSON.stringify({ format: 2, state: INITIAL, decisions: [] }), /is not a drum-splitter rollout state/],
    ['an unknown phase', JSON.stringify({ format: 1, state: { ...INITIAL, phase: 'flying' }, decisions: [] }), /is not a drum-splitter rollout state/],
    ['a step beyond the plan', JSON.stringify({ format: 1, state: { ...INITIAL, phase: 'running', step: 2, weight: 50 }, decisions: [] }), /is running at step 3, which the plan \(2 steps\) cannot continue/],
    ['awaiting approval at the last step', JSON.stringify({ format: 1, state: { ...INITIAL, phase: 'awaiting_approval', step: 1, weight: 50 }, decisions: [] }), /is awaiting_approval at step 2, which the plan/],
    ['running at no step', JSON.stringify({ format: 1, state: { ...INITIAL, phase: 'running', step: -1 }, decisions: [] }), /is not a drum-splitter rollout state/],
    ['no time held', JSON.stringify({ format: 1, state: { ...INITIAL, heldMs: 'x' }, decisions: [] }), /is not a drum-splitter rollout state/],
    ['a negative time held', JSON.stringify({ format: 1, state: { ...INITIAL, heldMs: -1 }, decisions: [] }), /is not a drum-splitter rollout state/],
    ['a check time that is not a time', JSON.stringify({ format: 1, state: { ...INITIAL, lastCheckAt: 'now' }, decisions: [] }), /is not a drum-splitter rollout state/],
    ['reducing with no time to check again', JSON.stringify({ format: 1, state: { ...INITIAL, phase: 'reducing', step: 0, weight: 5 }, decisions: [] }), /is not a drum-splitter rollout state/],
    ['decisions not a list', JSON.stringify({ format: 1, state: INITIAL, decisions: {} }), /is not a drum-splitter rollout state/],
  ];
  for (const [name, text, message] of cases) {
    writeFileSync(path, text);
    t.throws(() => readSavedRollout(path, plan), { name: 'InputError', field: '--state', message }, name);
  }
  t.throws(() => readSavedRollout(dir, plan), { name: 'InputError', message: /cannot be read/ }, 'a directory');
});
