import t from 'tap';
import { parseHost, parsePath } from '../src/proxy/nginx-uri.js';

const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

t.test('parsePath gives nginx $uri and $args', async (t) => {
  const cases: [string, string | null, string?][] = [
    ['/', '/'],
    ['/predict/', '/predict/'],
    ['/predict/?a=1&b=2', '/predict/', 'a=1&b=2'],
    ['/p?', '/p', ''],
    ['/a//b///c', '/a/b/c'],
    ['/a/./b/.', '/a/b/'],
    ['/a/b/../c', '/a/c'],
    ['/a/b/..', '/a/'],
    ['/a/..?x=1', '/', 'x=1'],
    ['/a/..#frag', '/'],
    ['/a/.#f', '/a/'],
    ['/a/.?q', '/a/', 'q'],
    ['/..', null],
    ['/../x', null],
    ['/a/../../x', null],
    ['/%2e%2e/x', null],
    ['/a/%2E%2E/b', '/b'],
    ['/a%2Fb', '/a/b'],
    ['/a%2F%2Fb', '/a/b'],
    ['/caf%C3%A9', '/caf\u00c3\u00a9'],
    ['/%ff%FE', '/\u00ff\u00fe'],
    ['/a%3Fb?c', '/a?b', 'c'],
    ['/a%23b', '/a#b'],
    ['/a%25b', '/a%b'],
    ['/a%252F', '/a%2F'],
    ['/a+b', '/a+b'],
    ['/a%2Bb', '/a+b'],
    ['/a%00', null],
    ['/a%', null],
    ['/a%4', null],
    ['/a%zz', null],
    ['/a%4g', null],
    ['/a#b?c', '/a', ''],
    ['/a?b#c', '/a', 'b'],
    ['/a?b%zz', '/a', 'b%zz'],
    ['/...', '/...'],
    ['/.a/..b/', '/.a/..b/'],
    ['/a.b/c', '/a.b/c'],
    ['/a/.%2e/b', '/b'],
    ['/a/%2e/b', '/a/b'],
    ['/a/%2e', '/a/'],
    ['/a%2f.%2f', '/a/'],
    ['/a%20b', '/a b'],
  ];
  for (const [target, uri, args = ''] of cases) {
    const got = parsePath(target);
    if (uri === null) t.equal(got, null, `${target} → 400`);
    else t.same(got && { uri: hex(got.uri), args: got.args }, { uri: hex(uri), args }, `${target} → ${uri} ? ${args}`);
  }
});

t.test('parseHost gives nginx $host', async (t) => {
  const cases: [string, string | null][] = [
    ['example.com', 'example.com'],
    ['Example.COM:8080', 'example.com'],
    ['example.com.', 'example.com'],
    ['example.com.:80', 'example.com'],
    ['[::1]:8000', '[::1]'],
    ['[::1]', '[::1]'],
    ['127.0.0.1:8000', '127.0.0.1'],
    ['a..b', null],
    ['a/b', null],
    ['a\\b', null],
    ['a b', null],
    ['', null],
    [':80', null],
    ['.', null],
    ['.a', '.a'],
    ['a:1:2', 'a'],
    ['x[y]', 'x[y]'],
    ['Ünï', 'Ünï'],
  ];
  for (const [value, want] of cases) t.equal(parseHost(value), want, `${JSON.stringify(value)} → ${want}`);
});
