import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InputError } from './input-error.js';

/**
 * What such a file holds: its text, or undefined if there is none yet. Any other failure stops
 * start-up (an InputError for `--state` naming the file), never a silent fresh start.
 */
export function readKept(path: string, what: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InputError(`${what} ${path} cannot be read (${(err as Error).message}); fix or remove it`, '--state');
  }
}

/**
 * Persists a value atomically: a temp file in the same directory (mode 0600), fsync'd,
 * renamed over the target, then the directory fsync'd — so the file is always the old
 * value or the new one, whole, even across a crash. Saves are serialized: while one is
 * being written, later ones wait and only the newest of them is written next (coalescing),
 * so the file always ends at the latest value.
 */
export class AtomicFile<T> {
  #pending: T | undefined;
  #running: Promise<void> | undefined;

  constructor(
    private readonly path: string,
    private readonly format: (value: T) => string,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Fire-and-forget; a failure goes to onError and the next save tries again. */
  save(value: T): void {
    this.#pending = value;
    this.#running ??= this.#drain();
  }

  /** Resolves when every value saved so far is on disk (or its failure reported). */
  flush(): Promise<void> {
    return this.#running ?? Promise.resolve();
  }

  async #drain(): Promise<void> {
    for (let next = this.#pending; next !== undefined; next = this.#pending) {
      this.#pending = undefined;
      try {
        await this.#write(next);
      } catch (err) {
        this.onError(err as Error);
      }
    }
    this.#running = undefined;
  }

  async #write(value: T): Promise<void> {
    const text = this.format(value);
    const dir = dirname(this.path);
    const temp = join(dir, `.${basename(this.path)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const file = await open(temp, 'wx', 0o600);
      try {
        await file.writeFile(text);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temp, this.path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}
