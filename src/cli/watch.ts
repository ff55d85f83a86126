import { setTimeout as sleep } from 'node:timers/promises';
import { EXIT } from './admin-client.js';
import type { ReadAt } from './summaries.js';

/** One look at the admin API, drawn: the whole screen, and its items, each with a key that changes when it does. */
export interface Drawn {
  readonly screen: string;
  readonly items: readonly { readonly key: string; readonly text: string }[];
}

/** A look that failed: its line for stderr, the exit code, and whether looking again could help (a 4xx would say the same). */
export interface Failed {
  readonly failed: string;
  readonly code: number;
  readonly final: boolean;
}

/** Looks at the admin API once; `rows`, on a terminal, is how many lines the screen has. */
export type Look = (at: ReadAt, rows?: number) => Promise<Drawn | Failed>;

/** Where a watch writes, and when it ends. */
export interface WatchIo {
  /** stdout is a terminal: redraw in place; otherwise each new item is printed once. */
  readonly tty: boolean;
  /** The terminal's height, for a screen that would not fit. */
  readonly rows?: number | undefined;
  readonly out: (text: string) => void;
  readonly err: (line: string) => void;
  /** Aborted by Ctrl-C: the watch ends, exit 0. */
  readonly signal: AbortSignal;
}

/** Clears a terminal and puts the cursor at its top left. */
const CLEAR = '\u001b[H\u001b[2J';

/** Looks once: the screen on stdout, or the failure on stderr. */
export async function lookOnce(look: Look, io: Pick<WatchIo, 'out' | 'err'>): Promise<number> {
  const drawn = await look({ now: Date.now() });
  if ('failed' in drawn) {
    io.err(`drum-splitter: ${drawn.failed}`);
    return drawn.code;
  }
  io.out(drawn.screen);
  return EXIT.ok;
}

/**
 * Looks every `intervalMs` until the signal, like `kubectl argo rollouts get rollout --watch`.
 * On a terminal each look redraws the screen under `title` (an admin API out of reach is drawn
 * there too, and looked at again); elsewhere (a pipe, a log) each item not seen in the look
 * before is printed once, a failure once until it changes. A failure that looking again cannot
 * mend (a 4xx) ends the watch with its exit code.
 */
export async function watch(look: Look, title: string, intervalMs: number, io: WatchIo): Promise<number> {
  let seen = new Set<string>();
  let printed = false;
  let lastFailure: string | undefined;
  while (!io.signal.aborted) {
    // Two lines for the title and the blank line under it.
    const drawn = await look({ now: Date.now() }, io.rows === undefined ? undefined : io.rows - 2);
    if ('failed' in drawn && drawn.final) {
      io.err(`drum-splitter: ${drawn.failed}`);
      return drawn.code;
    }
    if (io.tty) {
      io.out(`${CLEAR}${title}\n\n${'failed' in drawn ? `${drawn.failed}; looking again every ${intervalMs / 1000}s` : drawn.screen}`);
    } else if ('failed' in drawn) {
      if (drawn.failed !== lastFailure) io.err(`drum-splitter: ${drawn.failed}`);
      lastFailure = drawn.failed;
    } else {
      lastFailure = undefined;
      for (const item of drawn.items.filter((i) => !seen.has(i.key))) {
        // A state of several lines stands apart from the one before it.
        if (printed && item.text.includes('\n')) io.out('');
        io.out(item.text);
        printed = true;
      }
      seen = new Set(drawn.items.map((i) => i.key));
    }
    await sleep(intervalMs, undefined, { signal: io.signal }).catch(() => {});
  }
  return EXIT.ok;
}
