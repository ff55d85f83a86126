import type { Logger } from 'pino';
import { buildConfig, parseConfigText, type Config, type RawSettings } from './config.js';
import { InputError } from '../common/input-error.js';
import { watchFiles } from '../common/watch-files.js';
import { sameShares, type Share } from '../weights/shares.js';
import type { WeightStore } from '../weights/store.js';

export interface ConfigWatcher {
  close(): void;
}

/**
 * Watches `path` (watchFiles: settled content, the directory watched, missing for a moment is not
 * an error) and calls onSettings with the freshly read settings each time its content changes. A
 * parse failure of settled content, or a read failure, calls onError with the InputError (or the
 * fs error wrapped in an InputError naming the file) and keeps watching; the next good content
 * calls onSettings again. A directory that cannot be watched is said once, and live reload is off.
 */
export function watchConfig(
  path: string,
  onSettings: (settings: RawSettings) => void,
  onError: (err: InputError) => void,
  opts: { debounceMs?: number } = {},
): ConfigWatcher {
  return watchFiles(
    [path],
    ([text]) => {
      let settings: RawSettings;
      try {
        settings = parseConfigText(text!.toString('utf8'), path);
      } catch (err) {
        return onError(err as InputError);
      }
      onSettings(settings);
    },
    (failure) =>
      onError(new InputError(failure.kind === 'read'
        ? `cannot read ${path}: ${failure.err.message}`
        : `cannot watch ${failure.dir} for changes to ${path}, live reload is off: ${failure.err.message}`, '--config')),
    opts,
  );
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
