import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { buildConfig, parseConfigText, type Config, type RawSettings } from './config.js';
import { InputError } from '../common/input-error.js';
import { sameShares, type Share } from '../weights/shares.js';
import type { WeightStore } from '../weights/store.js';

export interface ConfigWatcher {
  close(): void;
}

/** Whether two reads gave the same: equal bytes, or errors with the same message. */
const same = (a: Buffer | Error, b: Buffer | Error): boolean =>
  Buffer.isBuffer(a) ? Buffer.isBuffer(b) && a.equals(b) : !Buffer.isBuffer(b) && a.message === b.message;

/**
 * Watches `path` and calls onSettings with the freshly read settings each time the file's
 * CONTENT changes (compare the bytes read with the last bytes acted on; spurious events and
 * touch/rewrites of identical content call nothing). New content counts only once it has held
 * still: a debounce period after the last event the file is read, and if the bytes differ from
 * the previous read it is read again a period later, until two reads in a row agree. A file
 * written in parts (the upstreams, then the weights) is not applied half-way, where it would
 * move the split for a moment (no weights: all traffic to the baseline). A parse failure of
 * settled content, or a read failure, calls onError with the InputError (or the fs error wrapped
 * in an InputError naming the file) and keeps watching; the next good content calls onSettings
 * again. A file that disappears (e.g. mid-swap) is not an error until it has stayed missing for
 * the debounce period.
 *
 * The watch is on the directory holding `path`, never on the file: editors replace a file by
 * renaming another over it, and Kubernetes updates a ConfigMap volume by pointing the `..data`
 * symlink at a new directory, either of which leaves a watch on the old inode deaf. Any event
 * in the directory (whatever file it names) restarts the debounce; when it runs out the file is
 * read by its path, following symlinks. An in-place edit of a symlink's target in some other
 * directory makes no event here and goes unseen until something in this directory changes.
 *
 * If the directory cannot be watched (it does not exist, or the inotify watch limit is
 * reached), onError is called once, asynchronously, and live reload stays off. Neither the
 * watch nor its timer keeps the process alive.
 */
export function watchConfig(
  path: string,
  onSettings: (settings: RawSettings) => void,
  onError: (err: InputError) => void,
  opts: { debounceMs?: number } = {},
): ConfigWatcher {
  const debounceMs = opts.debounceMs ?? 200;
  const dir = dirname(path);
  /** What the last content acted on was: the bytes, or the error that stopped the read. */
  let last = read();
  /** What the previous read gave: content is settled when a read finds the same. */
  let previous = last;
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  let closed = false;

  function read(): Buffer | NodeJS.ErrnoException {
    try {
      return readFileSync(path);
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
    if (!Buffer.isBuffer(now) && now.code === 'ENOENT' && !recheck) return wait(true);
    if (same(now, last)) return;
    // Still being written, maybe: wait for a second read to find the same bytes.
    if (Buffer.isBuffer(now) && !same(now, before)) return wait(false);
    last = now;
    if (!Buffer.isBuffer(now)) return onError(new InputError(`cannot read ${path}: ${now.message}`, '--config'));
    let settings: RawSettings;
    try {
      settings = parseConfigText(now.toString('utf8'), path);
    } catch (err) {
      return onError(err as InputError);
    }
    onSettings(settings);
  }

  function close(): void {
    closed = true;
    clearTimeout(timer);
    watcher?.close();
  }

  function failed(err: Error): void {
    if (closed) return;
    close();
    onError(new InputError(`cannot watch ${dir} for changes to ${path}, live reload is off: ${err.message}`, '--config'));
  }

  try {
    watcher = watch(dir, { persistent: false }, () => wait(false)).on('error', failed);
  } catch (err) {
    // Reported a tick later so that the caller holds the returned watcher first.
    queueMicrotask(() => failed(err as Error));
  }
  return { close };
}

/**
 * The config file's weights, live: each settled change of `file` (watchConfig) is checked against
 * the running upstreams (which flags may have set) and applied to the store, as a change by
 * "file". Nothing is applied, and the current weights kept, for an empty file (more likely
 * half-written than meant: "no weights" would roll back), changed upstreams (they take effect on
 * restart) or weights that do not fit; each said in the log. An edit that leaves the file's
 * weights as they were applies nothing: a change made since through the admin API stands.
 */
export function watchWeights(
  file: { readonly path: string; readonly settings: RawSettings },
  running: Config,
  deps: { readonly store: Pick<WeightStore, 'change'>; readonly log: Logger },
): ConfigWatcher {
  const { path } = file;
  const { store, log } = deps;
  const nameUrls = (c: Config): string[] => c.upstreams.map((u) => `${u.name}=${u.url.href}`);
  const upstreams = nameUrls(running);
  const weightsIn = (settings: RawSettings): readonly Share[] => buildConfig({ ...settings, upstreams }).weights;
  let fileWeights: readonly Share[] | undefined;
  try {
    fileWeights = weightsIn(file.settings);
  } catch {
    // Valid only with the flags that override it: any valid edit of the file applies.
  }
  return watchConfig(
    path,
    (settings) => {
      if (Object.keys(settings).length === 0) {
        log.error({ file: path }, 'config file change rejected: the file is empty; keeping the current weights');
        return;
      }
      let weights: readonly Share[];
      try {
        if (settings.upstreams !== undefined && nameUrls(buildConfig({ upstreams: settings.upstreams })).join(' ') !== upstreams.join(' ')) {
          log.warn({ file: path }, 'upstreams changed in the config file; they take effect on restart, weights not applied');
          return;
        }
        weights = weightsIn(settings);
      } catch (err) {
        log.error({ file: path, err: (err as Error).message }, 'config file change rejected; keeping the current weights');
        return;
      }
      if (fileWeights !== undefined && sameShares(weights, fileWeights)) return;
      fileWeights = weights;
      store.change(weights, { source: 'file', who: path, reason: 'config file changed' });
    },
    (err) => log.error({ file: path, err: err.message }, 'config file change rejected; keeping the current weights'),
  );
}
