/** Polls `done` every `everyMs` until it holds; throws after `ms`. */
export async function until(done: () => Promise<boolean> | boolean, ms = 5000, everyMs = 5): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await sleep(everyMs);
  }
}

/** A fixed wait: for pacing, or to show that something does not happen. Where a condition exists, until() it instead. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves with `p`, or rejects once `ms` have passed without it, so a missing event fails the test instead of hanging it. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
