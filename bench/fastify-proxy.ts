// Off-the-shelf baseline: fastify + @fastify/http-proxy with defaults, logger off.
// Usage: node dist/bench/fastify-proxy.js PORT UPSTREAM_URL
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';

const [port, upstream] = [Number(process.argv[2]), process.argv[3]];
if (!port || !upstream) {
  process.stderr.write('usage: fastify-proxy.js PORT UPSTREAM_URL\n');
  process.exit(2);
}
const app = Fastify({ logger: false });
await app.register(proxy, { upstream });
await app.listen({ port, host: '127.0.0.1' });
// No SIGTERM handler: the default (exit at once) is what the bench wants.
