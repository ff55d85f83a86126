/** Debian's Prometheus, scraping the given admin listeners every second, for the tests that need a real one. */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { request } from 'undici';
import { freePort } from './net.js';
import { until } from './wait.js';

export const PROMETHEUS = process.env.PROMETHEUS ?? 'prometheus';
/** Why a test is skipped, or false when Prometheus is installed. */
export const prometheusMissing: string | false = spawnSync(PROMETHEUS, ['--version']).status === 0 ? false : `${PROMETHEUS} not installed (Debian package prometheus)`;

export interface RunningPrometheus {
  readonly url: string;
  /** An instant query's result by the value of `label` (server_type unless told). */
  query(q: string, label?: string): Promise<Record<string, number>>;
  /** Polls `q` until `ok` holds of its result, or 30 s pass (Prometheus starts slowly on a busy machine). */
  eventually(q: string, ok: (r: Record<string, number>) => boolean): Promise<Record<string, number>>;
}

/** Starts Prometheus scraping `targets` (HOST:PORT) every second; stopped at the test's end. */
export async function startPrometheus(t: Test, targets: readonly string[]): Promise<RunningPrometheus> {
  // Its own directory: the test's testdir is the test's to use (and t.testdir() empties it).
  const dir = mkdtempSync(join(tmpdir(), 'drum-prometheus-'));
  const port = await freePort();
  writeFileSync(join(dir, 'prometheus.yml'), [
    'global: { scrape_interval: 1s, evaluation_interval: 1s }',
    'scrape_configs:',
    '  - job_name: drum-splitter',
    `    static_configs: [{ targets: [${targets.map((x) => JSON.stringify(x)).join(', ')}] }]`,
    '',
  ].join('\n'));
  const prom = spawn(PROMETHEUS, [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
  ], { stdio: 'ignore' });
  t.teardown(() => {
    prom.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${port}`;
  const query = async (q: string, label = 'server_type'): Promise<Record<string, number>> => {
    const res = await request(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = (await res.body.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    return Object.fromEntries(body.data.result.map((r) => [r.metric[label] ?? '', Number(r.value[1])]));
  };
  /** The query's answer once `ok` holds, or the last one after 30 s (the caller's checks then say what is wrong). */
  const eventually = async (q: string, ok: (r: Record<string, number>) => boolean): Promise<Record<string, number>> => {
    let r: Record<string, number> = {};
    await until(async () => ok((r = await query(q).catch(() => ({})))), 30_000, 250).catch(() => {});
    return r;
  };
  return { url, query, eventually };
}
