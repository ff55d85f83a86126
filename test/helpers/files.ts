import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
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
