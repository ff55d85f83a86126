import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { InputError } from '../src/common/input-error.js';
import { parseDuration, parseSize } from '../src/common/units.js';
import { parseHeaderName } from '../src/common/headers.js';
import {
  buildConfig,
  parseHostPort,
  readConfigFile,
  type Config,
  type RawSettings,
} from '../src/config/config.js';
import { applyWeights } from '../src/weights/shares.js';

/** The parts of a Config a user states, in plain values (URLs as hrefs). */
function plain(c: Config) {
  return {
    listen: c.listen,
    upstreams: c.upstreams.map((u) => [u.name, u.url.href]),
    weights: c.weights.map(([n, h]) => [n, h]),
  };
}

t.test('buildConfig with nothing given: the documented defaults', async (t) => {
  const c = buildConfig({});
  // As documented in --help and the issue: the seed's Flask (8080) and FastAPI (8081)
  // servers, flask first and so the baseline taking 100%, traffic on 0.0.0.0:8000.
  t.same(plain(c), {
    listen: { host: '0.0.0.0', port: 8000 },
    upstreams: [['flask', 'http://127.0.0.1:8080/'], ['fastapi', 'http://127.0.0.1:8081/']],
    weights: [],
  });
  t.equal(c.key, '${remote_addr}${uri}');
  t.equal(c.timeoutMs, 120_000, '120 s, gunicorn worker timeout');
  t.equal(c.bodyLimit, 100_000_000, '100 MB');
  t.equal(c.upstreamKeepAliveMs, 1000, '1 s, below gunicorn keep-alive of 2 s');
  t.same(
    [c.trustProxy, c.upstreamHeader, c.overrideHeader, c.accessLog, c.logLevel],
    [false, true, undefined, false, 'info'],
  );
  t.same(buildConfig({ upstreams: null, weights: null, listen: null }).listen, { host: '0.0.0.0', port: 8000 }, 'YAML nulls mean "default"');
});

t.test('upstreams: NAME=URL flags or a mapping, in order, the first is the baseline', async (t) => {
  const good: [unknown, [string, string][]][] = [
    [['b=http://10.0.0.2:81', 'a=http://10.0.0.1:80'], [['b', 'http://10.0.0.2:81/'], ['a', 'http://10.0.0.1/']]],
    [{ zeta: 'http://z:1', alpha: 'https://a/' }, [['zeta', 'http://z:1/'], ['alpha', 'https://a/']]],
    [[' spaced = http://h:1 '], [['spaced', 'http://h:1/']]],
    [['only=http://h:1/drum/base/'], [['only', 'http://h:1/drum/base/']]],
    [['A_b-9=http://h:1'], [['A_b-9', 'http://h:1/']]],
    [['eq=http://h:1/a=b'], [['eq', 'http://h:1/a=b']]],
    [[['pair', 'http://h:1']], [['pair', 'http://h:1/']]],
  ];
  for (const [upstreams, want] of good) {
    t.same(plain(buildConfig({ upstreams })).upstreams, want, JSON.stringify(upstreams));
  }

  const bad: [unknown, string, RegExp][] = [
    [['x=not a url'], 'upstreams.x', /"not a url" is not a URL/],
    [{ x: null }, 'upstreams.x', /"null" is not a URL/],
    [['x=ftp://h/'], 'upstreams.x', /must be an http:\/\/ or https:\/\/ URL/],
    [['x=http://h/?q=1'], 'upstreams.x', /no query, fragment or credentials/],
    [['x=http://h/#frag'], 'upstreams.x', /no query, fragment or credentials/],
    [['x=http://user@h/'], 'upstreams.x', /no query, fragment or credentials/],
    [['x=http://:secret@h/'], 'upstreams.x', /no query, fragment or credentials/],
    [['a=http://h:1', 'a=http://h:2'], 'upstreams', /"a" is named twice/],
    [['9lives=http://h'], 'upstreams.9lives', /a letter then letters, digits/],
    [['a.b=http://h'], 'upstreams.a.b', /a letter then letters, digits/],
    [[], 'upstreams', /at least one upstream/],
    [{}, 'upstreams', /at least one upstream/],
    [['http://h:1'], 'upstreams', /"http:\/\/h:1" is not NAME=VALUE/],
    [['=http://h:1'], 'upstreams', /is not NAME=VALUE/],
    [[42], 'upstreams', /"42" is not NAME=VALUE/],
    [[['a', 'http://h', 'extra']], 'upstreams', /is not NAME=VALUE/],
    ['http://h:1', 'upstreams', /must be a mapping of NAME: VALUE/],
    [7, 'upstreams', /must be a mapping/],
  ];
  for (const [upstreams, field, message] of bad) {
    t.throws(() => buildConfig({ upstreams }), { name: 'InputError', field, message }, JSON.stringify(upstreams));
  }
});

