import { InputError } from '../common/input-error.js';
import { parseJson } from '../common/json-shape.js';

/**
 * Compares two HTTP answers to the same request, the baseline's and the canary's, as the seed's
 * scripts/shadow_replay_test.py does with DeepDiff(ignore_order=True, significant_digits=5), with
 * its gaps closed: every status is compared (not only 200), a non-UTF-8 body is compared byte for
 * byte instead of raising, documented (ignored) paths do not count, and numbers are equal within
 * a tolerance (numpy's isclose) rather than rounded to 5 places.
 */

export interface Answer {
  readonly status: number;
  readonly body: Uint8Array;
  /** Not compared: like the reference script, the body itself decides whether it is JSON. */
  readonly contentType?: string;
}

export interface Difference {
  readonly path: string;
  readonly baseline: unknown;
  readonly canary: unknown;
  readonly kind: 'status' | 'changed' | 'added' | 'removed' | 'type' | 'bytes';
  /**
   * The field the difference is at, the same in every answer: its path with each index as `[*]`
   * ("$.predictions[*].label"), `$status`, or `$` for a whole text or bytes body. What the noise
   * bookkeeping counts by, and an ignore path as it is.
   */
  readonly field: string;
}

/** Numbers equal within |canary − baseline| ≤ absolute + relative·|baseline|, as numpy's isclose(canary, baseline). */
export interface Tolerance {
  readonly relative: number;
  readonly absolute: number;
}

/**
 * The default: every pair of numbers the seed's rounding to 5 places took as equal (which differ
 * by less than 1e-5) is equal here too, and so are the few it split at a rounding boundary
 * (0.123454 and 0.123456); no pair it took as different by more than 1e-5 is.
 */
export const DEFAULT_TOLERANCE: Tolerance = { relative: 0, absolute: 1e-5 };

export interface CompareOptions {
  /** Paths whose differences are accepted (documented differences), e.g. "$.meta.time", "$.predictions[*].id", "$..timestamp". */
  readonly ignore?: readonly string[];
  /** When two numbers are equal (default DEFAULT_TOLERANCE). */
  readonly tolerance?: Tolerance;
}

export interface Comparison {
  readonly match: boolean;
  readonly kind: 'json' | 'text' | 'bytes';
  /** The counted differences first found, at most MAX_LISTED. */
  readonly differences: readonly Difference[];
  /** Differences at ignored paths. */
  readonly ignored: number;
  /** The fields of every counted difference, listed or not, each once, in the order found. */
  readonly fields: readonly string[];
}

/** One step of a pattern: a key, an index, any key (`*`) or any index (`[*]`). */
export type PatternStep =
  | { readonly kind: 'key'; readonly name: string }
  | { readonly kind: 'index'; readonly index: number }
  | { readonly kind: 'anyKey' }
  | { readonly kind: 'anyIndex' };

/** A step, and whether it may be reached through any number of steps first (`..`). */
export interface PatternSegment {
  readonly step: PatternStep;
  readonly deep: boolean;
}

/** A parsed ignore path. It covers the place it names and everything under it. */
export interface IgnorePath {
  readonly text: string;
  /** `$status`: the status line, not the body. */
  readonly status: boolean;
  readonly segments: readonly PatternSegment[];
}

export const MAX_LISTED = 50;
/** Unmatched array elements are paired by likeness up to this many candidate pairs, by position past it. */
export const PAIRING_LIMIT = 10_000;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** Where a difference is, for ignore paths and fields: object keys and array indices; null for the status. */
type Segment = string | number;
type Place = readonly Segment[] | null;
type Emit = (difference: Omit<Difference, 'field'>, place: Place) => void;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const IDENT_AT = /[A-Za-z_][A-Za-z0-9_]*/y;

/** `$.a.b[2]`, with `['…']` for a key that is not an identifier; with `anyIndex`, `$.a.b[*]`. */
export function formatPath(place: readonly Segment[], anyIndex = false): string {
  let path = '$';
  for (const seg of place) {
    if (typeof seg === 'number') path += anyIndex ? '[*]' : `[${seg}]`;
    else if (IDENT.test(seg)) path += `.${seg}`;
    else path += `['${seg.replace(/[\\']/g, '\\$&')}']`;
  }
  return path;
}

/**
 * Parses an ignore path: `$`, then steps `.name`, `['any key']` (or double quotes), `[2]`, `.*`
 * (any key), `[*]` (any index); `..` before a step lets it match at any depth. `$status` names the
 * status. A path formatPath writes parses back to one that matches exactly it.
 */
