import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import type { Config, Upstream } from './config.js';
import { endToEnd } from './headers.js';

/** An upstream with its own keep-alive connection pool. */
export interface Backend {
  readonly name: string;
  readonly origin: string;
  /** The URL's path without its trailing slash, prefixed to every request path. */
  readonly basePath: string;
  readonly pool: Pool;
}

export function createBackend(upstream: Upstream, keepAliveMs: number): Backend {
  return {
    name: upstream.name,
    origin: upstream.url.origin,
    basePath: upstream.url.pathname.replace(/\/+$/, ''),
    pool: new Pool(upstream.url.origin, {
      keepAliveTimeout: keepAliveMs,
      // An upstream's "Keep-Alive: timeout=N" hint must not stretch our limit.
      keepAliveMaxTimeout: keepAliveMs,
    }),
  };
}

/** A pool per configured upstream, by name. */
export function createBackends(config: Config): Map<string, Backend> {
  return new Map(config.upstreams.map((u) => [u.name, createBackend(u, config.upstreamKeepAliveMs)]));
}

export async function closeBackends(backends: ReadonlyMap<string, Backend>): Promise<void> {
  await Promise.all([...backends.values()].map((b) => b.pool.close()));
}

/** Why a forward failed before the response started, as the client will be told. */
export interface ForwardFailure {
  readonly status: 502 | 504 | 413;
  readonly reason: string;
}

export class BodyTooLarge extends Error {
  override readonly name = 'BodyTooLarge';
}

const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Maps an error from undici to what the client hears: nginx's 502/504 split. */
export function classifyFailure(err: Error): ForwardFailure {
  if (err instanceof BodyTooLarge) return { status: 413, reason: err.message };
  const code = (err as { code?: string }).code ?? '';
  if (TIMEOUTS.has(code)) return { status: 504, reason: 'upstream timed out' };
  if (code === 'ECONNREFUSED') return { status: 502, reason: 'upstream refused the connection' };
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') {
    return { status: 502, reason: 'upstream closed the connection' };
  }
  return { status: 502, reason: `upstream failed: ${code || err.message}` };
}

/** A streamed body, one read into memory (sent with its Content-Length), or none. */
export type ForwardBody = Readable | Buffer | null;

/** Raw header Buffers as latin1 strings, as Node's rawHeaders are. */
function latin1(raw: readonly Buffer[]): string[] {
  const out = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw[i]!.toString('latin1');
  return out;
}

export interface ForwardRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: string[];
  readonly body: ForwardBody;
  readonly timeoutMs: number;
  /** Extra response headers, e.g. X-Drum-Splitter-Upstream. */
  readonly responseHeaders: readonly string[];
  /** Sees each response body chunk as it passes (for recording). */
  readonly onData?: (chunk: Buffer) => void;
}

/**
 * Streams one request to `backend` and its response into `res`, both ways with
 * backpressure and no buffering. undici does not retry a request that has been sent;
 * nothing here retries either. `onFailure` is called at most once, and only while the
 * response has not started; after that a failure cuts the client connection, as nginx does.
 */
export function forward(
  backend: Backend,
  req: ForwardRequest,
  res: ServerResponse,
  onFailure: (failure: ForwardFailure, err: Error) => void,
): void {
  let abort: ((err: Error) => void) | undefined;
  const onClientGone = (): void => {
    if (!res.writableFinished) abort?.(new Error('client went away'));
  };
  res.once('close', onClientGone);

  // undici's own handler interface (what its Pool calls internally): raw header Buffers, and
  // false from onHeaders/onData to pause. The newer onRequestStart/onResponse* style is
  // adapted onto this one per request, parsing every header into an object we do not use.
  const handler: Dispatcher.DispatchHandler = {
    onConnect(abortRequest) {
      abort = abortRequest;
    },
    onHeaders(statusCode, rawHeaders, resume, statusMessage) {
      // 1xx, e.g. 103 Early Hints: informational, the final response follows. Not passed on.
      if (statusCode < 200) return true;
      const headers = endToEnd(latin1(rawHeaders));
      headers.push(...req.responseHeaders);
      res.writeHead(statusCode, statusMessage, headers);
      // undici delivers nothing more until resumed, so one drain listener per pause.
      resumeUpstream = resume;
      return true;
    },
    onData(chunk) {
      req.onData?.(chunk);
      if (res.write(chunk)) return true;
      res.once('drain', resumeUpstream!);
      return false;
    },
    onComplete() {
      res.off('close', onClientGone);
      res.end();
    },
    onError(err) {
      res.off('close', onClientGone);
      if (res.headersSent) res.destroy(err);
      else if (!res.destroyed) onFailure(classifyFailure(err), err);
    },
  };
  let resumeUpstream: (() => void) | undefined;

  backend.pool.dispatch(
    {
      origin: backend.origin,
      method: req.method,
      path: backend.basePath + req.path,
      headers: req.headers,
      body: req.body,
      headersTimeout: req.timeoutMs,
      bodyTimeout: req.timeoutMs,
    },
    handler,
  );
}
