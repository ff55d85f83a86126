import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Pool, type Dispatcher } from 'undici';
import { InputError } from '../common/input-error.js';
import type { ProxyConfig, Upstream } from './options.js';
import { endToEnd } from '../common/headers.js';
import type { ErrorName } from '../common/errors.js';
import { BufferFailed, SpillFile } from './spill.js';

export { BufferFailed };

/** An upstream with its own keep-alive connection pool. */
export interface Backend {
  readonly name: string;
  readonly origin: string;
  /** The URL's path without its trailing slash, prefixed to every request path. */
  readonly basePath: string;
  readonly pool: Pool;
}

export function createBackend(upstream: Pick<Upstream, 'name' | 'url'> & Partial<Pick<Upstream, 'ca'>>, keepAliveMs: number): Backend {
  return {
    name: upstream.name,
    origin: upstream.url.origin,
    basePath: upstream.url.pathname.replace(/\/+$/, ''),
    pool: new Pool(upstream.url.origin, {
      keepAliveTimeout: keepAliveMs,
      // An upstream's "Keep-Alive: timeout=N" hint must not stretch our limit.
      keepAliveMaxTimeout: keepAliveMs,
      // Its own CAs in place of the system's; verified either way.
      ...(upstream.ca === undefined ? {} : { connect: { ca: readCa(upstream.ca, upstream.name) } }),
    }),
  };
}

/** An upstream's CA file, read once as its pool is made; one that cannot be read or holds no certificate stops start-up. */
function readCa(path: string, name: string): string {
  const field = `upstreams.${name}.ca`;
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read ${path}: ${(err as Error).message}`, field);
  }
  try {
    new X509Certificate(pem);
  } catch (err) {
    throw new InputError(`${path} is not a PEM certificate: ${(err as Error).message}`, field);
  }
  return pem;
}

/** A pool per configured upstream, by name. */
export function createBackends(config: ProxyConfig): Map<string, Backend> {
  return new Map(config.upstreams.map((u) => [u.name, createBackend(u, config.upstreamKeepAliveMs)]));
}

export async function closeBackends(backends: ReadonlyMap<string, Backend>): Promise<void> {
  await Promise.all([...backends.values()].map((b) => b.pool.close()));
}

/** Whose fault a failed exchange is: it decides which backend, if any, the failure is counted against. */
export type Blame = 'upstream' | 'client' | 'proxy';

/** Why a forward failed, as the client will be told. */
export interface ForwardFailure {
  /** What the client is answered; its status is the exchange's. */
  readonly error: ErrorName;
  readonly reason: string;
  readonly blame: Blame;
}

export class BodyTooLarge extends Error {
  override readonly name = 'BodyTooLarge';
}

const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
/** undici refuses these before a byte is sent (two Host headers, a body shorter than its Content-Length): the request's fault. */
/** OpenSSL's verification codes (UNABLE_TO_VERIFY_LEAF_SIGNATURE, SELF_SIGNED_CERT_IN_CHAIN, CERT_HAS_EXPIRED, …) and Node's name check. */
const UNTRUSTED = /CERT|^UNABLE_TO_/;
const REFUSED = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH']);
/** The upstream reset or closed the connection (undici's "other side closed" is UND_ERR_SOCKET). */
export const CLOSED: ReadonlySet<string | undefined> = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE']);

/** Maps a failed forward to what the client hears (nginx's 502/504 split) and whose fault it is. */
export function classifyFailure(err: Error): ForwardFailure {
  if (err instanceof BodyTooLarge) return { error: 'payload_too_large', reason: err.message, blame: 'client' };
  if (err instanceof BufferFailed) return { error: 'buffer_failed', reason: err.message, blame: 'proxy' };
  const code = (err as { code?: string }).code ?? '';
  if (REFUSED.has(code)) return { error: 'bad_request', reason: `request cannot be forwarded: ${err.message}`, blame: 'client' };
  if (TIMEOUTS.has(code)) return { error: 'gateway_timeout', reason: 'upstream timed out', blame: 'upstream' };
  if (UNTRUSTED.test(code)) return { error: 'bad_gateway', reason: `upstream's TLS certificate not accepted: ${err.message} (its CA: --upstream-ca)`, blame: 'upstream' };
  if (code === 'ECONNREFUSED') return { error: 'bad_gateway', reason: 'upstream refused the connection', blame: 'upstream' };
  if (CLOSED.has(code)) return { error: 'bad_gateway', reason: 'upstream closed the connection', blame: 'upstream' };
  return { error: 'bad_gateway', reason: `upstream failed: ${code || err.message}`, blame: 'upstream' };
}

