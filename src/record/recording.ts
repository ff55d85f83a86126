import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { recordable, sampled, type RecordSettings } from './policy.js';
import { endToEnd } from '../common/headers.js';
import { InputError, checkWritableDir } from '../common/input-error.js';
import { RecordWriter, type DropReason, type RecorderMetrics } from './writer.js';
import { recordHeaders, type RecordLine } from './line.js';

/** Where finished records go: the file's writer, or (in a --workers worker) the primary's. */
export interface RecordSink {
  /** Queues the line; false when it was dropped (and counted). Never throws. */
  write(line: RecordLine): boolean;
  close(): Promise<void>;
}


/** Bytes of bodies held for records in flight, all of them together; nothing is taken past `limit`. */
export class MemoryBudget {
  held = 0;

  constructor(readonly limit: number) {}

  take(n: number): boolean {
    if (this.held + n > this.limit) return false;
    this.held += n;
    return true;
  }

  give(n: number): void {
    this.held -= n;
  }
}

/**
 * What is captured of one body: the first `limit` bytes, and whether there was more. The bytes
 * are taken from `budget`; a capture the budget cannot hold lets go of what it has and says so.
 */
export class Capture {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  overBudget = false;

  constructor(
    private readonly limit: number,
    private readonly budget: MemoryBudget,
  ) {}

  add(chunk: Buffer): void {
    if (this.overBudget) return;
    if (this.size >= this.limit) {
      this.truncated ||= chunk.length > 0;
      return;
    }
    const kept = chunk.length <= this.limit - this.size ? chunk : chunk.subarray(0, this.limit - this.size);
    if (!this.budget.take(kept.length)) {
      this.overBudget = true;
      this.release();
      return;
    }
    this.truncated ||= kept.length < chunk.length;
    this.chunks.push(kept);
    this.size += kept.length;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }

  hex(): string {
    return this.bytes().toString('hex');
  }

  /** Gives the bytes back to the budget; the capture is empty after. */
  release(): void {
    this.budget.give(this.size);
    this.chunks = [];
    this.size = 0;
  }
}

/** A sampled request's record, completed when its exchange ends. */
export interface PendingRecord {
  readonly timestamp: number;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly contentType: string;
  readonly body: Capture;
  readonly response: Capture | undefined;
}

/** How an exchange ended, as its outcome tells it (observe's Outcome is one). */
export interface ExchangeEnd {
  /** The exchange start() was given. */
  readonly id: number;
  readonly upstream: string | undefined;
  /** What the client got (499 if it left). */
  readonly status: number;
  /** The status line sent to the client; 0 if none was. */
  readonly sentStatus: number;
  /** "upstream" when its whole answer reached the client. */
  readonly origin: string;
  readonly seconds: number;
  /** The request's body arrived whole. */
  readonly requestComplete: boolean;
}

export interface RecordingView {
  readonly enabled: boolean;
  readonly file: string | null;
  readonly sampleRate: number;
  readonly paths: readonly string[];
  readonly maxBody: number;
  readonly responses: boolean;
  readonly redact: readonly string[];
}

/**
 * Recording as it runs: the switch and the rate (changeable at runtime), which requests are
 * sampled, and the writer their lines go to.
 */
export class Recording {
  /** Changed only by change() (and close()), which checks the change and tells onChange. */
  #enabled: boolean;
  #sampleRate: number;
  readonly #settings: RecordSettings;
  readonly #redact: ReadonlySet<string>;
  readonly #sink: RecordSink | undefined;
  readonly #random: () => number;
  readonly #recordable: (path: string) => boolean;
  readonly #onChange: ((view: RecordingView) => void) | undefined;
  readonly #budget: MemoryBudget;
  readonly #metrics: RecorderMetrics;
  /** Records of exchanges in flight, by exchange; ended() completes them. */
  readonly #pending = new Map<number, PendingRecord>();

