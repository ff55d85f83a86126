/** Baseline vs canary answers: JSON as deepdiff sees it, text, bytes; ignore paths, fields, numeric tolerance. */
import t from 'tap';
import {
  compareAnswers,
  DEFAULT_TOLERANCE,
  formatPath,
  isClose,
  MAX_LISTED,
  parseIgnorePath,
  parseTolerance,
  type Answer,
  type CompareOptions,
} from '../src/compare/answers.js';

const utf8 = new TextEncoder();
const text = (body: string, status = 200): Answer => ({ status, body: utf8.encode(body), contentType: 'text/plain' });
const json = (value: unknown, status = 200): Answer => ({ status, body: utf8.encode(JSON.stringify(value)), contentType: 'application/json' });
const bytes = (list: number[], status = 200): Answer => ({ status, body: Uint8Array.from(list), contentType: 'application/octet-stream' });
const same = (a: Answer, b: Answer, opts?: CompareOptions): boolean => compareAnswers(a, b, opts).match;

t.test('equal JSON with keys and lists reordered matches', async (t) => {
  const baseline = text('{"predictions": [0.25, 0.75, 0.5], "meta": {"model": "iris", "labels": ["a", "b"]}}');
  const canary = text('{"meta":{"labels":["b","a"],"model":"iris"},"predictions":[0.5,0.25,0.75]}');
  t.strictSame(compareAnswers(baseline, canary), { match: true, kind: 'json', differences: [], ignored: 0, fields: [] });
});

t.test('numbers: equal within the tolerance, |canary − baseline| ≤ absolute + relative·|baseline| (numpy isclose)', async (t) => {
  // The default, absolute 1e-5: what the seed's 5 places took as equal is equal; what they split
  // at a rounding boundary (0.123454 | 0.123456) is equal too; more than 1e-5 apart is not.
  // numpy: np.isclose(canary, baseline, rtol=0, atol=1e-5)
  const table: [number, number, boolean][] = [
    [0.1234561, 0.1234564, true],
    [0.12345, 0.12346, true],
    [0.123454, 0.123456, true],
    [0.12345, 0.123461, false],
    [1234.123451, 1234.123459, true],
    [1234.12345, 1234.1235, false],
    [-0.000001, 0.000001, true],
    [1e21, 1e21, true],
    [1e21, 1e21 + 2 ** 17, false],
    [0, 1e-5, true],
  ];
  for (const [baseline, canary, equal] of table) {
    t.equal(same(json({ x: baseline }), json({ x: canary })), equal, `${baseline} vs ${canary}`);
    t.equal(isClose(baseline, canary, DEFAULT_TOLERANCE), equal);
  }
  // Relative: the baseline is the reference, as isclose's b.
  const relative = { relative: 0.01, absolute: 0 };
  t.ok(same(json([100]), json([101]), { tolerance: relative }));
  t.notOk(same(json([100]), json([101.5]), { tolerance: relative }));
  t.ok(isClose(100, 101, relative));
  t.notOk(isClose(1, 1.01 + 1e-9, relative), '|b| = 1, so 0.01 is the most');
  t.ok(isClose(Infinity, Infinity, relative), "JSON's 1e999 on both sides");
  t.notOk(isClose(Infinity, -Infinity, relative));
  t.notOk(isClose(1e308, Infinity, relative));
  t.notOk(same(json([0.5]), json([0.50001]), { tolerance: { relative: 0, absolute: 0 } }), 'exact');
  // Within the tolerance at any depth and in any order: unequal elements are paired, most alike first.
  t.ok(same(json({ predictions: [0.25, 0.75], rows: [{ p: 0.1 }] }), json({ predictions: [0.7500001, 0.2500002], rows: [{ p: 0.1000003 }] })));
  t.ok(same(json([[0.1, 0.9], [0.3, 0.7]]), json([[0.1000001, 0.9], [0.3, 0.6999999]])));
  t.throws(() => compareAnswers(json(1), json(1), { tolerance: { relative: -1, absolute: 0 } }), /a tolerance is two finite numbers from 0 up, not -1 and 0/);
  t.throws(() => compareAnswers(json(1), json(1), { tolerance: { relative: 0, absolute: NaN } }), RangeError);
});