/** A streamed body, one in memory (sent with its Content-Length), or none. */
export type ForwardBody = Readable | Buffer | null;

/** Raw header Buffers as latin1 strings, as Node's rawHeaders are. */
function latin1(raw: readonly Buffer[]): string[] {
  const out = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw[i]!.toString('latin1');
  return out;
}

/** How much of an answer is held for a slow client in memory before the rest goes to a temp file, and where. */
export interface BufferSettings {
  readonly memory: number;
  readonly dir: string;
}

/** Bytes read back from a spill file at a time. */
const SPILL_READ = 64 * 1024;

/**
 * The part of an answer a slow client has not taken, beyond what its response already holds
 * in memory: appended to a spill file as the upstream sends it, written to the client as the
 * client drains. Once one exists, every later chunk of the answer goes through it, in order.
 */
class Overflow {
  readonly #file: Promise<SpillFile>;
  #ending = false;
  #pumping = false;
  constructor(
    private readonly res: ServerResponse,
    private readonly buffer: BufferSettings,
    private readonly fail: (err: Error) => void,
  ) {
    this.#file = SpillFile.create(buffer.dir);
    this.#file.catch(() => {}); // reported by the first push
    res.on('drain', () => void this.#pump());
  }

  /** The upstream, while it waits for the disk. */
  #paused: Resumable | undefined;
  /** Bytes pushed and not yet on disk: held in memory meanwhile. */
  #unwritten = 0;

  /** Queues a chunk; false when the upstream must wait for the disk (it is resumed then). */
  push(chunk: Buffer, upstream: Resumable): boolean {
    this.#unwritten += chunk.length;
    this.#file
      .then((f) => f.append(chunk))
      .then(
        () => {
          this.#unwritten -= chunk.length;
          if (this.#paused !== undefined && this.#unwritten <= this.buffer.memory) {
            const go = this.#paused;
            this.#paused = undefined;
            go.resume();
          }
          void this.#pump();
        },
        (err: Error) => this.#failed(err),
      );
    if (this.#unwritten <= this.buffer.memory) return true;
    this.#paused = upstream;
    return false;
  }

  /** The upstream is done: end the answer once the client has taken everything. */
  end(): void {
    this.#ending = true;
    void this.#pump();
  }

  /** Removes the file (the exchange is over, however it ended). */
  close(): void {
    void this.#file.then((f) => f.close(), () => {});
  }

  async #pump(): Promise<void> {
    if (this.#pumping || this.res.destroyed) return;
    this.#pumping = true;
    try {
      const file = await this.#file;
      // Past its share of memory the response waits for 'drain', which comes only once a write
      // has said "full" (a share under the socket's 16 KB high-water mark would wait forever).
      while (file.pending > 0 && !this.res.destroyed && (this.res.writableLength < this.buffer.memory || !this.res.writableNeedDrain)) {
        this.res.write((await file.read(SPILL_READ))!);
      }
      if (this.#ending && file.pending === 0 && !this.res.destroyed) {
        this.res.end();
        this.close();
      }
    } catch (err) {
      this.#failed(err as Error);
    } finally {
      this.#pumping = false;
    }
  }

  #failed(err: Error): void {
    this.close();
    this.fail(new BufferFailed(`cannot hold the answer for a slow client: ${err.message}`));
  }
}

/** An upstream call in progress, for whatever receives its answer: it can abort the call. */
export interface Call {
  abort(err: Error): void;
  /**
   * undici has begun writing the request to a connection. Until then not a byte of it has been
   * sent: undici calls onRequestStart just before it writes the request on a socket, and a
   * request that fails to connect (refused, reset or timed out while connecting, a stale
   * keep-alive connection found reset while the request waited for it) fails without it.
   */
  readonly written: boolean;
}

/** How far a failed call had come: its request not yet written, written with no answer yet, or its answer begun. */
export type FailedAt = 'connect' | 'request' | 'answer';

/** What a paused upstream is resumed through (undici's controller for the call). */
export interface Resumable {
  resume(): void;
}

/**
 * What receives an upstream's answer: undici's handler narrowed to what a receiver needs. The
 * client's response is one (toClient); a tap that keeps a copy for the record wraps it
 * (tapped), and a collector for comparing two answers is another, so a copy of an exchange is a
 * second sink, not a second code path. `data` returns false to pause the upstream until the
 * `upstream` given with the head is resumed; a chunk may still arrive while paused (undici
 * delivers what it already read when the upstream closes the connection).
 */
export interface AnswerSink {
  head(status: number, statusText: string, headers: string[], upstream: Resumable): void;
  data(chunk: Buffer): boolean;
  end(): void;
  error(err: Error): void;
}

export interface UpstreamRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: string[];
  readonly body: ForwardBody;
  readonly timeoutMs: number;
}

