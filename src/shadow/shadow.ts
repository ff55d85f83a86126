import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import { compareAnswers, type Answer, type Comparison, type Tolerance } from '../compare/answers.js';
import { NoiseTally, type NoiseReport, type Observation } from '../compare/noise.js';
import { endToEnd } from '../common/headers.js';
import { InputError } from '../common/input-error.js';
import { Throttled } from '../common/log.js';
import { DURATION_BUCKETS } from '../observe/metrics.js';
import type { Outcome } from '../observe/outcomes.js';
import { createBackend, dispatch, type AnswerSink, type Backend, type Call } from '../proxy/forward.js';
import type { ProxyConfig } from '../proxy/options.js';
import { ShadowLog } from './log.js';
import type { ShadowCopy, Shadowing } from '../proxy/handler.js';
import { recordHeaders } from '../record/line.js';
import { recordable, sampled } from '../record/policy.js';
import { Capture, MemoryBudget } from '../record/recording.js';

/**
 * The live shadow (Diffy's "dark traffic"): of the requests the split sends to the baseline, a
 * sampled share is sent again to the shadow upstream once the client has its answer, and the
 * two answers are compared as the replay compares them. The client's exchange never waits for
 * the copy: the handler only hands it the bytes going by, the copy is sent from the exchange's
 * outcome, over the shadow's own connection pool.
 */

export const SHADOW_HEADER = 'X-Drum-Splitter-Shadow';

export interface ShadowSettings {
  /** The upstream copies go to; undefined with a single upstream (no shadow possible). */
  readonly upstream: string | undefined;
  /** Share of the baseline's requests on the shadow paths copied at start, 0..1; 0 = off. */
  readonly sampleRate: number;
  /** Routes copied (exact, a trailing slash optional): by default the record paths, DRUM's side-effect-free prediction routes. */
  readonly paths: readonly string[];
  /** Copies in flight at once, from the client's request to the shadow's answer; past it a copy is dropped. */
  readonly maxInflight: number;
  /** Body bytes kept per side (request, each answer); a copy with a larger one is dropped. */
  readonly maxBody: number;
  /** A copy's whole limit, from sending it to the last byte of its answer; past it the copy is an error (timeout). */
  readonly timeoutMs: number;
  /** Where mismatches are written (JSONL, 0600); undefined = counted only. */
  readonly log: string | undefined;
  /** JSON paths whose differences do not count (documented differences), as replay's --ignore. */
  readonly ignore: readonly string[];
  /** Share of copies also sent to the baseline a second time, 0..1: fields that differ as often there are noise (replay's --noise-sample). */
  readonly noiseSample: number;
  /** When two numbers are equal (replay's --relative, --absolute). */
  readonly tolerance: Tolerance;
}

export type ShadowResult = 'match' | 'mismatch' | 'error' | 'dropped';
const RESULTS: readonly ShadowResult[] = ['match', 'mismatch', 'error', 'dropped'];

/**
 * Why a copy was dropped: too many in flight, a body over --shadow-max-body, the primary's
 * exchange did not end whole, or the shadow could not be connected to a moment ago.
 */
export type DropReason = 'inflight' | 'body' | 'incomplete' | 'down';
const DROP_REASONS: readonly DropReason[] = ['inflight', 'body', 'incomplete', 'down'];

/**
 * Why a copy got no answer: --shadow-timeout passed, the shadow could not be reached (refused,
 * not resolved), or the call failed otherwise (reset, closed, a broken answer).
 */
export type ErrorReason = 'timeout' | 'unreachable' | 'failed';
const ERROR_REASONS: readonly ErrorReason[] = ['timeout', 'unreachable', 'failed'];

/** After a copy cannot connect, copies are dropped for this long: a dead shadow costs no connection attempt per request. */
export const DOWN_PAUSE_MS = 1000;
/** The errors that say the shadow is not there, rather than slow or failing one request. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

export interface ShadowMetrics {
  readonly results: Counter<'result'>;
  readonly dropped: Counter<'reason'>;
  readonly errors: Counter<'reason'>;
  /** Both sides of every pair that was compared, by upstream: their latencies side by side. */
  readonly duration: Histogram<'server_type'>;
}

