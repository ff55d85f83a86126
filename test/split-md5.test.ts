/**
 * The md5-mod-100 split (the seed's Option B): the bucket against Python's hashlib for 10,000
 * keys (test/fixtures/md5-golden.json, made by scripts/md5-golden.py), the tables it is looked up
 * in, and its settings (split: { key, hash }, splitHash, --split-hash).
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { buildConfig, parseConfigText, unfoldSplit } from '../src/config/config.js';
import { settingsFromFlags } from '../src/config/settings.js';
import { resolveStartup } from '../src/config/startup.js';
import { compileSplit, HASH_FUNCTIONS, hashKey, md5Bucket, pickByHash } from '../src/proxy/split.js';
import type { Share } from '../src/weights/shares.js';

const golden = JSON.parse(readFileSync(new URL('fixtures/md5-golden.json', import.meta.url), 'utf8')) as { expression: string; cases: [string, number][] };
/** A key as a request's header carries it: its UTF-8 bytes (str.encode() in the seed). */
const bytes = (key: string): Buffer => Buffer.from(key, 'utf8');

t.test("md5Bucket is Python's int(md5(key), 16) % 100 for all 10,000 golden keys", async (t) => {
  t.equal(golden.cases.length, 10_000);
  t.equal(golden.expression, 'int(hashlib.md5(key.encode()).hexdigest(), 16) % 100');
  const wrong = golden.cases.filter(([key, bucket]) => md5Bucket(bytes(key)) !== bucket);
  t.same(wrong.slice(0, 5), [], `${wrong.length} keys differ`);
  t.ok(golden.cases.some(([key]) => /^[0-9a-f]{24}$/.test(key)), 'deployment ids among them');
  t.ok(golden.cases.some(([key]) => /[^\x00-\x7f]/.test(key)), 'Unicode among them');
  t.equal(new Set(golden.cases.map(([, b]) => b)).size, 100, 'every bucket reached');
});

t.test('md5Bucket: known values, worked by hand', async (t) => {
  // md5("") = d41d8cd98f00b204e9800998ecf8427e; as an integer mod 100: 66.
  const cases: [string, number][] = [['', 66], ['default', 70], ['0', 50], ['5e8f1a2b3c4d5e6f7a8b9c0d', 52]];
  for (const [key, want] of cases) t.equal(md5Bucket(bytes(key)), want, JSON.stringify(key));
  t.equal(BigInt('0xd41d8cd98f00b204e9800998ecf8427e') % 100n, 66n, 'the remainder taken a byte at a time is the big integer one');
  t.equal(HASH_FUNCTIONS['md5-mod-100'], md5Bucket);
  t.equal(HASH_FUNCTIONS.murmur2, hashKey);
});

t.test('compileSplit with md5-mod-100: cumulative ranges of 100 buckets, in the listed order', async (t) => {
  const table = (shares: Share[], rest: string | undefined = 'flask') => compileSplit(shares, rest, 'md5-mod-100');
  t.same(table([['fastapi', 3000]]), { upstreams: ['fastapi', 'flask'], thresholds: [30, 0] }, '30%: buckets 0..29');
  t.same(table([['fastapi', 3755]]).thresholds, [38, 0], '37.55%: bucket < 37.55 is buckets 0..37, as the seed compares');
  t.same(table([['fastapi', 1]]).thresholds, [1, 0], '0.01%: bucket 0');
  t.same(table([['fastapi', 10000]]).thresholds, [100, 0], '100%: every bucket');
  t.same(table([['a', 1000], ['b', 2550]], 'c'), { upstreams: ['a', 'b', 'c'], thresholds: [10, 36, 0] }, 'a: 0..9, b: 10..35 (under 35.5), c the rest');
  t.same(table([['a', 1050], ['b', 30]]).thresholds, [11, 11, 0], 'b between 10.5 and 10.8: no whole bucket');
  t.same(compileSplit([['a', 6000], ['b', 4000]], undefined, 'md5-mod-100'), { upstreams: ['a', 'b'], thresholds: [60, 100] }, 'no rest: 100% listed');
  t.same(table([['fastapi', 0], ['b', 500]]), table([['b', 500]]), '0% is left out');
  t.same(compileSplit([['fastapi', 3000]], 'flask'), compileSplit([['fastapi', 3000]], 'flask', 'murmur2'), 'murmur2 is the default');

  // The seed's rule, bucket by bucket: to the canary exactly when bucket < percent.
  for (const hundredths of [1, 50, 100, 2999, 3000, 3001, 3755, 9999, 10000]) {
    const split = table([['fastapi', hundredths]]);
    const off = [...Array(100).keys()].filter((b) => (pickByHash(split, b) === 'fastapi') !== b < hundredths / 100);
    t.same(off, [], `${hundredths / 100}%`);
  }
  const full = compileSplit([['a', 6000], ['b', 4000]], undefined, 'md5-mod-100');
  t.equal(pickByHash(full, 99), 'b', 'the last bucket is listed when 100% is');
});

