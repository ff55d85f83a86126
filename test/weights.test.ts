import t from 'tap';
import { sharesFromEnv } from '../src/config/env.js';
import { applyWeights, percentages, rolledBack, type Percentages, type Share } from '../src/weights/shares.js';

const TWO = ['flask', 'fastapi'];
const THREE = ['flask', 'fastapi', 'canary2'];

const PERCENT = 'MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_CANARY_PERCENT';
const SERVER = 'MLOPS_RUNTIME_PARAM_DRUM_SERVER_TYPE';

t.test('percentages: each listed share, the baseline also the rest', async (t) => {
  const cases: [string, string[], Share[], Percentages][] = [
    ['no shares: all to the baseline', TWO, [], { flask: 100, fastapi: 0 }],
    ['a canary share', TWO, [['fastapi', 500]], { flask: 95, fastapi: 5 }],
    ['two decimals', TWO, [['fastapi', 3755]], { flask: 62.45, fastapi: 37.55 }],
    ['a zero share', TWO, [['fastapi', 0]], { flask: 100, fastapi: 0 }],
    ['the canary takes it all', TWO, [['fastapi', 10000]], { flask: 0, fastapi: 100 }],
    ['three-way', THREE, [['fastapi', 1000], ['canary2', 2500]], { flask: 65, fastapi: 10, canary2: 25 }],
    ['three-way, one unlisted', THREE, [['canary2', 3000]], { flask: 70, fastapi: 0, canary2: 30 }],
    ['the baseline listed too', TWO, [['flask', 5000], ['fastapi', 1000]], { flask: 90, fastapi: 10 }],
    ['a single upstream', ['flask'], [], { flask: 100 }],
  ];
  for (const [name, upstreams, shares, want] of cases) t.strictSame(percentages(upstreams, shares), want, name);
});

t.test('percentages keeps the upstreams in config order, whatever the share order', async (t) => {
  const got = percentages(['zeta', 'alpha', 'mid'], [['mid', 100], ['alpha', 200]]);
  t.same(Object.keys(got), ['zeta', 'alpha', 'mid']);
  t.same(JSON.stringify(got), '{"zeta":97,"alpha":2,"mid":1}');
});

t.test('applyWeights: patch semantics', async (t) => {
  const cases: [string, string[], Share[], unknown, Share[]][] = [
    ['a new share is appended', TWO, [], { fastapi: 10 }, [['fastapi', 1000]]],
    ['a named share changes in place', THREE, [['fastapi', 500], ['canary2', 200]], { fastapi: 10 }, [['fastapi', 1000], ['canary2', 200]]],
    ['others are kept, new ones go last', THREE, [['canary2', 200]], { fastapi: '7.5' }, [['canary2', 200], ['fastapi', 750]]],
    ['several at once', THREE, [['fastapi', 500]], { canary2: 1, fastapi: 2 }, [['fastapi', 200], ['canary2', 100]]],
    ['to zero keeps the line', TWO, [['fastapi', 500]], { fastapi: 0 }, [['fastapi', 0]]],
    ['an empty patch changes nothing', TWO, [['fastapi', 500]], {}, [['fastapi', 500]]],
    ['text with a percent sign', TWO, [], { fastapi: '12.34%' }, [['fastapi', 1234]]],
    ['exactly 100% in total', THREE, [['fastapi', 6000]], { canary2: 40 }, [['fastapi', 6000], ['canary2', 4000]]],
    ['the baseline with exactly the rest', TWO, [['fastapi', 500]], { flask: 90, fastapi: 10 }, [['fastapi', 1000]]],
    ['the baseline first, with the rest after the change', TWO, [['fastapi', 500]], { flask: '90', fastapi: '10' }, [['fastapi', 1000]]],
    ['the baseline alone, unchanged', TWO, [['fastapi', 500]], { flask: 95 }, [['fastapi', 500]]],
    ['the baseline at 100 with no shares', TWO, [], { flask: 100 }, []],
    ['a GET sent back as it is', THREE, [['fastapi', 1000], ['canary2', 2500]], percentages(THREE, [['fastapi', 1000], ['canary2', 2500]]), [['fastapi', 1000], ['canary2', 2500]]],
    // A baseline line of its own keeps its place and value: rewriting it would move the
    // canary's hash range, and so which clients are on the canary.
    ['a GET sent back with a baseline line', TWO, [['flask', 5000], ['fastapi', 1000]], { flask: 90, fastapi: 10 }, [['flask', 5000], ['fastapi', 1000]]],
    ['a baseline line, the canary moved', TWO, [['flask', 5000], ['fastapi', 1000]], { flask: 80, fastapi: 20 }, [['flask', 5000], ['fastapi', 2000]]],
  ];
  for (const [name, upstreams, current, asked, want] of cases) {
    const before = JSON.stringify(current);
    t.strictSame(applyWeights(upstreams, current, asked), want, name);
    t.equal(JSON.stringify(current), before, `${name}: current is not mutated`);
  }
});