  /**
   * With `sink`, lines go there instead of to a writer of the file (which is then not opened
   * here); `onChange` hears every runtime switch.
   */
  constructor(
    settings: RecordSettings,
    deps: { metrics: RecorderMetrics; log: Logger; random?: () => number; sink?: RecordSink; onChange?: (view: RecordingView) => void },
  ) {
    if (settings.file !== undefined && deps.sink === undefined) checkWritableDir(settings.file, 'record', 'create it, or pass --record FILE');
    this.#settings = settings;
    this.#enabled = settings.enabled;
    this.#sampleRate = settings.sampleRate;
    this.#redact = new Set(settings.redact);
    this.#random = deps.random ?? Math.random;
    this.#recordable = recordable(settings.paths);
    this.#onChange = deps.onChange;
    this.#budget = new MemoryBudget(settings.memoryBytes);
    this.#metrics = deps.metrics;
    this.#sink =
      deps.sink ??
      (settings.file === undefined
        ? undefined
        : new RecordWriter({ path: settings.file, maxBufferBytes: settings.queueBytes, rotateBytes: settings.rotateBytes, metrics: deps.metrics, log: deps.log }));
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  get sampleRate(): number {
    return this.#sampleRate;
  }

  get file(): string | undefined {
    return this.#settings.file;
  }

  get maxBody(): number {
    return this.#settings.maxBody;
  }

  /** Whether this request is recorded: recording on, a recorded route ($uri, decoded as the upstream's router sees it), and sampled. */
  wants(uri: string): boolean {
    return this.#enabled && this.#recordable(uri) && sampled(this.#sampleRate, this.#random);
  }

  /** Bytes of bodies held for records in flight now. */
  get heldBytes(): number {
    return this.#budget.held;
  }

  /**
   * Starts a record of exchange `id`, whose request body will be captured into the record's
   * `body`; undefined (dropped, reason "memory") when the bodies already held leave no room for
   * this one's. ended() completes it.
   */
  start(id: number, req: IncomingMessage, path: string, bodyLength: number): PendingRecord | undefined {
    // A Content-Length body is known to fit or not before a byte is read: try it now, so it
    // streams unrecorded rather than being dropped halfway.
    const expected = Math.min(Math.max(bodyLength, 0), this.maxBody);
    if (this.#budget.held + expected > this.#budget.limit) {
      this.#metrics.dropped.inc({ reason: 'memory' satisfies DropReason });
      return undefined;
    }
    const record: PendingRecord = {
      timestamp: Date.now() / 1000,
      method: req.method!,
      path,
      // As received, minus hop-by-hop fields (a replayed Transfer-Encoding would contradict
      // the Content-Length the replaying client sets).
      headers: recordHeaders(endToEnd(req.rawHeaders), this.#redact),
      contentType: req.headers['content-type'] ?? '',
      body: new Capture(this.maxBody, this.#budget),
      response: this.#settings.responses ? new Capture(this.maxBody, this.#budget) : undefined,
    };
    this.#pending.set(id, record);
    return record;
  }

  /**
   * An exchange ended (every outcome comes here): its record, if it has one, is written, or
   * dropped when its request body never arrived whole (a cut-off body is no request to replay).
   */
  ended(end: ExchangeEnd): void {
    const record = this.#pending.get(end.id);
    if (record === undefined) return;
    this.#pending.delete(end.id);
    if (!end.requestComplete) return this.#discard(record);
    // Status 0 when no response had started, as the seed's replay script writes "no answer".
    this.#finish(record, { upstream: end.upstream!, status: end.status, latencyMs: end.seconds * 1000, response: { status: end.sentStatus, complete: end.origin === 'upstream' } });
  }

  /**
   * Queues the finished record's line (the writer drops and counts it if it cannot keep up) and
   * frees its bodies. `status` is what the client got (499 if it left); `response` what the
   * upstream sent: its status, and the body as far as it passed (`complete` false if the exchange
   * broke off). A record whose bodies passed the memory budget is dropped ("memory").
   */
  #finish(
    record: PendingRecord,
    outcome: { upstream: string; status: number; latencyMs: number; response: { status: number; complete: boolean } },
  ): void {
    const { response } = record;
    if (record.body.overBudget || response?.overBudget === true) {
      this.#metrics.dropped.inc({ reason: 'memory' satisfies DropReason });
      return this.#discard(record);
    }
    this.write({
      timestamp: record.timestamp,
      method: record.method,
      path: record.path,
      headers: record.headers,
      body_hex: record.body.hex(),
      content_type: record.contentType,
      id: randomUUID(),
      upstream: outcome.upstream,
      status: outcome.status,
      latency_ms: Math.round(outcome.latencyMs * 1000) / 1000,
      body_truncated: record.body.truncated,
      ...(response === undefined
        ? {}
        : { response: { status: outcome.response.status, body_hex: response.hex(), body_truncated: response.truncated || !outcome.response.complete } }),
    });
    this.#discard(record);
  }

  /** Frees a record's bodies without writing it. */
  #discard(record: PendingRecord): void {
    record.body.release();
    record.response?.release();
  }

  /** A finished line, from this process or a worker, to the sink. */
  write(line: RecordLine): void {
    this.#sink?.write(line);
  }

  /** Switches recording and/or sets the rate; switching on needs a file. */
  change(patch: { enabled?: boolean | undefined; sampleRate?: number | undefined }): void {
    if (patch.enabled === true && this.#sink === undefined) {
      throw new InputError('recording has no file; start drum-splitter with --record FILE', 'enabled');
    }
    if (patch.enabled !== undefined) this.#enabled = patch.enabled;
    if (patch.sampleRate !== undefined) this.#sampleRate = patch.sampleRate;
    this.#onChange?.(this.view());
  }

  view(): RecordingView {
    const s = this.#settings;
    return { enabled: this.#enabled, file: s.file ?? null, sampleRate: this.#sampleRate, paths: s.paths, maxBody: s.maxBody, responses: s.responses, redact: s.redact };
  }

  /** Writes every queued line and closes the file. */
  async close(): Promise<void> {
    this.#enabled = false;
    await this.#sink?.close();
  }
}
