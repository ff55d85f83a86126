/** The live weights as every writer sees them: checks, compare-and-set, listeners. */
import { pino } from 'pino';
import t from 'tap';
import { HISTORY_LIMIT, WeightStore, type SnapshotSaver } from '../src/weights/store.js';
import { until } from './helpers/wait.js';
import type { Snapshot } from '../src/weights/shares.js';
import { quietLists, silentLog } from './helpers/net.js';

const UPSTREAMS = ['flask', 'fastapi'];
const AT = '2025-01-01T00:00:00.000Z';
const start: Snapshot = {
  state: { shares: [['fastapi', 500]], version: 1, updatedAt: AT, source: 'startup' },
  history: [{ at: AT, version: 1, source: 'startup', who: 'startup', reason: null, from: {}, to: { flask: 95, fastapi: 5 } }],
};
/** A store whose saves go to `save` (none: no state file). */
const store = (save?: (s: Snapshot) => void, log = silentLog): WeightStore =>
  new WeightStore(UPSTREAMS, start, { now: () => new Date(AT), log, subscriberErrors: quietLists.errors, persist: save === undefined ? undefined : { save, trySave: async () => {}, flush: async () => undefined } });

/** A state file in memory whose trySave the test settles: each one waits in `trials`. */
function heldSaver() {
  const trials: { snapshot: Snapshot; written: () => void; failed: (err: Error) => void }[] = [];
  const saved: Snapshot[] = [];
  const saver: SnapshotSaver = {
    save: (snapshot) => void saved.push(snapshot),
    trySave: (snapshot) => new Promise((written, failed) => trials.push({ snapshot, written, failed })),
    flush: async () => undefined,
  };
  return { saver, trials, saved };
}

t.test('change checks the shares whoever calls it; a bad change changes nothing', async (t) => {
  const s = store();
  t.throws(() => s.change([['fastapi', 10001]], { source: 'admin', who: 'x' }), { name: 'InputError', field: 'weights.fastapi' });
  t.throws(() => s.change([['canary', 100]], { source: 'admin', who: 'x' }), { name: 'InputError', field: 'weights.canary' });
  t.same(s.state, start.state);
  t.equal(s.history.length, 1);
});

t.test('subscribe: every accepted change, after persisting, in order; unsubscribe stops it', async (t) => {
  const heard: string[] = [];
  const s = store((snap) => heard.push(`persist v${snap.state.version}`));
  const first = (snap: Snapshot): void => void heard.push(`first v${snap.state.version} ${snap.history.at(-1)!.who}`);
  const unsubscribe = s.subscribe('first', first);
  const again = s.subscribe('first', first);
  s.subscribe('second', (snap) => heard.push(`second v${snap.state.version} ${snap.state.shares[0]![1]}`));
  s.change([['fastapi', 1000]], { source: 'admin', who: 'alice' });
  s.change([['fastapi', 1000]], { source: 'admin', who: 'bob' }); // no change: nobody hears
  unsubscribe();
  unsubscribe();
  s.change([['fastapi', 0]], { source: 'env', who: 'carol' });
  t.same(heard, [
    'persist v2', 'first v2 alice', 'first v2 alice', 'second v2 1000',
    'persist v3', 'first v3 carol', 'second v3 0',
  ], 'the same function subscribed twice is two subscriptions, each ended on its own');
  again();
});

t.test('a listener that throws is logged; the change stands and the others still hear', async (t) => {
  const lines: { msg: string; err?: string; version?: number }[] = [];
  const s = store(undefined, pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string }) }));
  const heard: number[] = [];
  s.subscribe('broken', () => {
    throw new Error('worker channel closed');
  });
  s.subscribe('test', (snap) => heard.push(snap.state.version));
  t.equal(s.change([['fastapi', 700]], { source: 'admin', who: 'x' }), 'changed');
  t.same(heard, [2]);
  t.equal(s.state.version, 2);
  t.match(lines.find((l) => l.msg === 'a subscriber failed (drum_subscriber_errors_total)'), { subscriber: 'weights/broken', err: 'worker channel closed' });
});

t.test('change with expectVersion: only at that version; a conflict changes nothing and tells nobody', async (t) => {
  const heard: number[] = [];
  const s = store((snap) => heard.push(snap.state.version));
  const alice = { source: 'admin', who: 'alice' } as const;
  t.equal(s.change([['fastapi', 1000]], alice, { expectVersion: 1 }), 'changed');
  t.equal(s.change([['fastapi', 2000]], alice, { expectVersion: 1 }), 'conflict');
  t.equal(s.change([['fastapi', 1000]], alice, { expectVersion: 1 }), 'conflict', 'a stale version is a conflict even when nothing would change');
  t.equal(s.change([['fastapi', 1000]], alice, { expectVersion: 2 }), 'unchanged');
  t.equal(s.change([['fastapi', 1000]], alice), 'unchanged');
  t.same([s.state.version, s.state.shares, s.history.length, heard], [2, [['fastapi', 1000]], 2, [2]]);
  t.equal(s.change([['fastapi', 3000]], alice, { expectVersion: undefined }), 'changed', 'undefined: no condition');
});