/**
 * One upstream call, as undici's handler (onRequestStart/onResponse*). The answer's headers are
 * read from the controller's raw Buffers, as the client will be sent them: undici's parsed
 * object merges repeated names and loses their case. A class, not closures: a handful fewer
 * allocations on every request.
 */
class UpstreamCall implements Call, Dispatcher.DispatchHandler {
  #controller: Dispatcher.DispatchController | undefined;
  /** An abort asked for before the request reached a connection, carried out when it does. */
  #early: Error | undefined;
  readonly #sink: AnswerSink;
  constructor(open: (call: Call) => AnswerSink) {
    this.#sink = open(this);
  }

  abort(err: Error): void {
    if (this.#controller === undefined) this.#early ??= err;
    else this.#controller.abort(err);
  }

  get written(): boolean {
    return this.#controller !== undefined;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#early !== undefined) controller.abort(this.#early);
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, _headers: unknown, statusText = ''): void {
    // 1xx, e.g. 103 Early Hints: informational, the final answer follows. Not passed on.
    if (status >= 200) this.#sink.head(status, statusText, latin1(controller.rawHeaders as Buffer[]), controller);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#sink.data(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#sink.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#sink.error(err);
  }
}

/**
 * Sends one request to `backend`; its answer goes to the sink `open` makes, given the call so
 * it can abort it. undici does not retry a request that has been sent; a failed one may go to
 * the baseline, which is the handler's to decide (fallback.ts).
 */
export function dispatch(backend: Backend, request: UpstreamRequest, open: (call: Call) => AnswerSink): void {
  backend.pool.dispatch(
    {
      origin: backend.origin,
      method: request.method,
      path: backend.basePath + request.path,
      headers: request.headers,
      body: request.body,
      headersTimeout: request.timeoutMs,
      bodyTimeout: request.timeoutMs,
    },
    new UpstreamCall(open),
  );
}

/** What a tap sees of an answer passing through it: its status (if it asks), each body chunk. */
export interface Tap {
  readonly head?: ((status: number) => void) | undefined;
  data(chunk: Buffer): void;
}

/** A sink that shows the answer to a tap before passing it on. */
class Tapped implements AnswerSink {
  constructor(
    private readonly sink: AnswerSink,
    private readonly tap: Tap,
  ) {}

  head(status: number, statusText: string, headers: string[], upstream: Resumable): void {
    this.tap.head?.(status);
    this.sink.head(status, statusText, headers, upstream);
  }

  data(chunk: Buffer): boolean {
    this.tap.data(chunk);
    return this.sink.data(chunk);
  }

  end(): void {
    this.sink.end();
  }

