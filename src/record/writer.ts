import { closeSync, fstat, fstatSync, ftruncate, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import sonicBoom from 'sonic-boom';
import { Throttled } from '../common/log.js';
import { PRIVATE, privateOnOpen } from '../common/private-file.js';
import type { RecordLine } from './line.js';

// sonic-boom is CommonJS: Node gives ESM only its default export (module.exports, the class,
// which also carries itself as .SonicBoom); TypeScript types that default as the module.
const { SonicBoom } = sonicBoom;
type SonicBoom = InstanceType<typeof SonicBoom>;

/** The record file's writer: a bounded queue to the disk, rotation, reopening a removed file. */
/** Why a line was not written. */
export type DropReason = 'queue_full' | 'write_error' | 'closed' | 'memory';
const DROP_REASONS: readonly DropReason[] = ['queue_full', 'write_error', 'closed', 'memory'];

export interface RecorderMetrics {
  /**
   * Lines on disk (counted when the OS accepted their last byte). Those in a record file that is
   * deleted later went with it, and stay counted.
   */
  readonly records: Counter;
  /** Lines not recorded, by reason. After close(), records + dropped = lines offered to write(). */
  readonly dropped: Counter<'reason'>;
  /** Failed writes, opens and closes of a record file, and record files found removed or replaced. */
  readonly errors: Counter;
}

export function createRecorderMetrics(registry: Registry): RecorderMetrics {
  const metrics: RecorderMetrics = {
    records: new Counter({
      name: 'drum_recorder_records_total',
      help: 'Recorded requests written to the record file.',
      registers: [registry],
    }),
    dropped: new Counter({
      name: 'drum_recorder_dropped_total',
      help: 'Sampled requests not recorded, by reason: queue_full (write buffer full), write_error (file write failed), closed (after shutdown began), memory (bodies held for records in flight over --record-memory).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    errors: new Counter({
      name: 'drum_recorder_write_errors_total',
      help: 'Record file write, open and close failures, and record files found removed or replaced.',
      registers: [registry],
    }),
  };
  // Every reason is exported from the start, so rate() and alerts see 0 rather than nothing.
  for (const reason of DROP_REASONS) metrics.dropped.inc({ reason }, 0);
  return metrics;
}

/** Characters past U+007F as \uXXXX escapes (UTF-16 units, as Python's json.dumps writes them). */
const ascii = (json: string): string => json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** One value as ASCII JSON; undefined becomes null, as in an array, so the line stays valid JSON. */
const value = (v: unknown): string => ascii(JSON.stringify([v]).slice(1, -1));

/**
 * The hex string itself, after checking it is hex (an even number of hex digits): JSON-safe as
 * it stands, so a 20 MB body is not run through JSON.stringify, and readable by bytes.fromhex.
 */
function hex(field: string, s: string): string {
  if (Buffer.from(s, 'hex').length * 2 !== s.length) throw new TypeError(`${field} is not a hex string`);
  return s;
}

/** The line's JSON in the contract's field order (whatever the caller's), ASCII only, newline-terminated. */
function serialize(l: RecordLine): string {
  let json =
    `{"timestamp":${value(l.timestamp)},"method":${value(l.method)},"path":${value(l.path)},"headers":${value(l.headers)},` +
    `"body_hex":"${hex('body_hex', l.body_hex)}","content_type":${value(l.content_type)},"id":${value(l.id)},` +
    `"upstream":${value(l.upstream)},"status":${value(l.status)},"latency_ms":${value(l.latency_ms)},"body_truncated":${value(l.body_truncated)}`;
  const r = l.response;
  if (r !== undefined) {
    json += `,"response":{"status":${value(r.status)},"body_hex":"${hex('response.body_hex', r.body_hex)}","body_truncated":${value(r.body_truncated)}}`;
  }
  return `${json}}\n`;
}

/** After a failed write, lines are dropped (write_error) for this long before the file is tried again. */
const RETRY_MS = 1000;

const fstatAsync = promisify(fstat);
const ftruncateAsync = promisify(ftruncate);

interface SinkOwner {
  written(lines: number, bytes: number): void;
  failed(sink: Sink, err: Error, lostLines: number, lostBytes: number): void;
  recovered(): void;
}

/**
 * Lines are written in batches, as nginx's `access_log ... buffer= flush=` does: once this many
 * bytes wait, or every FLUSH_MS. One write a line cost recording at 1% several percent of the
 * request path's CPU (each a thread-pool round trip); a batch at 1% is about one write a second.
 * A crash (not a graceful stop, which writes everything) loses at most the last second's lines.
 */
export const BATCH_BYTES = 16 * 1024;
export const FLUSH_MS = 1000;

/**
 * One record file behind one sonic-boom. It knows the byte length of every line it accepted,
 * so sonic-boom's 'write' events (bytes the OS took) tell which lines are complete on disk.
 * On an error, the lines not complete are lost; a line cut by a short write (a full disk) is
 * truncated away, so the file ends with a complete line.
 */
class Sink {
  readonly done: Promise<void>;
  private settle!: () => void;
  private readonly boom: SonicBoom;
  private lens: number[] = [];
  private head = 0;
  /** Bytes of lens[head] already on disk. */
  private partial = 0;

  constructor(
    readonly path: string,
    private readonly owner: SinkOwner,
    batchBytes: number,
    log: Logger,
  ) {
    this.done = new Promise((resolve) => (this.settle = resolve));
    this.boom = new SonicBoom({ dest: path, append: true, mode: PRIVATE, minLength: batchBytes, maxWrite: 4 * BATCH_BYTES });
    privateOnOpen(this.boom, path, log);
    // Not sonic-boom's periodicFlush: its timer outlives a file that failed to open, and flushes to fd -1.
    const timer = setInterval(() => this.flush(), FLUSH_MS).unref();
    this.boom.on('write', (n: number) => this.onWrite(n));
    this.boom.on('error', (err: Error) => {
      clearInterval(timer);
      this.onError(err);
    });
    this.boom.on('close', () => {
      clearInterval(timer);
      this.settle();
    });
  }

  /** Writes out a batch not yet full, if the file is open and idle. */
  private flush(): void {
    const boom = this.boom as unknown as { _len: number; _writing: boolean; _ending: boolean };
    if (this.fd >= 0 && boom._len > 0 && !boom._writing && !boom._ending) this.boom.flush();
  }

  write(json: string): void {
    this.lens.push(json.length); // ASCII: characters are bytes
    this.boom.write(json);
  }

  /**
   * Why the path no longer names the file this sink has open (it was removed, or another was
   * renamed over it), or undefined while it does or the file is still being opened.
   */
  gone(): Error | undefined {
    const fd = this.fd;
    if (fd < 0) return undefined;
    try {
      const here = statSync(this.path);
      const mine = fstatSync(fd);
      return here.dev === mine.dev && here.ino === mine.ino ? undefined : new Error('another file took its place');
    } catch (err) {
      return err as Error; // ENOENT: removed, or its directory was
    }
  }

  /** sonic-boom's descriptor: -1 until the file is open. */
  private get fd(): number {
    return (this.boom as unknown as { fd: number }).fd;
  }

  /** Writes what is buffered, then closes; `done` resolves after. Only called on a sink that has not failed. */
  end(): void {
    this.boom.end();
  }

  private onWrite(n: number): void {
    let lines = 0;
    let bytes = 0;
    let left = this.partial + n;
    while (this.head < this.lens.length && left >= this.lens[this.head]!) {
      const len = this.lens[this.head++]!;
      left -= len;
      bytes += len;
      lines++;
    }
    this.partial = left;
    if (this.head > 1024 && this.head * 2 > this.lens.length) {
      this.lens = this.lens.slice(this.head);
      this.head = 0;
    }
    if (lines > 0) this.owner.written(lines, bytes);
  }

  private onError(err: Error): void {
    const lost = this.lens.slice(this.head);
    const partial = this.partial;
    this.lens = [];
    this.head = 0;
    this.partial = 0;
    this.owner.failed(this, err, lost.length, lost.reduce((a, b) => a + b, 0));
    const fd = this.fd;
    const finish = (): void => {
      if (fd >= 0) this.boom.destroy(); // closes the descriptor; what it still buffered is counted lost
      this.owner.recovered();
      this.settle();
    };
    if (partial === 0) return finish();
    // A short write (a full disk) left the start of a line: cut the file back to the end of the
    // last whole line. Appends go to the end, so that part is the file's last `partial` bytes.
    fstatAsync(fd)
      .then((stats) => ftruncateAsync(fd, Math.max(0, stats.size - partial)))
      .then(finish, finish);
  }
}

/** Where a writer starts: the highest-numbered existing file (FILE is 0), as continueAt() finds it. */
function startingFile(path: string): { index: number; bytes: number } {
  const base = basename(path);
  let index = 0;
  try {
    for (const name of readdirSync(dirname(path))) {
      const suffix = name.startsWith(`${base}.`) ? name.slice(base.length + 1) : '';
      if (/^[1-9][0-9]{0,8}$/.test(suffix)) index = Math.max(index, Number(suffix));
    }
  } catch {
    // No directory: the first write fails and is reported like any write error.
  }
  return continueAt(path, index);
}

/**
 * File `index` and its size, to be appended to as the seed's recorder does, unless it does not
 * end with a newline (a crashed writer's last line): then the next number, so no line of ours
 * is glued to a broken one. A file that does not exist (yet) has 0 bytes.
 */
function continueAt(path: string, index: number): { index: number; bytes: number } {
  const file = fileName(path, index);
  try {
    const { size } = statSync(file);
    if (size === 0) return { index, bytes: 0 };
    const last = Buffer.alloc(1);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, last, 0, 1, size - 1);
    } finally {
      closeSync(fd);
    }
    return last[0] === 0x0a ? { index, bytes: size } : { index: index + 1, bytes: 0 };
  } catch {
    return { index, bytes: 0 };
  }
}

