/** Cohort rules: their one check (weights/routes.ts) and the matcher the request path runs (proxy/cohorts.ts), as tables. */
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import t from 'tap';
import { buildConfig, parseConfigText } from '../src/config/config.js';
import { compileRoutes, firstMatch } from '../src/proxy/cohorts.js';
import { describeRoute, parseRoutes, sameRoutes } from '../src/weights/routes.js';

const UPSTREAMS = ['flask', 'fastapi', 'canary2'];

t.test('parseRoutes: a rule list as given, normalised; names default to route-N', async (t) => {
  t.same(parseRoutes(undefined, UPSTREAMS), []);
  t.same(parseRoutes(null, UPSTREAMS), []);
  t.same(parseRoutes([], UPSTREAMS), []);
  t.same(
    parseRoutes([
      { match: { header: { 'X-Beta': '1' } }, upstream: 'fastapi' },
      { name: 'qa', match: { cookie: { QA: { regex: '^run-' } }, method: 'POST', path: '/predict' }, split: true },
      { match: { header: { 'x-tenant': 42 }, path: { regex: '^/v2/' }, method: { regex: '^(GET|HEAD)$' } }, upstream: 'flask' },
    ], UPSTREAMS),
    [
      { name: 'route-1', match: { header: { 'x-beta': '1' } }, upstream: 'fastapi' },
      { name: 'qa', match: { cookie: { qa: { regex: '^run-' } }, path: '/predict', method: 'POST' }, split: true },
      { name: 'route-3', match: { header: { 'x-tenant': '42' }, path: { regex: '^/v2/' }, method: { regex: '^(GET|HEAD)$' } }, upstream: 'flask' },
    ],
    'header names lower-cased, a whole number as its digits, the conditions in one order',
  );
});

t.test('parseRoutes refuses, naming the field', async (t) => {
  const bad: [unknown, string, RegExp][] = [
    [{ beta: 1 }, 'routes', /must be a list of rules/],
    [['x'], 'routes[0]', /must be a rule/],
    [[{ match: { method: 'GET' }, upstream: 'flask', weight: 5 }], 'routes[0]', /unknown key "weight"; known: name, match, upstream, split/],
    [[{ match: { method: 'GET' } }], 'routes[0]', /needs upstream: NAME, or split: true/],
    [[{ match: { method: 'GET' }, upstream: 'flask', split: true }], 'routes[0]', /one of the two/],
    [[{ match: { method: 'GET' }, upstream: 'nope' }], 'routes[0].upstream', /"nope" is not an upstream; upstreams: flask, fastapi, canary2/],
    [[{ match: { method: 'GET' }, upstream: 7 }], 'routes[0].upstream', /7 is not an upstream/],
    [[{ match: { method: 'GET' }, split: 'yes' }], 'routes[0].split', /"yes" is not true/],
    [[{ upstream: 'flask' }], 'routes[0].match', /needs at least one of header, cookie, path, method/],
    [[{ match: {}, upstream: 'flask' }], 'routes[0].match', /would take every request/],
    [[{ match: { query: 'a' }, upstream: 'flask' }], 'routes[0].match', /unknown key "query"/],
    [[{ match: { header: {} }, upstream: 'flask' }], 'routes[0].match.header', /at least one/],
    [[{ match: { header: 'x-beta' }, upstream: 'flask' }], 'routes[0].match.header', /mapping of NAME: VALUE/],
    [[{ match: { header: { 'x beta': '1' } }, upstream: 'flask' }], 'routes[0].match.header', /not an HTTP header name/],
    [[{ match: { header: { 'X-Beta': '1', 'x-beta': '2' } }, upstream: 'flask' }], 'routes[0].match.header.x-beta', /named twice/],
    [[{ match: { header: { 'x-beta': { regex: '(' } } }, upstream: 'flask' }], 'routes[0].match.header.x-beta.regex', /not a regular expression: Invalid regular expression/],
    [[{ match: { header: { 'x-beta': { regex: 5 } } }, upstream: 'flask' }], 'routes[0].match.header.x-beta.regex', /must be text/],
    [[{ match: { header: { 'x-beta': { regexp: 'a' } } }, upstream: 'flask' }], 'routes[0].match.header.x-beta', /unknown key "regexp"; known: regex/],
    [[{ match: { header: { 'x-beta': true } }, upstream: 'flask' }], 'routes[0].match.header.x-beta', /true is not text or \{ regex: PATTERN \}/],
    [[{ match: { header: { 'x-beta': 1.5 } }, upstream: 'flask' }], 'routes[0].match.header.x-beta', /quote a value/],
    [[{ match: { header: { 'x-beta': null } }, upstream: 'flask' }], 'routes[0].match.header.x-beta', /null is not text/],
    [[{ match: { cookie: { 'a b': '1' } }, upstream: 'flask' }], 'routes[0].match.cookie', /"a b" is not a cookie name/],
    [[{ match: { path: 'predict' }, upstream: 'flask' }], 'routes[0].match.path', /not a path prefix/],
    [[{ match: { method: 'post' }, upstream: 'flask' }], 'routes[0].match.method', /upper case/],
    [[{ name: '-x', match: { method: 'GET' }, upstream: 'flask' }], 'routes[0].name', /not a rule name/],
    [[{ name: 5, match: { method: 'GET' }, upstream: 'flask' }], 'routes[0].name', /5 is not a rule name/],
    [[{ name: 'a', match: { method: 'GET' }, upstream: 'flask' }, { name: 'a', match: { method: 'PUT' }, split: true }], 'routes[1].name', /"a" is the name of routes\[0\] too/],
    [[{ match: { method: 'GET' }, upstream: 'flask' }, { name: 'route-1', match: { method: 'PUT' }, split: true }], 'routes[1].name', /"route-1" is the name of routes\[0\] too/],
  ];
  for (const [value, field, message] of bad) {
    t.throws(() => parseRoutes(value, UPSTREAMS), { name: 'InputError', field, message }, `${field}: ${String(message)}`);
  }
  t.throws(() => parseRoutes({}, UPSTREAMS, 'body.routes'), { name: 'InputError', field: 'body.routes' }, 'the field as the caller names it');
});

