/**
 * `drum-splitter check --config FILE`: the real CLI as a child process on real files. A good
 * file is one line on stdout and exit 0; a bad one is a line per problem on stderr and exit 2.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { limiter, runCli, type CliResult } from './helpers/net.js';

// Each run is a fresh Node under tap's TypeScript loader (about a second of CPU): two at a time.
const slot = limiter(2);
const check = (...args: string[]): Promise<CliResult> => slot(() => runCli(['check', ...args]));

const dir = t.testdir({
  'good.yaml': [
    'upstreams: { flask: "http://drum-flask:8080", fastapi: "http://drum-fastapi:8080" }',
    'weights: { fastapi: 0 }',
    'rollout: { steps: [{ weight: 1, hold: 5d }, { weight: 100, hold: 7d, approve: true }] }',
    '',
  ].join('\n'),
  'one-upstream.yaml': 'upstreams: { flask: "http://drum-flask:8080" }\n',
  'option-b.yaml': 'upstreams: { flask: "http://a:1" }\nsplit: { key: "${http_x_datarobot_deployment_id}", hash: md5-mod-100 }\n',
  'option-b-twice.yaml': 'upstreams: { flask: "http://a:1" }\nsplitHash: murmur2\nsplit: { hash: md5-mod-100 }\n',
  'option-b-bad.yaml': 'upstreams: { flask: "http://a:1" }\nsplit: { hash: md5 }\n',
  'routes.yaml': 'routes:\n  - { name: beta, match: { header: { x-beta: "1" } }, upstream: fastapi }\n  - { match: { cookie: { qa: { regex: "^run-" } } }, split: true }\n',
  'routes-bad.yaml': 'routes:\n  - { name: beta, match: { header: { x-beta: { regex: "(" } } }, upstream: fastapi }\n',
  'empty.yaml': '',
  // Each fails alone, on the default upstreams: only beside the file's own upstreams are they good.
  'own-names.yaml': 'upstreams: { flask: "http://a:1", gpu: "http://b:1" }\nweights: { gpu: 5 }\nshadow: gpu\nrollout: { canary: gpu }\n',
  'not-yaml.yaml': 'weights: [\n',
  'list.yaml': '- listen\n',
  'many.yaml': [
    'listen: nowhere',
    'bogus: 1',
    'upstreams: { flask: "http://drum-flask:8080", gpu: "http://drum-gpu:8080" }',
    'weights: { gpu: 5 }', // good: gpu is an upstream of this file
    'timeout: forever',
    'workers: 4', // fine alone, as metricsOnTraffic is: not together
    'metricsOnTraffic: true',
    'rollout:',
    '  interval: soon',
    '  steps: [{ weight: 5, hold: 1d }, { weight: 1, hold: 1d }]',
    '  rollback: { maxErrorRate: 2 }',
    '',
  ].join('\n'),
  // Good alone, bad together: the window against the interval, the canary against the upstreams.
  'plan-together.yaml': 'upstreams: { flask: "http://a:1", gpu: "http://b:1" }\nrollout: { interval: 10m, window: 8m, canary: fastapi }\n',
  'plan-scalar.yaml': 'rollout: 5\nweights: { fastapi: 500 }\n',
  // A plan needs two upstreams: said once, not once for each key of the plan.
  'plan-one-upstream.yaml': 'upstreams: { flask: "http://a:1" }\nrollout: { interval: soon, window: 5m }\n',
  'plan-one-upstream-good.yaml': 'upstreams: { flask: "http://a:1" }\nrollout: { interval: 1s }\n',
  // A ConfigMap with problems in its config; beside another file with an unknown key, the known ones are listed once.
  'configmap.yaml': [
    'apiVersion: v1',
    'kind: ConfigMap',
    'metadata: { name: drum-splitter-config }',
    'data:',
    '  config.yaml: |',
    '    weight: { fastapi: 5 }',
    '    timeout: forever',
    '',
  ].join('\n'),
  'configmap-two.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: two }\ndata: { config.yaml: "", other.yaml: "" }\n',
  // flask, the baseline, named with a share it would not get, as PUT /weights refuses it.
  'baseline-weight.yaml': 'weights: { fastapi: 5, flask: 3 }\n',
  'baseline-whole.yaml': 'weights: { flask: 95, fastapi: 5 }\n',
});
const file = (name: string): string => join(dir, name);
const unreadable = join(dir, 'a-directory.yaml');
mkdirSync(unreadable);

/** Exit 2, nothing on stdout, and exactly these lines on stderr. */
function bad(t: Test, r: CliResult, lines: (string | RegExp)[]): void {
  t.equal(r.code, 2, 'exit 2');
  t.equal(r.stdout, '', 'nothing on stdout');
  const got = r.stderr.trimEnd().split('\n');
  t.equal(got.length, lines.length, `${lines.length} lines: ${r.stderr}`);
  lines.forEach((line, i) => t.match(got[i], typeof line === 'string' ? `drum-splitter: ${line}` : line));
}

