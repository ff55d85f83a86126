import type { ServerResponse } from 'node:http';

/**
 * Answers with a JSON error body, as a proxy-generated response, before any response
 * headers have been sent.
 * `close` ends the connection afterwards, for when the request body was not read.
 * Returns the body's length in bytes.
 */
export function sendError(
  res: ServerResponse,
  status: number,
  error: string,
  message: string,
  extra: Record<string, unknown> = {},
  close = false,
): number {
  const body = JSON.stringify({ error, message, ...extra });
  const length = Buffer.byteLength(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': length,
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(body);
  return length;
}
