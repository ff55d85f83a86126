/** The live weights as every writer sees them: checks, compare-and-set, listeners. */
import { pino } from 'pino';
import t from 'tap';
import { HISTORY_LIMIT, WeightStore } from '../src/weights/store.js';
import type { Snapshot } from '../src/weights/shares.js';
import { silentLog } from './helpers/net.js';

const UPSTREAMS = ['flask', 'fastapi'];
const AT = '2025-01-01T00:00:00.000Z';
const start: Snapshot = {
  state: { shares: [['fastapi', 500]], version: 1, updatedAt: AT, source: 'startup' },
  history: [{ at: AT, version: 1, source: 'startup', who: 'startup', reason: null, from: {}, to: { flask: 95, fastapi: 5 } }],
};
const store = (persist?: (s: Snapshot) => void, log = silentLog): WeightStore => new WeightStore(UPSTREAMS, start, { now: () => new Date(AT), log, persist });

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
  const unsubscribe = s.subscribe(first);
  const again = s.subscribe(first);
  s.subscribe((snap) => heard.push(`second v${snap.state.version} ${snap.state.shares[0]![1]}`));
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
  s.subscribe(() => {
    throw new Error('worker channel closed');
  });
  s.subscribe((snap) => heard.push(snap.state.version));
  t.equal(s.change([['fastapi', 700]], { source: 'admin', who: 'x' }), 'changed');
  t.same(heard, [2]);
  t.equal(s.state.version, 2);
  t.match(lines.find((l) => l.msg === 'a weights listener failed'), { err: 'worker channel closed', version: 2 });
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