const runs = {
  good: check('--config', file('good.yaml')),
  oneUpstream: check('--config', file('one-upstream.yaml')),
  optionB: check('--config', file('option-b.yaml')),
  optionBTwice: check('--config', file('option-b-twice.yaml')),
  optionBBad: check('--config', file('option-b-bad.yaml')),
  routes: check('--config', file('routes.yaml')),
  routesBad: check('--config', file('routes-bad.yaml')),
  empty: check('--config', file('empty.yaml')),
  ownNames: check('--config', file('own-names.yaml')),
  missing: check('--config', file('missing.yaml')),
  directory: check('--config', unreadable),
  notYaml: check('--config', file('not-yaml.yaml')),
  list: check('--config', file('list.yaml')),
  many: check('--config', file('many.yaml')),
  planTogether: check('--config', file('plan-together.yaml')),
  planScalar: check('--config', file('plan-scalar.yaml')),
  planOneUpstream: check('--config', file('plan-one-upstream.yaml')),
  planOneUpstreamGood: check('--config', file('plan-one-upstream-good.yaml')),
  // The repository's own ConfigMap: its config read from its data.
  deployed: check('--config', fileURLToPath(new URL('../deploy/kubernetes/configmap.yaml', import.meta.url))),
  configMaps: check('--config', file('configmap.yaml'), '--config', file('many.yaml'), '--config', file('configmap-two.yaml')),
  baselineWeight: check('--config', file('baseline-weight.yaml'), '--config', file('baseline-whole.yaml')),
  several: check('--config', file('good.yaml'), '--config', file('missing.yaml'), '--config', file('empty.yaml')),
  none: check(),
  foreign: check('--config', file('good.yaml'), '--listen', '127.0.0.1:0'),
  extra: check('--config', file('good.yaml'), 'more.yaml'),
};

