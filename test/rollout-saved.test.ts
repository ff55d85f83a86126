/** The rollout's saved state beside --state: where it goes, and what start-up refuses. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { INITIAL } from '../src/rollout/machine.js';
import { parsePlan } from '../src/rollout/plan.js';
import { formatSavedRollout, readSavedRollout, rolloutStatePath } from '../src/rollout/saved.js';

const plan = parsePlan({ settle: 0, confirm: 1, steps: [{ weight: 5, hold: '1h' }, { weight: 50, hold: '1h' }] }, ['flask', 'fastapi']);

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
  // Written before settle and confirm existed: nothing to skip, nothing failed yet.
  const { settling: _s, strikes: _k, canary: _c, ...older } = saved.state;
  writeFileSync(path, JSON.stringify({ format: 1, state: older, decisions: [] }));
  t.same(readSavedRollout(path, plan)!.state, { ...older, settling: 0, strikes: 0, canary: null });
  writeFileSync(path, formatSavedRollout({ ...saved, state: { ...saved.state, settling: 1, strikes: 2, canary: '["fastapi"]' } }));
  t.match(readSavedRollout(path, plan)!.state, { settling: 1, strikes: 2, canary: '["fastapi"]' });
});

/** A decision as the controller writes it, with the checks it was made on. */
const decision = {
  at: '2026-01-02T03:04:05.000Z', action: 'promote', text: '5% held with every check passing → canary to 50%', from: 5, to: 50, phase: 'running', step: 1, who: 'rollout', reason: null,
  checks: [{ check: 'p99', status: 'ok', value: null, limit: 0.2, rollbackLimit: 0.5, text: 'p99: …', canaryP99: 0.1 }],
};

t.test('decisions are read entry by entry; words a newer version writes are kept', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'state.rollout.json');
  const { checks: _, ...plain } = decision;
  const newer = { ...decision, action: 'canary_swap', phase: 'shadowing' };
  const verified = { ...plain, action: 'verified', from: 0, to: 0, verification: { items: [{ name: 'ping', ok: true, detail: '200' }, { name: 'info', ok: false, detail: 'x' }, { name: 'predict_batch', ok: null, detail: 'none' }] } };
  const saved = { format: 1 as const, state: { ...INITIAL, phase: 'running' as const, step: 1, weight: 50 }, decisions: [decision, plain, newer, verified] };
  writeFileSync(path, JSON.stringify(saved));
  t.same(readSavedRollout(path, plan), saved);
  // A dry run's decisions, a hook's answer and the step a rollback began at come back as written.
  const hook = { hook: 'load-test', on: 'pre-step', url: 'http://127.0.0.1:9/pre', ok: false, status: 503, error: null, ms: 12 };
  const later = { format: 1 as const, state: { ...INITIAL, phase: 'rolled_back' as const, step: 0, failedStep: 1 }, decisions: [{ ...plain, dryRun: true }, { ...plain, action: 'hook', hook }] };
  writeFileSync(path, JSON.stringify(later));
  t.same(readSavedRollout(path, plan), later);
});

