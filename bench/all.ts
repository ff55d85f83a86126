// `npm run bench` (not CI; about an hour here): every bench in turn — throughput, latency, memory
// and the heap settings, allocation, Node versions, how cost grows, a 10-minute soak — each
// printing its own tables, then the gates they judged in one table (docs/performance.md,
// Gates). Their environment variables pass through (BENCH_DURATION, BENCH_ROUNDS, …); each
// runs alone too (`npm run bench:throughput`, …).
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BUILT, type Gate } from './common.js';
import { makeTempDir } from './proc.js';

const BENCHES: readonly { script: string; args?: readonly string[] }[] = [
  { script: 'run.js' },
  { script: 'latency.js' },
  { script: 'memory.js' },
  { script: 'alloc.js' },
  { script: 'runtimes.js' },
  { script: 'growth.js' },
  { script: 'soak.js' },
];

const dir = makeTempDir('bench-all-');
const gates = join(dir, 'gates.jsonl');
const failed: string[] = [];
for (const b of BENCHES) {
  process.stderr.write(`\nbench: ${b.script}\n`);
  const r = spawnSync(process.execPath, [join(BUILT, 'bench', b.script), ...(b.args ?? [])], { stdio: 'inherit', env: { ...process.env, BENCH_GATES: gates } });
  if (r.status !== 0) failed.push(`${b.script} (exit ${r.status ?? r.signal})`);
  process.stdout.write('\n');
}

let judged: (Gate & { date: string; node: string })[] = [];
try {
  judged = readFileSync(gates, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Gate & { date: string; node: string });
} catch {
  // no bench judged a gate
}
rmSync(dir, { recursive: true, force: true });
const verdict = (met: Gate['met']): string => (met === true ? 'met' : met === false ? '**not met**' : met);
process.stdout.write([
  '## Gates',
  '',
  '| gate | bar | measured | met | when, Node, command |',
  '|---|---|---|---|---|',
  ...judged.map((g) => `| ${g.name} | ${g.bar} | ${g.figure} | ${verdict(g.met)} | ${g.date.slice(0, 10)}, ${g.node}, \`${g.command}\` |`),
  '',
  ...(failed.length ? [`benches that failed: ${failed.join(', ')}`, ''] : []),
].join('\n'));
process.exit(failed.length ? 1 : 0);
