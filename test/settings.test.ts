/** The one table of serve's settings, and what is derived from it. */
import t from 'tap';
import { FILE_ONLY, SERVE_FLAGS, SETTING_DEFAULTS, SETTING_KEYS, SETTINGS, settingsFromFlags } from '../src/config/settings.js';

t.test('flags map to settings by the table: values, lists, switches, and switches that turn a setting off', async (t) => {
  t.same(
    settingsFromFlags({ listen: '0.0.0.0:1', upstream: ['a=http://h'], 'trust-proxy': true, 'no-upstream-header': true, 'no-request-buffering': true, 'record-no-redact': true }),
    { listen: '0.0.0.0:1', upstreams: ['a=http://h'], trustProxy: true, upstreamHeader: false, requestBuffering: false, recordNoRedact: true },
  );
  t.same(settingsFromFlags({ token: 'x', config: 'f.yaml' }), {}, 'flags that are not settings are not settings');
});

t.test('each setting once: unique keys and flags, every one a flag of serve and nothing else', async (t) => {
  t.equal(new Set(SETTING_KEYS).size, SETTINGS.length + FILE_ONLY.length, 'a key each, file-only ones included');
  t.ok(FILE_ONLY.every((key) => !SETTINGS.some((s) => (s.key as string) === key)), 'a file-only key has no flag');
  t.equal(new Set(SETTINGS.map((s) => s.flag)).size, SETTINGS.length);
  t.same(SERVE_FLAGS.map((f) => f.flag).sort(), [...SETTINGS.map((s) => s.flag), 'config'].sort());
});

t.test("the defaults buildConfig applies are the table's, by key", async (t) => {
  t.match(SETTING_DEFAULTS, { listen: '0.0.0.0:8000', timeout: '120s', logLevel: 'info', workers: '1' });
  t.same(Object.keys(SETTING_DEFAULTS), SETTINGS.flatMap((s) => ('default' in s ? [s.key] : [])));
});
