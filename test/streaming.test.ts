/**
 * Bodies stream through without buffering: measured on the real CLI in its own process,
 * by sampling its resident set size from /proc while a large body passes.
 */
import { once } from 'node:events';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import t, { type Test } from 'tap';
import { freePort, spawnBuiltCli, startUpstream, waitForLine } from './helpers/net.js';
import { rssOf, watchRss } from './helpers/rss.js';
import { sleep, until } from './helpers/wait.js';

const MiB = 2 ** 20;
/**
 * How much a proxy that holds no body may still grow while one passes, and at its peak over a
 * whole transfer. Passing a body makes garbage Buffers, freed by the next collection: at V8's
 * defaults on Node 24 (src/heap.ts) up to ~64 MB of them wait for one, beside a young generation
 * of up to 64 MB. The bodies below are 256 MB to 1 GiB, so a body held whole would show.
 */
const GROWTH = 100 * MiB;
const PEAK_GROWTH = 150 * MiB;

async function upload(url: string, total: number): Promise<string> {
  const chunk = Buffer.alloc(MiB, 7);
  const req = request(url, { method: 'POST', agent: false, headers: { 'content-length': total } });
  const response = new Promise<string>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
  });
  for (let sent = 0; sent < total; sent += chunk.length) {
    if (!req.write(chunk)) await once(req, 'drain');
  }
  req.end();
  return response;
}

async function startCliProxy(t: Test, upstreamUrl: string, extra: string[] = []) {
  const port = await freePort();
  const child = spawnBuiltCli(['serve', '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0', '--upstream', `flask=${upstreamUrl}`, '--body-limit', '2GiB', ...extra]);
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  await waitForLine(child, /"msg":"listening"/);
  return { url: `http://127.0.0.1:${port}`, pid: child.pid! };
}

t.test(`a 1 GiB upload grows the proxy RSS by less than ${GROWTH / MiB} MB`, async (t) => {
  let received = 0;
  const upstream = await startUpstream(
    'flask',
    (req, res) => {
      req.on('data', (c: Buffer) => (received += c.length));
      req.on('end', () => res.end(JSON.stringify({ bytes: received })));
    },
    { readBody: false },
  );
  t.teardown(() => upstream.close());
  const proxy = await startCliProxy(t, upstream.url);
  await upload(`${proxy.url}/predictUnstructured/`, 32 * MiB); // warm up allocators and pools
  received = 0;
  const baseline = rssOf(proxy.pid);
  const watch = watchRss(proxy.pid);
  const reply = await upload(`${proxy.url}/predictUnstructured/`, 1024 * MiB);
  const growth = watch.stop() - baseline;
  t.same(JSON.parse(reply), { bytes: 1024 * MiB }, 'all of it arrived upstream');
  t.ok(growth < GROWTH, `RSS grew ${(growth / MiB).toFixed(1)} MB (baseline ${(baseline / MiB).toFixed(0)} MB)`);
});

/** An upstream sending `total` bytes of 1s as fast as its client takes them; `written` so far. */
async function bigUpstream(t: Test, total: number) {
  const state = { written: 0 };
  const upstream = await startUpstream('flask', (req, res) => {
    if (req.url !== '/big') return void res.end('ok'); // the proxy's own /ping and /stats/ polls
    const chunk = Buffer.alloc(MiB, 1);
    res.writeHead(200, { 'content-length': total });
    const pump = (): void => {
      while (state.written < total) {
        state.written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  t.teardown(() => upstream.close());
  return { upstream, state };
}

/** GETs /big, reads nothing until `stalled()` resolves, then everything; resolves to the bytes read. */
function stallingClient(url: string, stalled: () => Promise<void>): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    request(`${url}/big`, { agent: false }, (res) => {
      res.pause();
      let got = 0;
      void stalled().then(() => {
        res.on('data', (c: Buffer) => (got += c.length));
        res.on('end', () => resolve(got));
        res.resume();
      }, reject);
    })
      .on('error', reject)
      .end();
  });
}

t.test('a slow client: the proxy takes the whole answer at once into a 0600 temp file, not memory, and removes it', async (t) => {
  const total = 256 * MiB;
  const { upstream, state } = await bigUpstream(t, total);
  const bufferDir = t.testdir({});
  const proxy = await startCliProxy(t, upstream.url, ['--buffer-dir', bufferDir]);
  const baseline = rssOf(proxy.pid);
  const watch = watchRss(proxy.pid);
  let spill = { files: 0, mode: 0, growth: 0 };
  const got = await stallingClient(proxy.url, async () => {
    // The upstream is done long before the client reads a byte: no worker of its is held.
    await until(() => state.written >= total, 15_000, 50);
    await sleep(200);
    const files = readdirSync(bufferDir);
    spill = { files: files.length, mode: files.length === 1 ? statSync(join(bufferDir, files[0]!)).mode & 0o777 : 0, growth: rssOf(proxy.pid) - baseline };
  });
  const growth = watch.stop() - baseline;
  t.equal(got, total, 'the whole response arrived');
  t.equal(state.written, total, 'the upstream wrote all of it while the client read nothing');
  t.equal(spill.files, 1, 'held in one temp file');
  t.equal(spill.mode, 0o600, 'readable by the proxy only');
  t.ok(spill.growth < GROWTH, `RSS grew ${(spill.growth / MiB).toFixed(1)} MB while holding ${total / MiB} MB for the client`);
  t.ok(growth < PEAK_GROWTH, `peak RSS growth over the whole transfer: ${(growth / MiB).toFixed(1)} MB`);
  await until(() => readdirSync(bufferDir).length === 0, 1000);
  t.same(readdirSync(bufferDir), [], 'the temp file is removed when the exchange ends');
});

t.test('--no-response-buffering: a slow client slows the upstream down, and the proxy holds nothing', async (t) => {
  const total = 512 * MiB;
  const { upstream, state } = await bigUpstream(t, total);
  const proxy = await startCliProxy(t, upstream.url, ['--no-response-buffering']);
  const baseline = rssOf(proxy.pid);
  const watch = watchRss(proxy.pid);
  let stalled = { upstreamWrote: 0, growth: 0 };
  const got = await stallingClient(proxy.url, async () => {
    await sleep(1400);
    stalled = { upstreamWrote: state.written, growth: rssOf(proxy.pid) - baseline };
  });
  const growth = watch.stop() - baseline;
  t.equal(got, total, 'the whole response arrived');
  // Backpressure reaches the upstream: while the client reads nothing, only what fits in
  // socket buffers has left the upstream, and the proxy holds none of the rest.
  t.ok(stalled.upstreamWrote < 32 * MiB, `upstream could write ${stalled.upstreamWrote / MiB} of ${total / MiB} MB while the client stalled`);
  t.ok(stalled.growth < GROWTH, `RSS grew ${(stalled.growth / MiB).toFixed(1)} MB while the client stalled`);
  t.ok(growth < PEAK_GROWTH, `peak RSS growth over the whole ${total / MiB} MB transfer: ${(growth / MiB).toFixed(1)} MB`);
});
