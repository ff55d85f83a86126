import type { IncomingHttpHeaders } from 'node:http';
import { InputError } from './input-error.js';

/**
 * Header handling for both directions, on Node's flat raw-header arrays
 * ([name, value, name, value, ...]) so names keep their case and values their bytes.
 */

/** A header name as given (an RFC 9110 token), lower-cased as Node keys them; an InputError for `field` otherwise. */
export function parseHeaderName(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(value)) {
    throw new InputError(`"${String(value)}" is not an HTTP header name`, field);
  }
  return value.toLowerCase();
}

/** RFC 9110 §7.6.1 connection-specific fields, plus the legacy ones proxies also drop. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authenticate', 'proxy-authorization',
  // Node answers "Expect: 100-continue" itself before we forward, so it must not go on.
  'expect',
]);

/**
 * Lower-case names to drop, by length: most names a request or answer carries are passed over
 * after one array read, and the rest compared letter by letter, without making a lower-cased copy
 * of every name (a string a header, on every exchange).
 */
type NameFilter = readonly (readonly string[] | undefined)[];

function compile(names: Iterable<string>): NameFilter {
  const byLength: string[][] = [];
  for (const name of names) (byLength[name.length] ??= []).push(name);
  return byLength;
}

/** Whether header name (or token) `name`, in any case, is `lower`: no lower-cased copy made. */
export function sameName(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** The name in `filter` that `name` is, lower-case; undefined for a name to keep. */
function matched(filter: NameFilter, name: string): string | undefined {
  const candidates = filter[name.length];
  if (candidates === undefined) return undefined;
  for (const lower of candidates) if (sameName(name, lower)) return lower;
  return undefined;
}

const HOP_FILTER = compile(HOP_BY_HOP);
const FILTERS = new WeakMap<ReadonlySet<string>, NameFilter>();

function filterFor(drop: ReadonlySet<string> | undefined): NameFilter {
  if (drop === undefined) return HOP_FILTER;
  let filter = FILTERS.get(drop);
  if (filter === undefined) FILTERS.set(drop, (filter = compile([...HOP_BY_HOP, ...drop])));
  return filter;
}

/**
 * The names a Connection header lists, added to `into`: hop-by-hop for this message too. Nearly
 * every message says just "keep-alive" or "close", both dropped anyway: nothing is made for those.
 */
function connectionTokens(value: string, into: Set<string> | undefined): Set<string> | undefined {
  if (sameName(value, 'keep-alive') || sameName(value, 'close')) return into;
  let tokens = into;
  for (const t of value.split(',')) {
    const name = t.trim().toLowerCase();
    if (!HOP_BY_HOP.has(name)) (tokens ??= new Set()).add(name);
  }
  return tokens;
}

/**
 * Copies raw headers minus hop-by-hop ones, those a Connection header lists, and those in `drop`
 * (lower-case names). Returns the kept pairs, flat.
 */
export function endToEnd(raw: readonly string[], drop?: ReadonlySet<string>): string[] {
  const filter = filterFor(drop);
  const out: string[] = [];
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const hit = matched(filter, raw[i]!);
    if (hit === undefined) out.push(raw[i]!, raw[i + 1]!);
    else if (hit === 'connection') listed = connectionTokens(raw[i + 1]!, listed);
  }
  if (listed === undefined) return out;
  // Rare: the Connection header names more fields to drop, maybe some already kept.
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!listed.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!);
  return kept;
}

const FORWARDED = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'] as const;
export const FORWARDED_HEADERS: ReadonlySet<string> = new Set(FORWARDED);

/**
 * The value an X-Forwarded-* header gets: what came in, with ours appended. Node has
 * already joined repeated X-Forwarded-* headers into one comma-separated string.
 */
function appended(incoming: string | undefined, ours: string): string {
  return incoming === undefined || incoming === '' ? ours : `${incoming}, ${ours}`;
}

/**
 * The request headers sent upstream: end-to-end headers as received, then
 * X-Forwarded-For/-Proto/-Host with this hop appended (like nginx's
 * $proxy_add_x_forwarded_for).
 */
export function upstreamRequestHeaders(
  raw: readonly string[],
  incoming: IncomingHttpHeaders,
  hop: { readonly clientAddr: string; readonly proto: string; readonly host: string | undefined },
  drop: ReadonlySet<string>,
): string[] {
  const out = endToEnd(raw, drop);
  out.push(
    'X-Forwarded-For', appended(incoming['x-forwarded-for'] as string | undefined, hop.clientAddr),
    'X-Forwarded-Proto', appended(incoming['x-forwarded-proto'] as string | undefined, hop.proto),
  );
  if (hop.host !== undefined) {
    out.push('X-Forwarded-Host', appended(incoming['x-forwarded-host'] as string | undefined, hop.host));
  }
  return out;
}
