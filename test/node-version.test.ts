/** drum-splitter on a Node.js it cannot run on: one line saying so, before undici fails in its own words. */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { NODE_MIN, unsupportedNode } from '../src/common/node-version.js';

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

t.test('the CLI under an older Node: exit 2, one line', { skip: systemNode === undefined ? 'no Node older than 22.19 on this machine' : false }, async (t) => {
  const cli = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
  const r = spawnSync(systemNode!, [cli, 'serve', '--listen', '127.0.0.1:0'], { encoding: 'utf8' });
  t.equal(r.status, 2);
  t.equal(r.stdout, '');
  t.match(r.stderr, /^drum-splitter: needs Node\.js 22\.19\.0 or newer, this is \d+\.\d+\.\d+; [^\n]+\n$/);
});
