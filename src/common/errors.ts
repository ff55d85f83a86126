import { maxHeaderSize, STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Every error drum-splitter answers with, the traffic listener's and the admin API's: its name
 * (the JSON body's `error`, which clients may test), its one status, and the message given
 * when the answer has nothing more precise to say. Answers name an entry, never a status, so a
 * name always comes with the same status. The README's Errors section lists them.
 */
export const ERRORS = {
  bad_request: { status: 400, message: 'the request is malformed' },
  unknown_upstream: { status: 400, message: 'the override header names no upstream' },
  invalid: { status: 400, message: 'the request is invalid' },
  unauthorized: { status: 401, message: 'a write needs Authorization: Bearer <token>' },
  forbidden: { status: 403, message: 'this request is not allowed here' },
  not_found: { status: 404, message: 'no such endpoint' },
  request_timeout: { status: 408, message: 'the request headers did not all arrive in time' },
  conflict: { status: 409, message: 'the state changed meanwhile; read it again' },
  payload_too_large: { status: 413, message: 'the request body is too large' },
  unsupported_media_type: { status: 415, message: 'send Content-Type: application/json with a JSON body ({} when there is nothing to say)' },
  too_many_headers: { status: 431, message: 'too many request headers' },
  headers_too_large: { status: 431, message: `the request headers are over ${maxHeaderSize} bytes` },
  buffer_failed: { status: 500, message: 'the request body could not be buffered' },
  internal_error: { status: 500, message: 'an internal error' },
  bad_gateway: { status: 502, message: 'the upstream failed' },
  not_saved: { status: 503, message: 'not applied: the state file cannot be written' },
  metrics_unavailable: { status: 503, message: 'not every worker answered' },
  gateway_timeout: { status: 504, message: 'upstream timed out' },
} as const satisfies Record<string, { readonly status: number; readonly message: string }>;

export type ErrorName = keyof typeof ERRORS;

/** The JSON body of an error answer: `{"error": name, "message": …}` and any fields that say more (the field at fault, the version in force). */
export function errorBody(name: ErrorName, message: string = ERRORS[name].message, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { error: name, message, ...extra };
}

/**
 * Answers with an error before any response headers have been sent. `close` ends the
 * connection afterwards, for when the request body was not read. Returns the body's length.
 */
export function sendError(res: ServerResponse, name: ErrorName, message?: string, extra?: Record<string, unknown>, close = false): number {
  const body = JSON.stringify(errorBody(name, message, extra));
  const length = Buffer.byteLength(body);
  res.writeHead(ERRORS[name].status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': length,
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(body);
  return length;
}

/** Answers on a raw socket, for a request that never became one, and closes it; returns the body's length. */
export function sendRawError(socket: Duplex, name: ErrorName, message?: string): number {
  const body = JSON.stringify(errorBody(name, message));
  const length = Buffer.byteLength(body);
  const { status } = ERRORS[name];
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n${body}`);
  return length;
}

/** What a request Node's parser rejected gets, by the parser's error code: the entry and its message. */
export function parserError(code: string | undefined): readonly [ErrorName, string] {
  if (code === 'HPE_HEADER_OVERFLOW') return ['headers_too_large', `${ERRORS.headers_too_large.message} (${code})`];
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return ['request_timeout', `${ERRORS.request_timeout.message} (${code})`];
  return ['bad_request', `malformed request: ${code}`];
}

/**
 * Answers a request Node's parser rejected (a listener's 'clientError'); a socket already gone
 * just goes. The status and body length of the answer, or undefined when there was none.
 */
export function answerParserError(err: NodeJS.ErrnoException, socket: Duplex): { readonly status: number; readonly bytes: number } | undefined {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return undefined;
  }
  const [name, message] = parserError(err.code);
  return { status: ERRORS[name].status, bytes: sendRawError(socket, name, message) };
}
