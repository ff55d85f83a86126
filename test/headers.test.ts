/** Header handling on raw header lists (src/common/headers.ts). */
import t from 'tap';
import { endToEnd } from '../src/common/headers.js';

t.test('endToEnd: hop-by-hop, Connection-listed and dropped names go; the rest keep their case and order', async (t) => {
  const raw = ['Host', 'h', 'Connection', 'keep-alive, X-Secret', 'X-Secret', 's', 'Keep-Alive', 'timeout=5', 'Content-Type', 'text/csv', 'X-Forwarded-For', '1.2.3.4', 'TE', 'trailers', 'x-Keep', 'v'];
  t.strictSame(endToEnd(raw), ['Host', 'h', 'Content-Type', 'text/csv', 'X-Forwarded-For', '1.2.3.4', 'x-Keep', 'v']);
  t.strictSame(endToEnd(raw, new Set(['x-forwarded-for'])), ['Host', 'h', 'Content-Type', 'text/csv', 'x-Keep', 'v']);
});

t.test('endToEnd: names matched in any case, of the same length only; a listed name dropped wherever it stands', async (t) => {
  t.strictSame(endToEnd(['CONNECTION', 'close', 'Transfer-encoding', 'chunked', 'Upgrades', 'x', 'X-Forwarded-Forx', 'y'], new Set(['x-forwarded-for'])), ['Upgrades', 'x', 'X-Forwarded-Forx', 'y']);
  t.strictSame(endToEnd(['X-A', '1', 'Connection', 'x-a, X-B', 'x-b', '2', 'X-C', '3']), ['X-C', '3'], 'listed after or before the Connection header');
  const drop = new Set(['x-one']);
  t.strictSame([endToEnd(['X-One', '1', 'X-Two', '2'], drop), endToEnd(['x-one', '1'], drop)], [['X-Two', '2'], []], 'the same set again');
});
