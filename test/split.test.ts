import t from 'tap';
import { InputError } from '../src/common/input-error.js';
import { parsePercent, toPercent } from '../src/common/percent.js';
import { compileSplit, hashKey, pickByHash } from '../src/proxy/split.js';
import { checkShares, sameShares, type Share } from '../src/weights/shares.js';

t.test('parsePercent: nginx two-decimal percentages as hundredths', async (t) => {
  const good: [unknown, number][] = [
    ['0', 0], [0, 0], ['1', 100], ['5%', 500], [37.55, 3755], ['37.5', 3750], ['99.99', 9999],
    ['100', 10000], [' 7 ', 700], ['0.01', 1], ['12.', NaN],
  ];
  for (const [input, want] of good) {
    if (Number.isNaN(want)) {
      t.throws(() => parsePercent(input, 'w'), InputError, `${String(input)} rejected`);
    } else {
      t.equal(parsePercent(input, 'w'), want, `${String(input)} → ${want}`);
    }
  }
  const bad: [unknown, RegExp][] = [
    ['-1', /not a percentage/], ['37.555', /at most two decimals/], ['100.01', /over 100%/],
    ['abc', /not a percentage/], [null, /must be a number/], [true, /must be a number/], ['1e2', /not a percentage/],
    [0.1 + 0.2, /at most two decimals/], ['', /not a percentage/],
  ];
  for (const [input, message] of bad) {
    t.throws(() => parsePercent(input, 'weights.fastapi'), { name: 'InputError', message }, `${String(input)} rejected`);
  }
  t.throws(() => parsePercent('x', 'weights.fastapi'), { field: 'weights.fastapi', message: /^weights\.fastapi: / });
  t.equal(toPercent(3755), 37.55);
});

t.test('compileSplit builds nginx thresholds', async (t) => {
  // nginx: last += percent * 0xffffffff / 10000 (integer division, per line), star = 0.
  t.same(compileSplit([['fastapi', 100]], 'flask'), {
    upstreams: ['fastapi', 'flask'],
    thresholds: [42949672, 0],
  });
  t.same(compileSplit([['a', 1000], ['b', 2550]], 'c'), {
    upstreams: ['a', 'b', 'c'],
    thresholds: [429496729, 429496729 + 1095216660, 0],
  });
  t.same(compileSplit([['a', 6000], ['b', 4000]], undefined), {
    upstreams: ['a', 'b'],
    thresholds: [2576980377, 2576980377 + 1717986918],
  });
  t.same(compileSplit([], 'flask'), { upstreams: ['flask'], thresholds: [0] }, 'no weights: all to the baseline');
  t.same(compileSplit([['fastapi', 0], ['canary2', 500]], 'flask'), compileSplit([['canary2', 500]], 'flask'), '0% is left out');
  t.same(compileSplit([['fastapi', 10000]], 'flask').thresholds, [0xffffffff, 0]);
});

t.test('checkShares: the one check of split_clients lines', async (t) => {
  const upstreams = ['flask', 'fastapi', 'canary'];
  const good: [string, Share[]][] = [
    ['none', []],
    ['one', [['fastapi', 500]]],
    ['exactly 100%', [['fastapi', 6000], ['canary', 4000]]],
    ['zero shares', [['fastapi', 0], ['canary', 0]]],
    ['the baseline listed', [['flask', 5000], ['fastapi', 5000]]],
  ];
  for (const [name, shares] of good) t.doesNotThrow(() => checkShares(shares, upstreams, 'weights'), name);
  const bad: [string, Share[], string, RegExp][] = [
    ['unknown upstream', [['nginx', 100]], 'w.nginx', /^w\.nginx: "nginx" is not an upstream \(have: flask, fastapi, canary\)$/],
    ['twice', [['fastapi', 100], ['fastapi', 0]], 'w.fastapi', /^w\.fastapi: "fastapi" is weighted twice$/],
    ['fractional', [['fastapi', 4.5]], 'w.fastapi', /^w\.fastapi: 4\.5 is not a whole number of hundredths of a percent from 0 to 10000$/],
    ['negative', [['fastapi', -1]], 'w.fastapi', /-1 is not a whole number/],
    ['over 100% alone', [['fastapi', 10001]], 'w.fastapi', /10001 is not a whole number/],
    ['not a number', [['fastapi', NaN]], 'w.fastapi', /NaN is not a whole number/],
    ['total over 100%', [['fastapi', 6000], ['canary', 4001]], 'w', /^w: weights add up to 100\.01%, over 100%$/],
    ['a line checked before the total', [['fastapi', 9000], ['nginx', 9000]], 'w.nginx', /not an upstream/],
  ];
  for (const [name, shares, field, message] of bad) {
    t.throws(() => checkShares(shares, upstreams, 'w'), { name: 'InputError', field, message }, name);
  }
});

t.test('pickByHash takes the first bound above the hash; * takes the rest', async (t) => {
  const table = compileSplit([['a', 1000], ['b', 2550]], 'c');
  const cases: [number, string | undefined][] = [
    [0, 'a'], [429496728, 'a'], [429496729, 'b'], [1524713388, 'b'], [1524713389, 'c'], [0xffffffff, 'c'],
  ];
  for (const [hash, want] of cases) t.equal(pickByHash(table, hash), want, `hash ${hash} → ${want}`);
  const full = compileSplit([['a', 6000], ['b', 4000]], undefined);
  t.equal(pickByHash(full, 0xffffffff), undefined, 'without *, the top hash matches nothing, as in nginx');
  t.equal(pickByHash(full, 0xfffffffe), 'b');
});

t.test('hashKey is MurmurHash2 with seed 0 over bytes (nginx ngx_murmur_hash2)', async (t) => {
  // Expected values from nginx's own ngx_murmur_hash2 (src/core/ngx_murmurhash.c) compiled
  // as C. The keys are ${remote_addr}${uri} values from test/fixtures/nginx-golden.json, and
  // these hashes put each in the buckets nginx chose for it there. Lengths 5 to 8 take every
  // tail branch (length % 4), with bytes over 0x7f in each.
  const known: [hex: string, hash: number][] = [
    ['3a3a312ff1', 2349684840], // "::1/" 0xf1 (from /%2e/%F1)
    ['3a3a312fc2a0', 3761557334], // "::1/" U+00A0 in UTF-8
    ['3a3a312f763188', 3256769772], // "::1/v1" 0x88
    ['3a3a312f2e2ec3a9', 2235478250], // "::1/..é" in UTF-8
  ];
  for (const [hex, want] of known) t.equal(hashKey(Buffer.from(hex, 'hex')), want, hex);
  t.equal(hashKey(new Uint8Array()), 0, 'empty key');
  t.equal(hashKey(new TextEncoder().encode('127.0.0.1/predict/')), 2059224007, 'a plain Uint8Array, 18 bytes');
});

t.test('sameShares: same lines in the same order', async (t) => {
  const cases: [Share[], Share[], boolean][] = [
    [[], [], true],
    [[['fastapi', 500]], [['fastapi', 500]], true],
    [[['fastapi', 500]], [['fastapi', 600]], false],
    [[['fastapi', 500]], [['canary', 500]], false],
    [[['a', 100], ['b', 200]], [['b', 200], ['a', 100]], false],
    [[['fastapi', 500]], [['fastapi', 500], ['canary', 0]], false],
  ];
  for (const [a, b, want] of cases) t.equal(sameShares(a, b), want, `${JSON.stringify(a)} ~ ${JSON.stringify(b)}`);
});