const fileName = (path: string, index: number): string => (index === 0 ? path : `${path}.${index}`);

/**
 * Appends RecordLines to a JSONL file with sonic-boom (asynchronous writes; the request path
 * only serializes and hands the line over). Files are 0600, an existing one made so before it is
 * written to.
 *
 * - Bound: `maxBufferBytes` caps the bytes of lines accepted but not yet taken by the OS. A line
 *   that would pass it is dropped (reason "queue_full"), unless nothing is waiting: a line longer
 *   than the bound is taken into an empty queue (it is in memory already).
 * - Rotation: with `rotateBytes`, a line that would take the current file past that size starts
 *   the next file: FILE, FILE.1, FILE.2, ... in writing order (unlike logrotate, higher is newer;
 *   `cat $(ls -v FILE FILE.*)` gives the whole recording in order). A line longer than
 *   rotateBytes gets a file of its own. A writer continues the highest-numbered existing file.
 * - Errors (disk full, a directory removed before a file is opened, ...): counted, logged at most
 *   once a minute, never thrown. The lines not yet on disk are dropped ("write_error"), a half-
 *   written line is truncated away, and for a second lines are dropped before the file is
 *   opened again.
 * - A file removed or replaced (deleted, its directory deleted, moved away, another renamed over
 *   it): an open descriptor would keep writing to a file no longer at the path, so before each
 *   line the writer checks that the path still names the file it has open (same device and
 *   inode). If not, that is counted as an error and logged like one, the old file is closed, and
 *   the line goes to the file now at the path, taken as a new writer would take it (appended to,
 *   or created; the directory is not: if it is gone, the open fails as above and is retried a
 *   second later). Lines accepted before the change was seen were written to the old file and
 *   counted as records; if it was deleted, they are lost with it.
 * - close(): no more lines are accepted ("closed"); resolves when every accepted line is on disk
 *   or counted dropped, and the files are closed. Every line in the files is complete JSON.
 */
