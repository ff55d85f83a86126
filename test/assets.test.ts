/** The shipped config and Dockerfile do what they say. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { buildConfig, readConfigFile } from '../src/config/config.js';
import { SETTING_KEYS } from '../src/config/settings.js';
import { parsePercent } from '../src/common/percent.js';
import { compileSplit } from '../src/proxy/split.js';
import type { Share } from '../src/weights/shares.js';
import { freePort, send, spawnBuiltCli, startUpstream, waitForLine } from './helpers/net.js';

const root = fileURLToPath(new URL('..', import.meta.url));

t.test('config/drum-splitter.yaml is the seed\'s nginx recipe', async (t) => {
  const config = buildConfig(readConfigFile(`${root}config/drum-splitter.yaml`));
  t.same(config.upstreams.map((u) => [u.name, u.url.href]), [['flask', 'http://127.0.0.1:8080/'], ['fastapi', 'http://127.0.0.1:8081/']]);
  t.equal(config.key, '${remote_addr}${uri}');
  t.equal(config.fallback, 'connect', 'a dead canary costs no client: the default, said in the file');
  // The fixture's s1 split was written to nginx as "1% fastapi; * flask;".
  const golden = JSON.parse(readFileSync(`${root}test/fixtures/nginx-golden.json`, 'utf8')) as {
    splits: { s1: { parts: [string, string][] } };
  };
  const shares: Share[] = golden.splits.s1.parts.filter(([p]) => p !== '*').map(([p, n]) => [n, parsePercent(p, n)]);
  t.same(compileSplit(config.weights, config.upstreams[0]!.name), compileSplit(shares, 'flask'));
});

t.test('config/drum-splitter.yaml shows every setting, and its values are the defaults', async (t) => {
  const text = readFileSync(`${root}config/drum-splitter.yaml`, 'utf8');
  for (const key of SETTING_KEYS.filter((k) => k !== 'split')) {
    t.match(text, new RegExp(`^(# )?${key}:`, 'm'), `${key} is in it, set or commented`);
  }
  t.match(text, /^# split: \{ key: /m, 'split (Option B in one place) too');
  // The file spells the defaults out, and its plan is the default plan: nothing in it surprises.
  // (Its upstreams and weights are the nginx recipe's, the test above.)
  const { upstreams: _u, weights: _w, ...fromFile } = buildConfig(readConfigFile(`${root}config/drum-splitter.yaml`));
  const { upstreams: _du, weights: _dw, ...defaults } = buildConfig({});
  t.same(fromFile, defaults);
});

const dockerfile = readFileSync(`${root}Dockerfile`, 'utf8');
/** An instruction's JSON-array argument, e.g. CMD ["a", "b"]. */
const execForm = (instruction: string): string[] => {
  const m = new RegExp(`^${instruction}\\s+(?:--\\S+\\s+)*(?:\\\\\\n\\s*)?(?:CMD\\s+)?(\\[.*\\])\\s*$`, 'm').exec(dockerfile);
  return JSON.parse(m![1]!) as string[];
};

t.test('Dockerfile: multi-stage, slim Node LTS, non-root, documented port', async (t) => {
  const froms = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]!);
  t.ok(froms.length >= 2, 'a build stage and a run stage');
  t.strictSame(froms, ['node:24-bookworm-slim', 'node:24-bookworm-slim'], 'builds and runs on Node 24 LTS, slim');
  t.match(dockerfile, /^RUN npm ci .*--omit=optional.* && npm prune --omit=dev --omit=optional$/m, 'the image\'s own Node: no node-linux-* package in it');
  const users = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]!);
  t.ok(users.length > 0 && !['root', '0'].includes(users.at(-1)!), 'runs as a non-root user');
  t.match(dockerfile, /^EXPOSE\s+8000\b/m);
  t.match(dockerfile, /^HEALTHCHECK\s/m);
});

t.test("the image's command serves, and its HEALTHCHECK tells up from down", async (t) => {
  const upstream = await startUpstream('flask');
  t.teardown(() => upstream.close());
  const port = await freePort();
  const adminPort = await freePort();
  const [node, script, ...args] = [...execForm('ENTRYPOINT'), ...execForm('CMD')];
  t.equal(node, 'node');
  // The image's own command, with this test's addresses in place of the container's.
  const child = spawnBuiltCli([
    ...args, '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${adminPort}`,
    '--upstream', `flask=${upstream.url}`, '--upstream', `fastapi=${upstream.url}`,
  ]);
  t.equal(script, 'dist/src/cli/main.js');
  await waitForLine(child, /"msg":"listening"/);
  t.equal((await send(`http://127.0.0.1:${port}/ping`)).status, 200);

  const [hcNode, ...hcArgs] = execForm('HEALTHCHECK').map((a) => a.replace('9901', String(adminPort)));
  t.equal(hcNode, 'node');
  t.equal(spawnSync(process.execPath, hcArgs).status, 0, 'healthy while serving');
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  t.not(spawnSync(process.execPath, hcArgs).status, 0, 'unhealthy once stopped');
});