export function createShadowMetrics(registry: Registry): ShadowMetrics {
  const metrics: ShadowMetrics = {
    results: new Counter({
      name: 'drum_shadow_requests_total',
      help: 'Shadow copies by result: match, mismatch (answers differ), error (the shadow gave no answer; see drum_shadow_errors_total), dropped (not sent or not compared; see drum_shadow_dropped_total).',
      labelNames: ['result'],
      registers: [registry],
    }),
    dropped: new Counter({
      name: 'drum_shadow_dropped_total',
      help: 'Shadow copies dropped, by reason: inflight (--shadow-max-inflight reached), body (a body over --shadow-max-body), incomplete (the primary exchange did not end whole, or the process stopped first), down (the shadow refused a connection in the last second).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    errors: new Counter({
      name: 'drum_shadow_errors_total',
      help: 'Shadow copies that got no answer (result="error"), by reason: timeout (--shadow-timeout passed), unreachable (the shadow refused a connection or could not be reached), failed (reset, closed, or a broken answer).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'drum_shadow_duration_seconds',
      help: 'For each compared shadow pair, each side from sending upstream to the end of its answer, by upstream.',
      labelNames: ['server_type'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
  };
  for (const result of RESULTS) metrics.results.inc({ result }, 0);
  for (const reason of DROP_REASONS) metrics.dropped.inc({ reason }, 0);
  for (const reason of ERROR_REASONS) metrics.errors.inc({ reason }, 0);
  return metrics;
}

/** One side of a compared pair, as the shadow log writes it. */
export interface ShadowSide {
  readonly upstream: string;
  readonly status: number;
  readonly latency_ms: number;
  readonly body_hex: string;
}

/**
 * A mismatch in the shadow log: the request as the recording writes it (so `drum-splitter
 * replay` takes the log as input), then both answers and their differences.
 */
export interface ShadowLine {
  readonly timestamp: number;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body_hex: string;
  readonly content_type: string;
  readonly baseline: ShadowSide;
  readonly shadow: ShadowSide;
  readonly kind: Comparison['kind'];
  readonly differences: Comparison['differences'];
}

/** A compared copy as the noise bookkeeping has it: where it differed, and which of those fields were found noise. */
export interface NoiseJudged {
  readonly observation: Observation;
  readonly discounted: readonly string[];
}

/** A compared copy's two sides: each status and latency (the rollout's shadow phase judges these). */
export interface ShadowPair {
  readonly baselineStatus: number;
  readonly shadowStatus: number;
  readonly baselineSeconds: number;
  readonly shadowSeconds: number;
}

/**
 * Where finished copies are told: counted, and a mismatch's line written (in a --workers worker:
 * sent to the primary, with the compared copy's noise bookkeeping, which the primary adds up,
 * and its pair).
 */
export type ShadowReport = (result: ShadowResult, line: ShadowLine | undefined, noise?: NoiseJudged, pair?: ShadowPair) => void;

/** A finished copy as the process hears it (every worker's too): the rollout's evidence. */
export interface ShadowFinished {
  readonly result: ShadowResult;
  readonly line: ShadowLine | undefined;
  /** Compared copies only. */
  readonly pair: ShadowPair | undefined;
}

/** Bytes of each body kept in a mismatch sample (the rollout's decision, GET /shadow): a decision stays small. */
export const SAMPLE_BODY = 2048;
/** Differences kept in a sample. */
const SAMPLE_DIFFERENCES = 10;

/** A body as a person reads it: its text when it is UTF-8, else hex; cut at SAMPLE_BODY bytes. */
export interface SampleBody {
  readonly text?: string;
  readonly hex?: string;
  readonly bytes: number;
  readonly truncated: boolean;
}

/** A differing pair, bounded: the request and both answers, and where they differ. */
export interface MismatchSample {
  readonly at: string;
  readonly request: { readonly method: string; readonly path: string; readonly contentType: string; readonly body: SampleBody };
  readonly baseline: { readonly upstream: string; readonly status: number; readonly body: SampleBody };
  readonly canary: { readonly upstream: string; readonly status: number; readonly body: SampleBody };
  readonly kind: Comparison['kind'];
  readonly differences: Comparison['differences'];
}

function sampleBody(hex: string): SampleBody {
  const bytes = Buffer.from(hex, 'hex');
  const kept = bytes.subarray(0, SAMPLE_BODY);
  const truncated = bytes.length > SAMPLE_BODY;
  try {
    // fatal: a body that is not text (or cut inside a character) is shown as hex.
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(kept), bytes: bytes.length, truncated };
  } catch {
    return { hex: kept.toString('hex'), bytes: bytes.length, truncated };
  }
}

/** A shadow log line as a bounded sample. */
export function mismatchSample(line: ShadowLine): MismatchSample {
  return {
    at: new Date(line.timestamp * 1000).toISOString(),
    request: { method: line.method, path: line.path, contentType: line.content_type, body: sampleBody(line.body_hex) },
    baseline: { upstream: line.baseline.upstream, status: line.baseline.status, body: sampleBody(line.baseline.body_hex) },
    canary: { upstream: line.shadow.upstream, status: line.shadow.status, body: sampleBody(line.shadow.body_hex) },
    kind: line.kind,
    differences: line.differences.slice(0, SAMPLE_DIFFERENCES),
  };
}

export interface ShadowView {
  readonly enabled: boolean;
  readonly sampleRate: number;
  readonly upstream: string | null;
  readonly paths: readonly string[];
  readonly maxInflight: number;
  readonly maxBody: number;
  readonly timeoutMs: number;
  readonly log: string | null;
  readonly ignore: readonly string[];
  readonly noiseSample: number;
  readonly tolerance: Tolerance;
  /** With a noise sample: each field that differed between two answers of the baseline, and whether its differences counted. */
  readonly noise: NoiseReport | null;
  /** Copies in flight in this process now. */
  readonly inflight: number;
  /** Finished copies since start, by result (every process's). */
  readonly counts: Readonly<Record<ShadowResult, number>>;
  /** match / (match + mismatch), or null before any comparison. */
  readonly matchRate: number | null;
  /** The last mismatch (every process's), bounded; null before any. */
  readonly lastMismatch: MismatchSample | null;
}

/** The body's framing is the shadow's own: the copy is sent whole, with its length. */
const FRAMING = new Set(['content-length', 'transfer-encoding']);

/** One copy on its way: filled by the handler while the primary exchange runs, then sent and compared. */
class Copy implements ShadowCopy {
  readonly body: Capture;
  readonly answer: Capture;
  readonly at = Date.now() / 1000;
  // What is kept of the request itself (not the request, which a slow shadow would hold on to).
  readonly method: string;
  readonly rawHeaders: readonly string[];
  readonly contentType: string;
  /** It came with a body, even an empty one (a GET has none). */
  readonly framed: boolean;
  headers: readonly string[] = [];
  sentAt = 0;
  status = 0;

  /** The path without its query: what noise is counted by. */
  get route(): string {
    return this.path.replace(/\?.*$/s, '');
  }

  constructor(
    req: Pick<IncomingMessage, 'method' | 'rawHeaders' | 'headers'>,
    readonly path: string,
    maxBody: number,
    budget: MemoryBudget,
  ) {
    this.method = req.method!;
    this.rawHeaders = req.rawHeaders;
    this.contentType = req.headers['content-type'] ?? '';
    this.framed = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    this.body = new Capture(maxBody, budget);
    this.answer = new Capture(maxBody, budget);
  }

  sending(headers: readonly string[]): void {
    this.headers = headers;
    this.sentAt = performance.now();
  }

  head(status: number): void {
    this.status = status;
  }

  release(): void {
    this.body.release();
    this.answer.release();
  }
}

/** The shadow's answer as it arrives: its status, and its body up to the limit (past it, the call is cut). */
function collect(limit: number, call: { abort(err: Error): void }, done: (answer: Answer | undefined, err: Error | undefined) => void): AnswerSink {
  let status = 0;
  const chunks: Buffer[] = [];
  let size = 0;
  return {
    head(s) {
      status = s;
    },
    data(chunk) {
      size += chunk.length;
      if (size > limit) {
        call.abort(new BodyOverLimit());
        return false;
      }
      chunks.push(chunk);
      return true;
    },
    end() {
      done({ status, body: Buffer.concat(chunks, size) }, undefined);
    },
    error: (err) => done(undefined, err),
  };
}

class BodyOverLimit extends Error {}

class DeadlinePassed extends Error {
  constructor(ms: number) {
    super(`no whole answer within --shadow-timeout (${ms} ms)`);
  }
}

export interface ShadowDeps {
  /** The baseline's name: only its requests are copied. */
  readonly baseline: string;
  /** The shadow upstream with a pool of its own, so copies never take the primary's connections. */
  readonly target: Backend | undefined;
  /** The baseline with a pool of its own, for the noise sample's second calls; undefined without one. */
  readonly again?: Backend | undefined;
  readonly metrics: ShadowMetrics;
  /** Where failing copies are said, once a minute. */
  readonly log: Logger;
  /** Lower-case header names written as "[REDACTED]" in the log's request. */
  readonly redact: readonly string[];
  readonly report: ShadowReport;
  readonly random?: () => number;
  /** Milliseconds on a monotonic clock (default performance.now), for the pause after an unreachable shadow. */
  readonly now?: () => number;
  /** Hears every runtime switch (with --workers, the primary tells the workers). */
  readonly onChange?: () => void;
}

/**
 * The live shadow of one process: which exchanges are copied, sending and comparing them, and
 * the runtime switch. Each process's copies are its own (and so is the in-flight limit); their
 * results go to `report`.
 */
export class Shadow implements Shadowing {
  /** Changed only by change() (and close()), which checks the change and tells onChange. */
  #enabled: boolean;
  #sampleRate: number;
  readonly #settings: ShadowSettings;
  readonly #deps: ShadowDeps;
  readonly #wanted: (path: string) => boolean;
  readonly #redact: ReadonlySet<string>;
  /** Only a count: the in-flight limit is what bounds the bodies held. */
  readonly #budget = new MemoryBudget(Infinity);
  readonly #pending = new Map<number, Copy>();
  #inflight = 0;
  /** Until then (on #now's clock) the shadow is taken for unreachable and copies are dropped. */
  #downUntil = -Infinity;
  readonly #now: () => number;
  readonly #counts: Record<ShadowResult, number> = { match: 0, mismatch: 0, error: 0, dropped: 0 };
  readonly #sending = new Set<Promise<void>>();
  #closing = false;
  readonly #errors: Throttled;
  /** This process's copies judge their noise by these counts; the primary's (GET /shadow) hold every process's. */
  readonly #noise = new NoiseTally();
  /** Kept as the line; made a sample only when viewed. */
  #lastMismatch: ShadowLine | undefined;

  constructor(settings: ShadowSettings, deps: ShadowDeps) {
    this.#settings = settings;
    this.#deps = deps;
    this.#enabled = settings.sampleRate > 0 && settings.upstream !== undefined;
    this.#sampleRate = settings.sampleRate;
    this.#wanted = recordable(settings.paths);
    this.#redact = new Set(deps.redact);
    this.#now = deps.now ?? (() => performance.now());
    this.#errors = new Throttled(deps.log, 'warn', this.#now);
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  get sampleRate(): number {
    return this.#sampleRate;
  }

  copy(id: number, req: IncomingMessage, path: string, uri: string, upstream: string, bodyLength: number): ShadowCopy | undefined {
    if (!this.#enabled || upstream !== this.#deps.baseline || !this.#wanted(uri) || !sampled(this.#sampleRate, this.#deps.random)) return undefined;
    if (this.#inflight >= this.#settings.maxInflight) return this.#drop('inflight');
    if (this.#now() < this.#downUntil) return this.#drop('down');
    if (bodyLength > this.#settings.maxBody) return this.#drop('body');
    const copy = new Copy(req, path, this.#settings.maxBody, this.#budget);
    this.#inflight++;
    this.#pending.set(id, copy);
    return copy;
  }

  /** An exchange ended (every outcome comes here): its copy, if it has one, is sent if the primary's answer came whole. */
  ended(outcome: Outcome): void {
    const copy = this.#pending.get(outcome.id);
    if (copy === undefined) return;
    this.#pending.delete(outcome.id);
    if (outcome.origin !== 'upstream' || !outcome.requestComplete || copy.status === 0) return this.#done(copy, 'dropped', 'incomplete');
    if (copy.body.truncated || copy.answer.truncated) return this.#done(copy, 'dropped', 'body');
    // Taken before the shadow was found unreachable: not sent either.
    if (this.#now() < this.#downUntil) return this.#done(copy, 'dropped', 'down');
    const primaryMs = performance.now() - copy.sentAt;
    const sent = this.#send(copy, primaryMs);
    this.#sending.add(sent);
    void sent.finally(() => this.#sending.delete(sent));
  }

  async #send(copy: Copy, primaryMs: number): Promise<void> {
    const { target, again, random } = this.#deps;
    const body = copy.body.bytes();
    const headers = endToEnd(copy.headers as string[], FRAMING);
    // A request that had a body (even an empty one) has its length; one without (a GET) has none.
    if (copy.framed) headers.push('Content-Length', String(body.length));
    headers.push(SHADOW_HEADER, '1');
    // The baseline's second answer comes at the same time as the shadow's: whatever moves with time moves in both.
    const second = again !== undefined && sampled(this.#settings.noiseSample, random) ? this.#call(again, copy.method, copy.path, headers, body) : undefined;
    const { answer, err, ms } = await this.#call(target!, copy.method, copy.path, headers, body);
    const noise = (await second)?.answer;
    if (answer !== undefined) this.#compare(copy, answer, primaryMs, ms, noise);
    else if (err instanceof BodyOverLimit) this.#done(copy, 'dropped', 'body');
    else if (this.#closing) this.#done(copy, 'dropped', 'incomplete');
    else this.#failed(copy, err!);
  }

  /** One call of a copy: the answer, or why there is none; and how long it took. */
  #call(target: Backend, method: string, path: string, headers: string[], body: Buffer): Promise<{ answer?: Answer; err?: Error; ms: number }> {
    const { maxBody, timeoutMs } = this.#settings;
    const start = performance.now();
    return new Promise((resolve) => {
      let call!: Call;
      let settled = false;
      const settle = (answer: Answer | undefined, err: Error | undefined): void => {
        if (settled) return; // the deadline came first, and the call's abort reports too
        settled = true;
        clearTimeout(deadline);
        resolve(answer === undefined ? { err: err!, ms: performance.now() - start } : { answer, ms: performance.now() - start });
      };
      // One limit for the whole copy. undici's are per wait (for the head, between two chunks),
      // which an answer trickling in a byte a second never reaches: they are off (0). The copy is
      // settled here, not when the abort reaches it (a call still connecting hears it only then).
      const deadline = setTimeout(() => {
        const err = new DeadlinePassed(timeoutMs);
        call.abort(err);
        settle(undefined, err);
      }, timeoutMs);
      dispatch(target, { method, path, headers, body: body.length === 0 ? null : body, timeoutMs: 0 }, (c) => {
        call = c;
        return collect(maxBody, c, settle);
      });
    });
  }

  /** A copy that got no answer: an error, by reason, said once a minute; an unreachable shadow is left alone a moment. */
  #failed(copy: Copy, err: Error): void {
    const code = (err as NodeJS.ErrnoException).code!;
    const reason: ErrorReason = err instanceof DeadlinePassed ? 'timeout' : UNREACHABLE.has(code) ? 'unreachable' : 'failed';
    if (reason === 'unreachable') this.#downUntil = this.#now() + DOWN_PAUSE_MS;
    this.#errors.write({ shadow: this.#deps.target!.name, reason, err: err.message }, 'shadow copies get no answer (drum_shadow_errors_total)');
    this.#done(copy, 'error', reason);
  }

  #compare(copy: Copy, answer: Answer, primaryMs: number, shadowMs: number, again: Answer | undefined): void {
    const { metrics, baseline, target } = this.#deps;
    const primary: Answer = { status: copy.status, body: copy.answer.bytes() };
    const { ignore, tolerance } = this.#settings;
    const raw = compareAnswers(primary, answer, { ignore, tolerance });
    // Where the baseline differed from itself. The copy is counted, then judged by the counts of every copy so far.
    const noise = again === undefined ? undefined : compareAnswers(primary, again, { ignore, tolerance }).fields;
    const observation: Observation = noise === undefined ? { route: copy.route, fields: raw.fields } : { route: copy.route, fields: raw.fields, noise };
    this.#noise.add(observation);
    const { comparison, discounted } = this.#noise.judge(copy.route, raw);
    this.#noise.discount(observation, discounted);
    const judged: NoiseJudged = { observation, discounted };
    metrics.duration.observe({ server_type: baseline }, primaryMs / 1000);
    metrics.duration.observe({ server_type: target!.name }, shadowMs / 1000);
    const pair: ShadowPair = { baselineStatus: primary.status, shadowStatus: answer.status, baselineSeconds: primaryMs / 1000, shadowSeconds: shadowMs / 1000 };
    if (comparison.match) return this.#done(copy, 'match', undefined, undefined, judged, pair);
    const ms = (x: number): number => Math.round(x * 1000) / 1000;
    const line: ShadowLine = {
      timestamp: copy.at,
      method: copy.method,
      path: copy.path,
      headers: recordHeaders(endToEnd(copy.rawHeaders), this.#redact),
      body_hex: Buffer.from(copy.body.bytes()).toString('hex'),
      content_type: copy.contentType,
      baseline: { upstream: baseline, status: primary.status, latency_ms: ms(primaryMs), body_hex: Buffer.from(primary.body).toString('hex') },
      shadow: { upstream: target!.name, status: answer.status, latency_ms: ms(shadowMs), body_hex: Buffer.from(answer.body).toString('hex') },
      kind: comparison.kind,
      differences: comparison.differences,
    };
    this.#done(copy, 'mismatch', undefined, line, judged, pair);
  }

  /** A copy not taken. */
  #drop(reason: DropReason): undefined {
    this.#result('dropped', reason, undefined);
    return undefined;
  }

  /** A copy is finished: its bodies freed, its result counted and reported. */
  #done(copy: Copy, result: ShadowResult, reason?: DropReason | ErrorReason, line?: ShadowLine, noise?: NoiseJudged, pair?: ShadowPair): void {
    copy.release();
    this.#inflight--;
    this.#result(result, reason, line, noise, pair);
  }

  #result(result: ShadowResult, reason: DropReason | ErrorReason | undefined, line: ShadowLine | undefined, noise?: NoiseJudged, pair?: ShadowPair): void {
    const { metrics, report } = this.#deps;
    metrics.results.inc({ result });
    if (reason !== undefined) (result === 'error' ? metrics.errors : metrics.dropped).inc({ reason });
    report(result, line, noise, pair);
  }

  /** A finished copy, this process's or a worker's: counted for the view; a mismatch's line kept as the last. */
  tally(result: ShadowResult, line?: ShadowLine): void {
    this.#counts[result]++;
    if (line !== undefined) this.#lastMismatch = line;
  }

  /** A worker's compared copy, for the noise counts GET /shadow shows (the primary copies nothing itself). */
  observe(judged: NoiseJudged): void {
    this.#noise.add(judged.observation);
    this.#noise.discount(judged.observation, judged.discounted);
  }

  /** Switches the shadow and/or sets its rate; on needs a shadow upstream and a rate above 0. */
  change(patch: { enabled?: boolean | undefined; sampleRate?: number | undefined }): void {
    if (this.#settings.upstream === undefined && patch.enabled === true) {
      throw new InputError('there is no upstream to shadow to: start drum-splitter with a second upstream', 'enabled');
    }
    const enabled = patch.enabled ?? this.#enabled;
    const rate = patch.sampleRate ?? this.#sampleRate;
    if (enabled && !(rate > 0)) throw new InputError('the shadow needs a sample rate above 0 to be on, e.g. {"enabled": true, "sampleRate": 0.1}; to stop it, send {"enabled": false}', 'sampleRate');
    this.#enabled = enabled;
    this.#sampleRate = rate;
    this.#deps.onChange?.();
  }

  view(): ShadowView {
    const s = this.#settings;
    const { match, mismatch } = this.#counts;
    return {
      enabled: this.#enabled,
      sampleRate: this.#sampleRate,
      upstream: s.upstream ?? null,
      paths: s.paths,
      maxInflight: s.maxInflight,
      maxBody: s.maxBody,
      timeoutMs: s.timeoutMs,
      log: s.log ?? null,
      ignore: s.ignore,
      noiseSample: s.noiseSample,
      tolerance: s.tolerance,
      noise: s.noiseSample > 0 ? this.#noise.report() : null,
      inflight: this.#inflight,
      counts: { ...this.#counts },
      matchRate: match + mismatch === 0 ? null : match / (match + mismatch),
      lastMismatch: this.#lastMismatch === undefined ? null : mismatchSample(this.#lastMismatch),
    };
  }

  /**
   * Stops copying and cuts the copies still out: shutdown does not wait for a slow shadow. Those
   * count as dropped ("incomplete"). Resolves once every copy is accounted for.
   */
  async close(): Promise<void> {
    this.#enabled = false;
    this.#closing = true;
    await Promise.all([this.#deps.target?.pool.destroy(), this.#deps.again?.pool.destroy()]);
    await Promise.all(this.#sending);
  }
}

/** A process's shadow, ready: `finished` counts a result and writes a mismatch (what a worker's reports come to). */
export interface RunningShadow {
  readonly shadow: Shadow;
  readonly finished: ShadowReport;
  /** Stops copying, cuts the copies still out, closes the log. */
  close(): Promise<void>;
}

/**
 * The shadow as the config sets it up. `report`, when given (a --workers worker), takes the
 * results instead of this process counting them and writing the log.
 */
export function startShadow(
  config: Pick<ProxyConfig, 'upstreams' | 'upstreamKeepAliveMs' | 'record'> & { readonly shadow: ShadowSettings },
  deps: { registry: Registry; log: Logger; report?: ShadowReport; onChange?: () => void; onFinished?: (finished: ShadowFinished) => void },
): RunningShadow {
  const settings = config.shadow;
  const { log } = deps;
  const upstream = config.upstreams.find((u) => u.name === settings.upstream);
  const target = upstream === undefined ? undefined : createBackend(upstream, config.upstreamKeepAliveMs);
  const again = target === undefined || settings.noiseSample === 0 ? undefined : createBackend(config.upstreams[0]!, config.upstreamKeepAliveMs);
  const file = settings.log === undefined || deps.report !== undefined ? undefined : new ShadowLog(settings.log, log);
  const finished: ShadowReport = (result, line, _noise, pair) => {
    shadow.tally(result, line);
    if (line !== undefined) file?.write(line);
    deps.onFinished?.({ result, line, pair });
  };
  const shadow: Shadow = new Shadow(settings, {
    baseline: config.upstreams[0]!.name,
    target,
    again,
    metrics: createShadowMetrics(deps.registry),
    log,
    redact: config.record.redact,
    report: deps.report ?? finished,
    ...(deps.onChange === undefined ? {} : { onChange: deps.onChange }),
  });
  const close = async (): Promise<void> => {
    await shadow.close();
    await file?.close();
  };
  let closing: Promise<void> | undefined;
  return { shadow, finished, close: () => (closing ??= close()) };
}