t.test('settings: split: { key, hash }, splitHash and --split-hash', async (t) => {
  t.equal(buildConfig({}).splitHash, 'murmur2', 'murmur2 by default');
  t.match(buildConfig({ split: { key: '${http_x_datarobot_deployment_id}', hash: 'md5-mod-100' } }), { key: '${http_x_datarobot_deployment_id}', splitHash: 'md5-mod-100' });
  t.match(buildConfig({ split: { hash: 'md5-mod-100' } }), { key: '${remote_addr}${uri}', splitHash: 'md5-mod-100' }, 'the key stays the default');
  t.match(buildConfig({ split: { key: '$host' } }), { key: '$host', splitHash: 'murmur2' }, 'split.key alone is key');
  t.match(buildConfig({ key: '$host', splitHash: 'md5-mod-100' }), { key: '$host', splitHash: 'md5-mod-100' }, 'the flat keys');
  t.same(settingsFromFlags({ 'split-hash': 'md5-mod-100', key: '$host' }), { key: '$host', splitHash: 'md5-mod-100' });

  const bad: [unknown, RegExp][] = [
    [{ splitHash: 'md5' }, /^splitHash: "md5" is not one of murmur2, md5-mod-100$/],
    [{ split: { hash: 'sha1' } }, /^split\.hash: "sha1" is not one of murmur2, md5-mod-100$/],
    [{ split: 'md5-mod-100' }, /^split: must be a mapping: \{ key: TEMPLATE, hash: HASH \}$/],
    [{ split: ['a'] }, /^split: must be a mapping/],
    [{ split: null }, /^split: must be a mapping/],
    [{ split: { seed: 1 } }, /^split: unknown key "seed"; known: key, hash$/],
    [{ split: { key: '$host' }, key: '$uri' }, /^split: split\.key is another name for key, which is given too; give one$/],
    [{ split: { hash: 'md5-mod-100' }, splitHash: 'murmur2' }, /^split: split\.hash is another name for splitHash/],
    [{ split: { key: '${nope}' } }, /^key: /],
  ];
  for (const [raw, message] of bad) t.throws(() => buildConfig(raw as never), { name: 'InputError', message }, JSON.stringify(raw));
  t.same(unfoldSplit({ key: '$host' }), { key: '$host' }, 'nothing to unfold');
});

t.test("the example config's Option B lines, uncommented, are the seed's Option B", async (t) => {
  const example = readFileSync(new URL('../config/drum-splitter.yaml', import.meta.url), 'utf8');
  const lines = example.split('\n').filter((l) => /^# (split|splitHash): /.test(l)).map((l) => l.slice(2));
  t.equal(lines.length, 2);
  for (const line of lines) t.match(buildConfig(parseConfigText(`${line}\n`, 'example')), { splitHash: 'md5-mod-100' }, line);
  t.equal(buildConfig(parseConfigText(lines[1]!, 'example')).key, '${http_x_datarobot_deployment_id}');
});

t.test("a file's split: is unfolded before flags are laid over it: --key and --split-hash win", async (t) => {
  const file = parseConfigText('split: { key: "${http_x_datarobot_deployment_id}", hash: md5-mod-100 }\n', 'c.yaml');
  t.same(file, { key: '${http_x_datarobot_deployment_id}', splitHash: 'md5-mod-100' });
  const start = (flags: Record<string, unknown>) => resolveStartup({ file, flags: settingsFromFlags(flags), env: {}, at: 'now' }).config;
  t.match(start({}), { key: '${http_x_datarobot_deployment_id}', splitHash: 'md5-mod-100' });
  t.match(start({ key: '$host' }), { key: '$host', splitHash: 'md5-mod-100' });
  t.match(start({ 'split-hash': 'murmur2' }), { key: '${http_x_datarobot_deployment_id}', splitHash: 'murmur2' });
});
