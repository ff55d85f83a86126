/**
 * 100 weight changes through the admin API while traffic flows: no request fails, and every
 * one is served by the bucket of its key under a split in force while it was in flight.
 */
import { Agent, request } from 'undici';
import t from 'tap';
import { startApp } from '../src/app.js';
import { compileSplit, hashKey, pickByHash, type SplitTable } from '../src/proxy/split.js';
import { silentLog, startUpstream } from './helpers/net.js';

t.test('100 flips under continuous load: zero failed or mis-served requests', async (t) => {
  const flask = await startUpstream('flask');
  const fastapi = await startUpstream('fastapi');
  const app = await startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: [`flask=${flask.url}`, `fastapi=${fastapi.url}`], weights: ['fastapi=50'] } },
    { env: {}, log: silentLog },
  );
  t.teardown(async () => {
    await app.close();
    await Promise.all([flask.close(), fastapi.close()]);
  });
  const traffic = `http://127.0.0.1:${app.proxy.address.port}`;
  const admin = `http://127.0.0.1:${app.adminAddress.port}`;
  // The split of each version, from the audit trail, which the store writes in the same
  // synchronous step as the switch (so a version seen by a request is always there).
  const tableOf = (version: number): SplitTable => {
    const entry = app.store.history.find((h) => h.version === version)!;
    return compileSplit([['fastapi', Math.round(entry.to.fastapi! * 100)]], 'flask');
  };

  const paths = Array.from({ length: 64 }, (_, i) => `/predict/${i}`);
  const agent = new Agent({ connections: 32 });
  let flipping = true;
  let sent = 0;
  const failures: string[] = [];

  const worker = async (w: number): Promise<void> => {
    for (let i = w; flipping; i += 7) {
      const path = paths[i % paths.length]!;
      const before = app.store.state.version;
      try {
        const res = await request(traffic + path, { dispatcher: agent });
        const text = await res.body.text();
        const after = app.store.state.version;
        sent++;
        const header = String(res.headers['x-drum-splitter-upstream']);
        const served = (JSON.parse(text) as { upstream: string }).upstream;
        const allowed = new Set<string>();
        for (let v = before; v <= after; v++) allowed.add(pickByHash(tableOf(v), hashKey(Buffer.from(`127.0.0.1${path}`)))!);
        if (res.statusCode !== 200 || header !== served || !allowed.has(served)) {
          failures.push(`${path}: ${res.statusCode} header=${header} body=${served} allowed=${[...allowed].join('|')} v${before}..${after}`);
        }
      } catch (err) {
        failures.push(`${path}: ${(err as Error).message}`);
      }
    }
  };
  const load = Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));

  let seed = 7;
  for (let flip = 0; flip < 100; flip++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const percent = (seed % 10001) / 100; // 0.00 .. 100.00
    const res = await request(`${admin}/weights`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ weights: { fastapi: percent }, reason: `flip ${flip}` }),
    });
    await res.body.dump();
    t.equal(res.statusCode, 200);
    await new Promise((r) => setTimeout(r, 5));
  }
  flipping = false;
  await load;
  await agent.close();

  t.ok(app.store.state.version >= 90, `${app.store.state.version - 1} changes applied (equal neighbours make no change)`);
  t.ok(sent > 500, `${sent} requests during the flips`);
  t.same(failures.slice(0, 10), [], 'no failed or mis-served request');
  t.equal(failures.length, 0);
});
