import { pino, type Level, type Logger } from 'pino';

/** JSON lines on stdout, as platform log pipelines expect. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { name: 'drum-splitter' } });
}

/** A failing disk or upstream says so once a minute, not once a line. */
export const LOG_EVERY_MS = 60_000;

/**
 * A log line that repeats (a write error on a full disk, a failing shadow) written at most once
 * per `everyMs`; the ones in between are counted in the next line written (`errors_not_logged`).
 */
export class Throttled {
  #lastAt = -Infinity;
  #unlogged = 0;

  constructor(
    private readonly log: Logger,
    private readonly level: Level,
    private readonly now: () => number = Date.now,
    private readonly everyMs = LOG_EVERY_MS,
  ) {}

  write(fields: object, message: string): void {
    const now = this.now();
    if (now - this.#lastAt < this.everyMs) {
      this.#unlogged++;
      return;
    }
    this.log[this.level]({ ...fields, errors_not_logged: this.#unlogged }, message);
    this.#lastAt = now;
    this.#unlogged = 0;
  }
}
