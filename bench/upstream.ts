// Fallback upstream when nginx is absent: the same fixed JSON answer from node:http.
// Usage: node dist/bench/upstream.js PORT
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const body = Buffer.from('{"predictions":[0.5]}');
const server = createServer((req, res) => {
  // Drain any request body so keep-alive connections stay usable.
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 75_000; // match nginx's default so proxies' pooled sockets are not cut mid-run
server.listen(port, '127.0.0.1');
// No SIGTERM handler: the default (exit at once) is what the bench wants.