export class RecordWriter {
  private readonly path: string;
  private readonly maxBufferBytes: number;
  private readonly rotateBytes: number;
  private readonly metrics: RecorderMetrics;
  private readonly log: Logger;
  private readonly now: () => number;
  private index: number;
  /** Bytes in the current file, counting lines accepted for it. */
  private fileBytes: number;
  private sink: Sink | undefined;
  private readonly sinks = new Set<Sink>();
  private pendingBytes = 0;
  /** While the current file is failed: no new file before this time (Infinity while cleaning up). */
  private retryAt = 0;
  /** Write errors, logged at most once a minute; the others are counted in the next log line. */
  private readonly errors: Throttled;
  private closed = false;

  constructor(opts: { path: string; maxBufferBytes: number; rotateBytes?: number; metrics: RecorderMetrics; log: Logger; now?: () => number }) {
    this.path = opts.path;
    this.maxBufferBytes = opts.maxBufferBytes;
    this.rotateBytes = opts.rotateBytes ?? Infinity;
    this.metrics = opts.metrics;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.errors = new Throttled(opts.log, 'error', this.now);
    ({ index: this.index, bytes: this.fileBytes } = startingFile(this.path));
  }

  /** Queues the line; false when it was dropped. Never blocks, never throws. */
  write(line: RecordLine): boolean {
    if (this.closed) return this.drop('closed');
    let json: string;
    try {
      json = serialize(line);
    } catch (err) {
      this.metrics.errors.inc();
      this.errors.write({ err }, 'recorder: a record could not be serialized; it is dropped');
      return this.drop('write_error');
    }
    // An empty queue takes any line, so a body near the cap is recorded whatever the bound.
    if (this.pendingBytes > 0 && this.pendingBytes + json.length > this.maxBufferBytes) return this.drop('queue_full');
    if (this.sink !== undefined) this.recheck(this.sink);
    if (this.sink === undefined && this.now() < this.retryAt) return this.drop('write_error');
    if (this.fileBytes > 0 && this.fileBytes + json.length > this.rotateBytes) {
      this.sink?.end();
      this.sink = undefined;
      this.index++;
      this.fileBytes = 0;
    }
    this.sink ??= this.open();
    this.sink.write(json);
    this.pendingBytes += json.length;
    this.fileBytes += json.length;
    return true;
  }

