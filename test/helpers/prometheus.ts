/**
 * Debian's Prometheus, scraping the given admin listeners every second, for the tests that need a
 * real one; and a stand-in answering what a real one answered (test/fixtures/prometheus), for
 * those that need set answers.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { request } from 'undici';
import { fleetQueries } from '../../src/fleet/prometheus.js';
import type { RolloutPlan } from '../../src/rollout/plan.js';
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

export type Answer = { status: string; data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] } };
/** Odd: the same queries made to answer NaN, +Inf, -Inf or negative numbers (see record.mjs). */
export type Odd = 'NaN' | '+Inf' | '-Inf' | 'negative';
/** A real Prometheus's answers to the fleet's queries, by query key (test/fixtures/prometheus/record.mjs records them). */
export const recorded = JSON.parse(readFileSync(new URL('../fixtures/prometheus/answers.json', import.meta.url), 'utf8')) as Record<'quiet' | 'traffic', Record<string, Answer>> & {
  odd: Record<Odd, Record<string, Answer>>;
  error: unknown;
  matrix: unknown;
};
/** The traffic's answers with fastapi's own taken from flask's: a canary as healthy as its baseline, so a pass. */
export const healthy: Record<string, Answer> = {
  ...recorded.traffic,
  ...Object.fromEntries(['requests', 'errors', 'latency', 'rss'].map((what) => [`${what}:fastapi`, recorded.traffic[`${what}:flask`]!])),
};

/** A stand-in Prometheus on a real socket, stopped at the test's end by the caller: answers each query as told. */
export async function fakePrometheus(answer: (query: string, time: string) => { status?: number; body: string }): Promise<Server & { url: string; queries: string[] }> {
  const queries: string[] = [];
  const server = createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    queries.push(u.searchParams.get('query')!);
    const a = answer(u.searchParams.get('query')!, u.searchParams.get('time')!);
    res.statusCode = a.status ?? 200;
    res.end(a.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return Object.assign(server, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, queries });
}

/** A stand-in answering each of `plan`'s queries, whatever its window, from the set `answers()` gives now. */
export function prometheusAnswering(plan: Pick<RolloutPlan, 'baseline' | 'canary'>, answers: () => Record<string, Answer>): ReturnType<typeof fakePrometheus> {
  const windowless = (q: string): string => q.replace(/\[\d+s\]/, '[]');
  const keyOf = new Map(Object.entries(fleetQueries(plan, 1)).map(([k, q]) => [windowless(q), k]));
  // A query the recording has no answer for (the cohort rules' counts, with no rules) has no series.
  const none: Answer = { status: 'success', data: { resultType: 'vector', result: [] } };
  return fakePrometheus((q) => ({ body: JSON.stringify(answers()[keyOf.get(windowless(q))!] ?? none) }));
}
