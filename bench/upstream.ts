// Fallback upstream when nginx is absent, and the shadow bench's slow shadow: the same fixed
// JSON answer from node:http, to a POST after DELAY_MS if given (a GET, the readiness probe, at once).
// Usage: node dist/bench/upstream.js PORT [DELAY_MS]
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const delayMs = Number(process.argv[3] ?? 0);
const body = Buffer.from('{"predictions":[0.5]}');
const server = createServer((req, res) => {
  // Drain any request body so keep-alive connections stay usable.
  req.resume();
  req.on('end', () => {
    const answer = (): void => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    };
    if (delayMs > 0 && req.method === 'POST') setTimeout(answer, delayMs);
    else answer();
  });
});
server.keepAliveTimeout = 75_000; // match nginx's default so proxies' pooled sockets are not cut mid-run
server.listen(port, '127.0.0.1');
// No SIGTERM handler: the default (exit at once) is what the bench wants.