t.test('applyWeights rejects, naming the weight', async (t) => {
  const cases: [string, string[], Share[], unknown, string, RegExp][] = [
    ['the baseline with less than the rest', TWO, [], { flask: 90 }, 'weights.flask', /takes the rest, 100%; leave it out or send 100/],
    ['the baseline with more than the rest', TWO, [['fastapi', 500]], { flask: 96 }, 'weights.flask', /the rest, 95%.*send 95$/],
    ['the baseline with the old rest', TWO, [['fastapi', 500]], { flask: 95, fastapi: 10 }, 'weights.flask', /the rest, 90%/],
    ['a baseline line cannot be rewritten', TWO, [['flask', 5000], ['fastapi', 1000]], { flask: 20 }, 'weights.flask', /takes the rest, 90%/],
    ['an unknown upstream', TWO, [], { canary: 5 }, 'weights.canary', /"canary" is not an upstream \(have: flask, fastapi\)/],
    ['not a number', TWO, [], { fastapi: 'abc' }, 'weights.fastapi', /"abc" is not a percentage/],
    ['a boolean', TWO, [], { fastapi: true }, 'weights.fastapi', /must be a number of percent/],
    ['null', TWO, [], { fastapi: null }, 'weights.fastapi', /must be a number of percent/],
    ['negative', TWO, [], { fastapi: -5 }, 'weights.fastapi', /"-5" is not a percentage/],
    ['negative text', TWO, [], { fastapi: '-1' }, 'weights.fastapi', /not a percentage/],
    ['over 100', TWO, [], { fastapi: 101 }, 'weights.fastapi', /101 is over 100%/],
    ['over 100 by a hundredth', TWO, [], { fastapi: '100.01' }, 'weights.fastapi', /over 100%/],
    ['three decimals', TWO, [], { fastapi: 5.125 }, 'weights.fastapi', /at most two decimals/],
    ['three decimals as text', TWO, [], { fastapi: '5.125' }, 'weights.fastapi', /at most two decimals/],
    ['not finite', TWO, [], { fastapi: Infinity }, 'weights.fastapi', /not a percentage/],
    ['over 100% across shares', THREE, [['canary2', 9500]], { fastapi: 10 }, 'weights', /add up to 105%, over 100%/],
    ['over 100% within one patch', THREE, [], { fastapi: 60, canary2: 40.01 }, 'weights', /add up to 100.01%, over 100%/],
    ['null body', TWO, [], null, 'weights', /must be an object/],
    ['an array', TWO, [], [['fastapi', 10]], 'weights', /must be an object/],
    ['a string', TWO, [], 'fastapi=10', 'weights', /must be an object/],
    ['a number', TWO, [], 10, 'weights', /must be an object/],
  ];
  for (const [name, upstreams, current, asked, field, message] of cases) {
    t.throws(() => applyWeights(upstreams, current, asked), { name: 'InputError', field, message }, name);
  }
  t.throws(() => applyWeights(TWO, [], { fastapi: 'x' }, 'body.weights'), { field: 'body.weights.fastapi', message: /^body\.weights\.fastapi: / }, 'the field prefix is the caller\'s');
  t.throws(() => applyWeights(THREE, [['canary2', 9500]], { fastapi: 10 }, 'X'), { name: 'InputError', field: 'X' }, 'so is the total\'s');
});

