import { mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { RawSettings } from '../src/config/config.js';
import { watchConfig } from '../src/config/watch.js';
import type { InputError } from '../src/common/input-error.js';
import { sleep, within } from './helpers/wait.js';

const DEBOUNCE = 50;
const A = 'weights:\n  fastapi: 10%\n';
const B = 'weights:\n  fastapi: 20%\n';
const C = 'weights:\n  fastapi: 30%\n';
const settingsOf = (pct: number) => ({ settings: { weights: { fastapi: `${pct}%` } } });

type Call = { settings: RawSettings } | { error: InputError };

/** watchConfig on `path`, recording its callbacks; closed when the test ends. */
function watched(t: Test, path: string, opts: { debounceMs?: number } = { debounceMs: DEBOUNCE }) {
  const calls: Call[] = [];
  let wake = (): void => {};
  const push = (call: Call): void => {
    calls.push(call);
    wake();
  };
  const watcher = watchConfig(path, (settings) => push({ settings }), (error) => push({ error }), opts);
  t.teardown(() => watcher.close());
  const debounceMs = opts.debounceMs ?? 200;
  return {
    watcher,
    calls,
    /** The next callback, waiting a bounded time for it. */
    async next(ms = 3000): Promise<Call> {
      if (calls.length === 0) {
        await within(new Promise<void>((resolve) => (wake = resolve)), ms, 'watchConfig callback');
        wake = () => {};
      }
      return calls.shift()!;
    },
    /** The callbacks made over a few debounce periods (expected: none). */
    async quiet(ms = debounceMs * 4): Promise<Call[]> {
      await sleep(ms);
      return calls.splice(0);
    },
  };
}

/** Resolves on the next event fs.watch reports in `dir`, as watchConfig's watch sees it. */
function nextEventIn(dir: string): Promise<void> {
  return within(
    new Promise<void>((resolve) => {
      const probe = watch(dir, () => {
        probe.close();
        resolve();
      });
    }),
    3000,
    `an event in ${dir}`,
  );
}

t.test('an in-place edit is applied once, after the debounce', async (t) => {
  const dir = t.testdir({ 'c.yaml': A });
  const path = join(dir, 'c.yaml');
  const w = watched(t, path);
  t.same(await w.quiet(), [], 'the content at the start is not reported');
  writeFileSync(path, B); // truncate + write: two events, one read
  t.same(await w.next(), settingsOf(20));
  t.same(await w.quiet(), []);
  writeFileSync(path, C);
  t.same(await w.next(), settingsOf(30), 'and again');
});

t.test('an editor-style replace (write a temp file, rename it over) is applied', async (t) => {
  const dir = t.testdir({ 'c.yaml': A });
  const path = join(dir, 'c.yaml');
  const w = watched(t, path);
  writeFileSync(join(dir, '.c.yaml.swp'), B);
  renameSync(join(dir, '.c.yaml.swp'), path);
  t.same(await w.next(), settingsOf(20));
  // The new inode is watched as well as the old was.
  writeFileSync(join(dir, '.c.yaml.swp'), C);
  renameSync(join(dir, '.c.yaml.swp'), path);
  t.same(await w.next(), settingsOf(30));
  t.same(await w.quiet(), []);
});

t.test('the Kubernetes ConfigMap volume swap is applied exactly once', async (t) => {
  const dir = t.testdir({});
  const put = (ts: string, content: string): void => {
    mkdirSync(join(dir, ts));
    writeFileSync(join(dir, ts, 'drum-splitter.yaml'), content);
  };
  /** What kubelet's AtomicWriter does: new dir, ..data_tmp → it, rename over ..data, drop the old. */
  const swap = (from: string, to: string, content: string): void => {
    put(to, content);
    symlinkSync(to, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    rmSync(join(dir, from), { recursive: true });
  };
  const ts1 = '..2026_11_22_00_00_00.000000001';
  const ts2 = '..2026_11_22_00_01_00.000000002';
  const ts3 = '..2026_11_22_00_02_00.000000003';
  put(ts1, A);
  symlinkSync(ts1, join(dir, '..data'));
  symlinkSync('..data/drum-splitter.yaml', join(dir, 'drum-splitter.yaml'));

  const w = watched(t, join(dir, 'drum-splitter.yaml'));
  swap(ts1, ts2, B);
  t.same(await w.next(), settingsOf(20));
  t.same(await w.quiet(), [], 'exactly once');
  swap(ts2, ts3, C);
  t.same(await w.next(), settingsOf(30), 'the second swap too: nothing went stale');
  t.same(await w.quiet(), [], 'exactly once');
  swap(ts3, ts1, C);
  t.same(await w.quiet(), [], 'a swap to identical content calls nothing');
});

t.test('a file written in two parts is applied once, when whole: the canary does not drop to 0% in between', async (t) => {
  const upstreams = 'upstreams:\n  flask: http://flask:8080\n  fastapi: http://fastapi:8080\n';
  const dir = t.testdir({ 'c.yaml': `${upstreams}weights:\n  fastapi: 10%\n` });
  const path = join(dir, 'c.yaml');
  const w = watched(t, path);
  writeFileSync(path, upstreams); // no weights yet: all to the baseline, if applied
  await sleep(DEBOUNCE * 1.5);
  writeFileSync(path, `${upstreams}weights:\n  fastapi: 15%\n`);
  t.same(await w.next(), { settings: { upstreams: { flask: 'http://flask:8080', fastapi: 'http://fastapi:8080' }, weights: { fastapi: '15%' } } }, 'the whole file');
  t.same(await w.quiet(), [], 'exactly once');
});

t.test('a file that keeps changing is applied once it has held still for a debounce period', async (t) => {
  const dir = t.testdir({ 'c.yaml': A });
  const path = join(dir, 'c.yaml');
  const w = watched(t, path);
  for (let pct = 11; pct <= 16; pct++) {
    writeFileSync(path, `weights:\n  fastapi: ${pct}%\n`);
    await sleep(DEBOUNCE * 1.5);
  }
  t.same(await w.next(), settingsOf(16), 'the content it settled on');
  t.same(await w.quiet(), [], 'and nothing in between');
});

t.test('identical content rewritten, touched or renamed over calls nothing', async (t) => {
  const dir = t.testdir({ 'c.yaml': A });
  const path = join(dir, 'c.yaml');
  const w = watched(t, path);
  writeFileSync(path, A);
  t.same(await w.quiet(), [], 'rewritten');
  const now = new Date();
  utimesSync(path, now, now);
  t.same(await w.quiet(), [], 'touched');
  writeFileSync(join(dir, 'c.yaml.new'), A);
  renameSync(join(dir, 'c.yaml.new'), path);
  t.same(await w.quiet(), [], 'replaced by a copy');
  writeFileSync(join(dir, 'unrelated.txt'), 'x');
  t.same(await w.quiet(), [], 'another file in the directory');
  writeFileSync(path, B);
  t.same(await w.next(), settingsOf(20), 'still watching');
});

t.test('a bad edit calls onError and keeps watching', async (t) => {
  const dir = t.testdir({ 'c.yaml': A });
  const path = join(dir, 'c.yaml');
  const w = watched(t, path);
  const invalidYaml = 'weights: [fastapi\n';
  writeFileSync(path, invalidYaml);
  t.match(await w.next(), { error: { name: 'InputError', field: '--config', message: /c\.yaml is not valid YAML/ } });
  writeFileSync(path, invalidYaml);
  t.same(await w.quiet(), [], 'the same bad content again is not reported again');
  writeFileSync(path, 'weight:\n  fastapi: 5\n');
  t.match(await w.next(), { error: { name: 'InputError', field: '--config', message: /unknown setting "weight" in .*c\.yaml/ } });
  writeFileSync(path, A);
  t.same(await w.next(), settingsOf(10), 'good content again, though the same as before the errors');
  t.same(await w.quiet(), []);
});

t.test('an unreadable file is reported at once, wrapped in an InputError naming it', async (t) => {
  const dir = t.testdir({ 'c.yaml': A });
  const path = join(dir, 'c.yaml');
  const w = watched(t, path);
  rmSync(path);
  mkdirSync(path);
  t.match(await w.next(), { error: { name: 'InputError', field: '--config', message: `cannot read ${path}: EISDIR` } });
  rmSync(path, { recursive: true });
  writeFileSync(path, B);
  t.same(await w.next(), settingsOf(20));
});

t.test('a file deleted and recreated within the debounce is no error', async (t) => {
  const dir = t.testdir({ 'c.yaml': A });
  const path = join(dir, 'c.yaml');
  const w = watched(t, path);
  unlinkSync(path);
  await sleep(DEBOUNCE / 3);
  writeFileSync(path, A);
  t.same(await w.quiet(), [], 'same content back: nothing');
  unlinkSync(path);
  await sleep(DEBOUNCE / 3);
  writeFileSync(path, B);
  t.same(await w.next(), settingsOf(20), 'new content: applied');
  t.same(await w.quiet(), []);
});

t.test('a file found missing is given a debounce period to come back', async (t) => {
  // The config is a symlink into another directory, so its deletion and return make no event
  // in the watched one: only the check started by an unrelated event sees the file missing.
  const dir = t.testdir({ watched: {}, elsewhere: { 'c.yaml': A } });
  const target = join(dir, 'elsewhere', 'c.yaml');
  const path = join(dir, 'watched', 'c.yaml');
  symlinkSync(target, path);
  const w = watched(t, path, { debounceMs: 100 });
  const event = nextEventIn(join(dir, 'watched'));
  writeFileSync(join(dir, 'watched', 'unrelated.txt'), 'x'); // the check is due 100 ms after this
  unlinkSync(target);
  await event;
  await sleep(150); // the check at 100 ms found the file missing; the recheck is due at 200 ms
  writeFileSync(target, B);
  t.same(await w.next(), settingsOf(20), 'the recheck found it back, with new content');
  t.same(await w.quiet(), [], 'and no error');
});

t.test('a file that stays missing is an error after the debounce, reported once', async (t) => {
  const dir = t.testdir({ 'c.yaml': A });
  const path = join(dir, 'c.yaml');
  const w = watched(t, path);
  const start = Date.now();
  unlinkSync(path);
  t.match(await w.next(), { error: { name: 'InputError', field: '--config', message: `cannot read ${path}: ENOENT` } });
  t.ok(Date.now() - start >= DEBOUNCE, 'not before it stayed missing for the debounce period');
  writeFileSync(join(dir, 'unrelated.txt'), 'x');
  t.same(await w.quiet(), [], 'still missing: not reported again');
  writeFileSync(path, A);
  t.same(await w.next(), settingsOf(10), 'back, though with the content it had before');
});

t.test('a file missing at the start is applied when it appears', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'c.yaml');
  const w = watched(t, path);
  writeFileSync(join(dir, 'unrelated.txt'), 'x');
  t.same(await w.quiet(), [], 'still missing as at the start: not reported');
  writeFileSync(path, A);
  t.same(await w.next(), settingsOf(10));
});

t.test('close() stops everything', async (t) => {
  const dir = t.testdir({ 'c.yaml': A });
  const path = join(dir, 'c.yaml');
  const w = watched(t, path);
  writeFileSync(path, B);
  w.watcher.close(); // with a check pending
  t.same(await w.quiet(), [], 'the pending check is dropped');
  writeFileSync(path, C);
  t.same(await w.quiet(), [], 'later edits call nothing');
  w.watcher.close();
  t.pass('closing twice is harmless');
});

t.test('a directory that cannot be watched is reported once, a tick later', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'missing', 'c.yaml');
  const w = watched(t, path, {});
  t.same(w.calls, [], 'not from inside watchConfig');
  t.match(await w.next(), {
    error: { name: 'InputError', field: '--config', message: new RegExp(`cannot watch ${join(dir, 'missing')} for changes to ${path}, live reload is off: ENOENT`) },
  });
  mkdirSync(join(dir, 'missing'));
  writeFileSync(path, A);
  t.same(await w.quiet(500), [], 'nothing more, though a change would be in by now with the 200 ms default debounce (two reads)');

  const closed = watched(t, join(dir, 'absent', 'c.yaml'));
  closed.watcher.close();
  t.same(await closed.quiet(), [], 'nothing once closed');
});
