import t, { type Test } from 'tap';
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { NotWritten, notSaved, RETRY_MAX_MS } from '../src/common/atomic-file.js';
import type { Timers } from '../src/common/timers.js';
import { formatSnapshot, readSnapshot, SnapshotWriter } from '../src/weights/state-file.js';
import { fill, smallTmpfs } from './helpers/files.js';
import { sleep, until } from './helpers/wait.js';
import type { HistoryEntry, Snapshot } from '../src/weights/shares.js';

const UPSTREAMS = ['drum', 'fastapi', 'shadow'];

/** Version `version` of the weights with `entries` history lines, the last one for this version. */
function snapshot(version: number, entries = Math.min(version, 5)): Snapshot {
  const history: HistoryEntry[] = [];
  for (let v = version - entries + 1; v <= version; v++) {
    history.push({
      at: new Date(Date.UTC(2025, 0, 1, 0, 0, v)).toISOString(),
      version: v,
      source: v % 2 === 0 ? 'admin' : 'file',
      who: v % 2 === 0 ? '10.0.0.7' : 'weights.yaml',
      reason: v % 3 === 0 ? null : `step ${v}`,
      from: { drum: 100 - ((v - 1) % 100), fastapi: (v - 1) % 100, shadow: 0 },
      to: { drum: 100 - (v % 100), fastapi: v % 100, shadow: 0 },
    });
  }
  return {
    state: {
      shares: [['fastapi', (version % 100) * 100], ['shadow', 0]],
      version,
      updatedAt: new Date(Date.UTC(2025, 0, 1, 0, 0, version)).toISOString(),
      source: version === 1 ? 'startup' : 'admin',
    },
    history,
  };
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Collects onError's errors, and the wait before each is tried again. */
function errorSink(): { errors: NotWritten[]; retries: (number | undefined)[]; onError: (err: NotWritten, retryInMs: number | undefined) => void } {
  const errors: NotWritten[] = [];
  const retries: (number | undefined)[] = [];
  return { errors, retries, onError: (err, retryInMs) => void (errors.push(err), retries.push(retryInMs)) };
}

/** Timers the test fires by hand. */
function heldTimers() {
  const waiting = new Map<number, { fn: () => void; ms: number }>();
  let ids = 0;
  return {
    timers: {
      setTimeout: (fn: () => void, ms: number) => (waiting.set(++ids, { fn, ms }), ids),
      clearTimeout: (id: unknown) => void waiting.delete(id as number),
    } satisfies Timers,
    /** The waits set and not yet fired or cleared. */
    waits: () => [...waiting.values()].map((w) => w.ms),
    fire(): void {
      const [id, w] = [...waiting][0]!;
      waiting.delete(id);
      w.fn();
    },
  };
}

t.test('a saved snapshot reads back as it was, in the documented layout', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'state.json');
  const { errors, onError } = errorSink();
  const writer = new SnapshotWriter(path, onError);
  const snap = snapshot(7);
  writer.save(snap);
  await writer.flush();
  t.same(errors, []);
  t.same(readSnapshot(path, UPSTREAMS), snap);
  const text = readFileSync(path, 'utf8');
  t.equal(text, formatSnapshot(snap));
  t.match(text, /^\{\n {2}"format": 1,\n {2}"state": \{\n {4}"shares": \[\n/);
  t.ok(text.endsWith('}\n'), 'trailing newline');
  t.same(JSON.parse(text).state.shares, [['fastapi', 700], ['shadow', 0]], 'shares as [[name, hundredths], ...]');
  t.same(readdirSync(dir), ['state.json'], 'no temp file left');
});

t.test('an operator-written file is read; history may name upstreams no longer configured', async (t) => {
  const path = join(t.testdir(), 'state.json');
  const file = {
    format: 1,
    state: { shares: [['drum', 2500], ['fastapi', 7500]], version: 3, updatedAt: 'yesterday', source: 'file' },
    history: [
      { at: 'x', version: 3, source: 'env', who: 'env', reason: 'r', from: { drum: 100, retired: 0 }, to: { drum: 25, fastapi: 75 } },
    ],
    note: 'extra keys are ignored',
  };
  writeFileSync(path, JSON.stringify(file));
  t.same(readSnapshot(path, UPSTREAMS), { state: file.state, history: file.history }, 'baseline listed, 100% in all');
});

t.test('a source this version does not know (a newer one wrote it) loads, kept as written', async (t) => {
  const path = join(t.testdir(), 'state.json');
  const file = JSON.parse(formatSnapshot(snapshot(2))) as { state: { source: string }; history: { source: string }[] };
  file.state.source = 'controller';
  file.history[1]!.source = 'argo-rollouts2';
  writeFileSync(path, JSON.stringify(file));
  t.match(readSnapshot(path, UPSTREAMS), { state: { source: 'controller' }, history: [{ source: 'file' }, { source: 'argo-rollouts2' }] });
  file.state.source = 'a'.repeat(40);
  writeFileSync(path, JSON.stringify(file));
  t.equal(readSnapshot(path, UPSTREAMS)?.state.source, 'a'.repeat(40), 'up to 40 characters');
});

t.test('a missing file is no state yet', async (t) => {
  const dir = t.testdir();
  t.equal(readSnapshot(join(dir, 'state.json'), UPSTREAMS), undefined);
  t.equal(readSnapshot(join(dir, 'nope', 'state.json'), UPSTREAMS), undefined, 'missing directory too');
});

t.test('a corrupt file is an InputError naming the file, never a reset', async (t) => {
  const dir = t.testdir();
  const good = JSON.parse(formatSnapshot(snapshot(4))) as Record<string, unknown>;
  /** The good file with one change made to a copy. */
  const edited = (edit: (file: any) => void): string => {
    const copy = structuredClone(good);
    edit(copy);
    return JSON.stringify(copy);
  };
  const share = (value: unknown) => edited((f) => (f.state.shares[0] = value));
  const cases: [string, string, RegExp][] = [
    ['truncated', formatSnapshot(snapshot(4)).slice(0, 150), /not JSON \(/],
    ['empty', '', /not JSON/],
    ['an array', '[]', /the file must be an object/],
    ['null', 'null', /the file must be an object/],
    ['format 2', edited((f) => (f.format = 2)), /format is 2, this version reads format 1/],
    ['no format', edited((f) => delete f.format), /format is undefined/],
    ['format "1"', edited((f) => (f.format = '1')), /format is "1"/],
    ['no state', edited((f) => delete f.state), /state must be an object/],
    ['shares not an array', edited((f) => (f.state.shares = { fastapi: 10 })), /state\.shares must be an array/],
    ['share not a tuple', share('fastapi'), /state\.shares\[0\] must be \[upstream name, hundredths of a percent 0\.\.10000\], got "fastapi"/],
    ['share too short', share(['fastapi']), /state\.shares\[0\] must be \[upstream name/],
    ['share too long', share(['fastapi', 1, 2]), /state\.shares\[0\] must be \[upstream name/],
    ['share name not a string', share([1, 100]), /state\.shares\[0\] must be \[upstream name/],
    ['share as a string', share(['fastapi', '400']), /state\.shares\[0\] must be \[upstream name/],
    ['share fractional', share(['fastapi', 4.5]), /state\.shares\.fastapi: 4\.5 is not a whole number of hundredths of a percent from 0 to 10000/],
    ['share negative', share(['fastapi', -1]), /state\.shares\.fastapi: -1 is not a whole number/],
    ['share over 100%', share(['fastapi', 10001]), /state\.shares\.fastapi: 10001 is not a whole number/],
    ['unknown upstream', share(['nginx', 100]), /state\.shares\.nginx: "nginx" is not an upstream \(have: drum, fastapi, shadow\)/],
    ['named twice', edited((f) => (f.state.shares[1] = ['fastapi', 0])), /state\.shares\.fastapi: "fastapi" is weighted twice/],
    ['total over 100%', edited((f) => (f.state.shares = [['fastapi', 6000], ['shadow', 5000]])), /state\.shares: weights add up to 110%, over 100%/],
    ['version 0', edited((f) => (f.state.version = 0)), /state\.version must be a positive integer/],
    ['version fractional', edited((f) => (f.state.version = 1.5)), /state\.version must be a positive integer/],
    ['version a string', edited((f) => (f.state.version = '4')), /state\.version must be a positive integer/],
    ['updatedAt', edited((f) => (f.state.updatedAt = 1735689600)), /state\.updatedAt must be a string/],
    ['source not a word', edited((f) => (f.state.source = 'cron job')), /state\.source must be a lower-case word such as admin or file, got "cron job"/],
    ['source not a string', edited((f) => (f.state.source = 1)), /state\.source must be a lower-case word .*, got 1/],
    ['source empty', edited((f) => (f.state.source = '')), /state\.source must be a lower-case word/],
    ['source too long', edited((f) => (f.state.source = 'a'.repeat(41))), /state\.source must be a lower-case word/],
    ['history missing', edited((f) => delete f.history), /history must be an array/],
    ['history entry not an object', edited((f) => (f.history[1] = 'changed')), /history\[1\] must be an object/],
    ['history at', edited((f) => delete f.history[0].at), /history\[0\]\.at must be a string/],
    ['history version', edited((f) => (f.history[0].version = -3)), /history\[0\]\.version must be a positive integer/],
    ['history source', edited((f) => (f.history[0].source = 'ADMIN')), /history\[0\]\.source must be a lower-case word .*, got "ADMIN"/],
    ['history who', edited((f) => (f.history[0].who = null)), /history\[0\]\.who must be a string/],
    ['history reason', edited((f) => (f.history[0].reason = 5)), /history\[0\]\.reason must be a string or null/],
    ['history reason missing', edited((f) => delete f.history[0].reason), /history\[0\]\.reason must be a string or null/],
    ['history from', edited((f) => (f.history[0].from = [100])), /history\[0\]\.from must be an object/],
    ['history to value', edited((f) => (f.history[2].to.fastapi = '5')), /history\[2\]\.to\.fastapi must be a number/],
    ['history to infinite', edited((f) => (f.history[2].to.fastapi = 'INF')).replace('"INF"', '1e999'), /history\[2\]\.to\.fastapi must be a number/],
  ];
  for (const [name, text, problem] of cases) {
    const path = join(dir, `${name.replace(/\W+/g, '-')}.json`);
    writeFileSync(path, text);
    const message = new RegExp(`^--state: state file ${escape(path)} is corrupt: ${problem.source}.*; fix or remove it$`);
    t.throws(() => readSnapshot(path, UPSTREAMS), { name: 'InputError', field: '--state', message }, name);
  }
});

t.test('an unreadable path is an InputError naming the file', async (t) => {
  const path = t.testdir({ 'state.json': {} }) + '/state.json';
  const message = new RegExp(`^--state: state file ${escape(path)} cannot be read \\(EISDIR.*\\); fix or remove it$`);
  t.throws(() => readSnapshot(path, UPSTREAMS), { name: 'InputError', field: '--state', message });
});

t.test('the file is mode 0600, also when it was there before with wider access', async (t) => {
  const dir = t.testdir({ 'state.json': formatSnapshot(snapshot(1)) });
  const path = join(dir, 'state.json');
  chmodSync(path, 0o644);
  const writer = new SnapshotWriter(path, (err) => t.fail(err.message));
  writer.save(snapshot(2));
  await writer.flush();
  t.equal(statSync(path).mode & 0o777, 0o600);
  t.equal(readSnapshot(path, UPSTREAMS)?.state.version, 2);
});

t.test('a reader polling during 200 saves always sees a whole file; no temp files stay', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'state.json');
  const writer = new SnapshotWriter(path, (err) => t.fail(err.message));
  // Big snapshots (1000 history lines, ~250 kB) so a non-atomic write would be caught half-done.
  writer.save(snapshot(1000, 1000));
  await writer.flush();
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const reader = new Worker(
    `const { readFileSync } = require('node:fs');
     const { workerData, parentPort } = require('node:worker_threads');
     const stop = new Int32Array(workerData.stop);
     const seen = new Set();
     let reads = 0, bad = 0;
     parentPort.postMessage('reading');
     while (Atomics.load(stop, 0) === 0) {
       reads++;
       try {
         const file = JSON.parse(readFileSync(workerData.path, 'utf8'));
         if (file.history.length !== 1000 || file.history[999].version !== file.state.version) bad++;
         seen.add(file.state.version);
       } catch { bad++; }
     }
     parentPort.postMessage({ reads, bad, versions: seen.size });`,
    { eval: true, workerData: { path, stop: stop.buffer } },
  );
  const messages: unknown[] = [];
  const done = new Promise<unknown>((resolve, reject) => {
    reader.on('message', (m) => {
      messages.push(m);
      if (messages.length === 2) resolve(m);
    });
    reader.on('error', reject);
  });
  await until(() => messages.length > 0);
  for (let version = 1001; version <= 1200; version++) {
    writer.save(snapshot(version, 1000)); // not awaited: saves pile up while writes run
    await new Promise(setImmediate);
  }
  await writer.flush();
  Atomics.store(stop, 0, 1);
  const result = (await done) as { reads: number; bad: number; versions: number };
  t.equal(result.bad, 0, `every one of ${result.reads} reads parsed whole`);
  t.ok(result.versions > 1, `the reader saw the file change (${result.versions} versions)`);
  t.same(readSnapshot(path, UPSTREAMS), snapshot(1200, 1000), 'the file ends at the last save');
  t.same(readdirSync(dir), ['state.json'], 'no temp file left');
});

t.test('saves made while one is written coalesce into one write of the newest', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'state.json');
  const writer = new SnapshotWriter(path, (err) => t.fail(err.message));
  // Every rename over the target is an inotify event naming it: count them.
  let renames = 0;
  const watcher = watch(dir, (_event, name) => {
    if (name === 'state.json') renames++;
  });
  t.teardown(() => watcher.close());
  const settle = async (): Promise<number> => {
    let last = -1;
    while (last !== renames) {
      last = renames;
      await sleep(50);
    }
    return renames;
  };
  // Calibration: saves awaited one by one are each written, and the watcher sees each.
  for (let version = 1; version <= 5; version++) {
    writer.save(snapshot(version));
    await writer.flush();
  }
  t.equal(await settle(), 5, 'each awaited save is one rename');
  renames = 0;
  for (let version = 6; version <= 105; version++) writer.save(snapshot(version));
  await writer.flush();
  // The first save starts writing at once; the 99 made meanwhile collapse into the newest.
  t.equal(await settle(), 2, '100 quick saves are 2 renames');
  t.same(readSnapshot(path, UPSTREAMS), snapshot(105));
});

t.test('flush waits for saves made during it and resolves when idle', async (t) => {
  const path = join(t.testdir(), 'state.json');
  const writer = new SnapshotWriter(path, (err) => t.fail(err.message));
  await writer.flush();
  writer.save(snapshot(1));
  const flushed = writer.flush();
  writer.save(snapshot(2));
  await flushed;
  t.equal(readSnapshot(path, UPSTREAMS)?.state.version, 2);
});

t.test('the history saved is the one at save() time, even if the caller appends to its array', async (t) => {
  const path = join(t.testdir(), 'state.json');
  const writer = new SnapshotWriter(path, (err) => t.fail(err.message));
  const snap = snapshot(3);
  const history = snap.history as HistoryEntry[];
  writer.save(snap);
  history.push(snapshot(4).history.at(-1)!);
  await writer.flush();
  t.equal(readSnapshot(path, UPSTREAMS)?.history.length, 3);
});

t.test('a write error goes to onError, and a later save succeeds once the cause is gone', async (t) => {
  const dir = t.testdir({ sub: {} });
  const sub = join(dir, 'sub');
  const path = join(sub, 'state.json');
  const { errors, onError } = errorSink();
  const writer = new SnapshotWriter(path, onError, heldTimers().timers);
  rmSync(sub, { recursive: true });
  t.doesNotThrow(() => writer.save(snapshot(1)));
  await writer.flush();
  t.equal(errors.length, 1);
  t.match(errors[0], { cause: { code: 'ENOENT' } });
  mkdirSync(sub);
  writer.save(snapshot(2));
  await writer.flush();
  t.equal(errors.length, 1, 'no new error');
  t.same(readSnapshot(path, UPSTREAMS), snapshot(2));
});

t.test('a failed rename goes to onError and leaves no temp file', async (t) => {
  const dir = t.testdir({ 'state.json': { 'in-the-way': 'x' } });
  const { errors, onError } = errorSink();
  const writer = new SnapshotWriter(join(dir, 'state.json'), onError, heldTimers().timers);
  writer.save(snapshot(1));
  await writer.flush();
  t.equal(errors.length, 1);
  t.match(errors[0], { cause: { syscall: 'rename' } });
  t.same(readdirSync(dir), ['state.json']);
});

// ---------------------------------------------------------------------------------------------
// A write that fails: retried, said, and (trySave) refused. Tests run as root, for whom no mode
// bits make a directory unwritable: a parent that is a regular file (ENOTDIR) fails for anyone.

/** A path whose parent is a regular file (ENOTDIR), and a way to make it a directory. */
function blocked(t: Test): { path: string; unblock: () => void } {
  const dir = t.testdir({ data: 'a file where the directory should be' });
  return {
    path: join(dir, 'data', 'state.json'),
    unblock: () => {
      rmSync(join(dir, 'data'));
      mkdirSync(join(dir, 'data'));
    },
  };
}

t.test('a failed write is retried after 0.5 s, then twice as long each time up to 30 s, until it is on disk; failure says why meanwhile', async (t) => {
  const { path, unblock } = blocked(t);
  const { errors, retries, onError } = errorSink();
  const held = heldTimers();
  const writer = new SnapshotWriter(path, onError, held.timers);
  writer.save(snapshot(1));
  const err = await writer.flush();
  t.match(err, { name: 'NotWritten', message: new RegExp(`^the state file ${escape(path)} cannot be written \\(ENOTDIR: not a directory`), path, cause: { code: 'ENOTDIR' } });
  t.equal(writer.failure, err, 'behind, and why');
  t.same(notSaved([writer, undefined]), [`${err!.message}; retrying`]);
  for (let i = 1; i < 9; i++) {
    t.same(held.waits(), [retries.at(-1)], 'one retry waiting');
    held.fire();
    await until(() => errors.length === i + 1);
  }
  t.same(retries, [500, 1000, 2000, 4000, 8000, 16_000, RETRY_MAX_MS, RETRY_MAX_MS, RETRY_MAX_MS]);
  unblock();
  held.fire();
  await until(() => writer.failure === undefined);
  t.same(readSnapshot(path, UPSTREAMS), snapshot(1));
  t.same(held.waits(), [], 'no retry after it is written');
  t.same(notSaved([writer]), []);
  t.equal(await writer.flush(), undefined);

  // The backoff starts again at 0.5 s after a success.
  rmSync(join(path, '..'), { recursive: true });
  writer.save(snapshot(2));
  await writer.flush();
  t.equal(retries.at(-1), 500);
});

t.test('a newer save is written at once, not after the backoff; flush() waits for its write', async (t) => {
  const { path, unblock } = blocked(t);
  const { retries, onError } = errorSink();
  const held = heldTimers();
  const writer = new SnapshotWriter(path, onError, held.timers);
  writer.save(snapshot(1));
  await writer.flush();
  held.fire();
  await until(() => retries.length === 2);
  t.same(held.waits(), [1000]);
  unblock();
  writer.save(snapshot(2));
  t.same(held.waits(), [], 'the wait cut short');
  t.equal(await writer.flush(), undefined);
  t.same(readSnapshot(path, UPSTREAMS), snapshot(2));
});

t.test('a save while a write fails is written next, at once, instead of the one that failed', async (t) => {
  const { path, unblock } = blocked(t);
  const { retries, onError } = errorSink();
  const held = heldTimers();
  // The directory comes back as soon as the first write has failed.
  const writer = new SnapshotWriter(path, (err, retryInMs) => (onError(err, retryInMs), unblock()), held.timers);
  writer.save(snapshot(1));
  writer.save(snapshot(2)); // while the first is being written (and failing)
  t.equal(await writer.flush(), undefined);
  t.same(retries, [0], 'the failed one said, with nothing to wait for');
  t.same(readSnapshot(path, UPSTREAMS), snapshot(2));
  t.same(held.waits(), []);
});

t.test('close(): what is not on disk gets one last write, and no retries after', async (t) => {
  const { path, unblock } = blocked(t);
  const { retries, onError } = errorSink();
  const held = heldTimers();
  const writer = new SnapshotWriter(path, onError, held.timers);
  writer.save(snapshot(1));
  await writer.flush();
  await writer.close();
  t.same(retries, [500, undefined], 'tried once more, then given up');
  t.same(held.waits(), []);
  t.match(writer.failure, { cause: { code: 'ENOTDIR' } });

  const again = new SnapshotWriter(path, onError, held.timers);
  again.save(snapshot(2));
  await again.flush();
  unblock();
  await again.close();
  t.same(readSnapshot(path, UPSTREAMS), snapshot(2), 'the last write can succeed');
  t.equal(again.failure, undefined);
  await again.close();
  t.same(held.waits(), []);
});

t.test('trySave: written once; on disk it stands for the values saved before it, whose retries stop', async (t) => {
  const { path, unblock } = blocked(t);
  const { errors, retries, onError } = errorSink();
  const held = heldTimers();
  const writer = new SnapshotWriter(path, onError, held.timers);
  writer.save(snapshot(1));
  await writer.flush();
  t.same(held.waits(), [500]);

  await t.rejects(writer.trySave(snapshot(2)), { name: 'NotWritten', cause: { code: 'ENOTDIR' } });
  t.same(retries, [500, undefined], 'said and counted, not retried');
  t.same(held.waits(), [500], "the saved one's retry still waits");
  t.match(writer.failure, { cause: { code: 'ENOTDIR' } });

  unblock();
  await writer.trySave(snapshot(2));
  t.same(readSnapshot(path, UPSTREAMS), snapshot(2));
  t.same(held.waits(), [], 'the older value is not written over it');
  t.equal(writer.failure, undefined);
  t.equal(await writer.flush(), undefined);
  t.equal(errors.length, 2);
});

t.test('trySave: a value saved after it, before its turn, makes it stale: not written', async (t) => {
  const path = join(t.testdir(), 'state.json');
  const writer = new SnapshotWriter(path, (err) => t.fail(err.message), heldTimers().timers);
  writer.save(snapshot(1)); // being written
  const tried = writer.trySave(snapshot(2)); // waits its turn
  writer.save(snapshot(3)); // newer, and written first
  await tried;
  await writer.flush();
  t.same(readSnapshot(path, UPSTREAMS), snapshot(3));

  // One saved while the trial is being written is written after it.
  const during = writer.trySave(snapshot(4));
  writer.save(snapshot(5));
  await during;
  await writer.flush();
  t.same(readSnapshot(path, UPSTREAMS), snapshot(5));
});

const tmpfs = smallTmpfs(t);
t.test('on a full filesystem (a 64 KiB tmpfs, filled): ENOSPC, said, retried, and on disk once there is room', { skip: tmpfs.skip }, async (t) => {
  const mnt = tmpfs.dir!;
  const path = join(mnt, 'state.json');
  const { errors, onError } = errorSink();
  const held = heldTimers();
  const writer = new SnapshotWriter(path, onError, held.timers);
  writer.save(snapshot(1));
  t.equal(await writer.flush(), undefined);
  fill(mnt);
  writer.save(snapshot(2));
  t.match(await writer.flush(), { cause: { code: 'ENOSPC' }, message: /cannot be written \(ENOSPC: no space left on device/ });
  await t.rejects(writer.trySave(snapshot(3)), { cause: { code: 'ENOSPC' } });
  t.same(readdirSync(mnt).sort(), ['filler', 'state.json'], 'no temp file left');
  t.same(readSnapshot(path, UPSTREAMS), snapshot(1), 'the file is still whole, at the last value written');
  rmSync(join(mnt, 'filler'));
  held.fire();
  await until(() => writer.failure === undefined);
  t.same(readSnapshot(path, UPSTREAMS), snapshot(2));
  t.equal(errors.length, 2);
});