t.test('parseTolerance: numbers or strings of them, defaults, a clear error naming the field', async (t) => {
  const fields = { relative: '--relative', absolute: '--absolute' };
  t.strictSame(parseTolerance(undefined, undefined, fields), DEFAULT_TOLERANCE);
  t.strictSame(parseTolerance('1e-6', 0, fields), { relative: 1e-6, absolute: 0 });
  t.strictSame(parseTolerance(0.5, ' 2 ', fields), { relative: 0.5, absolute: 2 });
  const bad: [unknown, unknown, RegExp][] = [
    ['-1', undefined, /^--relative: "-1" is not a number from 0 up, e\.g\. 1e-6$/],
    ['x', undefined, /^--relative: "x"/],
    ['', undefined, /^--relative: ""/],
    [undefined, 'Infinity', /^--absolute: "Infinity"/],
    [undefined, true, /^--absolute: "true"/],
  ];
  for (const [relative, absolute, message] of bad) t.throws(() => parseTolerance(relative, absolute, fields), { name: 'InputError', message }, String(message));
});

t.test('lists of objects are compared ignoring order, at any depth', async (t) => {
  const a = { data: [{ id: 1, tags: ['x', 'y'] }, { id: 2, tags: [] }] };
  const b = { data: [{ tags: [], id: 2 }, { tags: ['y', 'x'], id: 1 }] };
  t.ok(same(json(a), json(b)));
  // Reordered and changed: reported at the baseline's index of the element it pairs with.
  const changed = compareAnswers(json({ a: [{ x: 1, y: 2 }, { x: 3 }] }), json({ a: [{ x: 3 }, { y: 3, x: 1 }] }));
  t.strictSame(changed.differences, [{ path: '$.a[0].y', baseline: 2, canary: 3, kind: 'changed', field: '$.a[*].y' }]);
  // Numbers pair with the nearest: 0.1 with 0.15, 0.9 with 0.85.
  t.strictSame(
    compareAnswers(json([0.1, 0.9, 0.5]), json([0.85, 0.5, 0.15])).differences.map((d) => [d.path, d.baseline, d.canary]),
    [['$[0]', 0.1, 0.15], ['$[1]', 0.9, 0.85]],
  );
  // Objects pair with the one whose fields differ least.
  const rows = compareAnswers(
    json([{ id: 'a', p: 1, q: 1 }, { id: 'b', p: 2, q: 2 }]),
    json([{ id: 'b', p: 2, q: 9 }, { id: 'a', p: 1, q: 8 }]),
  );
  t.strictSame(rows.differences.map((d) => [d.path, d.canary]), [['$[0].q', 8], ['$[1].q', 9]]);
  // Nested lists pair with the one sharing most elements; a new element there is "added".
  const lists = compareAnswers(json([[1, 2], [7, 8]]), json([[7, 8, 9], [1, 2]]));
  t.strictSame(lists.differences, [{ path: '$[1][2]', baseline: undefined, canary: 9, kind: 'added', field: '$[*][*]' }]);
});

t.test('lists are multisets: repetitions count (stricter than deepdiff)', async (t) => {
  // deepdiff's ignore_order without report_repetition: DeepDiff([1, 2, 2], [2, 1, 1], ignore_order=True) -> {}
  const r = compareAnswers(json([1, 2, 2]), json([2, 1, 1]));
  t.strictSame(r.differences, [{ path: '$[2]', baseline: 2, canary: 1, kind: 'changed', field: '$[*]' }]);
  t.strictSame(compareAnswers(json([1, 2]), json([1, 2, 2])).differences, [{ path: '$[2]', baseline: undefined, canary: 2, kind: 'added', field: '$[*]' }]);
  t.strictSame(compareAnswers(json(['a', 'b', 'c']), json(['c'])).differences, [
    { path: '$[0]', baseline: 'a', canary: undefined, kind: 'removed', field: '$[*]' },
    { path: '$[1]', baseline: 'b', canary: undefined, kind: 'removed', field: '$[*]' },
  ]);
  t.strictSame(compareAnswers(json(['a', 'b', true]), json(['c', 'a', true])).differences, [{ path: '$[1]', baseline: 'b', canary: 'c', kind: 'changed', field: '$[*]' }]);
  // Equally unlike: the lower canary index pairs first.
  t.strictSame(compareAnswers(json(['a', 'b']), json(['d', 'a', 'c'])).differences, [
    { path: '$[1]', baseline: 'b', canary: 'd', kind: 'changed', field: '$[*]' },
    { path: '$[2]', baseline: undefined, canary: 'c', kind: 'added', field: '$[*]' },
  ]);
  t.strictSame(compareAnswers(json([{ a: 1 }]), json(['x'])).differences, [{ path: '$[0]', baseline: { a: 1 }, canary: 'x', kind: 'type', field: '$[*]' }]);
});

