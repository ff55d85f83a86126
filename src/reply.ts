import type { ServerResponse } from 'node:http';

/**
 * Answers with a JSON error body, as a proxy-generated response, before any response
 * headers have been sent.
 * `close` ends the connection afterwards, for when the request body was not read.
 */
export function sendError(
  res: ServerResponse,
  status: number,
  error: string,
  message: string,
  extra: Record<string, unknown> = {},
  close = false,
): void {
  const body = JSON.stringify({ error, message, ...extra });
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(body);
}
