/**
 * Bodies stream through without buffering: measured on the real CLI in its own process,
 * by sampling its resident set size from /proc while a large body passes.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import t, { type Test } from 'tap';
import { freePort, spawnBuiltCli, startUpstream, waitForLine } from './helpers/net.js';

const MiB = 2 ** 20;

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/** Samples a process's RSS every 25 ms until stopped; resolves to the peak. */
function watchRss(pid: number): { stop(): number } {
  let peak = rssOf(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 25);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssOf(pid));
    },
  };
}

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

async function startCliProxy(t: Test, upstreamUrl: string) {
  const port = await freePort();
  const child = spawnBuiltCli(['serve', '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0', '--upstream', `flask=${upstreamUrl}`, '--body-limit', '2GiB']);
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  await waitForLine(child, /"msg":"listening"/);
  return { url: `http://127.0.0.1:${port}`, pid: child.pid! };
}

t.test('a 1 GiB upload grows the proxy RSS by less than 50 MB', async (t) => {
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
  t.ok(growth < 50 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MB (baseline ${(baseline / MiB).toFixed(0)} MB)`);
});

t.test('a slow client does not make the proxy buffer the response', async (t) => {
  const total = 512 * MiB;
  let written = 0;
  const upstream = await startUpstream('flask', (req, res) => {
    if (req.url !== '/big') return void res.end('ok'); // the proxy's own /ping and /stats/ polls
    const chunk = Buffer.alloc(MiB, 1);
    res.writeHead(200, { 'content-length': total });
    const pump = (): void => {
      while (written < total) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  t.teardown(() => upstream.close());
  const proxy = await startCliProxy(t, upstream.url);
  const baseline = rssOf(proxy.pid);
  const watch = watchRss(proxy.pid);
  let got = 0;
  let stalled = { upstreamWrote: 0, growth: 0 };
  await new Promise<void>((resolve, reject) => {
    request(`${proxy.url}/big`, { agent: false }, (res) => {
      res.pause(); // a client that reads nothing for a while
      setTimeout(() => {
        stalled = { upstreamWrote: written, growth: rssOf(proxy.pid) - baseline };
      }, 1400);
      setTimeout(() => {
        res.on('data', (c: Buffer) => (got += c.length));
        res.on('end', resolve);
        res.resume();
      }, 1500);
    })
      .on('error', reject)
      .end();
  });
  const growth = watch.stop() - baseline;
  t.equal(got, total, 'the whole response arrived');
  // Backpressure reaches the upstream: while the client reads nothing, only what fits in
  // socket buffers has left the upstream, and the proxy holds none of the rest.
  t.ok(stalled.upstreamWrote < 32 * MiB, `upstream could write ${stalled.upstreamWrote / MiB} of ${total / MiB} MB while the client stalled`);
  t.ok(stalled.growth < 50 * MiB, `RSS grew ${(stalled.growth / MiB).toFixed(1)} MB while the client stalled`);
  t.ok(growth < 100 * MiB, `peak RSS growth over the whole ${total / MiB} MB transfer: ${(growth / MiB).toFixed(1)} MB`);
});
