import { InputError } from '../common/input-error.js';
import { parseJson } from '../common/json-shape.js';

/**
 * Compares two HTTP answers to the same request, the baseline's and the canary's, as the seed's
 * scripts/shadow_replay_test.py does with DeepDiff(ignore_order=True, significant_digits=5), with
 * its gaps closed: every status is compared (not only 200), a non-UTF-8 body is compared byte for
 * byte instead of raising, and documented (ignored) and noisy paths do not count.
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
}

export interface CompareOptions {
  /** Paths whose differences are accepted (documented differences), e.g. "$.meta.time", "$.predictions[*].id", "$..timestamp". */
  readonly ignore?: readonly string[];
  /** Paths found noisy (they differ between two answers of the baseline itself): not counted against the canary. */
  readonly noise?: ReadonlySet<string>;
  /** Digits after the decimal point for float equality, as deepdiff's significant_digits (default 5). */
  readonly digits?: number;
}

export interface Comparison {
  readonly match: boolean;
  readonly kind: 'json' | 'text' | 'bytes';
  /** The counted differences first found, at most MAX_LISTED. */
  readonly differences: readonly Difference[];
  /** Differences at ignored or noisy paths. */
  readonly ignored: number;
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

export const DEFAULT_DIGITS = 5;
export const MAX_LISTED = 50;
/** Unmatched array elements are paired by likeness up to this many candidate pairs, by position past it. */
export const PAIRING_LIMIT = 10_000;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** Where a difference is, for ignore and noise: object keys and array indices; null for the status. */
type Segment = string | number;
type Place = readonly Segment[] | null;
type Emit = (difference: Difference, place: Place) => void;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const IDENT_AT = /[A-Za-z_][A-Za-z0-9_]*/y;

/** `$.a.b[2]`, with `['…']` for a key that is not an identifier. */
export function formatPath(place: readonly Segment[]): string {
  let path = '$';
  for (const seg of place) {
    if (typeof seg === 'number') path += `[${seg}]`;
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

/** Whether `place` or a place above it is in the noise set. */
function noisy(noise: ReadonlySet<string>, place: Place): boolean {
  if (place === null) return noise.has('$status');
  for (let k = 0; k <= place.length; k++) if (noise.has(formatPath(place.slice(0, k)))) return true;
  return false;
}

/**
 * A number as deepdiff's number_to_string(x, significant_digits=d) sees it with the default
 * number_format_notation "f": Python's round(x, d) then '{:.{d}f}', -0 as 0. Both are correctly
 * rounded on the exact binary value, ties to even; JavaScript's toFixed is too but breaks an
 * exact tie away from zero (0.015625 → 0.01563, Python 0.01562), so ties are put right here.
 * From 1e21 up toFixed gives the shortest form ("1e+21", Python every digit): a different
 * string, but equal exactly when Python's are, which is all a key needs.
 */
export function roundNumber(x: number, digits: number): string {
  let s = x.toFixed(digits);
  // An exact tie needs the value to end at digit d+1, i.e. x·2^(d+1) to be whole; toFixed is exact there.
  if (Math.abs(x) < 1e21 && Number.isInteger(x * 2 ** (digits + 1)) && x.toFixed(digits + 1).endsWith('5')) {
    const last = Number(s[s.length - 1]);
    // toFixed took the larger magnitude; an odd last digit means the even one is one below (no borrow).
    if (last % 2 === 1) s = s.slice(0, -1) + String(last - 1);
  }
  return Number(s) === 0 ? s.replace('-', '') : s;
}

function checkDigits(digits: number): number {
  if (!Number.isInteger(digits) || digits < 0 || digits > 99) throw new RangeError(`digits must be a whole number from 0 to 99, not ${digits}`);
  return digits;
}

type JsonType = 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object';
const typeOf = (v: Json): JsonType => (v === null ? 'null' : Array.isArray(v) ? 'array' : (typeof v as JsonType));

/** Walks two parsed JSON bodies; arrays are compared as multisets, numbers rounded to `digits`. */
class JsonWalker {
  private readonly keys = new WeakMap<object, string>();

  constructor(
    private readonly digits: number,
    private readonly emit: Emit,
  ) {}

  /** A canonical key: equal keys ⇔ equal values under this comparison (sorted keys, sorted elements). */
  key(v: Json): string {
    if (v === null || typeof v === 'boolean') return String(v);
    if (typeof v === 'number') return `n${roundNumber(v, this.digits)}`;
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
    if (this.key(a) === this.key(b)) return;
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
function compareBodies(a: Uint8Array, b: Uint8Array, digits: number, emit: Emit): Comparison['kind'] {
  const ta = decode(a);
  const tb = decode(b);
  if (ta === undefined || tb === undefined) {
    const n = Math.min(a.length, b.length);
    let at = 0;
    while (at < n && a[at] === b[at]) at++;
    if (at < n || a.length !== b.length) {
      const side = (body: Uint8Array) => ({ length: body.length, byte: body[at] ?? null });
      // Offsets shift from one answer to the next: for ignore and noise a bytes difference is at "$".
      emit({ path: `$[byte ${at}]`, baseline: side(a), canary: side(b), kind: 'bytes' }, []);
    }
    return 'bytes';
  }
  const ja = parseJson(ta);
  const jb = parseJson(tb);
  if (ja !== undefined && jb !== undefined) {
    new JsonWalker(digits, emit).values(ja as Json, jb as Json, []);
    return 'json';
  }
  if (ta !== tb) emit({ path: '$', baseline: ta, canary: tb, kind: 'changed' }, []);
  return 'text';
}

function statusDifference(a: Answer, b: Answer): Difference | undefined {
  return a.status === b.status ? undefined : { path: '$status', baseline: a.status, canary: b.status, kind: 'status' };
}

/**
 * Compares the canary's answer with the baseline's. Statuses that differ are a difference, and the
 * bodies are compared whatever the status (error answers must match too): as JSON when both are
 * UTF-8 JSON, as text when both are UTF-8, else byte for byte. Throws on a malformed ignore path
 * or digits.
 */
export function compareAnswers(baseline: Answer, canary: Answer, opts: CompareOptions = {}): Comparison {
  const digits = checkDigits(opts.digits ?? DEFAULT_DIGITS);
  const patterns = (opts.ignore ?? []).map(parseIgnorePath);
  const noise = opts.noise ?? new Set<string>();
  const differences: Difference[] = [];
  let counted = 0;
  let ignored = 0;
  const emit: Emit = (difference, place) => {
    if (noisy(noise, place) || patterns.some((p) => covers(p, place))) {
      ignored += 1;
      return;
    }
    counted += 1;
    if (differences.length < MAX_LISTED) differences.push(difference);
  };
  const status = statusDifference(baseline, canary);
  if (status) emit(status, null);
  const kind = compareBodies(baseline.body, canary.body, digits, emit);
  return { match: counted === 0, kind, differences, ignored };
}

/**
 * Paths that differ between two answers of the same backend to the same request (Twitter Diffy's
 * noise cancelling), as compareAnswers reports them: `$status`, JSON paths, and `$` for a text or
 * bytes body. Given as `noise`, a difference at such a path or under it is not counted.
 */
export function noisyPaths(first: Answer, second: Answer, opts: Pick<CompareOptions, 'digits'> = {}): Set<string> {
  const paths = new Set<string>();
  const emit: Emit = (_difference, place) => {
    paths.add(place === null ? '$status' : formatPath(place));
  };
  const status = statusDifference(first, second);
  if (status) emit(status, null);
  compareBodies(first.body, second.body, checkDigits(opts.digits ?? DEFAULT_DIGITS), emit);
  return paths;
}
