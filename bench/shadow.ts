// `npm run bench:shadow` (not CI): does the live shadow cost the client anything? drum-splitter
// with the canary at 0% and the shadow at 100% of the baseline's requests, its shadow upstream
// healthy, 1 s slow, or down, next to the same proxy with no shadow, in one run; hey sends the
// bench's prediction at a fixed rate (the rates a DRUM pod sees, not saturation) and reports the
// client's latency. The bar: with a slow or dead shadow, the client's p99 stays within
// the no-shadow run's, and no client request fails.
// Markdown to stdout, progress to stderr. Exit 1 if a client request failed.
// Env: BENCH_RATE (500 req/s), BENCH_DURATION (10 s), BENCH_WARMUP (2 s), BENCH_ROUNDS (3), NGINX_BIN.
import { fileURLToPath } from 'node:url';
import { DRUM_SPLITTER_CLI, REQUEST_BODY, REQUEST_PATH, envInt, machineLine, median, rotatedRounds, startNode, startUpstream } from './common.js';
import { heyArgs, heyAvailable, runHey, type HeyOptions, type HeyResult } from './hey.js';
import { findNginx, nginxVersion } from './nginx.js';
import { freePort, installCleanup, makeTempDir } from './proc.js';

interface Row { name: string; shadowUrl: (c: Shadows) => string; sample: string }
interface Shadows { healthy: string; slow: string; down: string }

const ROWS: Row[] = [
  { name: 'no shadow', shadowUrl: (s) => s.healthy, sample: '0' },
  { name: 'shadow 100% → healthy', shadowUrl: (s) => s.healthy, sample: '1' },
  { name: 'shadow 100% → 1 s slow', shadowUrl: (s) => s.slow, sample: '1' },
  { name: 'shadow 100% → down', shadowUrl: (s) => s.down, sample: '1' },
];

interface Run { result: HeyResult; counts: Record<string, number> }

async function main(): Promise<number> {
  if (!heyAvailable()) {
    process.stderr.write('bench:shadow: hey not found on PATH (Debian/Ubuntu: apt-get install hey)\n');
    return 2;
  }
  installCleanup();
  const rate = envInt('BENCH_RATE', 500);
  const duration = envInt('BENCH_DURATION', 10);
  const warmup = envInt('BENCH_WARMUP', 2);
  const rounds = envInt('BENCH_ROUNDS', 3);
  const workers = 10;
  const logDir = makeTempDir('bench-shadow-');
  const nginx = findNginx();
  const upstream = await startUpstream(nginx, logDir);
  const slowPort = await freePort();
  const slow = await startNode(logDir, 'slow-shadow', fileURLToPath(new URL('./upstream.js', import.meta.url)), [String(slowPort), '1000'], slowPort);
  const shadows: Shadows = { healthy: upstream.url, slow: slow.url, down: `http://127.0.0.1:${await freePort()}/` };
  const load = (url: string, durationSec: number): HeyOptions => ({ url, rate, workers, durationSec, body: REQUEST_BODY, contentType: 'text/csv' });

  async function measure(row: Row): Promise<Run> {
    process.stderr.write(`bench:shadow: ${row.name} … `);
    const port = await freePort();
    const admin = await freePort();
    const proxy = await startNode(logDir, 'drum-splitter', DRUM_SPLITTER_CLI, [
      'serve', '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`, '--log-level', 'warn',
      '--upstream', `flask=${upstream.url.replace(/\/$/, '')}`, '--upstream', `fastapi=${row.shadowUrl(shadows).replace(/\/$/, '')}`,
      '--weight', 'fastapi=0', '--shadow-sample', row.sample,
    ], port);
    try {
      await runHey(load(proxy.url + REQUEST_PATH, warmup));
      const result = await runHey(load(proxy.url + REQUEST_PATH, duration));
      const view = (await (await fetch(`http://127.0.0.1:${admin}/shadow`)).json()) as { counts: Record<string, number> };
      process.stderr.write(`p99 ${result.p99Ms?.toFixed(2)} ms, ${result.errors + result.non2xx} failed\n`);
      return { result, counts: view.counts };
    } finally {
      await proxy.stop();
    }
  }

  let runs: Map<string, Run[]>;
  try {
    runs = await rotatedRounds(ROWS, rounds, measure);
  } finally {
    await Promise.all([upstream.stop(), slow.stop()]);
  }

  const p = (xs: (number | null)[]): number => median(xs.map((x) => x ?? NaN));
  const base = p(runs.get(ROWS[0]!.name)!.map((r) => r.result.p99Ms));
  const head = ['client sees', 'req/s', 'p50 ms', 'p99 ms', 'p99 vs no shadow', 'p99 per round', 'client failures', 'shadow results (last round)'];
  const body = ROWS.map((row) => {
    const rs = runs.get(row.name)!;
    const p99 = p(rs.map((r) => r.result.p99Ms));
    const failed = rs.reduce((n, r) => n + r.result.errors + r.result.non2xx, 0);
    const last = rs.at(-1)!.counts;
    return [
      row.name,
      p(rs.map((r) => r.result.rps)).toFixed(0),
      p(rs.map((r) => r.result.p50Ms)).toFixed(2),
      p99.toFixed(2),
      `${(p99 / base).toFixed(2)}×`,
      rs.map((r) => r.result.p99Ms?.toFixed(2)).join(' / '),
      String(failed),
      row.sample === '0' ? '–' : Object.entries(last).map(([k, v]) => `${k} ${v}`).join(', '),
    ];
  });
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  process.stdout.write([
    `command: \`BENCH_RATE=${rate} BENCH_DURATION=${duration} BENCH_WARMUP=${warmup} BENCH_ROUNDS=${rounds} npm run bench:shadow\``,
    `load: \`hey ${heyArgs(load('<proxy>/predict/', duration)).map((a) => (/[\s\n]/.test(a) ? JSON.stringify(a) : a)).join(' ')}\` (${rate} req/s in all), ${warmup}s warm-up, rows rotated each round, medians of ${rounds}`,
    `upstream: ${upstream.desc}; the slow shadow answers the same after 1 s; the dead one is a closed port`,
    machineLine(nginx ? nginxVersion(nginx) : null),
    '',
    line(head),
    line(head.map((_, i) => (i === 0 || i === head.length - 1 ? '---' : '---:'))),
    ...body.map(line),
    '',
  ].join('\n'));
  return [...runs.values()].flat().some((r) => r.result.errors + r.result.non2xx > 0) ? 1 : 0;
}

main().then((code) => process.exit(code), (e: unknown) => {
  process.stderr.write(`bench:shadow: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