t.test('anything else stops start-up with one line naming the file and the entry', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'state.rollout.json');
  const file = (state: object, decisions: unknown[] = []): string => JSON.stringify({ format: 1, state: { ...INITIAL, ...state }, decisions });
  const entry = (change: object): string => file({}, [decision, { ...decision, ...change }]);
  const cases: [string, string, RegExp][] = [
    ['not JSON', '{"format": 1,', /is corrupt: not JSON \(/],
    ['null', 'null', /is corrupt: the file must be an object/],
    ['another format', JSON.stringify({ format: 2, state: INITIAL, decisions: [] }), /is corrupt: format is 2, this version reads format 1/],
    ['no state', JSON.stringify({ format: 1, decisions: [] }), /is corrupt: state must be an object/],
    ['an unknown phase', file({ phase: 'flying' }), /is corrupt: state\.phase must be one of idle, unmanaged, running, .*, got "flying"/],
    ['a step beyond the plan', file({ phase: 'running', step: 2, weight: 50 }), /is running at step 3, which the plan \(2 steps\) cannot continue/],
    ['awaiting approval at the last step', file({ phase: 'awaiting_approval', step: 1, weight: 50 }), /is awaiting_approval at step 2, which the plan/],
    ['running at no step', file({ phase: 'running', step: -1 }), /is corrupt: state\.step must be a whole number, 0 or more/],
    ['a failed step that is no step', file({ phase: 'rolled_back', step: 0, failedStep: -1 }), /is corrupt: state\.failedStep must be a whole number, 0 or more/],
    ['a hook answer that is no object', entry({ hook: 'load-test' }), /is corrupt: decisions\[1\]\.hook must be an object/],
    ['a fractional step', file({ step: 0.5 }), /is corrupt: state\.step must be a whole number, -1 or more/],
    ['a weight over 100%', file({ weight: 101 }), /is corrupt: state\.weight must be a number from 0 to 100/],
    ['no time held', file({ heldMs: 'x' }), /is corrupt: state\.heldMs must be a number, 0 or more/],
    ['a negative time held', file({ heldMs: -1 }), /is corrupt: state\.heldMs must be a number, 0 or more/],
    ['settling a fraction of a check', file({ settling: 0.5 }), /is corrupt: state\.settling must be a whole number, 0 or more/],
    ['negative strikes', file({ strikes: -1 }), /is corrupt: state\.strikes must be a whole number, 0 or more/],
    ['a canary identity that is no text', file({ canary: 7 }), /is corrupt: state\.canary must be/],
    ['a check time that is not a time', file({ lastCheckAt: 'now' }), /is corrupt: state\.lastCheckAt must be a number, 0 or more/],
    ['reducing with no time to check again', file({ phase: 'reducing', step: 0, weight: 5 }), /is corrupt: state\.reduceAt must be a time while reducing/],
    ['a note that is not text', file({ note: 5 }), /is corrupt: state\.note must be a string or null/],
    ['decisions not a list', JSON.stringify({ format: 1, state: INITIAL, decisions: {} }), /is corrupt: decisions must be an array/],
    // The file: the first entry that is not a decision is named.
    ['null, 5, "x", {"action": 7}', file({}, [null, 5, 'x', { action: 7 }]), /is corrupt: decisions\[0\] must be an object/],
    ['a number', file({}, [decision, 5]), /is corrupt: decisions\[1\] must be an object/],
    ['a string', file({}, [decision, 'x']), /is corrupt: decisions\[1\] must be an object/],
    ['an action that is a number', file({}, [decision, { action: 7 }]), /is corrupt: decisions\[1\]\.action must be a lower-case word such as promote or rollback, got 7/],
    ['an action that is not a word', entry({ action: 'Roll back!' }), /decisions\[1\]\.action must be a lower-case word .*, got "Roll back!"/],
    ['no time', entry({ at: undefined }), /decisions\[1\]\.at must be a string/],
    ['a time that is not one', entry({ at: 'yesterday' }), /decisions\[1\]\.at must be a time, got "yesterday"/],
    ['no text', entry({ text: null }), /decisions\[1\]\.text must be a string/],
    ['a weight that is text', entry({ from: '5' }), /decisions\[1\]\.from must be a number from 0 to 100/],
    ['a weight below 0', entry({ to: -1 }), /decisions\[1\]\.to must be a number from 0 to 100/],
    ['a phase that is not a word', entry({ phase: 3 }), /decisions\[1\]\.phase must be a lower-case word such as running or paused, got 3/],
    ['a step below -1', entry({ step: -2 }), /decisions\[1\]\.step must be a whole number, -1 or more/],
    ['no one', entry({ who: 1 }), /decisions\[1\]\.who must be a string/],
    ['a reason that is not text', entry({ reason: ['x'] }), /decisions\[1\]\.reason must be a string or null/],
    ['checks not a list', entry({ checks: 'ok' }), /decisions\[1\]\.checks must be an array/],
    ['verification not an object', entry({ verification: [] }), /decisions\[1\]\.verification must be an object/],
    ['verification items not a list', entry({ verification: { items: {} } }), /decisions\[1\]\.verification\.items must be an array/],
    ['a verification item not an object', entry({ verification: { items: [1] } }), /decisions\[1\]\.verification\.items\[0\] must be an object/],
    ['a verification item with ok a word', entry({ verification: { items: [{ name: 'ping', ok: 'yes', detail: '' }] } }), /decisions\[1\]\.verification\.items\[0\]\.ok must be true, false or null, got "yes"/],
    ['a verification item with no name', entry({ verification: { items: [{ ok: true, detail: '' }] } }), /decisions\[1\]\.verification\.items\[0\]\.name must be a string/],
    ['a verification item with no detail', entry({ verification: { items: [{ name: 'ping', ok: true }] } }), /decisions\[1\]\.verification\.items\[0\]\.detail must be a string/],
    ['a check that is not one', entry({ checks: [null] }), /decisions\[1\]\.checks\[0\] must be an object/],
    ['a check with no name', entry({ checks: [{ ...decision.checks[0], check: 1 }] }), /decisions\[1\]\.checks\[0\]\.check must be a string/],
    ['a check with no status', entry({ checks: [{ ...decision.checks[0], status: null }] }), /decisions\[1\]\.checks\[0\]\.status must be a string/],
    ['a check with no text', entry({ checks: [{ ...decision.checks[0], text: 2 }] }), /decisions\[1\]\.checks\[0\]\.text must be a string/],
    ['a value that is text', entry({ checks: [{ ...decision.checks[0], value: 'NaN' }] }), /decisions\[1\]\.checks\[0\]\.value must be a number/],
    ['a limit that is text', entry({ checks: [{ ...decision.checks[0], limit: '1%' }] }), /decisions\[1\]\.checks\[0\]\.limit must be a number/],
    ['no rollback limit', entry({ checks: [{ ...decision.checks[0], rollbackLimit: null }] }), /decisions\[1\]\.checks\[0\]\.rollbackLimit must be a number/],
  ];
  for (const [name, text, message] of cases) {
    writeFileSync(path, text);
    let thrown: unknown;
    try {
      readSavedRollout(path, plan);
    } catch (err) {
      thrown = err;
    }
    t.match(thrown, { name: 'InputError', field: '--state', message }, name);
    t.match(String((thrown as Error | undefined)?.message), /^--state: rollout state \S+ .*(fix or remove it|remove it to start over)$/, `${name}: one line naming the file`);
    t.notMatch(String((thrown as Error | undefined)?.message), /\n/);
  }
  t.throws(() => readSavedRollout(dir, plan), { name: 'InputError', message: /cannot be read/ }, 'a directory');
});