  error(err: Error): void {
    this.sink.error(err);
  }
}

/** A sink that shows the answer to `tap` before passing it on (the record and the shadow keep their copies this way). */
export function tapped(sink: AnswerSink, tap: Tap): AnswerSink {
  return new Tapped(sink, tap);
}

/** How the client's response takes an answer. */
export interface ClientAnswer {
  /** Extra response headers, e.g. X-Drum-Splitter-Upstream. */
  readonly responseHeaders: readonly string[];
  /**
   * Read the answer as fast as the upstream sends it, holding what the client has not taken
   * (nginx's proxy_buffering); false: the upstream waits for the client.
   */
  readonly bufferResponse: boolean;
  /** Where held answers go. */
  readonly buffer: BufferSettings;
}

/**
 * The client's response as a sink. The answer is written to the client as it arrives; with
 * `bufferResponse`, what a slow client cannot take yet is held (memory, then a temp file) so the
 * upstream is never kept waiting; otherwise the upstream is paused until the client drains.
 * `onFailure` is called at most once: before the answer started (the proxy answers with an
 * error, or sends the request elsewhere) or in the middle of its body (`at` is 'answer'; the
 * proxy cuts the connection, as nginx does).
 * Its owner, who hears the response close anyway, tells it so (`closed()`): a client that left
 * before the answer was whole aborts the call, and nothing else is called.
 */
export interface ClientSink extends AnswerSink {
  closed(): void;
}

export function toClient(
  res: ServerResponse,
  call: Call,
  opts: ClientAnswer,
  onFailure: (failure: ForwardFailure, err: Error, at: FailedAt) => void,
): ClientSink {
  return new ResponseSink(res, call, opts, onFailure);
}

class ResponseSink implements ClientSink {
  #overflow: Overflow | undefined;
  #failed = false;
  #complete = false;
  #upstream: Resumable | undefined;
  /** Paused until the client drains (unbuffered answers only). */
  #waiting = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly call: Call,
    private readonly opts: ClientAnswer,
    private readonly onFailure: (failure: ForwardFailure, err: Error, at: FailedAt) => void,
  ) {}

  closed(): void {
    if (this.#failed) return;
    this.#overflow?.close();
    if (!this.#complete) this.call.abort(new Error('client went away'));
  }

  head(status: number, statusText: string, headers: string[], upstream: Resumable): void {
    const out = endToEnd(headers);
    out.push(...this.opts.responseHeaders);
    this.res.writeHead(status, statusText, out);
    this.#upstream = upstream;
  }

  data(chunk: Buffer): boolean {
    const { res, opts } = this;
    if (this.#overflow !== undefined) return this.#overflow.push(chunk, this.#upstream!);
    if (!opts.bufferResponse) {
      if (res.write(chunk)) return true;
      // One drain listener per pause, however many chunks undici still delivers meanwhile.
      if (!this.#waiting) {
        this.#waiting = true;
        res.once('drain', () => {
          this.#waiting = false;
          this.#upstream!.resume();
        });
      }
      return false;
    }
    // A client keeping up takes every chunk at once; a slow one fills its share of memory first.
    if (res.writableLength < opts.buffer.memory) {
      res.write(chunk);
      return true;
    }
    this.#overflow = this.#holder();
    return this.#overflow.push(chunk, this.#upstream!);
  }

  end(): void {
    this.#complete = true;
    if (this.#overflow !== undefined) return this.#overflow.end();
    this.res.end();
  }

  error(err: Error): void {
    this.#overflow?.close();
    this.#fail(err);
  }

  #fail(err: Error): void {
    const { res } = this;
    if (this.#failed || res.destroyed) return;
    this.#failed = true;
    // Headers written count as begun, flushed or not: from then on the client has this answer.
    this.onFailure(classifyFailure(err), err, res.headersSent ? 'answer' : this.call.written ? 'request' : 'connect');
  }

  #holder(): Overflow {
    return new Overflow(this.res, this.opts.buffer, (err) => {
      this.call.abort(err);
      this.#fail(err);
    });
  }
}