t.test('rolledBack: every line to 0, in order', async (t) => {
  const cases: [Share[], Share[]][] = [
    [[], []],
    [[['fastapi', 500]], [['fastapi', 0]]],
    [[['canary2', 2500], ['fastapi', 1000], ['flask', 300]], [['canary2', 0], ['fastapi', 0], ['flask', 0]]],
  ];
  for (const [current, want] of cases) {
    t.strictSame(rolledBack(current), want, JSON.stringify(current));
    t.strictSame(percentages(THREE, rolledBack(current)), { flask: 100, fastapi: 0, canary2: 0 }, 'all traffic to the baseline');
  }
});

t.test('sharesFromEnv: the seed\'s runtime parameters', async (t) => {
  const cases: [string, NodeJS.ProcessEnv, string[], Share[], Share[], string][] = [
    ['percent, plain', { [PERCENT]: '5' }, TWO, [], [['fastapi', 500]], `${PERCENT}=5`],
    ['percent, padded', { [PERCENT]: ' 5 ' }, TWO, [], [['fastapi', 500]], `${PERCENT}=5`],
    ['percent, two decimals', { [PERCENT]: '37.55' }, TWO, [['fastapi', 500]], [['fastapi', 3755]], `${PERCENT}=37.55`],
    ['percent, DRUM JSON', { [PERCENT]: '{"type": "numeric", "payload": 5}' }, TWO, [], [['fastapi', 500]], `${PERCENT}=5`],
    ['percent, DRUM JSON with text payload', { [PERCENT]: ' {"type":"numeric","payload":"12.5"} ' }, TWO, [], [['fastapi', 1250]], `${PERCENT}=12.5`],
    ['percent, 0', { [PERCENT]: '0' }, TWO, [['fastapi', 500]], [['fastapi', 0]], `${PERCENT}=0`],
    ['percent, other shares kept', { [PERCENT]: '5' }, THREE, [['canary2', 1000]], [['canary2', 1000], ['fastapi', 500]], `${PERCENT}=5`],
    ['the canary is "fastapi" wherever it is', { [PERCENT]: '5' }, ['flask', 'canary2', 'fastapi'], [], [['fastapi', 500]], `${PERCENT}=5`],
    ['else the first after the baseline', { [PERCENT]: '5' }, ['flask', 'canary', 'other'], [], [['canary', 500]], `${PERCENT}=5`],
    ['server type flask: every canary to 0', { [SERVER]: 'flask' }, THREE, [['fastapi', 500], ['canary2', 200]], [['fastapi', 0], ['canary2', 0]], `${SERVER}=flask`],
    ['server type flask with no shares', { [SERVER]: 'flask' }, TWO, [], [], `${SERVER}=flask`],
    ['server type fastapi: 100% there', { [SERVER]: 'fastapi' }, THREE, [['canary2', 200]], [['canary2', 0], ['fastapi', 10000]], `${SERVER}=fastapi`],
    ['server type fastapi, in place', { [SERVER]: 'fastapi' }, THREE, [['fastapi', 500], ['canary2', 200]], [['fastapi', 10000], ['canary2', 0]], `${SERVER}=fastapi`],
    ['server type, DRUM JSON', { [SERVER]: '{"type": "string", "payload": "flask"}' }, TWO, [['fastapi', 500]], [['fastapi', 0]], `${SERVER}=flask`],
    ['server type, upper case', { [SERVER]: 'FASTAPI' }, TWO, [], [['fastapi', 10000]], `${SERVER}=fastapi`],
    ['server type, an upstream spelled in capitals', { [SERVER]: 'fastapi' }, ['flask', 'FastAPI'], [], [['FastAPI', 10000]], `${SERVER}=FastAPI`],
    ['server type wins over the percent', { [SERVER]: 'flask', [PERCENT]: '50' }, TWO, [['fastapi', 500]], [['fastapi', 0]], `${SERVER}=flask`],
    ['server type wins even over a bad percent', { [SERVER]: 'fastapi', [PERCENT]: 'abc' }, TWO, [], [['fastapi', 10000]], `${SERVER}=fastapi`],
    ['a blank server type leaves the percent', { [SERVER]: '  ', [PERCENT]: '5' }, TWO, [], [['fastapi', 500]], `${PERCENT}=5`],
  ];
  for (const [name, env, upstreams, current, shares, reason] of cases) {
    t.strictSame(sharesFromEnv(env, upstreams, current), { shares, reason }, name);
  }
  const fastapiAll = sharesFromEnv({ [SERVER]: 'fastapi' }, THREE, [['canary2', 200]])!;
  t.strictSame(percentages(THREE, fastapiAll.shares), { flask: 0, fastapi: 100, canary2: 0 }, 'server type fastapi: effective 100%');
});

