import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';

export interface FilesWatcher {
  close(): void;
}

/** Why a watch reports no content: a file could not be read (settled), or a directory cannot be watched (live reload off). */
export type WatchFailure =
  | { readonly kind: 'read'; readonly err: NodeJS.ErrnoException }
  | { readonly kind: 'watch'; readonly dir: string; readonly err: Error };

type Read = Buffer[] | NodeJS.ErrnoException;

/** Whether two reads gave the same: equal bytes, or errors with the same message. */
const same = (a: Read, b: Read): boolean =>
  Array.isArray(a)
    ? Array.isArray(b) && a.every((buf, i) => buf.equals(b[i]!))
    : !Array.isArray(b) && a.message === b.message;

/**
 * Watches `paths` and calls onContent with their fresh bytes each time the CONTENT of any
 * changes (the bytes read compared with the last acted on; spurious events and rewrites of
 * identical content call nothing). New content counts only once it has held still: a debounce
 * period after the last event the files are read, and if the bytes differ from the previous read
 * they are read again a period later, until two reads in a row agree. Files written in parts (a
 * config file's upstreams, then its weights; a certificate, then its key) are not acted on
 * half-way. A settled read failure calls onError and the watch goes on; the next good content
 * calls onContent again. A file that disappears (e.g. mid-swap) is not an error until it has
 * stayed missing for the debounce period.
 *
 * The watch is on the directories holding the files, never on the files: editors replace a file
 * by renaming another over it, and Kubernetes updates a ConfigMap or Secret volume by pointing the
 * `..data` symlink at a new directory, either of which leaves a watch on the old inode deaf. Any
 * event in those directories restarts the debounce; when it runs out the files are read by their
 * paths, following symlinks. An in-place edit of a symlink's target in some other directory makes
 * no event here and goes unseen until something in a watched directory changes.
 *
 * If a directory cannot be watched (it does not exist, or the inotify watch limit is reached),
 * onError is called once, asynchronously, and live reload stays off. Neither the watches nor the
 * timer keeps the process alive.
 */
export function watchFiles(
  paths: readonly string[],
  onContent: (contents: Buffer[]) => void,
  onError: (failure: WatchFailure) => void,
  opts: { debounceMs?: number } = {},
): FilesWatcher {
  const debounceMs = opts.debounceMs ?? 200;
  /** What the last content acted on was: the bytes, or the error that stopped the read. */
  let last = read();
  /** What the previous read gave: content is settled when a read finds the same. */
  let previous = last;
  let timer: NodeJS.Timeout | undefined;
  const watchers: FSWatcher[] = [];
  let closed = false;

  function read(): Read {
    try {
      return paths.map((p) => readFileSync(p));
    } catch (err) {
      return err as NodeJS.ErrnoException;
    }
  }

  function wait(recheck: boolean): void {
    clearTimeout(timer);
    timer = setTimeout(check, debounceMs, recheck).unref();
  }

  /** Runs a debounce period after the last event; a recheck confirms that a file is gone. */
  function check(recheck: boolean): void {
    const now = read();
    const before = previous;
    previous = now;
    if (!Array.isArray(now) && now.code === 'ENOENT' && !recheck) return wait(true);
    if (same(now, last)) return;
    // Still being written, maybe: wait for a second read to find the same bytes.
    if (Array.isArray(now) && !same(now, before)) return wait(false);
    last = now;
    if (Array.isArray(now)) onContent(now);
    else onError({ kind: 'read', err: now });
  }

  function close(): void {
    closed = true;
    clearTimeout(timer);
    for (const w of watchers) w.close();
  }

  function failed(dir: string, err: Error): void {
    if (closed) return;
    close();
    onError({ kind: 'watch', dir, err });
  }

  for (const dir of new Set(paths.map((p) => dirname(p)))) {
    try {
      watchers.push(watch(dir, { persistent: false }, () => wait(false)).on('error', (err) => failed(dir, err)));
    } catch (err) {
      // Reported a tick later so that the caller holds the returned watcher first.
      queueMicrotask(() => failed(dir, err as Error));
      break;
    }
  }
  return { close };
}
