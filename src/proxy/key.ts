import type { IncomingHttpHeaders } from 'node:http';
import { InputError } from '../common/input-error.js';

/** What nginx knows about a request, as binary (latin1) strings. */
export interface RequestFacts {
  /** $remote_addr */
  readonly remoteAddr: string;
  /** $request_uri: the request target exactly as received. */
  readonly requestUri: string;
  /** $uri */
  readonly uri: string;
  /** $args */
  readonly args: string;
  /** $host */
  readonly host: string;
  readonly headers: IncomingHttpHeaders;
}

type Getter = (facts: RequestFacts) => string;

/** A compiled split key: evaluates to the bytes nginx would hash, as a binary string. */
export type KeyFunction = (facts: RequestFacts) => string;

export const DEFAULT_KEY = '${remote_addr}${uri}';

const FIXED: Record<string, Getter> = {
  remote_addr: (f) => f.remoteAddr,
  uri: (f) => f.uri,
  request_uri: (f) => f.requestUri,
  args: (f) => f.args,
  host: (f) => f.host,
};

/** $arg_NAME as nginx's ngx_http_arg finds it: case-insensitive name, raw value, first match. */
export function argValue(args: string, name: string): string {
  const lowerArgs = args.toLowerCase();
  const want = name.toLowerCase() + '=';
  for (let at = lowerArgs.indexOf(want); at !== -1; at = lowerArgs.indexOf(want, at + 1)) {
    if (at === 0 || args[at - 1] === '&') {
      const start = at + want.length;
      const end = args.indexOf('&', start);
      return end === -1 ? args.slice(start) : args.slice(start, end);
    }
  }
  return '';
}

/** $cookie_NAME as nginx parses the Cookie header: pairs split on ';' or ',', name case-insensitive; '' when absent. */
export function cookieValue(cookie: string | undefined, name: string): string {
  return findCookie(cookie, name) ?? '';
}

/** A cookie's value as $cookie_NAME finds it; undefined when the header has no such cookie. */
export function findCookie(cookie: string | undefined, name: string): string | undefined {
  if (cookie === undefined) return undefined;
  const lowerName = name.toLowerCase();
  let pos = 0;
  while (pos < cookie.length) {
    if (cookie.slice(pos, pos + name.length).toLowerCase() === lowerName) {
      let p = pos + name.length;
      while (cookie[p] === ' ') p++;
      if (cookie[p] === '=') {
        p++;
        while (cookie[p] === ' ') p++;
        const end = cookie.indexOf(';', p);
        return end === -1 ? cookie.slice(p) : cookie.slice(p, end);
      }
    }
    // Skip to the next pair.
    while (pos < cookie.length) {
      const c = cookie[pos++];
      if (c === ';' || c === ',') break;
    }
    while (cookie[pos] === ' ') pos++;
  }
  return undefined;
}

/** A header's value as $http_NAME gives it: repeated values joined with ", ". */
export function headerText(value: string | string[] | undefined): string {
  if (value === undefined) return '';
  return Array.isArray(value) ? value.join(', ') : value;
}

function variable(name: string, template: string): Getter {
  const fixed = FIXED[name];
  if (fixed !== undefined) return fixed;
  const [, prefix, rest] = /^(arg|http|cookie)_(.+)$/.exec(name) ?? [];
  if (rest !== undefined) {
    if (prefix === 'arg') return (f) => argValue(f.args, rest);
    if (prefix === 'cookie') return (f) => cookieValue(headerText(f.headers.cookie), rest);
    const header = rest.toLowerCase().replaceAll('_', '-');
    return (f) => headerText(f.headers[header]);
  }
  throw new InputError(
    `unknown variable $${name} in "${template}"; supported: $remote_addr, $uri, $request_uri, ` +
      '$args, $host, $arg_NAME, $http_NAME, $cookie_NAME',
    'key',
  );
}

/**
 * Compiles an nginx-style template such as "${remote_addr}${uri}" (variables as $name or
 * ${name}, anything else literal) into a function of the request.
 */
export function compileKey(template: string): KeyFunction {
  const parts: (string | Getter)[] = [];
  const re = /\$(?:\{([A-Za-z0-9_]*)\}?|([A-Za-z0-9_]*))/g;
  let last = 0;
  for (let m = re.exec(template); m !== null; m = re.exec(template)) {
    if (m.index > last) parts.push(template.slice(last, m.index));
    const braced = m[1];
    const name = braced ?? m[2]!; // the unbraced alternative always matches, maybe empty
    if (braced !== undefined && !m[0].endsWith('}')) {
      throw new InputError(`missing "}" after "\${${braced}" in "${template}"`, 'key');
    }
    if (name === '') throw new InputError(`"$" without a variable name in "${template}"`, 'key');
    parts.push(variable(name, template));
    last = re.lastIndex;
  }
  if (last < template.length) parts.push(template.slice(last));
  if (!parts.some((p) => typeof p === 'function')) {
    throw new InputError(`"${template}" uses no variable, so every request would hash alike`, 'key');
  }
  return (facts) => {
    let key = '';
    for (const part of parts) key += typeof part === 'string' ? part : part(facts);
    return key;
  };
}