t.test('buffering: on by default for every upstream, switched off globally or per upstream; memory, directory, drain', async (t) => {
  const buffering = (c: ReturnType<typeof buildConfig>): [string, boolean, boolean][] =>
    c.upstreams.map((u) => [u.name, u.requestBuffering, u.responseBuffering]);
  const d = buildConfig({});
  t.same(buffering(d), [['flask', true, true], ['fastapi', true, true]], 'both directions buffered, as nginx does');
  t.same(d.buffer, { memory: 64_000, dir: tmpdir() }, '64 KB per body in memory, then the system temp directory');
  t.equal(d.drainTimeoutMs, d.timeoutMs, 'the drain waits as long as a request may take');
  t.equal(buildConfig({ timeout: '5s' }).drainTimeoutMs, 5000, '… whatever --timeout says');
  t.equal(buildConfig({ timeout: '5s', drainTimeout: '30s' }).drainTimeoutMs, 30_000);
  t.same(buildConfig({ bufferMemory: '1MiB', bufferDir: '/var/tmp' }).buffer, { memory: 1024 ** 2, dir: '/var/tmp' });
  t.same(buffering(buildConfig({ requestBuffering: false })), [['flask', false, true], ['fastapi', false, true]]);
  t.same(buffering(buildConfig({ responseBuffering: 'false' })), [['flask', true, false], ['fastapi', true, false]]);
  const perUpstream = buildConfig({
    requestBuffering: false,
    upstreams: { flask: 'http://h:1', fastapi: { url: 'http://h:2', requestBuffering: true, responseBuffering: false }, other: { url: 'http://h:3' } },
  });
  t.same(buffering(perUpstream), [['flask', false, true], ['fastapi', true, false], ['other', false, true]], 'an upstream\'s own setting wins over the global one');
  t.equal(perUpstream.upstreams[1]!.url.href, 'http://h:2/');

  const bad: [RawSettings, string, RegExp][] = [
    [{ bufferMemory: '0' }, 'bufferMemory', /more than 0 bytes/],
    [{ bufferMemory: 'lots' }, 'bufferMemory', /not a size/],
    [{ bufferDir: '' }, 'bufferDir', /file path/],
    [{ requestBuffering: 'no' }, 'requestBuffering', /not true or false/],
    [{ drainTimeout: '0s' }, 'drainTimeout', /not a duration/],
    [{ upstreams: { a: { url: 'http://h', buffering: false } } }, 'upstreams.a', /unknown key "buffering"; known: url, requestBuffering, responseBuffering/],
    [{ upstreams: { a: { url: 'http://h', responseBuffering: 1 } } }, 'upstreams.a.responseBuffering', /not true or false/],
    [{ upstreams: { a: { requestBuffering: false } } }, 'upstreams.a', /"undefined" is not a URL/],
  ];
  for (const [raw, field, message] of bad) t.throws(() => buildConfig(raw), { name: 'InputError', field, message }, JSON.stringify(raw));
});