t.test('the audit trail keeps the last HISTORY_LIMIT changes', async (t) => {
  const s = store();
  for (let i = 1; i <= HISTORY_LIMIT; i++) s.change([['fastapi', i % 2 === 0 ? 500 : 600]], { source: 'admin', who: `w${i}` });
  t.equal(s.history.length, HISTORY_LIMIT);
  t.match([s.history[0], s.history.at(-1)], [{ version: 2, who: 'w1' }, { version: HISTORY_LIMIT + 1, who: `w${HISTORY_LIMIT}` }]);
});

t.test('changeSaved: applied only once its snapshot is on disk; a failed write changes nothing', async (t) => {
  const { saver, trials, saved } = heldSaver();
  const s = new WeightStore(UPSTREAMS, start, { now: () => new Date(AT), log: silentLog, subscriberErrors: quietLists.errors, persist: saver });
  const heard: number[] = [];
  s.subscribe('test', (snap) => heard.push(snap.state.version));
  const alice = { source: 'admin', who: 'alice', reason: 'step 2' } as const;

  const first = s.changeSaved([['fastapi', 1000]], alice);
  await until(() => trials.length === 1);
  t.match(trials[0]!.snapshot, { state: { version: 2, shares: [['fastapi', 1000]], source: 'admin' }, history: [{ version: 1 }, { version: 2, who: 'alice', reason: 'step 2', from: { fastapi: 5 }, to: { fastapi: 10 } }] });
  t.equal(s.state.version, 1, 'not applied while it is being written');
  trials[0]!.written();
  t.equal(await first, 'changed');
  t.same([s.state.version, s.history.length, heard, saved], [2, 2, [2], []], 'applied, listeners told, not saved a second time');

  const second = s.changeSaved([['fastapi', 2000]], alice);
  await until(() => trials.length === 2);
  trials[1]!.failed(new Error('ENOSPC'));
  await t.rejects(second, { message: 'ENOSPC' });
  t.same([s.state.version, s.history.length, heard], [2, 2, [2]], 'nothing changed');

  t.equal(await s.changeSaved([['fastapi', 1000]], alice), 'unchanged', 'refused before any write');
  t.equal(await s.changeSaved([['fastapi', 3000]], alice, { expectVersion: 1 }), 'conflict');
  await t.rejects(s.changeSaved([['fastapi', 10001]], alice), { name: 'InputError' });
  t.equal(trials.length, 2);
});

t.test('changeSaved: one at a time; a change by another writer while it is written makes it a conflict', async (t) => {
  const { saver, trials, saved } = heldSaver();
  const s = new WeightStore(UPSTREAMS, start, { now: () => new Date(AT), log: silentLog, subscriberErrors: quietLists.errors, persist: saver });
  const alice = { source: 'admin', who: 'alice' } as const;
  const a = s.changeSaved([['fastapi', 1000]], alice);
  const b = s.changeSaved([['fastapi', 2000]], { source: 'admin', who: 'bob' });
  await until(() => trials.length === 1);
  await new Promise((r) => setTimeout(r, 20));
  t.equal(trials.length, 1, "bob's waits for alice's");
  trials[0]!.written();
  await until(() => trials.length === 2);
  t.match(trials[1]!.snapshot, { state: { version: 3 }, history: [{}, { who: 'alice' }, { who: 'bob', from: { fastapi: 10 } }] }, "built on alice's change");
  // The rollout rolls back meanwhile: bob's was decided on weights no longer in force.
  t.equal(s.change([['fastapi', 0]], { source: 'rollout', who: 'rollout' }), 'changed');
  trials[1]!.written();
  t.same([await a, await b], ['changed', 'conflict']);
  t.same([s.state.version, s.state.shares, saved.map((x) => x.state.version)], [3, [['fastapi', 0]], [3]], "the rollout's change stands and is saved");
});

t.test('changeSaved and saved() without a state file: as change()', async (t) => {
  const s = store();
  t.equal(await s.changeSaved([['fastapi', 1000]], { source: 'admin', who: 'x' }), 'changed');
  t.equal(s.state.version, 2);
  t.equal(await s.saved(), undefined);
});
