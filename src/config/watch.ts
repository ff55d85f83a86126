import type { Logger } from 'pino';
import { buildConfig, parseConfigText, type Config, type RawSettings } from './config.js';
import { InputError } from '../common/input-error.js';
import { watchFiles } from '../common/watch-files.js';
import { sameShares, type Share } from '../weights/shares.js';
import type { WeightStore } from '../weights/store.js';
import { sameRoutes, type RouteRule } from '../weights/routes.js';
import type { RouteStore } from '../weights/route-store.js';

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
 * The config file's weights and cohort rules, live: each settled change of `file` (watchConfig) is
 * checked against the running upstreams (which flags may have set) and applied to the stores, as
 * a change by "file". Nothing is applied, and the current weights and rules kept, for an empty
 * file (more likely half-written than meant: "no weights" would roll back), changed upstreams
 * (they take effect on restart) or a file that does not pass (a weight, a rule); each said in the
 * log. An edit that leaves the file's weights (or rules) as they were applies none: a change made
 * since through the admin API stands.
 */
export function watchWeights(
  file: { readonly path: string; readonly settings: RawSettings },
  running: Config,
  deps: { readonly store: Pick<WeightStore, 'change'>; readonly routes?: Pick<RouteStore, 'change'>; readonly log: Logger },
): ConfigWatcher {
  const { path } = file;
  const { store, routes, log } = deps;
  const nameUrls = (c: Config): string[] => c.upstreams.map((u) => `${u.name}=${u.url.href}`);
  const upstreams = nameUrls(running);
  const liveIn = (settings: RawSettings): Pick<Config, 'weights' | 'routes'> => buildConfig({ ...settings, upstreams });
  let fileWeights: readonly Share[] | undefined;
  let fileRoutes: readonly RouteRule[] | undefined;
  try {
    ({ weights: fileWeights, routes: fileRoutes } = liveIn(file.settings));
  } catch {
    // Valid only with the flags that override it: any valid edit of the file applies.
  }
  const rejected = 'config file change rejected; keeping the current weights and cohort rules';
  return watchConfig(
    path,
    (settings) => {
      if (Object.keys(settings).length === 0) {
        log.error({ file: path }, 'config file change rejected: the file is empty; keeping the current weights and cohort rules');
        return;
      }
      let live: Pick<Config, 'weights' | 'routes'>;
      try {
        if (settings.upstreams !== undefined && nameUrls(buildConfig({ upstreams: settings.upstreams })).join(' ') !== upstreams.join(' ')) {
          log.warn({ file: path }, 'upstreams changed in the config file; they take effect on restart, weights and cohort rules not applied');
          return;
        }
        live = liveIn(settings);
      } catch (err) {
        log.error({ file: path, err: (err as Error).message }, rejected);
        return;
      }
      const meta = { source: 'file', who: path, reason: 'config file changed' } as const;
      if (fileWeights === undefined || !sameShares(live.weights, fileWeights)) {
        fileWeights = live.weights;
        store.change(live.weights, meta);
      }
      if (routes !== undefined && (fileRoutes === undefined || !sameRoutes(live.routes, fileRoutes))) {
        fileRoutes = live.routes;
        routes.change(live.routes, meta);
      }
    },
    (err) => log.error({ file: path, err: err.message }, rejected),
  );
}