t.test('weights: shares of named upstreams in listed order, the baseline takes the rest', async (t) => {
  const upstreams = ['flask=http://h:1', 'fastapi=http://h:2', 'canary=http://h:3'];
  const good: [unknown, [string, number][]][] = [
    [['fastapi=5'], [['fastapi', 500]]],
    [['canary=0.01', 'fastapi=37.55'], [['canary', 1], ['fastapi', 3755]]],
    [{ fastapi: 37.55, canary: 10 }, [['fastapi', 3755], ['canary', 1000]]],
    [{ canary: '5%', fastapi: 0 }, [['canary', 500], ['fastapi', 0]]],
    [['fastapi=60', 'canary=40'], [['fastapi', 6000], ['canary', 4000]]],
    [['fastapi=100'], [['fastapi', 10000]]],
    [['flask=30', 'fastapi=70'], [['flask', 3000], ['fastapi', 7000]]],
    // The baseline named with the share it gets: its line kept in its place, split_clients' order.
    [{ flask: 95, fastapi: 5 }, [['flask', 9500], ['fastapi', 500]]],
    [[], []],
  ];
  for (const [weights, want] of good) {
    t.same(plain(buildConfig({ upstreams, weights })).weights, want, JSON.stringify(weights));
  }

  const bad: [unknown, string, RegExp][] = [
    [['nope=5'], 'weights.nope', /"nope" is not an upstream \(have: flask, fastapi, canary\)/],
    [['fastapi=5', 'fastapi=6'], 'weights.fastapi', /"fastapi" is weighted twice/],
    [['fastapi=60', 'canary=40.01'], 'weights', /add up to 100.01%, over 100%/],
    [{ fastapi: 100, canary: 0.01 }, 'weights', /over 100%/],
    [['fastapi=37.555'], 'weights.fastapi', /at most two decimals/],
    [['fastapi=-1'], 'weights.fastapi', /not a percentage/],
    [['fastapi=101'], 'weights.fastapi', /over 100%/],
    [['fastapi'], 'weights', /"fastapi" is not NAME=VALUE/],
    [{ fastapi: null }, 'weights.fastapi', /must be a number of percent/],
    ['fastapi=5', 'weights', /must be a mapping/],
  ];
  for (const [weights, field, message] of bad) {
    t.throws(() => buildConfig({ upstreams, weights }), { name: 'InputError', field, message }, JSON.stringify(weights));
  }
});

t.test("weights: the baseline named with a share it would not get is refused, in the admin API's words", async (t) => {
  const upstreams = ['flask=http://h:1', 'fastapi=http://h:2'];
  const asked = { fastapi: 5, flask: 3 };
  // What PUT /weights answers for the same weights.
  const admin = ((): InputError => {
    try {
      applyWeights(['flask', 'fastapi'], [], asked);
    } catch (err) {
      return err as InputError;
    }
    throw new Error('the admin API took them');
  })();
  t.same([admin.field, admin.message], ['weights.flask', 'weights.flask: flask is the baseline and takes the rest, 95%; leave it out or send 95']);
  // A config file's mapping, and the flags' NAME=PERCENT list: the same words.
  for (const weights of [asked, ['fastapi=5', 'flask=3']]) {
    t.throws(() => buildConfig({ upstreams, weights }), { name: 'InputError', field: admin.field, message: admin.message }, JSON.stringify(weights));
  }
  t.throws(() => buildConfig({ upstreams, weights: { flask: 3 } }), { field: 'weights.flask', message: 'weights.flask: flask is the baseline and takes the rest, 100%; leave it out or send 100' });
});

t.test('key: any nginx template, checked when the config is built', async (t) => {
  t.equal(buildConfig({ key: '$http_x_user' }).key, '$http_x_user');
  t.throws(() => buildConfig({ key: '$nope' }), { name: 'InputError', field: 'key', message: /unknown variable \$nope/ });
  t.throws(() => buildConfig({ key: 5 }), { name: 'InputError', field: 'key', message: /uses no variable/ });
});