export function parseIgnorePath(text: string): IgnorePath {
  if (text === '$status') return { text, status: true, segments: [] };
  const fail = (at: number, what: string): never => {
    throw new Error(`ignore path ${JSON.stringify(text)}: ${what} at offset ${at}`);
  };
  if (!text.startsWith('$')) fail(0, 'expected "$"');
  const segments: PatternSegment[] = [];
  let i = 1;
  while (i < text.length) {
    let deep = false;
    let dotted = false;
    if (text.startsWith('..', i)) {
      deep = true;
      i += 2;
    } else if (text[i] === '.') {
      dotted = true;
      i += 1;
    } else if (text[i] !== '[') {
      fail(i, 'expected ".", ".." or "["');
    }
    let step: PatternStep;
    if (!dotted && text[i] === '[') {
      [step, i] = bracket(text, i, fail);
    } else if (text[i] === '*') {
      step = { kind: 'anyKey' };
      i += 1;
    } else {
      IDENT_AT.lastIndex = i;
      const name = IDENT_AT.exec(text)?.[0] ?? fail(i, 'expected a name or "*"');
      step = { kind: 'key', name };
      i += name.length;
    }
    segments.push({ step, deep });
  }
  return { text, status: false, segments };
}

/** Checks ignore paths where they are given (a flag, a setting), before any answer: the first bad one is an InputError for `field`. */
export function checkIgnorePaths(paths: readonly string[], field: string): void {
  for (const path of paths) {
    try {
      parseIgnorePath(path);
    } catch (err) {
      throw new InputError((err as Error).message, field);
    }
  }
}

/** `[*]`, `[12]`, `['key']` or `["key"]` at text[i]; the step and the offset after it. */
function bracket(text: string, i: number, fail: (at: number, what: string) => never): [PatternStep, number] {
  const open = i;
  i += 1;
  let step: PatternStep;
  const quote = text[i];
  if (quote === "'" || quote === '"') {
    let name = '';
    i += 1;
    for (;;) {
      const c = text[i];
      if (c === undefined) return fail(open, 'unterminated quoted key');
      if (c === quote) break;
      // A backslash takes the next character as it is: \' \" \\.
      if (c === '\\' && i + 1 < text.length) i += 1;
      name += text[i];
      i += 1;
    }
    i += 1;
    step = { kind: 'key', name };
  } else if (quote === '*') {
    i += 1;
    step = { kind: 'anyIndex' };
  } else {
    const digits = /\d+/y;
    digits.lastIndex = i;
    const index = digits.exec(text)?.[0] ?? fail(i, 'expected an index, "*" or a quoted key');
    i += index.length;
    step = { kind: 'index', index: Number(index) };
  }
  if (text[i] !== ']') fail(i, 'expected "]"');
  return [step, i + 1];
}

function stepMatches(step: PatternStep, seg: Segment): boolean {
  switch (step.kind) {
    case 'key':
      return seg === step.name;
    case 'index':
      return seg === step.index;
    case 'anyKey':
      return typeof seg === 'string';
    case 'anyIndex':
      return typeof seg === 'number';
  }
}

/** Whether the pattern names `place` or a place above it. */
function covers(pattern: IgnorePath, place: Place): boolean {
  if (place === null || pattern.status) return place === null && pattern.status;
  const from = (p: number, s: number): boolean => {
    const seg = pattern.segments[p];
    if (seg === undefined) return true;
    if (!seg.deep) return s < place.length && stepMatches(seg.step, place[s]!) && from(p + 1, s + 1);
    for (let k = s; k < place.length; k++) {
      if (stepMatches(seg.step, place[k]!) && from(p + 1, k + 1)) return true;
    }
    return false;
  };
  return from(0, 0);
}

/** Whether two numbers are equal within the tolerance; the baseline's is the reference, as isclose's b. */
export function isClose(baseline: number, canary: number, tolerance: Tolerance): boolean {
  if (baseline === canary) return true;
  // JSON's 1e999 is Infinity: equal only to itself (as in isclose), whatever a relative tolerance of it says.
  return Number.isFinite(baseline) && Number.isFinite(canary) && Math.abs(canary - baseline) <= tolerance.absolute + tolerance.relative * Math.abs(baseline);
}

const isToleranceValue = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0;

/**
 * A tolerance from settings or flags (numbers, or strings of them), each part defaulting to
 * DEFAULT_TOLERANCE's; a part that is not a finite number ≥ 0 is an InputError for its field.
 */
export function parseTolerance(relative: unknown, absolute: unknown, fields: { readonly relative: string; readonly absolute: string }): Tolerance {
  const part = (value: unknown, fallback: number, field: string): number => {
    if (value === undefined) return fallback;
    const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
    if (!isToleranceValue(n)) throw new InputError(`"${String(value)}" is not a number from 0 up, e.g. 1e-6`, field);
    return n;
  };
  return { relative: part(relative, DEFAULT_TOLERANCE.relative, fields.relative), absolute: part(absolute, DEFAULT_TOLERANCE.absolute, fields.absolute) };
}

