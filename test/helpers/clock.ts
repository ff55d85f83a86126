import type { Timers } from '../../src/common/timers.js';

/** A clock moved by hand, and Timers that fire as it passes them. */
export class ManualClock implements Timers {
  #ids = 0;
  readonly #due = new Map<number, { at: number; fn: () => void }>();

  constructor(public now: number) {}

  setTimeout(fn: () => void, ms: number): unknown {
    this.#due.set(++this.#ids, { at: this.now + Math.max(0, ms), fn });
    return this.#ids;
  }

  clearTimeout(timer: unknown): void {
    this.#due.delete(timer as number);
  }

  /** When the timers set and not yet fired or cleared fire, earliest first. */
  pending(): number[] {
    return [...this.#due.values()].map((d) => d.at).sort((a, b) => a - b);
  }

  /**
   * Moves the clock `ms` on, firing each timer due on the way at its time, in order; after each,
   * what it started runs as far as it can without the clock (promises, I/O callbacks).
   */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      const next = [...this.#due].filter(([, d]) => d.at <= end).sort(([, a], [, b]) => a.at - b.at)[0];
      if (next === undefined) break;
      const [id, { at, fn }] = next;
      this.#due.delete(id);
      this.now = at;
      fn();
      await settle();
    }
    this.now = end;
    await settle();
  }
}

/** Lets what is already under way run: promise chains, then the I/O and timers already due. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