t.test('types, keys added and removed, odd keys', async (t) => {
  const r = compareAnswers(
    json({ same: null, n: 1, s: 'x', b: true, gone: 1, 'a key': { "it's": 1 }, o: {}, l: [] }),
    json({ same: null, n: '1', s: 'y', b: false, new: 2, 'a key': { "it's": 2 }, o: [], l: {} }),
  );
  t.strictSame(r.differences, [
    { path: "$['a key']['it\\'s']", baseline: 1, canary: 2, kind: 'changed', field: "$['a key']['it\\'s']" },
    { path: '$.b', baseline: true, canary: false, kind: 'changed', field: '$.b' },
    { path: '$.gone', baseline: 1, canary: undefined, kind: 'removed', field: '$.gone' },
    { path: '$.l', baseline: [], canary: {}, kind: 'type', field: '$.l' },
    { path: '$.n', baseline: 1, canary: '1', kind: 'type', field: '$.n' },
    { path: '$.new', baseline: undefined, canary: 2, kind: 'added', field: '$.new' },
    { path: '$.o', baseline: {}, canary: [], kind: 'type', field: '$.o' },
    { path: '$.s', baseline: 'x', canary: 'y', kind: 'changed', field: '$.s' },
  ]);
  // "__proto__" and "constructor" are keys like any other.
  t.notOk(same(text('{"__proto__": 1, "constructor": 2}'), text('{"__proto__": 1, "constructor": 3}')));
  t.ok(same(text('{"__proto__": {"a": 1}}'), text('{"__proto__": {"a": 1}}')));
  // JSON has one number type: 1 and 1.0 are equal here (deepdiff on Python's parse: a type change).
  t.ok(same(text('[1]'), text('[1.0]')));
});

t.test('status: any equal status compares the bodies; a different one is a difference', async (t) => {
  const error = { message: 'Input data is not valid', details: ['column x'] };
  t.strictSame(compareAnswers(json(error, 500), json(error, 500)), { match: true, kind: 'json', differences: [], ignored: 0, fields: [] });
  const validation = compareAnswers(json({ message: 'field required' }, 422), json({ message: 'value is not a valid float' }, 422));
  t.strictSame(validation.differences, [{ path: '$.message', baseline: 'field required', canary: 'value is not a valid float', kind: 'changed', field: '$.message' }]);
  t.equal(validation.match, false);
  const r = compareAnswers(json({ predictions: [1] }), json({ message: 'Internal Server Error' }, 500));
  t.equal(r.match, false);
  t.strictSame(r.differences.map((d) => [d.path, d.kind]), [
    ['$status', 'status'],
    ['$.message', 'added'],
    ['$.predictions', 'removed'],
  ]);
  t.match(r.differences[0], { baseline: 200, canary: 500 });
  t.ok(same(text('', 204), text('', 204)), 'empty bodies');
});

t.test('bytes: a non-UTF-8 body is compared byte for byte', async (t) => {
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0xff, 0x00];
  t.strictSame(compareAnswers(bytes(png), bytes(png)), { match: true, kind: 'bytes', differences: [], ignored: 0, fields: [] });
  const changed = [...png];
  changed[8] = 0xfe;
  t.strictSame(compareAnswers(bytes(png), bytes(changed)).differences, [
    { path: '$[byte 8]', baseline: { length: 10, byte: 0xff }, canary: { length: 10, byte: 0xfe }, kind: 'bytes', field: '$' },
  ]);
  t.strictSame(compareAnswers(bytes(png), bytes(png.slice(0, 9))).differences, [
    { path: '$[byte 9]', baseline: { length: 10, byte: 0 }, canary: { length: 9, byte: null }, kind: 'bytes', field: '$' },
  ]);
  // One side UTF-8, the other not: bytes too (the reference script raised here).
  const r = compareAnswers(text('{"a": 1}'), bytes([0x7b, 0xc3]));
  t.match(r, { match: false, kind: 'bytes', differences: [{ path: '$[byte 1]', kind: 'bytes' }] });
});

t.test('text: UTF-8 bodies that are not both JSON are compared as strings', async (t) => {
  const csv = 'setosa,versicolor\n0.9,0.1\n0.2,0.8\n';
  t.strictSame(compareAnswers(text(csv), text(csv)), { match: true, kind: 'text', differences: [], ignored: 0, fields: [] });
  const other = 'setosa,versicolor\n0.9,0.1\n0.3,0.7\n';
  t.strictSame(compareAnswers(text(csv), text(other)).differences, [{ path: '$', baseline: csv, canary: other, kind: 'changed', field: '$' }]);
  // One JSON, one not: text, unequal.
  t.match(compareAnswers(text('{"a": 1}'), text('a\n1\n')), { match: false, kind: 'text', differences: [{ path: '$', kind: 'changed' }] });
  // A byte order mark is kept, so a body that gains one differs (and is no longer JSON).
  t.match(compareAnswers(text('[1]'), text('\uFEFF[1]')), { match: false, kind: 'text' });
});