function checkTolerance(tolerance: Tolerance): Tolerance {
  if (!isToleranceValue(tolerance.relative) || !isToleranceValue(tolerance.absolute)) {
    throw new RangeError(`a tolerance is two finite numbers from 0 up, not ${tolerance.relative} and ${tolerance.absolute}`);
  }
  return tolerance;
}

type JsonType = 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object';
const typeOf = (v: Json): JsonType => (v === null ? 'null' : Array.isArray(v) ? 'array' : (typeof v as JsonType));

/**
 * Walks two parsed JSON bodies; arrays are compared as multisets, numbers within the tolerance.
 * Exactly equal values are found by key (fast, and across any array order); values equal only
 * within the tolerance are found when the unmatched elements are paired, most alike first.
 */
class JsonWalker {
  private readonly keys = new WeakMap<object, string>();

  constructor(
    private readonly tolerance: Tolerance,
    private readonly emit: Emit,
  ) {}

  /** A canonical key: equal keys ⇔ exactly equal values (sorted keys, sorted elements; -0 is 0). */
  key(v: Json): string {
    if (v === null || typeof v === 'boolean') return String(v);
    if (typeof v === 'number') return `n${v}`;
    if (typeof v === 'string') return JSON.stringify(v);
    let k = this.keys.get(v);
    if (k === undefined) {
      k = Array.isArray(v)
        ? `[${v.map((e) => this.key(e)).sort().join(',')}]`
        : `{${Object.keys(v).sort().map((name) => `${JSON.stringify(name)}:${this.key(v[name]!)}`).join(',')}}`;
      this.keys.set(v, k);
    }
    return k;
  }

  values(a: Json, b: Json, place: readonly Segment[]): void {
    const ta = typeOf(a);
    if (ta !== typeOf(b)) return this.emit({ path: formatPath(place), baseline: a, canary: b, kind: 'type' }, place);
    if (this.key(a) === this.key(b) || (ta === 'number' && isClose(a as number, b as number, this.tolerance))) return;
    if (ta === 'array') return this.arrays(a as Json[], b as Json[], place);
    if (ta === 'object') return this.objects(a as Record<string, Json>, b as Record<string, Json>, place);
    this.emit({ path: formatPath(place), baseline: a, canary: b, kind: 'changed' }, place);
  }

  private objects(a: Record<string, Json>, b: Record<string, Json>, place: readonly Segment[]): void {
    const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const name of names) {
      const at = [...place, name];
      if (!Object.hasOwn(b, name)) this.emit({ path: formatPath(at), baseline: a[name], canary: undefined, kind: 'removed' }, at);
      else if (!Object.hasOwn(a, name)) this.emit({ path: formatPath(at), baseline: undefined, canary: b[name], kind: 'added' }, at);
      else this.values(a[name]!, b[name]!, at);
    }
  }

  /**
   * Equal elements are matched wherever they are (each canary element once: a multiset, stricter
   * than deepdiff, which without report_repetition takes [1, 2] and [1, 2, 2] as equal). The rest
   * are paired most alike first, so a changed element is reported by its changed fields, at the
   * baseline's index; what is left over is removed (baseline) or added (canary).
   */
  private arrays(a: Json[], b: Json[], place: readonly Segment[]): void {
    const pool = new Map<string, number[]>();
    for (let j = b.length - 1; j >= 0; j--) {
      const k = this.key(b[j]!);
      const list = pool.get(k);
      if (list) list.push(j);
      else pool.set(k, [j]);
    }
    const restA: number[] = [];
    for (let i = 0; i < a.length; i++) if (pool.get(this.key(a[i]!))?.pop() === undefined) restA.push(i);
    const restB = [...pool.values()].flat().sort((x, y) => x - y);
    const pairs = this.pair(a, b, restA, restB);
    const pairedA = new Set(pairs.map(([i]) => i));
    const pairedB = new Set(pairs.map(([, j]) => j));
    for (const [i, j] of pairs) this.values(a[i]!, b[j]!, [...place, i]);
    for (const i of restA.filter((i) => !pairedA.has(i))) {
      this.emit({ path: formatPath([...place, i]), baseline: a[i], canary: undefined, kind: 'removed' }, [...place, i]);
    }
    for (const j of restB.filter((j) => !pairedB.has(j))) {
      this.emit({ path: formatPath([...place, j]), baseline: undefined, canary: b[j], kind: 'added' }, [...place, j]);
    }
  }

  /** Greedy pairing by likeness, ties to the lower indices, so the result is deterministic. */
  private pair(a: Json[], b: Json[], restA: number[], restB: number[]): [number, number][] {
    if (restA.length * restB.length > PAIRING_LIMIT) return restA.slice(0, restB.length).map((i, n) => [i, restB[n]!]);
    const candidates = restA.flatMap((i) => restB.map((j) => ({ i, j, d: this.distance(a[i]!, b[j]!) })));
    candidates.sort((x, y) => x.d - y.d || x.i - y.i || x.j - y.j);
    const usedA = new Set<number>();
    const usedB = new Set<number>();
    const pairs: [number, number][] = [];
    for (const { i, j } of candidates) {
      if (usedA.has(i) || usedB.has(j)) continue;
      usedA.add(i);
      usedB.add(j);
      pairs.push([i, j]);
    }
    return pairs.sort((x, y) => x[0] - y[0]);
  }

  /** How unlike two unequal values are: 0–1 for the same type (the share that differs), 2 across types. */
  private distance(x: Json, y: Json): number {
    const t = typeOf(x);
    if (t !== typeOf(y)) return 2;
    if (t === 'number') return Math.abs((x as number) - (y as number)) / (Math.abs(x as number) + Math.abs(y as number));
    if (t === 'array') {
      const count = new Map<string, number>();
      for (const e of x as Json[]) count.set(this.key(e), (count.get(this.key(e)) ?? 0) + 1);
      for (const e of y as Json[]) count.set(this.key(e), (count.get(this.key(e)) ?? 0) - 1);
      let unmatched = 0;
      for (const n of count.values()) unmatched += Math.abs(n);
      return unmatched / ((x as Json[]).length + (y as Json[]).length);
    }
    if (t === 'object') {
      const ox = x as Record<string, Json>;
      const oy = y as Record<string, Json>;
      const names = new Set([...Object.keys(ox), ...Object.keys(oy)]);
      let differing = 0;
      for (const name of names) {
        if (!Object.hasOwn(ox, name) || !Object.hasOwn(oy, name) || this.key(ox[name]!) !== this.key(oy[name]!)) differing += 1;
      }
      return differing / names.size;
    }
    return 1;
  }
}

