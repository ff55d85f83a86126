import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '../config/config.js';
import { InputError } from '../common/input-error.js';
import { createLogger } from '../common/log.js';
import { UPSTREAM_HEADER } from '../proxy/handler.js';
import { startProxy } from '../proxy/listener.js';
import { createStandin } from './standin.js';

const CLIENTS = 400;
const REQUESTS_PER_CLIENT = 5;
const CSV = 'x1,x2,x3\n1,2,3\n4,5,6\n';
const RECORD_SAMPLE = 0.1;

/**
 * POSTs the demo CSV from a given local address, as if from a distinct host, so the split
 * key changes (undici's connector ignores localAddress; node:http honours it).
 * Resolves to the upstream that answered.
 */
function predictFrom(localAddress: string, url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', localAddress, headers: { 'content-type': 'text/csv' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.headers[UPSTREAM_HEADER.toLowerCase()])));
    });
    req.on('error', reject);
    req.end(CSV);
  });
}

/**
 * The host the demo's clients, which send from 127.0.x.y, use to reach a proxy listening on
 * `host`: a wildcard (0.0.0.0, or [::], which is dual-stack) on 127.0.0.1; an IPv6 address
 * cannot be reached from those IPv4 clients at all.
 */
export function demoHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  if (isIP(host) === 6) {
    throw new InputError(`the demo's clients send from 127.0.x.y and cannot reach ${host}; use an IPv4 address or [::]`, 'listen');
  }
  return host;
}

/**
 * The split the burst came out with: requests and share per backend, and whether every
 * client stayed on one backend (the stickiness split_clients promises).
 */
export function splitReport(
  served: ReadonlyMap<string, number>,
  clientsOn: ReadonlyMap<string, ReadonlySet<string>>,
  total: number,
): string[] {
  const lines = ['flask', 'fastapi'].map((name) => {
    const n = served.get(name) ?? 0;
    return `  ${name.padEnd(8)} ${String(n).padStart(5)}  ${((100 * n) / total).toFixed(1)}%`;
  });
  const sticky = [...clientsOn.values()].every((s) => s.size === 1);
  lines.push(`  every client stayed on one backend: ${sticky ? 'yes' : 'NO'}`);
  return lines;
}

/**
 * Two DRUM stand-ins behind the proxy at 5% to the second, a burst of predictions from
 * many client addresses (127.0.x.y, all loopback), the split that came out, then it keeps
 * serving for curl.
 */
export async function runDemo(listen: string): Promise<void> {
  // Everything started so far; closed if a later step fails, or the open servers would
  // keep the process alive after the error is reported.
  const running: { close(): Promise<unknown> }[] = [];
  const closeAll = (): Promise<unknown> => Promise.all(running.map((s) => s.close()));
  try {
    await demo(listen, running);
  } catch (err) {
    await closeAll();
    throw err;
  }
  const stop = (): void => {
    void closeAll().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

async function demo(listen: string, running: { close(): Promise<unknown> }[]): Promise<void> {
  const flask = createStandin('flask');
  const fastapi = createStandin('fastapi');
  const flaskUrl = await flask.listen({ host: '127.0.0.1', port: 0 });
  running.push(flask);
  const fastapiUrl = await fastapi.listen({ host: '127.0.0.1', port: 0 });
  running.push(fastapi);
  const recordFile = join(mkdtempSync(join(tmpdir(), 'drum-splitter-demo-')), 'recorded_requests.jsonl');
  const config = buildConfig({
    listen,
    upstreams: [`flask=${flaskUrl}`, `fastapi=${fastapiUrl}`],
    weights: ['fastapi=5'],
    record: recordFile,
    recordSample: RECORD_SAMPLE,
  });
  const host = demoHost(config.listen.host);
  const proxy = await startProxy(config, createLogger('warn'));
  running.push(proxy);
  const target = `http://${host}:${proxy.address.port}`;

  console.log(`drum-splitter demo: flask stand-in ${flaskUrl}, fastapi stand-in ${fastapiUrl}`);
  console.log(`proxy on ${target}, split_clients "\${remote_addr}\${uri}" { 5% fastapi; * flask; }`);
  console.log(`recording ${RECORD_SAMPLE * 100}% of predictions to ${recordFile}`);

  const served = new Map<string, number>();
  const clientsOn = new Map<string, Set<string>>();
  for (let c = 0; c < CLIENTS; c++) {
    const localAddress = `127.0.${1 + Math.floor(c / 250)}.${1 + (c % 250)}`;
    for (let r = 0; r < REQUESTS_PER_CLIENT; r++) {
      const upstream = await predictFrom(localAddress, `${target}/predict/`);
      served.set(upstream, (served.get(upstream) ?? 0) + 1);
      clientsOn.set(localAddress, (clientsOn.get(localAddress) ?? new Set()).add(upstream));
    }
  }

  const total = CLIENTS * REQUESTS_PER_CLIENT;
  console.log(`\nsent ${total} POST /predict/ from ${CLIENTS} client addresses:`);
  for (const line of splitReport(served, clientsOn, total)) console.log(line);
  console.log(`\nstill serving; try:
  curl -s ${target}/info/
  curl -s -X POST -H 'Content-Type: text/csv' --data-binary $'a,b\\n1,2\\n' ${target}/predict/ -i
  wc -l ${recordFile}
replay the recording against both stand-ins with the seed's Option A script (while this runs):
  python3 shadow_replay_test.py --flask-url ${flaskUrl} --fastapi-url ${fastapiUrl} --requests-file ${recordFile}
Ctrl-C to stop.`);
}
