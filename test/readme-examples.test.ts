/**
 * The README's Quick start, run as a newcomer would type it: its commands are read from the
 * README (the ports swapped for free ones), so the test fails when they stop working. Both ways
 * to get two servers run: the stand-ins, and examples/ under Debian's gunicorn and uvicorn, which
 * must also pass the checks drum-splitter runs on a DRUM server (`verify`).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { freePort, runCli, send, spawnBuiltCli, waitForLine } from './helpers/net.js';
import { until } from './helpers/wait.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const quickStart = README.slice(README.indexOf('\n## Quick start'), README.indexOf('\n## ', README.indexOf('\n## Quick start') + 1));
/** The command lines of the Quick start's sh blocks, comments dropped. */
const commands = [...quickStart.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n')).map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l !== '');
const line = (prefix: string): string => {
  const found = commands.find((c) => c.startsWith(prefix));
  if (found === undefined) throw new Error(`the Quick start has no command starting "${prefix}"`);
  return found;
};

/** The README's ports, each replaced by a free one. */
const ports = new Map(await Promise.all(['8080', '8081', '8000', '9901'].map(async (p) => [p, String(await freePort())] as const)));
const local = (command: string): string => command.replace(/\b(8080|8081|8000|9901)\b/g, (p) => ports.get(p)!);
const url = (port: string): string => `http://127.0.0.1:${ports.get(port)!}`;
/** `drum-splitter ARGS` from a README line, as the CLI's argv (no shell quoting in these lines). */
const argv = (command: string): string[] => local(command).split(/\s+/).slice(1);

function started(child: ChildProcess): ChildProcess {
  t.teardown(() => void child.kill('SIGKILL'));
  return child;
}

async function answering(base: string): Promise<void> {
  await until(async () => (await send(`${base}/ping`).catch(() => undefined))?.status === 200, 20_000);
}

t.test('Quick start: two stand-ins, the proxy at 5%, curl, weights set and get', async (t) => {
  for (const server of ['flask', 'fastapi']) {
    const child = started(spawnBuiltCli(argv(line(`drum-splitter standin ${server}`))));
    await waitForLine(child, /stand-in on/);
  }
  const serve = started(spawnBuiltCli([...argv(line('drum-splitter serve')), '--listen', `127.0.0.1:${ports.get('8000')!}`, '--admin', `127.0.0.1:${ports.get('9901')!}`]));
  await waitForLine(serve, /"msg":"listening"/);
  const curl = await promisify(execFile)('bash', ['-c', local(line('curl '))]);
  t.match(curl.stdout, /^HTTP\/1\.1 200 OK/, 'curl: 200');
  t.match(curl.stdout, /x-drum-splitter-upstream: (flask|fastapi)/i, 'names the server that answered');
  t.match(curl.stdout, /\{"predictions":\[1\.5\]\}/, "the stand-in's prediction");
  const admin = ['--admin-url', url('9901')];
  const set = await runCli([...argv(line('drum-splitter weights set')), ...admin]);
  t.equal(set.code, 0, set.stderr);
  const get = await runCli([...argv(line('drum-splitter weights get')), ...admin]);
  t.equal(get.code, 0, get.stderr);
  t.match(get.stdout, /fastapi[^\n]*10/, 'the canary at 10%');
  t.equal((await send(`${url('9901')}/`)).status, 200, 'the console answers');
});

t.test('Quick start: examples/ under gunicorn and uvicorn pass the verification drum-splitter runs after a rollback', async (t) => {
  // Debian's: they run under /usr/bin/python3, which has python3-flask and python3-fastapi (.ci/run).
  for (const prefix of ['gunicorn ', 'uvicorn ']) {
    const [bin, ...args] = local(line(prefix)).replace(/^(gunicorn|uvicorn) /, '/usr/bin/$1 ').replace(/-w 2/, '-w 1').split(/\s+/);
    started(spawn(bin!, args, { cwd: ROOT, stdio: 'ignore' }));
  }
  const dir = t.testdir({});
  const [single, batch] = [join(dir, 'single.csv'), join(dir, 'batch.csv')];
  writeFileSync(single, 'a,b\n1,2\n');
  writeFileSync(batch, 'a,b\n1,2\n3,4\n5,6\n');
  for (const [port, name] of [['8080', 'flask'], ['8081', 'fastapi']] as const) {
    await answering(url(port));
    const r = await runCli(['verify', '--upstream', url(port), '--request', single, '--request', batch]);
    t.equal(r.code, 0, `${name}: verified`, { stdout: r.stdout, stderr: r.stderr });
    t.notMatch(r.stdout, /skip/, `${name}: no item skipped`);
    t.match(r.stdout, new RegExp(`info +GET /info/: ${name}`), `${name}: /info/ names it`);
  }
});
