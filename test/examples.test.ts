/**
 * examples/: the Flask and FastAPI model servers the README's quick start runs with Debian's
 * gunicorn and uvicorn. Each must pass the checks drum-splitter runs on a DRUM server (`verify`),
 * and the proxy must split between them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { freePort, runCli, send, startTestProxy } from './helpers/net.js';
import { until } from './helpers/wait.js';

const EXAMPLES = fileURLToPath(new URL('../examples/', import.meta.url));

/** Starts a server command on a free port; killed on teardown. Resolves to its URL once /ping answers. */
async function start(command: (port: number) => string[]): Promise<string> {
  const port = await freePort();
  const [bin, ...args] = command(port);
  const child: ChildProcess = spawn(bin!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  t.teardown(() => void child.kill('SIGKILL'));
  const url = `http://127.0.0.1:${port}`;
  await until(async () => {
    if (child.exitCode !== null) throw new Error(`${bin} exited: ${stderr}`);
    return (await send(`${url}/ping`).catch(() => undefined))?.status === 200;
  }, 20_000);
  return url;
}

// Debian's: they run under /usr/bin/python3, which has python3-flask and python3-fastapi (.ci/run).
const [flask, fastapi] = await Promise.all([
  start((port) => ['/usr/bin/gunicorn', '-w', '1', '-b', `127.0.0.1:${port}`, '--chdir', EXAMPLES, 'flask_app:app']),
  start((port) => ['/usr/bin/uvicorn', '--app-dir', EXAMPLES, '--host', '127.0.0.1', '--port', String(port), 'fastapi_app:app']),
]);

t.test('each example passes the verification drum-splitter runs after a rollback', async (t) => {
  const dir = t.testdir({});
  const single = join(dir, 'single.csv');
  const batch = join(dir, 'batch.csv');
  writeFileSync(single, 'a,b\n1,2\n');
  writeFileSync(batch, 'a,b\n1,2\n3,4\n5,6\n');
  for (const url of [flask, fastapi]) {
    const r = await runCli(['verify', '--upstream', url, '--request', single, '--request', batch]);
    t.equal(r.code, 0, `${url}: verified`, { stdout: r.stdout, stderr: r.stderr });
    t.notMatch(r.stdout, /skip/, 'no item skipped');
  }
});

t.test('the proxy splits between them; each says which it is and reports drum_rss', async (t) => {
  const proxy = await startTestProxy({ upstreams: [`flask=${flask}`, `fastapi=${fastapi}`], weights: { fastapi: 50 } });
  t.teardown(() => proxy.close());
  const seen = new Set<string>();
  for (let i = 0; i < 40 && seen.size < 2; i++) {
    const r = await send(`${proxy.url}/predict/?i=${i}`, { method: 'POST', body: 'a,b\n1,2\n', headers: { 'content-type': 'text/csv' } });
    t.equal(r.status, 200);
    t.same(JSON.parse(r.body.toString()), { predictions: [3] });
    seen.add(String(r.headers['x-drum-splitter-upstream']));
  }
  t.same([...seen].sort(), ['fastapi', 'flask'], 'both answered');
  for (const [url, name] of [[flask, 'flask'], [fastapi, 'fastapi']] as const) {
    t.match(JSON.parse((await send(`${url}/info/`)).body.toString()), { drumServer: name });
    t.match(JSON.parse((await send(`${url}/stats/`)).body.toString()), { mem_info: { drum_rss: Number } });
  }
});
