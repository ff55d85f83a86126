import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { InputError } from '../common/input-error.js';

/** Admin tokens by name; only their SHA-256 digests are kept. */
export type Tokens = ReadonlyMap<string, Buffer>;

/** Shorter tokens are guessable; the same floor for the environment and the file. */
const MIN_TOKEN = 16;

const digest = (token: string): Buffer => createHash('sha256').update(token).digest();

/** whoIs reads the token as the header's one run of non-whitespace: a token with whitespace in it could never match. */
const WHITESPACE = /\s/;
const NO_WHITESPACE = 'the token contains whitespace, which a Bearer header cannot carry';

/**
 * Tokens from DRUM_SPLITTER_ADMIN_TOKEN (named "admin") and from a token file: one per line,
 * `NAME:TOKEN` or a bare token (named "admin"); blank lines and # comments skipped. A token with
 * whitespace in it (a trailing newline in the variable included) is refused.
 */
export function loadTokens(env: NodeJS.ProcessEnv, file: string | undefined): Tokens {
  const tokens = new Map<string, Buffer>();
  const fromEnv = env.DRUM_SPLITTER_ADMIN_TOKEN;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (fromEnv.length < MIN_TOKEN) {
      throw new InputError(`must be ${MIN_TOKEN} characters or more`, 'DRUM_SPLITTER_ADMIN_TOKEN');
    }
    if (WHITESPACE.test(fromEnv)) throw new InputError(NO_WHITESPACE, 'DRUM_SPLITTER_ADMIN_TOKEN');
    tokens.set('admin', digest(fromEnv));
  }
  if (file === undefined) return tokens;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read ${file}: ${(err as Error).message}`, '--admin-token-file');
  }
  const before = tokens.size;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    const [name, token] = colon === -1 ? ['admin', line] : [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
    if (name === '' || token.length < MIN_TOKEN) {
      throw new InputError(`line ${i + 1}: want NAME:TOKEN with a token of ${MIN_TOKEN} characters or more`, '--admin-token-file');
    }
    if (WHITESPACE.test(token)) throw new InputError(`line ${i + 1}: ${NO_WHITESPACE}`, '--admin-token-file');
    if (tokens.has(name)) {
      // One token per name: a second would silently replace the first, which then stops working.
      const by = name === 'admin' && fromEnv !== undefined && fromEnv !== '' ? 'DRUM_SPLITTER_ADMIN_TOKEN or an earlier line' : 'an earlier line';
      throw new InputError(`line ${i + 1}: "${name}" already has a token (from ${by}); give each token its own NAME`, '--admin-token-file');
    }
    tokens.set(name, digest(token));
  }
  if (tokens.size === before) throw new InputError(`${file} holds no token`, '--admin-token-file');
  return tokens;
}

/**
 * Who sent a request: the token's name, "anonymous" when no tokens are configured, or
 * undefined (→ 401). Every configured digest is compared, in constant time, whatever matches.
 */
export function whoIs(tokens: Tokens, authorization: string | undefined): string | undefined {
  if (tokens.size === 0) return 'anonymous';
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (m === null) return undefined;
  const presented = digest(m[1]!);
  let who: string | undefined;
  for (const [name, expected] of tokens) {
    if (timingSafeEqual(presented, expected)) who ??= name;
  }
  return who;
}

/**
 * Whether a Host header names this machine's loopback (localhost, 127.x.x.x, [::1], any port).
 * Without a token every request needs one: a web page whose name an attacker re-points at
 * 127.0.0.1 (DNS rebinding) reaches a loopback listener, but its requests still carry that name
 * as Host — and, from the same origin as far as the browser knows, it could read the answers.
 */
export function loopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = /^(\[[^\]]*\]|[^:]*)(?::\d{1,5})?$/.exec(host)?.[1];
  return name !== undefined && loopbackName(name);
}

/**
 * Why a request comes from a web page of another origin, or undefined when it does not. Any page
 * can make the browser POST to 127.0.0.1 (a no-cors fetch, a beacon, a form), with a loopback
 * Host; the browser then names the page in Origin and says how near it is in Sec-Fetch-Site
 * (another port of 127.0.0.1 is "same-site"). curl, the CLI and Node's fetch send neither.
 * `protocol` and the Host make the admin API's own origin, the console's.
 */
export function otherOrigin(headers: IncomingHttpHeaders, protocol: string): string | undefined {
  const site = headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return `Sec-Fetch-Site: ${site}`;
  const { origin, host } = headers;
  if (origin === undefined) return undefined;
  // Both through URL: case and a default port (":80") spelled either way are the same origin.
  const own = URL.parse(`${protocol}://${host ?? ''}`)?.origin;
  return own !== undefined && URL.parse(origin)?.origin === own ? undefined : `Origin: ${origin}`;
}

/** Whether a host name or address (no port; IPv6 bare or in brackets) is this machine's loopback: localhost, 127.x.x.x, ::1. */
export function loopbackName(name: string): boolean {
  const n = name.toLowerCase();
  return n === 'localhost' || n === '::1' || n === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(n);
}

/**
 * The tokens of an admin listener at `host`, refusing to run one reachable from other hosts
 * without any: `listener` names it in the error (the proxy's admin API, the controller's).
 */
export function guardedTokens(env: NodeJS.ProcessEnv, file: string | undefined, host: string, listener: string): Tokens {
  const tokens = loadTokens(env, file);
  if (tokens.size === 0 && !loopbackName(host)) {
    throw new InputError(`${listener} on ${host} is reachable from other hosts; set DRUM_SPLITTER_ADMIN_TOKEN or --admin-token-file`, 'admin');
  }
  return tokens;
}
