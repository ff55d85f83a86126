// The floor under drum-splitter's request path: node:http in, one undici Pool out, with undici's
// handler interface, and nothing else — no split, no X-Forwarded-*, no hop-by-hop filtering,
// no metrics, no recording. What is left between this and drum-splitter is what our features cost.
// Usage: node dist/bench/bare-proxy.js PORT UPSTREAM_URL
import { createServer } from 'node:http';
import { Pool } from 'undici';

const [port, upstream] = [Number(process.argv[2]), process.argv[3]];
if (!port || !upstream) {
  process.stderr.write('usage: bare-proxy.js PORT UPSTREAM_URL\n');
  process.exit(2);
}
const pool = new Pool(upstream, { keepAliveTimeout: 1000 });
createServer((req, res) => {
  pool.dispatch(
    { method: req.method!, path: req.url!, headers: req.headers, body: req.headers['content-length'] === undefined ? null : req },
    {
      onRequestStart() {},
      onResponseStart(controller, status, _headers, text) {
        res.writeHead(status, text, (controller.rawHeaders as Buffer[]).map((b) => b.toString('latin1')));
        res.on('drain', () => controller.resume());
      },
      onResponseData: (controller, chunk) => res.write(chunk) || controller.pause(),
      onResponseEnd: () => res.end(),
      onResponseError: () => res.writeHead(502).end(),
    },
  );
}).listen(port, '127.0.0.1');
// No SIGTERM handler: the default (exit at once) is what the bench wants.
