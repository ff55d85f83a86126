/**
 * Why the hot path is not @fastify/http-proxy: the off-the-shelf proxy, at its defaults,
 * next to drum-splitter on the same upstreams. If the package changes, this says so.
 */
import proxyPlugin from '@fastify/http-proxy';
import { fastify } from 'fastify';
import t from 'tap';
import { freePort, send, startTestProxy, startUpstream } from './helpers/net.js';

async function cardProxy(upstream: string): Promise<{ url: string; close: () => Promise<void> }> {
  const app = fastify({ logger: false });
  await app.register(proxyPlugin, { upstream });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, close: () => app.close() };
}

t.test('a refused connection: the card answers 500, we answer 502', async (t) => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const card = await cardProxy(dead);
  const ours = await startTestProxy({ upstreams: [`flask=${dead}`] });
  t.teardown(() => Promise.all([card.close(), ours.close()]));
  t.equal((await send(`${card.url}/predict/`)).status, 500);
  t.equal((await send(`${ours.url}/predict/`)).status, 502);
});

t.test('a GET answered 503 with Retry-After: the card retries it, we do not', async (t) => {
  let requests = 0;
  const upstream = await startUpstream('flask', (_req, res) => {
    requests++;
    res.writeHead(503, { 'retry-after': '0' }).end('busy');
  });
  const card = await cardProxy(upstream.url);
  const ours = await startTestProxy({ upstreams: [`flask=${upstream.url}`] });
  t.teardown(() => Promise.all([card.close(), ours.close(), upstream.close()]));
  t.equal((await send(`${card.url}/predict/`)).status, 503);
  t.ok(requests > 1, `the card sent the GET ${requests} times`);
  requests = 0;
  t.equal((await send(`${ours.url}/predict/`)).status, 503);
  t.equal(requests, 1, 'we sent it once');
});
