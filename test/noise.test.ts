/** Diffy's noise cancelling: per field, baseline–canary differences against baseline–baseline ones. */
import t from 'tap';
import { compareAnswers, type Answer } from '../src/compare/answers.js';
import { discount, judgeField, MAX_FIELDS, NOISE_THRESHOLDS, NoiseTally } from '../src/compare/noise.js';

const json = (value: unknown, status = 200): Answer => ({ status, body: new TextEncoder().encode(JSON.stringify(value)) });

t.test("judgeField: real only where the canary's rate is over the baseline's own by 20% relative and 0.03% absolute (Diffy's defaults)", async (t) => {
  t.strictSame(NOISE_THRESHOLDS, { relative: 0.2, absolute: 0.0003 });
  // [raw differences, of, noise differences, of] → verdict, rate, noiseRate, relative, absolute
  const table: [[number, number, number, number], 'real' | 'noise', number, number | null, number | null, number | null, string][] = [
    [[10, 100, 0, 0], 'real', 0.1, null, null, null, 'no noise pair yet: every difference counts'],
    [[100, 100, 10, 10], 'noise', 1, 1, 0, 0, 'a timestamp: differs every time on both'],
    [[95, 100, 10, 10], 'noise', 0.95, 1, 0.05 / 1.95, 0.05, 'the canary differs less often than the baseline from itself'],
    [[100, 100, 9, 10], 'noise', 1, 0.9, 0.1 / 1.9, 0.1, 'over, but by under 20% relative'],
    [[100, 100, 5, 10], 'real', 1, 0.5, 0.5 / 1.5, 0.5, 'a random id the canary always changes, the baseline half the time'],
    [[1, 100, 0, 10], 'real', 0.01, 0, 1, 0.01, 'a field never noisy: one difference is real'],
    [[2, 10_000, 0, 1000], 'noise', 0.0002, 0, 1, 0.0002, 'but 2 in 10,000 is under 0.03% absolute'],
    [[4, 10_000, 0, 1000], 'real', 0.0004, 0, 1, 0.0004, '4 in 10,000 is over it'],
    [[0, 100, 3, 10], 'noise', 0, 0.3, 1, 0.3, 'noisy on the baseline only'],
    [[0, 0, 0, 10], 'noise', 0, 0, 0, 0, 'nothing at all'],
  ];
  const round = (x: number | null): number | null => (x === null ? null : Math.round(x * 1e12) / 1e12);
  for (const [[rd, rof, nd, nof], verdict, rate, noiseRate, relative, absolute, why] of table) {
    const j = judgeField({ differences: rd, of: rof }, { differences: nd, of: nof });
    t.strictSame({ ...j, relative: round(j.relative), absolute: round(j.absolute) }, { rate, noiseRate, relative: round(relative), absolute: round(absolute), verdict }, why);
  }
});

t.test('discount: the differences at the given fields taken out; a match when none is left', async (t) => {
  const c = compareAnswers(json({ time: 1, id: 'a', label: 'x' }), json({ time: 2, id: 'b', label: 'x' }));
  t.strictSame(c.fields, ['$.id', '$.time']);
  t.equal(discount(c, new Set(['$.other'])), c, 'nothing to take out: the same comparison');
  const partly = discount(c, new Set(['$.time']));
  t.match(partly, { match: false, fields: ['$.id'], differences: [{ path: '$.id' }] });
  t.equal(partly.differences.length, 1);
  t.match(discount(c, new Set(['$.time', '$.id'])), { match: true, fields: [], differences: [], ignored: 0, kind: 'json' });
});

t.test('NoiseTally: counts by route and field, judges with them, reports the noisy fields and how much was discounted', async (t) => {
  const tally = new NoiseTally();
  // /predict/: a timestamp differs everywhere; the label differs on the canary only in 3 of 10; 4 noise pairs.
  for (let i = 0; i < 10; i++) {
    tally.add({ route: '/predict/', fields: ['$.time', ...(i < 3 ? ['$.label'] : [])], ...(i % 3 === 0 ? { noise: ['$.time'] } : {}) });
  }
  // /other: the same timestamp, but no noise pair there; /a: two fields noisy on the baseline alone.
  tally.add({ route: '/other', fields: ['$.time'] });
  tally.add({ route: '/a', fields: [], noise: ['$.z', '$.y'] });
  const answer = (time: number, label: string): Answer => json({ time, label });
  const both = compareAnswers(answer(1, 'a'), answer(2, 'b'));
  const judged = tally.judge('/predict/', both);
  t.strictSame(judged.discounted, ['$.time']);
  t.match(judged.comparison, { match: false, fields: ['$.label'] });
  tally.discount({ route: '/predict/', fields: both.fields }, judged.discounted);
  const timeOnly = compareAnswers(answer(1, 'a'), answer(2, 'a'));
  const matched = tally.judge('/predict/', timeOnly);
  t.match(matched, { comparison: { match: true }, discounted: ['$.time'] });
  tally.discount({ route: '/predict/', fields: timeOnly.fields }, matched.discounted);
  t.strictSame(tally.judge('/other', timeOnly), { comparison: timeOnly, discounted: [] }, 'no noise pair on that route: real');
  t.strictSame(tally.judge('/unseen', timeOnly), { comparison: timeOnly, discounted: [] });
  t.strictSame(tally.judge('/predict/', compareAnswers(json({ time: 1, extra: 1 }), json({ time: 1, extra: 2 }))).discounted, [], 'a field not counted yet: real');

  const report = tally.report();
  t.strictSame(report.thresholds, NOISE_THRESHOLDS);
  t.strictSame(report.routes, { '/predict/': { compared: 10, noisePairs: 4 }, '/other': { compared: 1, noisePairs: 0 }, '/a': { compared: 1, noisePairs: 1 } });
  const onlyNoise = { differences: 0, compared: 1, noiseDifferences: 1, noisePairs: 1, rate: 0, noiseRate: 1, relative: 1, absolute: 1, verdict: 'noise', discounted: 0 };
  t.strictSame(report.fields, [
    { route: '/predict/', field: '$.time', differences: 10, compared: 10, noiseDifferences: 4, noisePairs: 4, rate: 1, noiseRate: 1, relative: 0, absolute: 0, verdict: 'noise', discounted: 2 },
    { route: '/a', field: '$.z', ...onlyNoise },
    { route: '/a', field: '$.y', ...onlyNoise },
  ]);
  t.equal(report.discounted, 1, 'one pair matched only because its one difference was noise');
  t.equal(report.untracked, 0);
});

t.test(`NoiseTally: at most ${MAX_FIELDS} fields counted; differences at more are counted as untracked, and real`, async (t) => {
  const tally = new NoiseTally();
  const fields = Array.from({ length: MAX_FIELDS + 2 }, (_, i) => `$.f${i}`);
  tally.add({ route: '/a', fields: fields.slice(0, MAX_FIELDS - 1), noise: fields.slice(0, MAX_FIELDS - 1) });
  tally.add({ route: '/b', fields: [fields[MAX_FIELDS]!], noise: [fields[MAX_FIELDS + 1]!, fields[0]!] });
  const report = tally.report();
  t.equal(report.fields.length, MAX_FIELDS - 1, "/a's, noisy; /b's one counted field differed on the canary only");
  t.equal(report.untracked, 2, "/b's noise at two more fields");
  const c = compareAnswers(json({ f1000: 1 }), json({ f1000: 2 }));
  t.strictSame(tally.judge('/b', c).discounted, [], 'an untracked field is never noise');
});