  /** Stops accepting lines and resolves when everything accepted is written (or counted lost) and closed. */
  async close(): Promise<void> {
    this.closed = true;
    this.sink?.end();
    this.sink = undefined;
    await Promise.all([...this.sinks].map((s) => s.done));
  }

  /** What the files report back. */
  private readonly owner: SinkOwner = {
    written: (lines, bytes) => {
      this.pendingBytes -= bytes;
      this.metrics.records.inc(lines);
    },
    failed: (sink, err, lostLines, lostBytes) => {
      this.pendingBytes -= lostBytes;
      this.metrics.errors.inc();
      this.metrics.dropped.inc({ reason: 'write_error' }, lostLines);
      if (this.sink === sink) {
        this.sink = undefined;
        this.fileBytes -= lostBytes;
      }
      this.retryAt = Infinity;
      this.errors.write({ err, file: sink.path, lost: lostLines }, 'recorder: writing the record file failed; records are dropped until it works again');
    },
    recovered: () => {
      this.retryAt = this.now() + RETRY_MS;
    },
  };

  /** If the current file was removed or replaced: counts and reports it, closes it, and starts again from what is at its path now. */
  private recheck(sink: Sink): void {
    const why = sink.gone();
    if (why === undefined) return;
    this.metrics.errors.inc();
    this.errors.write({ err: why, file: sink.path }, 'recorder: the record file was removed or replaced; records go to a new file at its path');
    sink.end();
    this.sink = undefined;
    ({ index: this.index, bytes: this.fileBytes } = continueAt(this.path, this.index));
  }

  private open(): Sink {
    // A queue smaller than two batches would fill before its first write.
    const sink = new Sink(fileName(this.path, this.index), this.owner, Math.min(BATCH_BYTES, Math.floor(this.maxBufferBytes / 2)), this.log);
    this.sinks.add(sink);
    void sink.done.then(() => this.sinks.delete(sink));
    return sink;
  }

  private drop(reason: DropReason): false {
    this.metrics.dropped.inc({ reason });
    return false;
  }
}
