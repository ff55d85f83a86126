import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InputError } from './input-error.js';
import { UNREF_TIMERS, type Timers } from './timers.js';

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

/** A file kept beside the --state file, `ext` its ending: /data/state.json, "rollout.json" → /data/state.rollout.json (/data/drum-state → /data/drum-state.rollout.json). */
export function besideState(statePath: string, ext: string): string {
  return `${statePath.endsWith('.json') ? statePath.slice(0, -5) : statePath}.${ext}`;
}

/** A failed write is tried again after 0.5 s, then twice as long each time, at most 30 s apart. */
export const RETRY_FIRST_MS = 500;
export const RETRY_MAX_MS = 30_000;

/** A write that failed, naming the file and the cause: "the state file /data/state.json cannot be written (ENOSPC: …)". */
export class NotWritten extends Error {
  constructor(
    readonly what: string,
    readonly path: string,
    override readonly cause: Error,
  ) {
    super(`${what} ${path} cannot be written (${cause.message})`);
    this.name = 'NotWritten';
  }
}

export interface AtomicFileOptions<T> {
  /** What the file is, for messages: "the state file". */
  readonly what: string;
  readonly format: (value: T) => string;
  /** Each failed write, with the wait before it is tried again; undefined when it will not be (trySave, or closed). */
  readonly onError: (err: NotWritten, retryInMs: number | undefined) => void;
  /** The timer a retry waits on; default: the real one, unref'd (close() makes the last attempt). */
  readonly timers?: Timers;
}

/** A trySave waiting for its turn; `after` is how many values had been saved when it was asked. */
interface Trial<T> {
  readonly value: T;
  readonly after: number;
  readonly resolve: () => void;
  readonly reject: (err: NotWritten) => void;
}

/**
 * Persists a value atomically: a temp file in the same directory (mode 0600), fsync'd,
 * renamed over the target, then the directory fsync'd — so the file is always the old
 * value or the new one, whole, even across a crash. Writes are serialized: while one is
 * being written, later saves wait and only the newest of them is written next (coalescing),
 * so the file always ends at the latest value. A write that fails (a full disk, a directory
 * gone) is tried again with backoff until it succeeds or a newer value replaces it; until
 * then `failure` says why the file is behind.
 */
export class AtomicFile<T> {
  /** The newest value saved and not yet on disk. */
  #pending: T | undefined;
  /** Whether #pending is to be written now: not while it waits out a retry's backoff. */
  #due = false;
  /** How many values have been saved, and how many of them have had a write (the newest of them). */
  #saved = 0;
  #attempted = 0;
  #failure: NotWritten | undefined;
  /** Failed writes in a row, for the backoff. */
  #failures = 0;
  #retry: unknown;
  #closed = false;
  #running: Promise<void> | undefined;
  readonly #trials: Trial<T>[] = [];
  readonly #waiters: ((err: NotWritten | undefined) => void)[] = [];
  readonly #timers: Timers;

  constructor(
    private readonly path: string,
    private readonly opts: AtomicFileOptions<T>,
  ) {
    this.#timers = opts.timers ?? UNREF_TIMERS;
  }

  /** Fire-and-forget, written now; a failure goes to onError and is retried. */
  save(value: T): void {
    this.#pending = value;
    this.#saved++;
    this.#writeNow();
  }

  /**
   * For a change to be applied only once it is on disk: writes `value` once, now (after the
   * write under way), and resolves when it is on disk or when a value saved after this call has
   * made it stale; rejects with NotWritten (not retried). Written, it stands for every value
   * saved before it: their retries stop.
   */
  trySave(value: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#trials.push({ value, after: this.#saved, resolve, reject });
      this.#start();
    });
  }

  /** Set while the newest value saved is not on disk because its write failed (it is being retried). */
  get failure(): NotWritten | undefined {
    return this.#failure;
  }

  /** Resolves once every value saved, also while it waits, has had a write: undefined if the newest is on disk, else why not. */
  flush(): Promise<NotWritten | undefined> {
    if (this.#attempted === this.#saved) return Promise.resolve(this.#failure);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** For shutdown: what is not yet on disk gets one more write now, and no retries after. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#pending !== undefined) this.#writeNow();
    await this.#running;
  }

  /** #pending is written as soon as the write under way is done; a retry's wait is cut short. */
  #writeNow(): void {
    this.#timers.clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#due = true;
    this.#start();
  }

  #start(): void {
    if (this.#running === undefined && ((this.#pending !== undefined && this.#due) || this.#trials.length > 0)) this.#running = this.#drain();
  }

  async #drain(): Promise<void> {
    for (;;) {
      if (this.#pending !== undefined && this.#due) await this.#writePending();
      else if (this.#trials.length > 0) await this.#writeTrial(this.#trials.shift()!);
      else break;
    }
    this.#running = undefined;
  }

  async #writePending(): Promise<void> {
    const value = this.#pending!;
    const number = this.#saved;
    this.#pending = undefined;
    try {
      await this.#write(value);
      this.#failure = undefined;
      this.#failures = 0;
    } catch (err) {
      this.#failure = new NotWritten(this.opts.what, this.path, err as Error);
      this.#failures++;
      this.#pending ??= value;
      // A newer value saved meanwhile is written at once instead; this one waits, or after close() gives up.
      let wait: number | undefined = 0;
      if (this.#saved === number) {
        this.#due = false;
        wait = this.#closed ? undefined : Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (this.#failures - 1));
        if (wait !== undefined) this.#retry = this.#timers.setTimeout(() => this.#writeNow(), wait);
      }
      this.opts.onError(this.#failure, wait);
    }
    this.#settle(number);
  }

  async #writeTrial(trial: Trial<T>): Promise<void> {
    // A value saved since it was asked for is newer: writing this one after it would go back.
    if (this.#saved !== trial.after) return trial.resolve();
    try {
      await this.#write(trial.value);
    } catch (err) {
      const failed = new NotWritten(this.opts.what, this.path, err as Error);
      this.opts.onError(failed, undefined);
      return trial.reject(failed);
    }
    if (this.#saved === trial.after) {
      this.#pending = undefined;
      this.#timers.clearTimeout(this.#retry);
      this.#retry = undefined;
      this.#failure = undefined;
      this.#failures = 0;
      this.#settle(trial.after);
    }
    trial.resolve();
  }

  /** Values up to `number` have had their write; once the newest has, flush() hears how it went. */
  #settle(number: number): void {
    this.#attempted = number;
    if (this.#attempted !== this.#saved) return;
    for (const resolve of this.#waiters.splice(0)) resolve(this.#failure);
  }

  async #write(value: T): Promise<void> {
    const text = this.opts.format(value);
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
      // The write's own error says why: a temp file that cannot be removed either (ENOTDIR) must not hide it.
      await rm(temp, { force: true }).catch(() => {});
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

/** Why each of these files is behind what is live, for /readyz; none when all are on disk. */
export function notSaved(files: readonly ({ readonly failure: NotWritten | undefined } | undefined)[]): string[] {
  return files.flatMap((file) => (file?.failure === undefined ? [] : [`${file.failure.message}; retrying`]));
}