t.test('listen: HOST:PORT, IP addresses or localhost', async (t) => {
  const good: [string, { host: string; port: number }][] = [
    ['0.0.0.0:8000', { host: '0.0.0.0', port: 8000 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['[::]:8000', { host: '::', port: 8000 }],
    ['[::1]:65535', { host: '::1', port: 65535 }],
    ['[::ffff:127.0.0.1]:80', { host: '::ffff:127.0.0.1', port: 80 }],
    ['localhost:1', { host: 'localhost', port: 1 }],
  ];
  for (const [listen, want] of good) {
    t.same(parseHostPort(listen, 'listen'), want, listen);
    t.same(buildConfig({ listen }).listen, want, `${listen} in a config`);
  }
  t.same(parseHostPort('example.com:80', 'x'), { host: 'example.com', port: 80 }, 'parseHostPort leaves name checks to its caller');

  const bad: [unknown, RegExp][] = [
    ['127.0.0.1:65536', /"127.0.0.1:65536" is not HOST:PORT/],
    ['127.0.0.1:123456', /is not HOST:PORT/],
    ['127.0.0.1', /is not HOST:PORT/],
    [':8000', /is not HOST:PORT/],
    ['::1:8000', /is not HOST:PORT/],
    ['[zz]:80', /"\[zz\]" is not an IP address/],
    ['127.0.0.1:-1', /is not HOST:PORT/],
    ['my host:80', /is not HOST:PORT/],
    [8000, /must be HOST:PORT/],
    ['example.com:80', /"example.com" is not an IP address/],
    ['[1.2.3]:80', /"1.2.3" is not an IP address/],
    ['999.1.1.1:80', /is not an IP address/],
  ];
  for (const [listen, message] of bad) {
    t.throws(() => buildConfig({ listen }), { name: 'InputError', field: 'listen', message }, String(listen));
  }
  t.throws(() => parseHostPort('nope', '--listen'), { name: 'InputError', field: '--listen', message: /^--listen: / });
});

t.test('parseSize: bytes from 100MB, 10MiB, 1048576', async (t) => {
  const good: [unknown, number][] = [
    ['100MB', 100_000_000],
    ['10MiB', 10 * 1024 * 1024],
    ['1048576', 1_048_576],
    [1048576, 1_048_576],
    ['1.5GB', 1_500_000_000],
    ['2gib', 2 * 1024 ** 3],
    ['512 kb', 512_000],
    ['1KiB', 1024],
    ['7b', 7],
    [' 3 MB ', 3_000_000],
    ['0', 0],
  ];
  for (const [value, want] of good) t.equal(parseSize(value, 'bodyLimit'), want, String(value));
  for (const value of ['', 'MB', '-1MB', '10 parsecs', '1e6', '1,000', '1.MB', null, true]) {
    t.throws(() => parseSize(value, 'bodyLimit'), { name: 'InputError', field: 'bodyLimit', message: /is not a size such as 100MB/ }, String(value));
  }
  t.equal(buildConfig({ bodyLimit: '10MiB' }).bodyLimit, 10 * 1024 * 1024);
  t.throws(() => buildConfig({ bodyLimit: 'lots' }), { name: 'InputError', field: 'bodyLimit' });
});

t.test('parseDuration: milliseconds from 120s, 500ms, 2m, 1h, 7d or plain seconds', async (t) => {
  const good: [unknown, number][] = [
    ['120s', 120_000],
    ['500ms', 500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['48h', 172_800_000],
    ['7d', 604_800_000],
    ['30', 30_000],
    [30, 30_000],
    ['1.5s', 1500],
    [' 2 s ', 2000],
    ['0.5', 500],
  ];
  for (const [value, want] of good) t.equal(parseDuration(value, 'timeout'), want, String(value));
  for (const value of ['0', 0, '0s', '0.4ms', '-1s', '-5', 'soon', '', '1w', '10S', '1D', '1.s', null]) {
    t.throws(() => parseDuration(value, 'timeout'), { name: 'InputError', field: 'timeout', message: /is not a duration such as 120s/ }, String(value));
  }
  const c = buildConfig({ timeout: '2m', upstreamKeepAlive: '500ms' });
  t.same([c.timeoutMs, c.upstreamKeepAliveMs], [120_000, 500]);
  t.throws(() => buildConfig({ upstreamKeepAlive: 'never' }), { name: 'InputError', field: 'upstreamKeepAlive' });
});

t.test('booleans: trustProxy, upstreamHeader, accessLog take true/false or "true"/"false"', async (t) => {
  const fields = ['trustProxy', 'upstreamHeader', 'accessLog'] as const;
  for (const field of fields) {
    for (const [value, want] of [[true, true], [false, false], ['true', true], ['false', false]] as const) {
      t.equal(buildConfig({ [field]: value })[field], want, `${field}: ${JSON.stringify(value)}`);
    }
    for (const value of ['yes', 1, 'TRUE', '']) {
      t.throws(
        () => buildConfig({ [field]: value }),
        { name: 'InputError', field, message: /is not true or false/ },
        `${field}: ${JSON.stringify(value)}`,
      );
    }
  }
});

t.test('overrideHeader: a header name, lower-cased; false or null turn it off', async (t) => {
  t.equal(buildConfig({ overrideHeader: 'X-Drum-Upstream' }).overrideHeader, 'x-drum-upstream');
  t.equal(parseHeaderName("X-A!#$%&'*+.^_`|~-9", 'h'), "x-a!#$%&'*+.^_`|~-9", 'every RFC 9110 token character');
  for (const off of [undefined, null, false]) {
    t.equal(buildConfig({ overrideHeader: off }).overrideHeader, undefined, `${String(off)} = off`);
  }
  for (const value of ['X Upstream', 'x:y', '', 'naïve', true, 42]) {
    t.throws(
      () => buildConfig({ overrideHeader: value }),
      { name: 'InputError', field: 'overrideHeader', message: /is not an HTTP header name/ },
      JSON.stringify(value),
    );
  }
});

t.test('logLevel: one of pino\'s levels', async (t) => {
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
    t.equal(buildConfig({ logLevel: level }).logLevel, level);
  }
  t.throws(() => buildConfig({ logLevel: 'verbose' }), {
    name: 'InputError',
    field: 'logLevel',
    message: /"verbose" is not one of fatal, error, warn, info, debug, trace, silent/,
  });
});

t.test('readConfigFile: YAML with the same settings', async (t) => {
  const dir = t.testdir({
    'full.yaml': [
      '# every setting',
      'listen: "[::]:9000"',
      'upstreams:',
      '  zulu: http://127.0.0.1:9001',
      '  alpha: http://127.0.0.1:9002/base/',
      '  mike: https://m.example:443',
      'weights:',
      '  mike: 37.55',
      '  alpha: "5%"',
      'key: ${remote_addr}${arg_user}',
      'trustProxy: true',
      'upstreamHeader: false',
      'overrideHeader: X-Force',
      'timeout: 30',
      'bodyLimit: 10MiB',
      'upstreamKeepAlive: 1500ms',
      'accessLog: "true"',
      'logLevel: warn',
      '',
    ].join('\n'),
    'empty.yaml': '',
    'comments.yaml': '# nothing set yet\n',
    'list.yaml': '- listen: 0.0.0.0:1\n',
    'scalar.yaml': 'just words\n',
    'invalid.yaml': 'upstreams: [a\nweights: {\n',
    'dup.yaml': 'logLevel: info\nlogLevel: warn\n',
    'unknown.yaml': 'listen: 127.0.0.1:1\nweight: {fastapi: 5}\n',
  });

  const raw = readConfigFile(join(dir, 'full.yaml'));
  const c = buildConfig(raw);
  // Mapping order is split_clients line order and picks the baseline, so it must survive
  // YAML parsing as written, not alphabetised.
  t.same(plain(c), {
    listen: { host: '::', port: 9000 },
    upstreams: [['zulu', 'http://127.0.0.1:9001/'], ['alpha', 'http://127.0.0.1:9002/base/'], ['mike', 'https://m.example/']],
    weights: [['mike', 3755], ['alpha', 500]],
  });
  t.same(
    {
      key: c.key, trustProxy: c.trustProxy, upstreamHeader: c.upstreamHeader, overrideHeader: c.overrideHeader,
      timeoutMs: c.timeoutMs, bodyLimit: c.bodyLimit, upstreamKeepAliveMs: c.upstreamKeepAliveMs,
      accessLog: c.accessLog, logLevel: c.logLevel,
    },
    {
      key: '${remote_addr}${arg_user}', trustProxy: true, upstreamHeader: false, overrideHeader: 'x-force',
      timeoutMs: 30_000, bodyLimit: 10 * 1024 * 1024, upstreamKeepAliveMs: 1500, accessLog: true, logLevel: 'warn',
    },
  );

  t.same(readConfigFile(join(dir, 'empty.yaml')), {}, 'an empty file sets nothing');
  t.same(readConfigFile(join(dir, 'comments.yaml')), {}, 'a file of comments sets nothing');

  const bad: [string, RegExp][] = [
    ['list.yaml', /list\.yaml must hold a mapping of settings/],
    ['scalar.yaml', /scalar\.yaml must hold a mapping of settings/],
    ['invalid.yaml', /invalid\.yaml is not valid YAML: \S/],
    ['dup.yaml', /dup\.yaml is not valid YAML: .*unique/],
    ['unknown.yaml', /unknown setting "weight" in .*unknown\.yaml; known: listen, upstreams, weights, key,/],
    ['missing.yaml', /cannot read .*missing\.yaml: ENOENT/],
    ['.', /cannot read .*: EISDIR/],
  ];
  for (const [file, message] of bad) {
    const path = join(dir, file);
    t.throws(() => readConfigFile(path), { name: 'InputError', field: '--config', message }, file);
    t.throws(() => readConfigFile(path), { message: /^--config: [^\n]*$/ }, `${file}: one line`);
  }
});

t.test("a Kubernetes ConfigMap: the config is its one data key's value, read as a file's", async (t) => {
  const configMap = (data: string, name = 'drum-splitter-config'): string =>
    `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n${data}`;
  const dir = t.testdir({
    'cm.yaml': configMap('data:\n  config.yaml: |\n    upstreams: { flask: "http://a:1", gpu: "http://b:1" }\n    weights: { gpu: 5 }\n'),
    'cm-empty-config.yaml': configMap('data:\n  config.yaml: ""\n'),
    'cm-two.yaml': configMap('data:\n  config.yaml: "weights: {}"\n  tokens: "x"\n'),
    'cm-none.yaml': configMap('data: {}\n'),
    'cm-no-data.yaml': configMap('', 'bare'),
    'cm-list.yaml': configMap('data: [a, b]\n'),
    'cm-number.yaml': configMap('data:\n  config.yaml: 5\n'),
    'cm-not-yaml.yaml': configMap('data:\n  config.yaml: "weights: ["\n'),
    'cm-unknown.yaml': configMap('data:\n  config.yaml: "weight: 5"\n'),
    'cm-unnamed.yaml': 'apiVersion: v1\nkind: ConfigMap\n',
    'deployment.yaml': 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: drum-splitter }\nspec: {}\n',
  });
  const at = (file: string): string => join(dir, file);
  const raw = readConfigFile(at('cm.yaml'));
  t.same(plain(buildConfig(raw)).weights, [['gpu', 500]], 'the settings of its config.yaml');
  t.same(readConfigFile(at('cm-empty-config.yaml')), {}, 'an empty config: the defaults, as an empty file');

  const cm = (file: string, name = 'drum-splitter-config'): string => `${at(file)} (ConfigMap ${name}, key config.yaml)`.replace(/[.()[\]]/g, '\\$&');
  const bad: [string, RegExp][] = [
    ['cm-two.yaml', /^--config: .*cm-two\.yaml: ConfigMap drum-splitter-config has 2 data keys \(config\.yaml, tokens\) and which holds the config cannot be told; its config is the value of one key, e\.g\. config\.yaml$/],
    ['cm-none.yaml', /cm-none\.yaml: ConfigMap drum-splitter-config holds no data key; its config is the value of one key/],
    ['cm-no-data.yaml', /cm-no-data\.yaml: ConfigMap bare holds no data key/],
    ['cm-unnamed.yaml', /cm-unnamed\.yaml: ConfigMap \(unnamed\) holds no data key/],
    ['cm-list.yaml', /cm-list\.yaml: the data of ConfigMap drum-splitter-config must be a mapping of KEY: TEXT$/],
    ['cm-number.yaml', new RegExp(`${cm('cm-number.yaml')} must be text, the config file's YAML`)],
    ['cm-not-yaml.yaml', new RegExp(`${cm('cm-not-yaml.yaml')} is not valid YAML: `)],
    ['cm-unknown.yaml', new RegExp(`unknown setting "weight" in ${cm('cm-unknown.yaml')}; known: listen, upstreams,`)],
    ['deployment.yaml', /deployment\.yaml is a Kubernetes Deployment, not a config file nor a ConfigMap holding one$/],
  ];
  for (const [file, message] of bad) t.throws(() => readConfigFile(at(file)), { name: 'InputError', field: '--config', message }, file);
});

t.test('a file with bad values fails in buildConfig naming the setting', async (t) => {
  const dir = t.testdir({
    'port.yaml': 'listen: 8000\n',
    'weights.yaml': 'upstreams:\n  a: http://h:1\n  b: http://h:2\nweights:\n  b: 60\n  a: 40.01\n',
    'upstreams.yaml': 'upstreams: http://h:1\n',
    'state.yaml': 'state: 5\n',
    'tokens.yaml': "adminTokenFile: ''\n",
    'admin.yaml': 'admin: example.com:9901\n',
  });
  const bad: [string, string, RegExp][] = [
    ['port.yaml', 'listen', /must be HOST:PORT/],
    ['state.yaml', 'state', /must be a file path/],
    ['tokens.yaml', 'adminTokenFile', /must be a file path/],
    ['admin.yaml', 'admin', /"example.com" is not an IP address/],
    ['weights.yaml', 'weights', /over 100%/],
    ['upstreams.yaml', 'upstreams', /must be a mapping/],
  ];
  for (const [file, field, message] of bad) {
    const raw: RawSettings = readConfigFile(join(dir, file));
    t.throws(() => buildConfig(raw), { name: 'InputError', field, message }, file);
  }
});

t.test('shadow settings: defaults, and each bad value named', async (t) => {
  const c = buildConfig({});
  t.same(
    c.shadow,
    { upstream: 'fastapi', sampleRate: 0, paths: c.record.paths, maxInflight: 64, maxBody: 1_000_000, timeoutMs: 10_000, log: undefined, ignore: [], noiseSample: 0, tolerance: { relative: 0, absolute: 1e-5 } },
    'off, to the canary, on the record paths, 10 s at most for a copy, no noise sample, numbers equal within 1e-5',
  );
  t.equal(buildConfig({ timeout: '2s' }).shadow.timeoutMs, 2000, 'the lesser of --timeout and 10 s');
  t.equal(buildConfig({ timeout: '2s', shadowTimeout: '30s' }).shadow.timeoutMs, 30_000, 'or what --shadow-timeout says');
  t.equal(buildConfig({ shadowTimeout: '24d' }).shadow.timeoutMs, 24 * 86_400_000, 'as long as a timer holds');
  const three = ['a=http://127.0.0.1:1', 'b=http://127.0.0.1:2', 'c=http://127.0.0.1:3'];
  t.match(
    buildConfig({
      upstreams: three, shadow: 'c', shadowSample: '0.25', shadowPaths: '/x,/y', shadowMaxInflight: '8', shadowMaxBody: '2KB', shadowIgnore: ['$.t', '$..id'],
      shadowNoiseSample: '0.1', shadowRelative: '1e-6', shadowAbsolute: 0,
    }).shadow,
    {
      upstream: 'c',
      sampleRate: 0.25,
      paths: ['/x', '/y'],
      maxInflight: 8,
      maxBody: 2000,
      ignore: ['$.t', '$..id'],
      noiseSample: 0.1,
      tolerance: { relative: 1e-6, absolute: 0 },
    },
  );
  t.equal(buildConfig({ upstreams: ['a=http://127.0.0.1:1'] }).shadow.upstream, undefined, 'one upstream: nothing to shadow to');
  const bad: [RawSettings, string, RegExp][] = [
    [{ shadow: 'nope' }, 'shadow', /"nope" is not an upstream; upstreams: flask, fastapi/],
    [{ shadow: 'flask' }, 'shadow', /is the baseline/],
    [{ upstreams: ['a=http://127.0.0.1:1'], shadowSample: 0.5 }, 'shadowSample', /needs a second upstream/],
    [{ shadowSample: '5%' }, 'shadowSample', /is not a rate from 0 to 1/],
    [{ shadowMaxInflight: '0' }, 'shadowMaxInflight', /is not a whole number above 0/],
    [{ shadowMaxInflight: '1.5' }, 'shadowMaxInflight', /is not a whole number above 0/],
    [{ shadowMaxInflight: 2.5 }, 'shadowMaxInflight', /"2.5" is not a whole number above 0/],
    [{ shadowMaxBody: '0' }, 'shadowMaxBody', /more than 0 bytes/],
    [{ shadowPaths: 'predict' }, 'shadowPaths', /is not a path/],
    [{ shadowPaths: [] }, 'shadowPaths', /at least one path/],
    [{ shadowIgnore: '$.a[' }, 'shadowIgnore', /./],
    [{ shadowLog: '' }, 'shadowLog', /must be a file path/],
    [{ shadowTimeout: 'soon' }, 'shadowTimeout', /is not a duration/],
    [{ shadowTimeout: '0s' }, 'shadowTimeout', /is not a duration/],
    [{ shadowTimeout: '25d' }, 'shadowTimeout', /"25d" is longer than the most a timer holds, 24d/],
    [{ shadowNoiseSample: '2' }, 'shadowNoiseSample', /is not a rate from 0 to 1/],
    [{ shadowRelative: '-1' }, 'shadowRelative', /"-1" is not a number from 0 up/],
    [{ shadowAbsolute: 'none' }, 'shadowAbsolute', /"none" is not a number from 0 up/],
  ];
  for (const [raw, field, message] of bad) t.throws(() => buildConfig(raw), { name: 'InputError', field, message }, JSON.stringify(raw));
});

t.test('routes: the cohort rules, checked against the upstreams as given (flags or file); none by default', async (t) => {
  t.same(buildConfig({}).routes, []);
  const routes = [{ match: { header: { 'X-Beta': 1 } }, upstream: 'gpu' }];
  t.same(buildConfig({ upstreams: ['flask=http://a:1', 'gpu=http://b:1'], routes }).routes, [{ name: 'route-1', match: { header: { 'x-beta': '1' } }, upstream: 'gpu' }]);
  t.throws(() => buildConfig({ routes }), { name: 'InputError', field: 'routes[0].upstream', message: /"gpu" is not an upstream; upstreams: flask, fastapi/ });
});
