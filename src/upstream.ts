import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import type { Upstream } from './config.js';
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
  let controller: Dispatcher.DispatchController | undefined;
  const onClientGone = (): void => {
    if (!res.writableFinished) controller?.abort(new Error('client went away'));
  };
  res.once('close', onClientGone);

  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
    },
    onResponseStart(c, statusCode, _headers, statusMessage) {
      // 1xx, e.g. 103 Early Hints: informational, the final response follows. Not passed on.
      if (statusCode < 200) return;
      const raw = (c.rawHeaders as Buffer[]).map((b) => b.toString('latin1'));
      const headers = endToEnd(raw);
      headers.push(...req.responseHeaders);
      res.writeHead(statusCode, statusMessage, headers);
    },
    onResponseData(c, chunk) {
      req.onData?.(chunk);
      // undici delivers nothing more until resumed, so one drain listener per pause.
      if (!res.write(chunk)) {
        c.pause();
        res.once('drain', () => c.resume());
      }
    },
    onResponseEnd() {
      res.off('close', onClientGone);
      res.end();
    },
    onResponseError(_c, err) {
      res.off('close', onClientGone);
      if (res.headersSent) res.destroy(err);
      else if (!res.destroyed) onFailure(classifyFailure(err), err);
    },
  };

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
