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
    ['a step beyond the plan', JSON.stringify({ format: 1, state: { ...INITIAL, phase: 'running', step: 2, weight: 50 }, decisions: [] }), /is at step 3, but the plan has 2; remove it to start over/],
  ];
  for (const [name, text, message] of cases) {
    writeFileSync(path, text);
    t.throws(() => readSavedRollout(path, plan), { name: 'InputError', field: '--state', message }, name);
  }
  t.throws(() => readSavedRollout(dir, plan), { name: 'InputError', message: /cannot be read/ }, 'a directory');
});
