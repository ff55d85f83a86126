import type { ServerResponse } from 'node:http';

/**
 * Answers with a JSON error body, as a proxy-generated response (no upstream reached it).
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
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error, message, ...extra });
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(body);
}