t.test('sharesFromEnv: unset or blank is no change', async (t) => {
  const envs: NodeJS.ProcessEnv[] = [{}, { [PERCENT]: '' }, { [PERCENT]: '   ' }, { [SERVER]: '' }, { [SERVER]: ' \t', [PERCENT]: '' }, { OTHER: '5' }];
  for (const env of envs) t.equal(sharesFromEnv(env, TWO, [['fastapi', 500]]), undefined, JSON.stringify(env));
});

t.test('sharesFromEnv: malformed values name the variable', async (t) => {
  const cases: [string, NodeJS.ProcessEnv, string[], RegExp][] = [
    ['percent, invalid JSON', { [PERCENT]: '{"type": "numeric", "payload": 5' }, TWO, /neither a plain value nor DRUM's JSON form/],
    ['percent, wrong type', { [PERCENT]: '{"type": "string", "payload": 5}' }, TWO, /expected \{"type": "numeric", "payload": \.\.\.\}/],
    ['percent, missing payload', { [PERCENT]: '{"type": "numeric"}' }, TWO, /expected \{"type": "numeric"/],
    ['percent, null payload', { [PERCENT]: '{"type": "numeric", "payload": null}' }, TWO, /expected/],
    ['percent, abc', { [PERCENT]: 'abc' }, TWO, /"abc" is not a percentage/],
    ['percent, 101', { [PERCENT]: '101' }, TWO, /over 100%/],
    ['percent, negative', { [PERCENT]: '-5' }, TWO, /not a percentage/],
    ['percent, three decimals in JSON', { [PERCENT]: '{"type": "numeric", "payload": 5.125}' }, TWO, /two decimals/],
    ['percent, a single upstream', { [PERCENT]: '5' }, ['flask'], /no canary upstream/],
    ['percent, a single upstream named fastapi', { [PERCENT]: '5' }, ['fastapi'], /no canary upstream/],
    ['server type, invalid JSON', { [SERVER]: '{payload: flask}' }, TWO, /neither a plain value nor DRUM's JSON form/],
    ['server type, wrong type', { [SERVER]: '{"type": "numeric", "payload": 5}' }, TWO, /expected \{"type": "string"/],
    ['server type, missing payload', { [SERVER]: '{"type": "string"}' }, TWO, /expected \{"type": "string"/],
    ['server type, unknown', { [SERVER]: 'torchserve' }, TWO, /"torchserve" is not an upstream \(have: flask, fastapi\)/],
    ['server type, unknown in JSON', { [SERVER]: '{"type": "string", "payload": "nginx"}' }, TWO, /"nginx" is not an upstream/],
  ];
  for (const [name, env, upstreams, message] of cases) {
    const variable = Object.keys(env)[0]!;
    t.throws(() => sharesFromEnv(env, upstreams, []), { name: 'InputError', field: new RegExp(`^${variable}(\\.|$)`), message }, name);
  }
  t.throws(
    () => sharesFromEnv({ [PERCENT]: '60' }, THREE, [['canary2', 5000]]),
    { name: 'InputError', field: PERCENT, message: /^MLOPS_RUNTIME_PARAM_DRUM_FASTAPI_CANARY_PERCENT: weights add up to 110%/ },
    'a percent that takes the total over 100% names the variable too',
  );
});
