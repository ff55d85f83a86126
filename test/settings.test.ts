/** The one table of serve's settings, and what is derived from it. */
import t from 'tap';
import { COMMAND_FLAGS, FILE_ONLY, SETTING_KEYS, SETTINGS, settingsFromFlags, usageLines, wrapped } from '../src/config/settings.js';

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
  t.same(Object.keys(COMMAND_FLAGS.serve!).sort(), [...SETTINGS.map((s) => s.flag), 'config'].sort());
});

t.test('usage lines and wrapping', async (t) => {
  t.equal(usageLines([{ flag: 'x', arg: 'N', help: ['one', 'two'] }]), `  --x N${' '.repeat(22)}one\n${' '.repeat(29)}two`);
  t.equal(usageLines([{ flag: 'a-very-long-flag-name', arg: 'SIZE', help: ['h'] }]), '  --a-very-long-flag-name SIZE h', 'a long flag keeps one space');
  t.same(wrapped(['alpha', 'beta', 'gamma'], 12), ['alpha, beta,', 'gamma']);
  t.same(wrapped([], 10), []);
});