t.test('parseRoutes of its own output gives it back; sameRoutes and describeRoute', async (t) => {
  const rules = parseRoutes([{ match: { header: { 'X-A': 1 } }, upstream: 'fastapi' }, { name: 'qa', match: { method: 'GET' }, split: true }], UPSTREAMS);
  t.same(parseRoutes(JSON.parse(JSON.stringify(rules)), UPSTREAMS), rules);
  t.ok(sameRoutes(rules, parseRoutes(JSON.parse(JSON.stringify(rules)), UPSTREAMS)));
  t.notOk(sameRoutes(rules, [...rules].reverse()), 'the order is part of the rules');
  t.same(rules.map(describeRoute), ['route-1 → fastapi', 'qa → split']);
});

/** Facts of a request as the handler has them: $uri and Node's headers. */
const facts = (uri: string, headers: IncomingHttpHeaders = {}) => ({ uri, headers });

t.test('firstMatch: every condition must hold; the first rule that matches wins', async (t) => {
  const routes = compileRoutes(parseRoutes([
    { name: 'beta', match: { header: { 'x-beta': '1' } }, upstream: 'fastapi' },
    { name: 'beta-re', match: { header: { 'x-group': { regex: '^beta-' } } }, upstream: 'canary2' },
    { name: 'qa-post', match: { cookie: { qa: 'yes' }, method: 'POST' }, upstream: 'fastapi' },
    { name: 'v2', match: { path: '/v2/', method: { regex: '^(GET|HEAD)$' } }, upstream: 'canary2' },
    { name: 'pinned', match: { path: { regex: '^/predict(ions)?/$' }, header: { 'x-customer': 'acme' } }, split: true },
    { name: 'acme', match: { header: { 'x-customer': 'acme' } }, upstream: 'flask' },
    { name: 'empty', match: { header: { 'x-empty': '' } }, upstream: 'flask' },
    { name: 'anything', match: { cookie: { sid: { regex: '' } } }, upstream: 'flask' },
  ], UPSTREAMS));
  const cases: [string, string, IncomingHttpHeaders, string | undefined][] = [
    ['GET', '/predict/', {}, undefined],
    ['GET', '/predict/', { 'x-beta': '1' }, 'beta'],
    ['GET', '/predict/', { 'x-beta': '10' }, undefined], // exact: not a prefix
    ['GET', '/predict/', { 'x-beta': '1', 'x-group': 'beta-7' }, 'beta'], // the first wins
    ['GET', '/predict/', { 'x-group': 'beta-7' }, 'beta-re'],
    ['GET', '/predict/', { 'x-group': 'not-beta-7' }, undefined], // ^ anchors
    ['POST', '/predict/', { cookie: 'a=1; QA=yes' }, 'qa-post'], // a cookie name in any case, as $cookie_NAME
    ['GET', '/predict/', { cookie: 'qa=yes' }, undefined], // both conditions must hold
    ['POST', '/predict/', { cookie: 'qa=no' }, undefined],
    ['GET', '/v2/model', {}, 'v2'],
    ['HEAD', '/v2/', {}, 'v2'],
    ['POST', '/v2/model', {}, undefined],
    ['GET', '/v2', {}, undefined], // a prefix of the path, not of the text
    ['POST', '/predictions/', { 'x-customer': 'acme' }, 'pinned'], // to the split: not taken by acme below
    ['POST', '/other/', { 'x-customer': 'acme' }, 'acme'],
    ['GET', '/', { 'x-empty': '' }, 'empty'], // present and empty
    ['GET', '/', { 'x-beta': ['1', '2'] as unknown as string }, undefined], // a repeated header is "1, 2"
    ['GET', '/', { cookie: 'sid=' }, 'anything'], // an empty regex: the cookie is there
    ['GET', '/', { cookie: 'other=1' }, undefined], // absent never matches
  ];
  for (const [method, uri, headers, want] of cases) {
    const found = firstMatch(routes, method, facts(uri, headers));
    t.equal(found?.name, want, `${method} ${uri} ${JSON.stringify(headers)}`);
  }
  t.equal(firstMatch(routes, 'GET', facts('/', { 'x-beta': '1' })), firstMatch(routes, 'GET', facts('/x', { 'x-beta': '1' })), 'the same rule object each time: nothing made per match');
  t.same(routes.map((r) => r.upstream), ['fastapi', 'canary2', 'fastapi', 'canary2', undefined, 'flask', 'flask', 'flask']);
  t.equal(firstMatch([], 'GET', facts('/')), undefined, 'no rules: the split');
});

t.test("the README's Cohorts example and the example config's, uncommented: the same rules, and they route as the README says", async (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const fromReadme = /### Cohorts[^]*?```yaml\n([^]*?)```/.exec(readme)![1]!;
  const example = readFileSync(new URL('../config/drum-splitter.yaml', import.meta.url), 'utf8');
  const fromExample = example.split('\n').filter((l) => /^# (routes:|  - )/.test(l)).map((l) => l.slice(2)).join('\n');
  const read = (text: string) => buildConfig(parseConfigText(text, 'example')).routes;
  const rules = read(fromReadme);
  t.same(read(fromExample), rules);
  t.same(rules.map(describeRoute), ['beta → fastapi', 'qa → fastapi', 'acme-predict → split', 'acme → flask']);
  const routes = compileRoutes(rules);
  const to = (method: string, uri: string, headers: IncomingHttpHeaders) => firstMatch(routes, method, facts(uri, headers))?.name;
  t.equal(to('POST', '/predict/', { cookie: 'qa-run=run-12' }), 'qa');
  t.equal(to('POST', '/predict/', { 'x-customer': 'acme' }), 'acme-predict');
  t.equal(to('POST', '/info/', { 'x-customer': 'acme' }), 'acme');
});
