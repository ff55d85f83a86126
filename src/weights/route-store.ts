import { AuditedStore, type AuditedDeps, type AuditedKind, type AuditedSnapshot } from '../common/audited-store.js';
import { besideState, readKept } from '../common/atomic-file.js';
import { InputError } from '../common/input-error.js';
import { array, Corrupt, formatted, object, string, stringOrNull } from '../common/json-shape.js';
import { describeRoute, parseRoutes, sameRoutes, type RouteRule } from './routes.js';
import type { RecordedSource } from './shares.js';
import { source, version } from './state-file.js';
import type { ChangeMeta } from './store.js';

/** The cohort rules in force and their provenance. */
export interface RouteState {
  readonly routes: readonly RouteRule[];
  readonly version: number;
  readonly updatedAt: string;
  readonly source: RecordedSource;
}

/** One line of the rules' audit trail: the whole list before and after. */
export interface RouteHistoryEntry {
  readonly at: string;
  readonly version: number;
  readonly source: RecordedSource;
  readonly who: string;
  readonly reason: string | null;
  readonly from: readonly RouteRule[];
  readonly to: readonly RouteRule[];
}

export type RouteSnapshot = AuditedSnapshot<RouteState, RouteHistoryEntry>;

/** The rules a start begins with when no state file has any: the config's, version 1. */
export function startRoutes(routes: readonly RouteRule[], at: string): RouteSnapshot {
  return {
    state: { routes, version: 1, updatedAt: at, source: 'startup' },
    history: [{ at, version: 1, source: 'startup', who: 'startup', reason: 'initial rules', from: [], to: routes }],
  };
}

const routesKind = (upstreams: readonly string[]): AuditedKind<readonly RouteRule[], RouteState, RouteHistoryEntry, ChangeMeta> => ({
  what: 'cohort rules',
  check: (routes) => void parseRoutes(routes, upstreams),
  same: (state, routes) => sameRoutes(state.routes, routes),
  next: (from, routes, { at, version, meta }) => ({
    state: { routes, version, updatedAt: at, source: meta.source },
    entry: { at, version, source: meta.source, who: meta.who, reason: meta.reason ?? null, from: from.routes, to: routes },
  }),
  logged: ({ version, from, to }, meta) => ({ version, source: meta.source, who: meta.who, reason: meta.reason, from: from.map(describeRoute), to: to.map(describeRoute) }),
});

/**
 * The live cohort rules, versioned and audited as the weights are (AuditedStore): the admin API's
 * PUT /routes, the config file and the state file write them; the proxy (or its workers) follows.
 */
export class RouteStore extends AuditedStore<readonly RouteRule[], RouteState, RouteHistoryEntry, ChangeMeta> {
  constructor(upstreams: readonly string[], snapshot: RouteSnapshot, deps: AuditedDeps<RouteState, RouteHistoryEntry>) {
    super(routesKind(upstreams), snapshot, deps);
  }
}

/** The rules' own state file, beside the --state file: /data/state.json → /data/state.routes.json. */
export function routesStatePath(statePath: string): string {
  return besideState(statePath, 'routes.json');
}

export const ROUTES_FORMAT = 1;

/** The file's text: `{"format": 1, "state": {...}, "history": [...]}`, 2-space JSON. */
export function formatRouteSnapshot(snapshot: RouteSnapshot): string {
  return `${JSON.stringify({ format: ROUTES_FORMAT, state: snapshot.state, history: snapshot.history }, null, 2)}\n`;
}

/** A past list of rules: it may name upstreams no longer configured, so only its shape is checked. */
function pastRoutes(value: unknown, where: string): RouteRule[] {
  return array(value, where).map((rule, i) => object(rule, `${where}[${i}]`) as unknown as RouteRule);
}

function parseRouteSnapshot(text: string, upstreams: readonly string[]): RouteSnapshot {
  const file = formatted(text, ROUTES_FORMAT);
  const st = object(file['state'], 'state');
  const given = array(st['routes'], 'state.routes');
  let routes: RouteRule[];
  try {
    routes = parseRoutes(given, upstreams, 'state.routes');
  } catch (err) {
    throw new Corrupt((err as InputError).message);
  }
  const state: RouteState = { routes, version: version(st['version'], 'state.version'), updatedAt: string(st['updatedAt'], 'state.updatedAt'), source: source(st['source'], 'state.source') };
  const history = array(file['history'], 'history').map((value, i): RouteHistoryEntry => {
    const where = `history[${i}]`;
    const entry = object(value, where);
    return {
      at: string(entry['at'], `${where}.at`),
      version: version(entry['version'], `${where}.version`),
      source: source(entry['source'], `${where}.source`),
      who: string(entry['who'], `${where}.who`),
      reason: stringOrNull(entry['reason'], `${where}.reason`),
      from: pastRoutes(entry['from'], `${where}.from`),
      to: pastRoutes(entry['to'], `${where}.to`),
    };
  });
  return { state, history };
}

/**
 * The rules a restart resumes; undefined if the file does not exist. Anything else wrong (not
 * JSON, another format, a rule that no longer passes, naming an upstream not configured, say) is
 * an InputError for '--state' naming the file — never a silent return to the config's rules.
 */
export function readRouteSnapshot(path: string, upstreams: readonly string[]): RouteSnapshot | undefined {
  const text = readKept(path, 'cohort rules file');
  if (text === undefined) return undefined;
  try {
    return parseRouteSnapshot(text, upstreams);
  } catch (err) {
    throw new InputError(`cohort rules file ${path} is corrupt: ${(err as Error).message}; fix or remove it`, '--state');
  }
}
