/**
 * Checks of a file's JSON, value by value: each names where it found the problem
 * ("history[2].at must be a string"), for the one line that refuses the file.
 */

/** The value of JSON `text`, or undefined when it is not JSON (no JSON value is undefined). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A problem with the file's shape; the caller says which file. */
export class Corrupt extends Error {}

export type Obj = Record<string, unknown>;

/** A JSON (or YAML) object: not null, not an array. */
export const isObject = (value: unknown): value is Obj => value !== null && typeof value === 'object' && !Array.isArray(value);

/** The file's object, its `format` checked: another layout is refused, not guessed at. */
export function formatted(text: string, format: number): Obj {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Corrupt(`not JSON (${(err as Error).message})`);
  }
  const file = object(parsed, 'the file');
  if (file['format'] !== format) throw new Corrupt(`format is ${JSON.stringify(file['format'])}, this version reads format ${format}`);
  return file;
}

export function object(value: unknown, where: string): Obj {
  if (!isObject(value)) throw new Corrupt(`${where} must be an object`);
  return value;
}

export function array(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new Corrupt(`${where} must be an array`);
  return value;
}

export function string(value: unknown, where: string): string {
  if (typeof value !== 'string') throw new Corrupt(`${where} must be a string`);
  return value;
}

export function stringOrNull(value: unknown, where: string): string | null {
  if (value !== null && typeof value !== 'string') throw new Corrupt(`${where} must be a string or null`);
  return value;
}

/** A finite number from `min` to `max`. */
export function number(value: unknown, where: string, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    const range = max < Infinity ? ` from ${min} to ${max}` : min > -Infinity ? `, ${min} or more` : '';
    throw new Corrupt(`${where} must be a number${range}`);
  }
  return value;
}

/**
 * A lower-case word, such as a source or an action. Any such word, not only the ones this
 * version knows: a newer version may write words this one does not, and its file must still load.
 */
export function word(value: unknown, where: string, examples: string): string {
  if (typeof value !== 'string' || !/^[a-z][a-z0-9_-]{0,39}$/.test(value)) {
    throw new Corrupt(`${where} must be a lower-case word such as ${examples}, got ${JSON.stringify(value)}`);
  }
  return value;
}