t.test('a good file: one line on stdout, exit 0', async (t) => {
  t.same(await runs.good, { code: 0, stdout: `drum-splitter: ${file('good.yaml')}: ok (2 upstreams, rollout plan: fastapi 1% 5d → 100% 7d (approve))\n`, stderr: '' });
  t.same(await runs.oneUpstream, { code: 0, stdout: `drum-splitter: ${file('one-upstream.yaml')}: ok (1 upstream, no rollout plan)\n`, stderr: '' });
  t.same(await runs.optionB, { code: 0, stdout: `drum-splitter: ${file('option-b.yaml')}: ok (1 upstream, split md5-mod-100 on \${http_x_datarobot_deployment_id}, no rollout plan)\n`, stderr: '' }, "the seed's Option B named");
  t.match(await runs.empty, { code: 0, stdout: /: ok \(2 upstreams, rollout plan: fastapi 1% 5d → 5% 5d → 10% 5d \(approve\) → .* → 100% 7d\)\n$/, stderr: '' }, 'an empty file: the defaults, as serve takes them');
  t.match(await runs.ownNames, { code: 0, stdout: /: ok \(2 upstreams, rollout plan: gpu 1% 5d/, stderr: '' }, 'settings naming the file\'s own upstreams');
});

t.test('split: a setting given both ways, and a hash that is not one', async (t) => {
  bad(t, await runs.optionBTwice, [`${file('option-b-twice.yaml')}: split: split.hash is another name for splitHash, which is given too; give one`]);
  bad(t, await runs.optionBBad, [`${file('option-b-bad.yaml')}: split.hash: "md5" is not one of murmur2, md5-mod-100`]);
});

t.test('cohort rules: named where they send their requests; a bad one is its line', async (t) => {
  t.match(await runs.routes, { code: 0, stdout: /: ok \(2 upstreams, cohort rules: beta → fastapi, route-2 → split, rollout plan: fastapi 1% 5d/, stderr: '' });
  bad(t, await runs.routesBad, [`${file('routes-bad.yaml')}: routes[0].match.header.x-beta.regex: not a regular expression: Invalid regular expression: /(/: Unterminated group`]);
});

t.test('a file that cannot be read or parsed: one line, exit 2', async (t) => {
  bad(t, await runs.missing, [`cannot read ${file('missing.yaml')}: ENOENT`]);
  bad(t, await runs.directory, [`cannot read ${unreadable}: EISDIR`]);
  bad(t, await runs.notYaml, [`${file('not-yaml.yaml')} is not valid YAML: `]);
  bad(t, await runs.list, [`${file('list.yaml')} must hold a mapping of settings`]);
});

t.test('every problem of a file, a line each', async (t) => {
  const at = file('many.yaml');
  bad(t, await runs.many, [
    `${at}: unknown setting "bogus"`,
    `${at}: workers: metricsOnTraffic needs workers: 1`,
    `${at}: listen: "nowhere" is not HOST:PORT`,
    `${at}: timeout: "forever" is not a duration`,
    `${at}: rollout.interval: "soon" is not a duration`,
    `${at}: rollout.steps[1].weight: 1% is not above the step before's 5%`,
    `${at}: rollout.rollback.maxErrorRate: 2 is not below 1`,
    'known: listen, upstreams, weights, key,',
  ]);
  bad(t, await runs.planTogether, [
    `${file('plan-together.yaml')}: rollout.window: 8m is shorter than the interval 10m`,
    `${file('plan-together.yaml')}: rollout.canary: "fastapi" is not an upstream; they are: flask, gpu`,
  ]);
  bad(t, await runs.planScalar, [
    `${file('plan-scalar.yaml')}: rollout: must be a mapping of KEY: VALUE`,
    `${file('plan-scalar.yaml')}: weights.fastapi: 500 is over 100%`,
  ]);
  const needsTwo = 'upstreams: a rollout needs at least 2 upstreams, the baseline (the first) and a canary; found 1';
  bad(t, await runs.planOneUpstream, [`${file('plan-one-upstream.yaml')}: ${needsTwo}`]);
  bad(t, await runs.planOneUpstreamGood, [`${file('plan-one-upstream-good.yaml')}: ${needsTwo}`]);
});

t.test("a ConfigMap: its config read from its data, named with its key; the known settings listed once", async (t) => {
  const deployed = fileURLToPath(new URL('../deploy/kubernetes/configmap.yaml', import.meta.url));
  t.match(await runs.deployed, { code: 0, stdout: `drum-splitter: ${deployed} (ConfigMap drum-splitter-config, key config.yaml): ok (2 upstreams, rollout plan: fastapi 1% 5d → 5% 5d → 10% 5d (approve) → 25% 48h → 35% 24h → 50% 72h (approve) → 75% 48h → 90% 5d (approve) → 100% 7d)\n`, stderr: '' });
  const cm = `${file('configmap.yaml')} (ConfigMap drum-splitter-config, key config.yaml)`;
  const r = await runs.configMaps;
  bad(t, r, [
    `${cm}: unknown setting "weight"`,
    `${cm}: timeout: "forever" is not a duration`,
    `${file('many.yaml')}: unknown setting "bogus"`,
    ...Array.from({ length: 6 }, () => new RegExp(`^drum-splitter: ${file('many.yaml').replace(/[.]/g, '\\.')}: `)),
    `${file('configmap-two.yaml')}: ConfigMap two has 2 data keys (config.yaml, other.yaml) and which holds the config cannot be told; its config is the value of one key, e.g. config.yaml`,
    /^drum-splitter: known: listen, upstreams, weights, key, [\w, ]+$/,
  ]);
  t.equal(r.stderr.split('known: ').length, 2, 'the list of settings, once for two files with unknown keys');
});

t.test("weights naming the baseline: judged as the admin API judges them", async (t) => {
  const r = await runs.baselineWeight;
  t.equal(r.code, 2);
  t.equal(r.stderr, `drum-splitter: ${file('baseline-weight.yaml')}: weights.flask: flask is the baseline and takes the rest, 95%; leave it out or send 95\n`);
  t.equal(r.stdout, `drum-splitter: ${file('baseline-whole.yaml')}: ok (2 upstreams, rollout plan: fastapi 1% 5d → 5% 5d → 10% 5d (approve) → 25% 48h → 35% 24h → 50% 72h (approve) → 75% 48h → 90% 5d (approve) → 100% 7d)\n`, 'named with the share it gets: good');
});

t.test('--config repeated: each file, exit 2 if any is bad', async (t) => {
  const r = await runs.several;
  t.equal(r.code, 2);
  t.match(r.stdout, new RegExp(`^drum-splitter: ${file('good.yaml')}: ok .*\\ndrum-splitter: ${file('empty.yaml')}: ok .*\\n$`));
  t.match(r.stderr, new RegExp(`^drum-splitter: cannot read ${file('missing.yaml')}: ENOENT[^\\n]*\\n$`));
});

t.test('bad usage: exit 2 and one line', async (t) => {
  bad(t, await runs.none, [/^drum-splitter check: needs --config FILE \(repeatable\) \(see drum-splitter check --help\)$/]);
  bad(t, await runs.foreign, [/^drum-splitter check: unknown option --listen \(see drum-splitter check --help\)$/]);
  bad(t, await runs.extra, [/^drum-splitter check: unexpected argument "more\.yaml" \(see drum-splitter check --help\)$/]);
});
