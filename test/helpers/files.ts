import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Test } from 'tap';

/** Every line of a JSON-lines file, parsed; fails the test if the file does not end with a whole line. */
export function readLines<T = Record<string, unknown>>(t: Test, file: string): T[] {
  const text = readFileSync(file, 'latin1');
  if (text === '') return [];
  t.ok(text.endsWith('\n'), `${basename(file)} ends with a whole line`);
  return text
    .slice(0, -1)
    .split('\n')
    .map((l) => JSON.parse(l) as T);
}

/** A file's permission bits. */
export const mode = (file: string): number => statSync(file).mode & 0o777;

/**
 * A 64 KiB tmpfs of its own, unmounted on `t`'s teardown; or, as `skip`, why there cannot be one
 * (mounting needs privileges a container may not grant). For writes on a full filesystem.
 */
export function smallTmpfs(t: Test): { dir: string; skip: false } | { dir: undefined; skip: string } {
  const dir = mkdtempSync(join(tmpdir(), 'drum-full-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { encoding: 'utf8' });
  if (mounted.status !== 0) {
    rmSync(dir, { recursive: true });
    return { dir: undefined, skip: `cannot mount a tmpfs here (${(mounted.stderr || mounted.error?.message || '').trim()}); the ENOTDIR tests cover a failing write` };
  }
  t.teardown(() => {
    spawnSync('umount', [dir]);
    rmSync(dir, { recursive: true });
  });
  return { dir, skip: false };
}

/** Fills the filesystem `dir` is on, with a file `filler` in it. */
export function fill(dir: string): void {
  spawnSync('sh', ['-c', 'cat /dev/zero > "$1"', 'sh', join(dir, 'filler')]);
}