t.test('ignore paths: exact, [*], .., quoted, $status; a place and everything under it', async (t) => {
  const baseline = json({ meta: { time: 1, host: 'a' }, predictions: [{ id: 'x1', v: 1 }, { id: 'x2', v: 2 }], deep: { a: { timestamp: 1 } } });
  const canary = json({ meta: { time: 2, host: 'b' }, predictions: [{ id: 'y1', v: 1 }, { id: 'y2', v: 2 }], deep: { a: { timestamp: 2 } } });
  const all = compareAnswers(baseline, canary);
  t.equal(all.differences.length, 5);
  const table: [string[], number, number][] = [
    [['$.meta.time'], 4, 1],
    [['$.meta'], 3, 2],
    [['$.meta.*'], 3, 2],
    [['$.predictions[*].id'], 3, 2],
    [['$.predictions[0].id'], 4, 1],
    [['$..timestamp'], 4, 1],
    [['$..*'], 0, 5],
    [["$['meta'][\"host\"]"], 4, 1],
    [['$.predictions.id'], 5, 0],
    [['$.meta.time', '$.meta.host', '$.predictions', '$.deep'], 0, 5],
    [['$'], 0, 5],
  ];
  for (const [ignore, counted, ignored] of table) {
    const r = compareAnswers(baseline, canary, { ignore });
    t.equal(r.differences.length, counted, `${ignore.join(' ')} counted`);
    t.equal(r.ignored, ignored, `${ignore.join(' ')} ignored`);
    t.equal(r.match, counted === 0);
  }
  // Ignoring a place does not ignore what is above it.
  t.notOk(same(json({ meta: { time: 1 } }), json({}), { ignore: ['$.meta.time'] }));
  // $..name needs the name: a shallower path is not covered.
  t.notOk(same(json({ a: 1 }), json({ a: 2 }), { ignore: ['$..b'] }));
  t.notOk(same(json({ a: [1] }), json({ a: [2] }), { ignore: ['$.a[1]'] }));
  t.ok(same(json({ a: [[1]] }), json({ a: [[2]] }), { ignore: ['$..[0]'] }));
  t.strictSame(compareAnswers(json(1), json(1, 422), { ignore: ['$status'] }), { match: true, kind: 'json', differences: [], ignored: 1, fields: [] });
  t.notOk(same(json(1), json(2, 422), { ignore: ['$status'] }), 'the body still counts');
  t.notOk(same(json(1), json(1, 422), { ignore: ['$'] }), '$ is the body, not the status');
  t.ok(same(bytes([0xff, 1]), bytes([0xff, 2]), { ignore: ['$'] }), 'a bytes difference is at $');
});

t.test('parseIgnorePath: what it accepts, and errors that say where', async (t) => {
  t.strictSame(parseIgnorePath('$..items[*].id').segments, [
    { step: { kind: 'key', name: 'items' }, deep: true },
    { step: { kind: 'anyIndex' }, deep: false },
    { step: { kind: 'key', name: 'id' }, deep: false },
  ]);
  t.strictSame(parseIgnorePath(String.raw`$['a\'b\\']..['c'][3]..*`).segments, [
    { step: { kind: 'key', name: "a'b\\" }, deep: false },
    { step: { kind: 'key', name: 'c' }, deep: true },
    { step: { kind: 'index', index: 3 }, deep: false },
    { step: { kind: 'anyKey' }, deep: true },
  ]);
  t.match(parseIgnorePath('$status'), { status: true, segments: [] });
  const bad: [string, string][] = [
    ['meta.time', 'ignore path "meta.time": expected "$" at offset 0'],
    ['$meta', 'ignore path "$meta": expected ".", ".." or "[" at offset 1'],
    ['$.', 'ignore path "$.": expected a name or "*" at offset 2'],
    ['$..', 'ignore path "$..": expected a name or "*" at offset 3'],
    ['$.[0]', 'ignore path "$.[0]": expected a name or "*" at offset 2'],
    ['$.a-b', 'ignore path "$.a-b": expected ".", ".." or "[" at offset 3'],
    ['$[x]', 'ignore path "$[x]": expected an index, "*" or a quoted key at offset 2'],
    ['$[1', 'ignore path "$[1": expected "]" at offset 3'],
    ["$['a'", `ignore path "$['a'": expected "]" at offset 5`],
    ["$['a", `ignore path "$['a": unterminated quoted key at offset 1`],
    ["$['a\\", `ignore path "$['a\\\\": unterminated quoted key at offset 1`],
  ];
  for (const [path, message] of bad) t.throws(() => parseIgnorePath(path), { message }, path);
  t.throws(() => compareAnswers(json(1), json(1), { ignore: ['$.ok', 'bad'] }), /ignore path "bad"/);
});

