import { parseHeaderName } from '../common/headers.js';
import { InputError } from '../common/input-error.js';
import { isObject } from '../common/json-shape.js';

/**
 * Cohort rules (config `routes:`, PUT /routes): checked in order before the split, the first
 * whose conditions all hold takes the request to its upstream, or on to the split. This is their
 * one check, whoever gives them; proxy/cohorts.ts compiles and matches them.
 */

/** What a condition's value must be: exactly this text, or a JavaScript regular expression found anywhere in it (anchor it with ^ and $). */
export type ValueTest = string | { readonly regex: string };

/** A rule's conditions; every one given must hold. */
export interface RouteMatch {
  /** Request headers by lower-case name: a repeated header is its values joined with ", ", as $http_NAME. */
  readonly header?: Readonly<Record<string, ValueTest>>;
  /** Cookies by name, found in the Cookie header as $cookie_NAME finds them. */
  readonly cookie?: Readonly<Record<string, ValueTest>>;
  /** $uri (decoded, dot segments resolved, no query): text is a prefix of it; a regex is tested against it. */
  readonly path?: ValueTest;
  readonly method?: ValueTest;
}

/** A rule, its name filled in; exactly one of `upstream` and `split`. */
export interface RouteRule {
  /** Its label in drum_route_matches_total and GET /routes; default route-N, N its place in the list. */
  readonly name: string;
  readonly match: RouteMatch;
  /** Where the requests it matches go. */
  readonly upstream?: string;
  /** They go on to the weighted split, and no later rule sees them. */
  readonly split?: true;
}

const RULE_KEYS = ['name', 'match', 'upstream', 'split'];
const MATCH_KEYS = ['header', 'cookie', 'path', 'method'];
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** RFC 6265's cookie-name: a token. */
const COOKIE_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const EXAMPLE = '- { name: beta, match: { header: { x-beta: "1" } }, upstream: fastapi }';

function unknownKey(value: Record<string, unknown>, known: readonly string[], field: string): void {
  const unknown = Object.keys(value).find((k) => !known.includes(k));
  if (unknown !== undefined) throw new InputError(`unknown key "${unknown}"; known: ${known.join(', ')}`, field);
}

/**
 * A condition's value: text (a whole number is taken as its digits: YAML reads `x-beta: 1` as
 * one), or `{ regex: PATTERN }`, which must compile.
 */
function valueTest(value: unknown, field: string): ValueTest {
  if (typeof value === 'string') return value;
  if (Number.isSafeInteger(value)) return String(value);
  if (!isObject(value)) throw new InputError(`${JSON.stringify(value)} is not text or { regex: PATTERN }; quote a value that is not a whole number`, field);
  unknownKey(value, ['regex'], field);
  const { regex } = value;
  if (typeof regex !== 'string') throw new InputError('regex must be text, a JavaScript regular expression', `${field}.regex`);
  try {
    new RegExp(regex);
  } catch (err) {
    throw new InputError(`not a regular expression: ${(err as Error).message}`, `${field}.regex`);
  }
  return { regex };
}

/** header: or cookie:, a mapping of name to value; at least one. */
function named(value: unknown, field: string, nameOf: (name: string) => string): Record<string, ValueTest> {
  if (!isObject(value) || Object.keys(value).length === 0) throw new InputError('must be a mapping of NAME: VALUE, at least one', field);
  const out: Record<string, ValueTest> = {};
  for (const [given, test] of Object.entries(value)) {
    const name = nameOf(given);
    if (Object.hasOwn(out, name)) throw new InputError(`"${given}" is named twice (names are not case-sensitive)`, `${field}.${given}`);
    out[name] = valueTest(test, `${field}.${given}`);
  }
  return out;
}

function parseMatch(value: unknown, field: string): RouteMatch {
  if (!isObject(value) || Object.keys(value).length === 0) {
    throw new InputError(`needs at least one of ${MATCH_KEYS.join(', ')}: a rule that matches everything would take every request from the split`, field);
  }
  unknownKey(value, MATCH_KEYS, field);
  const match: { -readonly [K in keyof RouteMatch]: RouteMatch[K] } = {};
  if (value.header !== undefined) match.header = named(value.header, `${field}.header`, (n) => parseHeaderName(n, `${field}.header`));
  if (value.cookie !== undefined) {
    match.cookie = named(value.cookie, `${field}.cookie`, (n) => {
      if (!COOKIE_NAME.test(n)) throw new InputError(`"${n}" is not a cookie name`, `${field}.cookie`);
      // As $cookie_NAME: found whatever its case.
      return n.toLowerCase();
    });
  }
  if (value.path !== undefined) {
    const path = valueTest(value.path, `${field}.path`);
    if (typeof path === 'string' && !path.startsWith('/')) throw new InputError(`"${path}" is not a path prefix (it must start with /)`, `${field}.path`);
    match.path = path;
  }
  if (value.method !== undefined) {
    const method = valueTest(value.method, `${field}.method`);
    // Node's parser takes only upper-case methods: a lower-case one would never match.
    if (typeof method === 'string' && !/^[A-Z]+$/.test(method)) throw new InputError(`"${method}" is not a method (upper case, e.g. POST)`, `${field}.method`);
    match.method = method;
  }
  return match;
}

function parseRule(value: unknown, index: number, upstreams: readonly string[], field: string): RouteRule {
  const at = `${field}[${index}]`;
  if (!isObject(value)) throw new InputError(`must be a rule, e.g. ${EXAMPLE}`, at);
  unknownKey(value, RULE_KEYS, at);
  const name = value.name ?? `route-${index + 1}`;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new InputError(`${JSON.stringify(name)} is not a rule name (a letter or digit, then letters, digits, "_", "." or "-"; at most 64)`, `${at}.name`);
  }
  const match = parseMatch(value.match, `${at}.match`);
  const { upstream, split } = value;
  if ((upstream === undefined) === (split === undefined)) throw new InputError('needs upstream: NAME, or split: true (to send its requests on to the split), one of the two', at);
  if (split !== undefined) {
    if (split !== true) throw new InputError(`${JSON.stringify(split)} is not true; leave split out and name an upstream instead`, `${at}.split`);
    return { name, match, split: true };
  }
  if (typeof upstream !== 'string' || !upstreams.includes(upstream)) {
    throw new InputError(`${JSON.stringify(upstream)} is not an upstream; upstreams: ${upstreams.join(', ')}`, `${at}.upstream`);
  }
  return { name, match, upstream };
}

/**
 * The rules a config file's `routes:` or a PUT /routes gives, checked against the upstreams, in
 * their order; none for null or undefined. The first problem is an InputError naming its field
 * (`routes[1].match.header.x-beta.regex`).
 */
export function parseRoutes(value: unknown, upstreams: readonly string[], field = 'routes'): RouteRule[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new InputError(`must be a list of rules, e.g. ${EXAMPLE}`, field);
  const rules = value.map((rule, i) => parseRule(rule, i, upstreams, field));
  const seen = new Map<string, number>();
  rules.forEach(({ name }, i) => {
    const first = seen.get(name);
    if (first !== undefined) throw new InputError(`"${name}" is the name of ${field}[${first}] too; each rule needs its own (it labels its count)`, `${field}[${i}].name`);
    seen.set(name, i);
  });
  return rules;
}

/** The same rules in the same order: the same requests taken. */
export function sameRoutes(a: readonly RouteRule[], b: readonly RouteRule[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Where a rule sends its requests, for a log line or a summary: "beta → fastapi", "qa → split". */
export const describeRoute = (rule: RouteRule): string => `${rule.name} → ${rule.upstream ?? 'split'}`;
