/** Header handling on raw header lists (src/common/headers.ts). */
import t from 'tap';
import { endToEnd, lowerName } from '../src/common/headers.js';

t.test('endToEnd: hop-by-hop, Connection-listed and dropped names go; the rest keep their case and order', async (t) => {
  const raw = ['Host', 'h', 'Connection', 'keep-alive, X-Secret', 'X-Secret', 's', 'Keep-Alive', 'timeout=5', 'Content-Type', 'text/csv', 'X-Forwarded-For', '1.2.3.4', 'TE', 'trailers', 'x-Keep', 'v'];
  t.strictSame(endToEnd(raw), ['Host', 'h', 'Content-Type', 'text/csv', 'X-Forwarded-For', '1.2.3.4', 'x-Keep', 'v']);
  t.strictSame(endToEnd(raw, new Set(['x-forwarded-for'])), ['Host', 'h', 'Content-Type', 'text/csv', 'x-Keep', 'v']);
});

t.test('lowerName: remembered names and, past its bound, made-up ones come out lower-case alike', async (t) => {
  const names = Array.from({ length: 2000 }, (_, i) => `X-Made-Up-${i}`);
  t.strictSame(names.map(lowerName), names.map((n) => n.toLowerCase()));
  t.strictSame(names.map(lowerName), names.map((n) => n.toLowerCase()), 'asked again: the same');
  t.equal(lowerName('Content-Type'), 'content-type');
});
