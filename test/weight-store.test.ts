/** The live weights as every writer sees them: checks, compare-and-set, listeners. */
import t from 'tap';
import { WeightStore } from '../src/weight-store.js';
import type { Snapshot } from '../src/weights.js';
import { silentLog } from './helpers/net.js';

const UPSTREAMS = ['flask', 'fastapi'];
const AT = '2025-01-01T00:00:00.000Z';
const start: Snapshot = {
  state: { shares: [['fastapi', 500]], version: 1, updatedAt: AT, source: 'startup' },
  history: [{ at: AT, version: 1, source: 'startup', who: 'startup', reason: null, from: {}, to: { flask: 95, fastapi: 5 } }],
};
const store = (persist?: (s: Snapshot) => void): WeightStore => new WeightStore(UPSTREAMS, start, { now: () => new Date(AT), log: silentLog, persist });

t.test('change checks the shares whoever calls it; a bad change changes nothing', async (t) => {
  const s = store();
  t.throws(() => s.change([['fastapi', 10001]], { source: 'admin', who: 'x' }), { name: 'InputError', field: 'weights.fastapi' });
  t.throws(() => s.change([['canary', 100]], { source: 'admin', who: 'x' }), { name: 'InputError', field: 'weights.canary' });
  t.same(s.state, start.state);
  t.equal(s.history.length, 1);
});