t.test('formatPath writes paths that parse back to themselves', async (t) => {
  const places: (string | number)[][] = [[], ['a', 0, 'b_2'], ['a b', "it's", 'back\\slash', '', '1x', 'é'], [3, 4]];
  const json = places.map((place) => formatPath(place));
  t.strictSame(json, ['$', '$.a[0].b_2', String.raw`$['a b']['it\'s']['back\\slash']['']['1x']['é']`, '$[3][4]']);
  for (const [n, place] of places.entries()) {
    const pattern = parseIgnorePath(json[n]!);
    t.strictSame(
      pattern.segments.map((s) => (s.step.kind === 'key' ? s.step.name : s.step.kind === 'index' ? s.step.index : s.step.kind)),
      place,
    );
  }
});

t.test('fields: each difference at its place with every index as [*]; all of them, listed or not, each once', async (t) => {
  const answer = (timestamp: string, labels: string[], status = 200) => json({ predictions: labels.map((label, i) => ({ label, i })), meta: { timestamp } }, status);
  const r = compareAnswers(answer('t1', ['a', 'b', 'c']), answer('t2', ['x', 'y', 'c'], 503));
  t.strictSame(r.fields, ['$status', '$.meta.timestamp', '$.predictions[*].label']);
  t.strictSame(r.differences.map((d) => [d.path, d.field]), [
    ['$status', '$status'],
    ['$.meta.timestamp', '$.meta.timestamp'],
    ['$.predictions[0].label', '$.predictions[*].label'],
    ['$.predictions[1].label', '$.predictions[*].label'],
  ]);
  t.strictSame(compareAnswers(answer('t1', ['a']), answer('t2', ['x']), { ignore: ['$.meta'] }).fields, ['$.predictions[*].label'], 'an ignored difference has no field');
  t.strictSame(compareAnswers(bytes([0xff, 1]), bytes([0xff, 2])).fields, ['$'], 'bytes: the whole body');
  t.strictSame(compareAnswers(text('a'), text('b')).fields, ['$'], 'text: the whole body');
  // A field reads as an ignore path that covers it, and a key looking like an index stays a key.
  t.strictSame(compareAnswers(json({ '[1]': [1] }), json({ '[1]': [2] })).fields, ["$['[1]'][*]"]);
  t.ok(same(json({ '[1]': [1] }), json({ '[1]': [2] }), { ignore: ["$['[1]'][*]"] }));
  const many = compareAnswers(json(Array.from({ length: 60 }, (_, i) => ({ i, v: 'a', [`k${i}`]: 1 }))), json(Array.from({ length: 60 }, (_, i) => ({ i, v: 'b', [`k${i}`]: 1 }))));
  t.equal(many.differences.length, MAX_LISTED);
  t.strictSame(many.fields, ['$[*].v'], 'past the listed ones too, once');
});

t.test('long lists: at most MAX_LISTED differences listed; unmatched elements past the pairing limit pair by position', async (t) => {
  const n = 101;
  const a = Array.from({ length: n }, (_, i) => ({ i, v: 'a' }));
  const b = Array.from({ length: n }, (_, i) => ({ i, v: 'b' }));
  const r = compareAnswers(json(a), json(b));
  t.equal(r.match, false);
  t.equal(r.differences.length, MAX_LISTED);
  t.strictSame(r.differences[0], { path: '$[0].v', baseline: 'a', canary: 'b', kind: 'changed', field: '$[*].v' });
  t.strictSame(r.differences[49], { path: '$[49].v', baseline: 'a', canary: 'b', kind: 'changed', field: '$[*].v' });
  // 101 × 101 candidate pairs is over the limit: paired by position, so reversed lists differ by i too.
  const reversed = compareAnswers(json(a), json([...b].reverse()), { ignore: ['$[*].v'] });
  t.match(reversed.differences[0], { path: '$[0].i', baseline: 0, canary: 100 });
  t.equal(reversed.ignored, n);
  const counted = compareAnswers(json(a), json(b), { ignore: ['$[0]'] });
  t.match(counted, { ignored: 1, differences: [{ path: '$[1].v' }] });
});
