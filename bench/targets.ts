// The targets every bench measures, one process (or two) each, in front of one upstream:
// direct, drum-splitter in its configurations, nginx split_clients and the Node peers.
// Shared by `npm run bench:throughput` (run.ts, wrk at saturation) and `npm run bench:latency`
// (latency.ts, hey at fixed rates).
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DRUM_SPLITTER_CLI, countLines, drumSplitterArgs, startNode } from './common.js';
import { splitClientsHttp, startNginx } from './nginx.js';
import { freePort } from './proc.js';
import { SERVE_HEAP_FLAGS } from '../src/heap.js';

const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));

export interface Started { url: string; pid: number | undefined; stop(): Promise<void>; /** Set by stop(): what the run left behind, for the notes. */ note?: string }
export interface Ctx { upstreamUrl: string; upstreamPid: number | undefined; nginx: string | null; logDir: string }
/** A row of the table. New rows (recording on/off, workers 1/2) are just more entries. */
export interface Target { name: string; start(ctx: Ctx): Promise<Started> }
/** Thrown by start() when a row cannot run here; the row is printed with the reason, not as a failure. */
export class Skip extends Error {}

export const NGINX_ROW = 'nginx split_clients';

/** drum-splitter as a user runs it (defaults), 5% to the canary, with these extra flags. */
function drumSplitter(name: string, extra: (ctx: Ctx) => string[], check?: (ctx: Ctx) => string): Target {
  return {
    name,
    async start(ctx) {
      if (!existsSync(DRUM_SPLITTER_CLI)) throw new Skip('not built (dist/src/cli/main.js missing)');
      const port = await freePort();
      const started = await startNode(ctx.logDir, name, DRUM_SPLITTER_CLI, [...drumSplitterArgs(port, ctx.upstreamUrl), ...extra(ctx)], port);
      if (check === undefined) return started;
      const withNote: Started = { url: started.url, pid: started.pid, stop: async () => { await started.stop(); withNote.note = check(ctx); } };
      return withNote;
    },
  };
}

export const DRUM_SPLITTER_ROW = 'drum-splitter';
export const RECORDING_ROW = 'drum-splitter recording';

/** A recording row: its file in the log dir, and after the run how many lines it holds. */
function recording(rate: number): Target {
  const file = (ctx: Ctx): string => join(ctx.logDir, `recorded-${rate}.jsonl`);
  return drumSplitter(`${RECORDING_ROW} ${rate * 100}%`, (ctx) => {
    rmSync(file(ctx), { force: true }); // each run its own count
    return ['--record', file(ctx), '--record-sample', String(rate)];
  },
    (ctx) => `${countLines(file(ctx))} lines recorded`);
}


/** A proxy in bench/ (`SCRIPT.js PORT UPSTREAM_URL`) in front of the upstream: the peers and the floors. */
function nodeProxy(name: string, script: string, nodeArgs: readonly string[] = []): Target {
  return {
    name,
    async start(ctx) {
      const port = await freePort();
      return startNode(ctx.logDir, script, here(`./${script}.js`), [String(port), ctx.upstreamUrl.replace(/\/$/, '')], port, nodeArgs);
    },
  };
}

export const BARE_ROW = 'bare node:http + undici proxy';
export const BARE_HEAP_ROW = `${BARE_ROW} with drum-splitter's heap settings`;
export const ROLLOUT_ROW = `${DRUM_SPLITTER_ROW} rollout running`;
export const NODE_HTTP_PROXY_ROW = 'node-http-proxy';
export const FASTIFY_ROW = '@fastify/http-proxy';

/**
 * drum-splitter with every feature of the request path on: an in-proxy rollout started over its
 * admin API (the seed's plan, first step 1%), so each exchange also goes into the rollout's window.
 */
const rolloutRunning: Target = {
  name: ROLLOUT_ROW,
  async start(ctx) {
    if (!existsSync(DRUM_SPLITTER_CLI)) throw new Skip('not built (dist/src/cli/main.js missing)');
    const [port, admin] = [await freePort(), await freePort()];
    const started = await startNode(ctx.logDir, 'rollout', DRUM_SPLITTER_CLI, [...drumSplitterArgs(port, ctx.upstreamUrl), '--admin', `127.0.0.1:${admin}`], port);
    const res = await fetch(`http://127.0.0.1:${admin}/rollout/start`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"reason":"bench","force":true}' });
    if (!res.ok) {
      await started.stop();
      throw new Error(`POST /rollout/start: ${res.status} ${await res.text()}`);
    }
    return started;
  },
};

export const targets: Target[] = [
  { name: 'direct', start: async (ctx) => ({ url: ctx.upstreamUrl, pid: ctx.upstreamPid, stop: async () => {} }) },
  drumSplitter(DRUM_SPLITTER_ROW, () => []),
  rolloutRunning,
  recording(0.01),
  recording(1),
  drumSplitter(`${DRUM_SPLITTER_ROW} --workers 2`, () => ['--workers', '2']),
  {
    name: NGINX_ROW,
    async start(ctx) {
      if (!ctx.nginx) throw new Skip('skipped: nginx not installed');
      const port = await freePort();
      return startNginx(ctx.nginx, 'split', port, splitClientsHttp(port, [
        { name: 'fastapi', url: ctx.upstreamUrl, percent: 5 },
        { name: 'flask', url: ctx.upstreamUrl },
      ]));
    },
  },
  // The floor: what node:http and undici cost with none of our features.
  nodeProxy(BARE_ROW, 'bare-proxy'),
  // The floor again, under the V8 heap settings `serve` applies (src/heap.ts): drum-splitter's CPU
  // over this row is what the features cost.
  nodeProxy(BARE_HEAP_ROW, 'bare-proxy', SERVE_HEAP_FLAGS),
  // Not a usable proxy: the bound on what any client replacing undici could give (minimal-proxy.ts).
  nodeProxy('node:http + minimal hand-rolled client', 'minimal-proxy'),
  {
    // The ceiling: Node answering the prediction itself, no upstream (a proxy does this and more).
    name: 'node:http answering itself',
    async start(ctx) {
      const port = await freePort();
      return startNode(ctx.logDir, 'node-http', here('./upstream.js'), [String(port)], port);
    },
  },
  nodeProxy(NODE_HTTP_PROXY_ROW, 'node-http-proxy'),
  nodeProxy(FASTIFY_ROW, 'fastify-proxy'),
];

