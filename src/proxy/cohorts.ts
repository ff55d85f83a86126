import type { RouteRule, ValueTest } from '../weights/routes.js';
import { findCookie, headerText, type RequestFacts } from './key.js';

/** What a rule looks at beside the method: $uri and the headers. */
export type CohortFacts = Pick<RequestFacts, 'uri' | 'headers'>;

/** A rule's conditions, all of them, on a request (its method, its facts: no object made for the call). */
export type CohortTest = (method: string, facts: CohortFacts) => boolean;

/** A rule ready for the request path; the same object every time it matches, so a match allocates nothing. */
export interface CompiledRoute {
  readonly name: string;
  /** Its upstream; undefined: the request goes on to the split. */
  readonly upstream: string | undefined;
  readonly test: CohortTest;
}

/** A value test as a function of the value found; absent (undefined) never matches. */
function compileValue(test: ValueTest, prefix = false): (value: string | undefined) => boolean {
  if (typeof test !== 'string') {
    const re = new RegExp(test.regex);
    return (value) => value !== undefined && re.test(value);
  }
  return prefix ? (value) => value !== undefined && value.startsWith(test) : (value) => value === test;
}

/** Compiles rules that passed parseRoutes: each condition once, into one test a rule. */
export function compileRoutes(rules: readonly RouteRule[]): CompiledRoute[] {
  return rules.map((rule) => {
    const { header = {}, cookie = {}, path, method } = rule.match;
    const tests: CohortTest[] = [];
    if (method !== undefined) {
      const ok = compileValue(method);
      tests.push((m) => ok(m));
    }
    if (path !== undefined) {
      const ok = compileValue(path, true);
      tests.push((_m, f) => ok(f.uri));
    }
    for (const [name, test] of Object.entries(header)) {
      const ok = compileValue(test);
      tests.push((_m, f) => {
        const value = f.headers[name];
        return ok(value === undefined ? undefined : headerText(value));
      });
    }
    for (const [name, test] of Object.entries(cookie)) {
      const ok = compileValue(test);
      tests.push((_m, f) => ok(findCookie(headerText(f.headers.cookie), name)));
    }
    // A loop, not every(): its callback would be a closure made on each request.
    const test: CohortTest = (m, f) => {
      for (const t of tests) if (!t(m, f)) return false;
      return true;
    };
    return { name: rule.name, upstream: rule.upstream, test };
  });
}

/** The first rule whose every condition holds, or undefined: the request is the split's. */
export function firstMatch(routes: readonly CompiledRoute[], method: string, facts: CohortFacts): CompiledRoute | undefined {
  for (const route of routes) if (route.test(method, facts)) return route;
  return undefined;
}
