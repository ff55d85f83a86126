/**
 * nginx's view of a request target, byte for byte. Strings here are "binary" strings:
 * one char per byte (latin1), which is how Node hands us the request line and headers,
 * so decoded bytes such as %FF survive until the key is hashed.
 */

export interface ParsedTarget {
  /** $uri: percent-decoded, dot segments resolved, repeated slashes merged, no query. */
  readonly uri: string;
  /** $args: the raw query string after the first '?', up to any '#'. */
  readonly args: string;
}

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const QUESTION = 0x3f;
const HASH = 0x23;

const enum State {
  Usual,
  Slash,
  Dot,
  DotDot,
  Quoted,
  QuotedSecond,
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** Nothing that nginx would rewrite: $uri is the path as sent, $args the rest after '?'. */
function isSimple(path: string, pathPart: string): boolean {
  return !path.includes('#') && !/%|\/\/|\/\./.test(pathPart);
}

/**
 * Parses an origin-form path ("/a/b?x") the way nginx's ngx_http_parse_complex_uri does
 * with merge_slashes on. Returns null where nginx answers 400: a bad or truncated %-escape,
 * an encoded NUL, or ".." climbing above the root.
 */
export function parsePath(path: string): ParsedTarget | null {
  const q = path.indexOf('?');
  const pathPart = q === -1 ? path : path.slice(0, q);
  if (isSimple(path, pathPart)) {
    return { uri: pathPart, args: q === -1 ? '' : path.slice(q + 1) };
  }

  const out: number[] = [];
  let state = State.Usual;
  let quotedState = State.Usual;
  let decoded = 0;
  let i = 0;
  let argsFrom = -1;
  let c = path.charCodeAt(0);

  // Drops "/.." and the segment before it, keeping that segment's leading slash.
  const climb = (): boolean => {
    let u = out.length - 4;
    while (u >= 0 && out[u] !== SLASH) u--;
    if (u < 0) return false;
    out.length = u + 1;
    return true;
  };

  scan: while (i < path.length) {
    switch (state) {
      case State.Quoted: {
        const v = hexValue(c);
        if (v === -1) return null;
        decoded = v;
        state = State.QuotedSecond;
        c = path.charCodeAt(++i);
        continue;
      }
      case State.QuotedSecond: {
        const v = hexValue(c);
        if (v === -1) return null;
        const ch = decoded * 16 + v;
        if (ch === 0) return null;
        if (ch === PERCENT || ch === HASH || ch === QUESTION) {
          // Kept literally: decoding them must not start an escape, fragment or query.
          out.push(ch);
          state = State.Usual;
          c = path.charCodeAt(++i);
          continue;
        }
        // Any other decoded byte is read again as if it had been sent unescaped,
        // so %2F merges like '/', and %2E%2E climbs like "..".
        c = ch;
        state = quotedState;
        continue;
      }
    }

    if (c === PERCENT) {
      quotedState = state;
      state = State.Quoted;
    } else if (c === QUESTION || c === HASH) {
      if (state === State.Dot) out.pop();
      else if (state === State.DotDot && !climb()) return null;
      if (c === QUESTION) argsFrom = i + 1;
      state = State.Usual;
      break scan;
    } else if (c === SLASH) {
      if (state === State.Usual) out.push(SLASH);
      else if (state === State.Dot) out.pop();
      else if (state === State.DotDot && !climb()) return null;
      state = State.Slash;
    } else if (c === DOT && state !== State.Usual) {
      out.push(DOT);
      state = state === State.Slash ? State.Dot : state === State.Dot ? State.DotDot : State.Usual;
    } else {
      out.push(c);
      state = State.Usual;
    }
    c = path.charCodeAt(++i);
  }

  if (state === State.Quoted || state === State.QuotedSecond) return null;
  if (state === State.Dot) out.pop();
  else if (state === State.DotDot && !climb()) return null;

  let args = '';
  if (argsFrom !== -1) {
    const hash = path.indexOf('#', argsFrom);
    args = hash === -1 ? path.slice(argsFrom) : path.slice(argsFrom, hash);
  }
  return { uri: String.fromCharCode(...out), args };
}

/**
 * nginx's $host from a Host header value (ngx_http_validate_host): the port and one
 * trailing dot dropped, A-Z lowered. Returns null where nginx answers 400 (empty name, "..",
 * a slash, a backslash, a control character or space).
 */
export function parseHost(value: string): string | null {
  let hostEnd = value.length;
  let dotAt = -2;
  let inLiteral = false;
  let portFound = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === DOT) {
      if (dotAt === i - 1) return null;
      dotAt = i;
    } else if (c === 0x3a /* : */) {
      if (!portFound && !inLiteral) {
        hostEnd = i;
        portFound = true;
      }
    } else if (c === 0x5b /* [ */) {
      if (i === 0) inLiteral = true;
    } else if (c === 0x5d /* ] */) {
      if (inLiteral) {
        hostEnd = i + 1;
        inLiteral = false;
        portFound = true;
      }
    } else if (c === SLASH || c === 0x5c || c <= 0x20 || c === 0x7f) {
      return null;
    }
  }
  if (dotAt === hostEnd - 1) hostEnd--;
  if (hostEnd <= 0) return null;
  return value.slice(0, hostEnd).replace(/[A-Z]+/g, (s) => s.toLowerCase());
}
