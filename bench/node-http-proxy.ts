// Peer: node-http-proxy (`http-proxy` 1.18, the most used Node proxy) with a keep-alive agent to the
// upstream and nothing else — how its users run it in front of one backend.
// Usage: node dist/bench/node-http-proxy.js PORT UPSTREAM_URL
import { Agent, createServer } from 'node:http';
import httpProxy from 'http-proxy';

const [port, upstream] = [Number(process.argv[2]), process.argv[3]];
if (!port || !upstream) {
  process.stderr.write('usage: node-http-proxy.js PORT UPSTREAM_URL\n');
  process.exit(2);
}
const proxy = httpProxy.createProxyServer({ target: upstream, agent: new Agent({ keepAlive: true, maxSockets: 128 }) });
proxy.on('error', (_err, _req, res) => {
  if ('writeHead' in res && !res.headersSent) res.writeHead(502);
  res.end();
});
createServer((req, res) => proxy.web(req, res)).listen(port, '127.0.0.1');
// No SIGTERM handler: the default (exit at once) is what the bench wants.
