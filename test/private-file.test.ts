/** Files the project writes are 0600, an existing one made so: the helpers, on real files. */
import { chmodSync, closeSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import sonicBoom from 'sonic-boom';
import t from 'tap';
import { makePrivate, privateOnOpen, writePrivate } from '../src/common/private-file.js';
import { mode } from './helpers/files.js';

const { SonicBoom } = sonicBoom;

/** A regular file whose mode even root cannot change: procfs refuses every chmod (EPERM). */
const UNCHANGEABLE = '/proc/self/comm';

t.test('makePrivate: a regular file to 0600; anything else, or one already so, left alone; a refusal said', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'f');
  writeFileSync(file, 'x', { mode: 0o644 });
  const at = (path: string, flags: string): string | undefined => {
    const fd = openSync(path, flags);
    try {
      return makePrivate(fd, path);
    } finally {
      closeSync(fd);
    }
  };
  t.equal(at(file, 'a'), undefined);
  t.equal(mode(file), 0o600);
  t.equal(at(file, 'a'), undefined, 'already 0600');
  const devNull = mode('/dev/null');
  t.equal(at('/dev/null', 'a'), undefined);
  t.equal(mode('/dev/null'), devNull, 'a device keeps its mode');
  t.equal(at(UNCHANGEABLE, 'r'), `${UNCHANGEABLE} cannot be made private (0600): EPERM; it stays 0644`);
});

t.test('privateOnOpen: a sonic-boom file is 0600 before its first line; a refusal is logged', async (t) => {
  const said: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void said.push(JSON.parse(l) as Record<string, unknown>) });
  const file = join(t.testdir(), 'f.jsonl');
  writeFileSync(file, '', { mode: 0o644 });
  chmodSync(file, 0o644);
  const boom = new SonicBoom({ dest: file, append: true });
  privateOnOpen(boom, file, log);
  const modes: number[] = [];
  boom.on('write', () => modes.push(statSync(file).mode & 0o777));
  boom.write('line\n');
  await new Promise((r) => {
    boom.once('close', r);
    boom.end();
  });
  t.same(modes, [0o600], 'made 0600 when opened, by its first write');
  t.equal(readFileSync(file, 'utf8'), 'line\n');
  t.same(said, []);

  const stuck = new SonicBoom({ dest: UNCHANGEABLE, append: true });
  privateOnOpen(stuck, UNCHANGEABLE, log);
  await new Promise((r) => stuck.once('ready', r));
  stuck.destroy();
  t.match(said, [{ level: 40, file: UNCHANGEABLE, msg: `${UNCHANGEABLE} cannot be made private (0600): EPERM; it stays 0644` }]);
});

t.test('writePrivate: a whole file, 0600 whether new or not; a refusal told', async (t) => {
  const dir = t.testdir();
  const told: string[] = [];
  const fresh = join(dir, 'new.json');
  await writePrivate(fresh, '{}\n', (l) => told.push(l));
  t.equal(mode(fresh), 0o600);
  const old = join(dir, 'old.json');
  writeFileSync(old, 'a longer old text', { mode: 0o644 });
  await writePrivate(old, '[]\n', (l) => told.push(l));
  t.equal(mode(old), 0o600, 'an existing 0644 file is made 0600');
  t.equal(readFileSync(old, 'utf8'), '[]\n', 'and replaced whole');
  t.same(told, []);
  await writePrivate(UNCHANGEABLE, '', (l) => told.push(l));
  t.same(told, [`${UNCHANGEABLE} cannot be made private (0600): EPERM; it stays 0644`]);
});
