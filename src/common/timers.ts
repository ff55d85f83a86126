/** A one-shot timer, injected where time drives the logic: tests move a clock by hand. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

/** The real ones, unref'd: a pending retry or check never keeps a stopping process alive (close() does what is left). */
export const UNREF_TIMERS: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout | undefined),
};