// ignoreBOM keeps a byte order mark in the text, so a body that gains one is a difference.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decode(body: Uint8Array): string | undefined {
  try {
    return utf8.decode(body);
  } catch {
    return undefined;
  }
}

/** Compares the bodies, emitting differences; returns how they were compared. */
function compareBodies(a: Uint8Array, b: Uint8Array, tolerance: Tolerance, emit: Emit): Comparison['kind'] {
  const ta = decode(a);
  const tb = decode(b);
  if (ta === undefined || tb === undefined) {
    const n = Math.min(a.length, b.length);
    let at = 0;
    while (at < n && a[at] === b[at]) at++;
    if (at < n || a.length !== b.length) {
      const side = (body: Uint8Array) => ({ length: body.length, byte: body[at] ?? null });
      // Offsets shift from one answer to the next: for ignore and fields a bytes difference is at "$".
      emit({ path: `$[byte ${at}]`, baseline: side(a), canary: side(b), kind: 'bytes' }, []);
    }
    return 'bytes';
  }
  const ja = parseJson(ta);
  const jb = parseJson(tb);
  if (ja !== undefined && jb !== undefined) {
    new JsonWalker(tolerance, emit).values(ja as Json, jb as Json, []);
    return 'json';
  }
  if (ta !== tb) emit({ path: '$', baseline: ta, canary: tb, kind: 'changed' }, []);
  return 'text';
}

function statusDifference(a: Answer, b: Answer): Omit<Difference, 'field'> | undefined {
  return a.status === b.status ? undefined : { path: '$status', baseline: a.status, canary: b.status, kind: 'status' };
}

/**
 * Compares the canary's answer with the baseline's. Statuses that differ are a difference, and the
 * bodies are compared whatever the status (error answers must match too): as JSON when both are
 * UTF-8 JSON, as text when both are UTF-8, else byte for byte. Throws on a malformed ignore path
 * or tolerance.
 */
export function compareAnswers(baseline: Answer, canary: Answer, opts: CompareOptions = {}): Comparison {
  const tolerance = checkTolerance(opts.tolerance ?? DEFAULT_TOLERANCE);
  const patterns = (opts.ignore ?? []).map(parseIgnorePath);
  const differences: Difference[] = [];
  const fields = new Set<string>();
  let ignored = 0;
  const emit: Emit = (difference, place) => {
    if (patterns.some((p) => covers(p, place))) {
      ignored += 1;
      return;
    }
    const field = place === null ? '$status' : formatPath(place, true);
    fields.add(field);
    if (differences.length < MAX_LISTED) differences.push({ ...difference, field });
  };
  const status = statusDifference(baseline, canary);
  if (status) emit(status, null);
  const kind = compareBodies(baseline.body, canary.body, tolerance, emit);
  return { match: fields.size === 0, kind, differences, ignored, fields: [...fields] };
}
