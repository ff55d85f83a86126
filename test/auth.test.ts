import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadTokens, loopbackHost, loopbackName, otherOrigin, whoIs, type Tokens } from '../src/admin/auth.js';

const TOKEN = 'a-long-enough-token-123';
const FIELD = '--admin-token-file';

/** Who each presented Authorization header resolves to. */
const names = (tokens: Tokens, headers: (string | undefined)[]): (string | undefined)[] => headers.map((h) => whoIs(tokens, h));

t.test('loadTokens from DRUM_SPLITTER_ADMIN_TOKEN', async (t) => {
  t.equal(loadTokens({}, undefined).size, 0, 'none set: no tokens');
  t.equal(loadTokens({ DRUM_SPLITTER_ADMIN_TOKEN: '' }, undefined).size, 0, 'empty: no tokens');
  t.throws(() => loadTokens({ DRUM_SPLITTER_ADMIN_TOKEN: 'abc' }, undefined), {
    name: 'InputError', field: 'DRUM_SPLITTER_ADMIN_TOKEN', message: /16 characters or more/,
  }, 'a short token is refused, as in the file');
  for (const [name, token] of [['a space', `${TOKEN} ${TOKEN}`], ['a trailing newline, as a Secret file often ends', `${TOKEN}\n`]]) {
    t.throws(() => loadTokens({ DRUM_SPLITTER_ADMIN_TOKEN: token }, undefined), {
      name: 'InputError', field: 'DRUM_SPLITTER_ADMIN_TOKEN', message: /the token contains whitespace, which a Bearer header cannot carry/,
    }, `whitespace is refused: ${name}`);
  }
  const tokens = loadTokens({ DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, undefined);
  t.same([...tokens.keys()], ['admin'], 'named "admin"');
  t.equal(whoIs(tokens, `Bearer ${TOKEN}`), 'admin');
  t.notOk([...tokens.values()].some((d) => d.toString('latin1').includes(TOKEN)), 'only a digest is kept');
});

t.test('loadTokens from a token file', async (t) => {
  const dir = t.testdir({
    tokens: [
      '# ops team',
      '',
      `alice:${TOKEN}-alice`,
      `  robot : ${TOKEN}-robot  `,
      '   # indented comment',
      '\t',
      `${TOKEN}-bare`,
      `colons:${TOKEN}:with:colons`,
      `crlf:${TOKEN}-crlf\r`,
      '',
    ].join('\n'),
  });
  const tokens = loadTokens({}, join(dir, 'tokens'));
  t.same([...tokens.keys()], ['alice', 'robot', 'admin', 'colons', 'crlf']);
  t.same(
    names(tokens, [`Bearer ${TOKEN}-alice`, `Bearer ${TOKEN}-robot`, `Bearer ${TOKEN}-bare`, `Bearer ${TOKEN}:with:colons`, `Bearer ${TOKEN}-crlf`]),
    ['alice', 'robot', 'admin', 'colons', 'crlf'],
  );
  t.equal(whoIs(tokens, `Bearer ${TOKEN}`), undefined, 'a prefix of a token is not the token');
});

t.test('loadTokens: the environment and the file together', async (t) => {
  const dir = t.testdir({ tokens: `alice:${TOKEN}-alice\n` });
  const tokens = loadTokens({ DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, join(dir, 'tokens'));
  t.same(names(tokens, [`Bearer ${TOKEN}`, `Bearer ${TOKEN}-alice`]), ['admin', 'alice']);
});

t.test('loadTokens rejects a token file it cannot use', async (t) => {
  const dir = t.testdir({
    short: `alice:${TOKEN}\nbob:short\n`,
    shortBare: '0123456789abcde\n',
    noName: `:${TOKEN}\n`,
    noToken: 'alice:\n',
    empty: '',
    onlyComments: '# nothing here\n\n   \n',
    twice: `alice:${TOKEN}-one\nalice:${TOKEN}-two\n`,
    twoBare: `${TOKEN}-one\n${TOKEN}-two\n`,
    bare: `${TOKEN}-file\n`,
    spaced: `alice:${TOKEN}-alice\nbob:${TOKEN} ${TOKEN}\n`,
    tabbedBare: `# a comment\n${TOKEN}\tsecond-half\n`,
    nbsp: `carol:${TOKEN}\u00a0x\n`,
    dir: {},
  });
  const cases: [string, NodeJS.ProcessEnv, string, RegExp][] = [
    ['a short token', {}, 'short', /line 2: want NAME:TOKEN with a token of 16 characters or more/],
    ['a short bare token (15 characters)', {}, 'shortBare', /line 1: want NAME:TOKEN/],
    ['no name', {}, 'noName', /line 1: want NAME:TOKEN/],
    ['no token', {}, 'noToken', /line 1: want NAME:TOKEN/],
    ['an empty file', {}, 'empty', /holds no token/],
    ['only comments', {}, 'onlyComments', /holds no token/],
    ['a name twice', {}, 'twice', /line 2: "alice" already has a token/],
    ['two bare tokens', {}, 'twoBare', /line 2: "admin" already has a token/],
    ['a bare token and DRUM_SPLITTER_ADMIN_TOKEN', { DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, 'bare', /line 1: "admin" already has a token \(from DRUM_SPLITTER_ADMIN_TOKEN/],
    ['a token with a space', {}, 'spaced', /line 2: the token contains whitespace, which a Bearer header cannot carry/],
    ['a bare token with a tab', {}, 'tabbedBare', /line 2: the token contains whitespace/],
    ['a token with a no-break space', {}, 'nbsp', /line 1: the token contains whitespace/],
    ['a missing file', {}, 'missing', /cannot read .*missing: ENOENT/],
    ['a directory', {}, 'dir', /cannot read .*dir: EISDIR/],
  ];
  for (const [name, env, file, message] of cases) {
    t.throws(() => loadTokens(env, join(dir, file)), { name: 'InputError', field: FIELD, message }, name);
  }
  t.throws(() => loadTokens({ DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, join(dir, 'empty')), { field: FIELD, message: /holds no token/ }, 'an empty file even with the variable set');
  t.ok(loadTokens({}, join(dir, 'bare')).has('admin'), 'a 16-character-or-longer bare token is fine');
});

t.test('loadTokens rejects a token file it may not read', { skip: process.getuid?.() === 0 && 'root reads any file' }, async (t) => {
  const dir = t.testdir({ tokens: `alice:${TOKEN}\n` });
  chmodSync(join(dir, 'tokens'), 0o000);
  t.teardown(() => chmodSync(join(dir, 'tokens'), 0o600));
  t.throws(() => loadTokens({}, join(dir, 'tokens')), { name: 'InputError', field: FIELD, message: /cannot read .*EACCES/ });
});

t.test('whoIs', async (t) => {
  t.same(names(new Map(), [undefined, '', `Bearer ${TOKEN}`, 'Basic x']), ['anonymous', 'anonymous', 'anonymous', 'anonymous'], 'no tokens: anyone is "anonymous"');

  const tokens = loadTokens({ DRUM_SPLITTER_ADMIN_TOKEN: TOKEN }, undefined);
  const cases: [string, string | undefined, string | undefined][] = [
    ['no header', undefined, undefined],
    ['an empty header', '', undefined],
    ['the scheme alone', 'Bearer', undefined],
    ['the scheme and a space', 'Bearer ', undefined],
    ['the wrong scheme', `Basic ${TOKEN}`, undefined],
    ['the token without a scheme', TOKEN, undefined],
    ['no space after the scheme', `Bearer${TOKEN}`, undefined],
    ['the wrong token', 'Bearer wrong-token-0000000000', undefined],
    ['the token with more after it', `Bearer ${TOKEN} extra`, undefined],
    ['the token with a character more', `Bearer ${TOKEN}4`, undefined],
    ['the right token', `Bearer ${TOKEN}`, 'admin'],
    ['"bearer" in lower case', `bearer ${TOKEN}`, 'admin'],
    ['"BEARER" in upper case', `BEARER ${TOKEN}`, 'admin'],
    ['extra spaces', `Bearer   ${TOKEN}  `, 'admin'],
  ];
  for (const [name, header, want] of cases) t.equal(whoIs(tokens, header), want, name);
});

t.test('whoIs: each token maps to its own name', async (t) => {
  const dir = t.testdir({ tokens: `alice:${TOKEN}-alice\nrobot:${TOKEN}-robot\n` });
  const tokens = loadTokens({}, join(dir, 'tokens'));
  t.same(names(tokens, [`Bearer ${TOKEN}-robot`, `Bearer ${TOKEN}-alice`, `Bearer ${TOKEN}`]), ['robot', 'alice', undefined]);
});

t.test('loopbackHost: which Host headers name this machine', async (t) => {
  const cases: [string | undefined, boolean][] = [
    ['localhost', true],
    ['LOCALHOST:9901', true],
    ['127.0.0.1:9901', true],
    ['127.1.2.3', true],
    ['[::1]:9901', true],
    ['[::1]', true],
    [undefined, false],
    ['', false],
    ['localhost.attacker.example', false],
    ['127.0.0.1.attacker.example', false],
    ['attacker.example:9901', false],
    ['[::2]:9901', false],
    ['10.0.0.1', false],
  ];
  for (const [host, want] of cases) t.equal(loopbackHost(host), want, String(host));
});

t.test('loopbackName: the listen address an anonymous admin API may use', async (t) => {
  const cases: [string, boolean][] = [
    ['localhost', true], ['LocalHost', true], ['127.0.0.1', true], ['127.1.2.3', true], ['::1', true], ['[::1]', true],
    ['0.0.0.0', false], ['::', false], ['10.0.0.1', false], ['127.0.0.1.nip.io', false], ['localhost.example', false],
  ];
  for (const [name, want] of cases) t.equal(loopbackName(name), want, name);
});

t.test('otherOrigin: a write sent by a web page of another origin, as the browser says', async (t) => {
  const host = '127.0.0.1:9901';
  const cases: [Record<string, string>, string, string | undefined][] = [
    [{}, 'http', undefined],
    [{ origin: 'http://127.0.0.1:9901' }, 'http', undefined],
    [{ origin: 'http://127.0.0.1:9901', 'sec-fetch-site': 'same-origin' }, 'http', undefined],
    [{ 'sec-fetch-site': 'none' }, 'http', undefined],
    [{ origin: 'HTTP://127.0.0.1:9901' }, 'http', undefined],
    [{ origin: 'https://127.0.0.1:9901' }, 'https', undefined],
    [{ origin: 'http://evil.example' }, 'http', 'Origin: http://evil.example'],
    [{ origin: 'null' }, 'http', 'Origin: null'],
    [{ origin: '' }, 'http', 'Origin: '],
    [{ origin: 'http://127.0.0.1:9902' }, 'http', 'Origin: http://127.0.0.1:9902'],
    [{ origin: 'http://localhost:9901' }, 'http', 'Origin: http://localhost:9901'],
    [{ origin: 'https://127.0.0.1:9901' }, 'http', 'Origin: https://127.0.0.1:9901'],
    [{ 'sec-fetch-site': 'same-site' }, 'http', 'Sec-Fetch-Site: same-site'],
    [{ 'sec-fetch-site': 'cross-site', origin: 'http://127.0.0.1:9901' }, 'http', 'Sec-Fetch-Site: cross-site'],
  ];
  for (const [headers, protocol, want] of cases) t.equal(otherOrigin({ host, ...headers }, protocol), want, JSON.stringify(headers));
  t.equal(otherOrigin({ host: 'localhost', origin: 'http://localhost:80' }, 'http'), undefined, 'the default port, spelled or not');
  t.equal(otherOrigin({ origin: 'http://127.0.0.1:9901' }, 'http'), 'Origin: http://127.0.0.1:9901', 'no Host: no origin of our own');
  t.equal(otherOrigin({ host: '127.0.0.1:99999', origin: 'http://127.0.0.1:99999' }, 'http'), 'Origin: http://127.0.0.1:99999', 'a Host that is no origin');
});
