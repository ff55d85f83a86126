import type { IncomingHttpHeaders } from 'node:http';

/**
 * Header handling for both directions, on Node's flat raw-header arrays
 * ([name, value, name, value, ...]) so names keep their case and values their bytes.
 */

/** RFC 9110 §7.6.1 connection-specific fields, plus the legacy ones proxies also drop. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authenticate', 'proxy-authorization',
  // Node answers "Expect: 100-continue" itself before we forward, so it must not go on.
  'expect',
]);

/**
 * Header names lower-cased, remembered: the same few names come on every request and answer
 * ("Content-Type"), and lower-casing each anew was a string a header. Bounded, so a client's
 * made-up names cannot grow it; past the bound a name is lower-cased each time.
 */
const LOWER = new Map<string, string>();
const LOWER_MAX = 512;

export function lowerName(name: string): string {
  let lower = LOWER.get(name);
  if (lower === undefined) {
    lower = name.toLowerCase();
    if (LOWER.size < LOWER_MAX) LOWER.set(name, lower);
  }
  return lower;
}

/** Names listed in the Connection header are hop-by-hop for this message too. */
function connectionTokens(raw: readonly string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    // Lower-casing only names of the right length: every request has a few headers and rarely this one.
    if (raw[i]!.length !== 10 || lowerName(raw[i]!) !== 'connection') continue;
    tokens ??= new Set();
    for (const t of raw[i + 1]!.split(',')) tokens.add(t.trim().toLowerCase());
  }
  return tokens;
}

/**
 * Copies raw headers minus hop-by-hop ones and those in `drop` (lower-case names).
 * Returns the kept pairs, flat.
 */
export function endToEnd(raw: readonly string[], drop?: ReadonlySet<string>): string[] {
  const listed = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = lowerName(raw[i]!);
    if (HOP_BY_HOP.has(lower) || listed?.has(lower) || drop?.has(lower)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
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
