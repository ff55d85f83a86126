import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InputError } from '../common/input-error.js';
import { createLogger } from '../common/log.js';
import { UPSTREAM_HEADER } from '../proxy/handler.js';
import { replayCommand } from '../replay/command.js';
import { startApp } from '../app.js';
import { createStandin } from './standin.js';

const CLIENTS = 400;
const REQUESTS_PER_CLIENT = 5;
const RECORD_SAMPLE = 0.1;
const SHADOW_SAMPLE = 0.2;
/** Every this-many-th client sends a CSV with no data rows, which DRUM answers with a 422. */
const MALFORMED_EVERY = 20;

/** Client `c`'s CSV: its own numbers, or (one client in MALFORMED_EVERY) a header and no rows. */
export const demoCsv = (c: number): string => (c % MALFORMED_EVERY === 0 ? 'x1,x2,x3\n' : `x1,x2,x3\n${c},2,3\n4,5,${c % 7}\n`);

/** Waits for `done`, checking every 10 ms (the first time after 10 ms: outcomes of the last answers may still be on their way). */
async function until(done: () => boolean): Promise<void> {
  do await sleep(10);
  while (!done());
}

/**
 * POSTs the demo CSV from a given local address, as if from a distinct host, so the split
 * key changes (undici's connector ignores localAddress; node:http honours it).
 * Resolves to the upstream that answered.
 */
function predictFrom(localAddress: string, url: string, csv: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', localAddress, headers: { 'content-type': 'text/csv' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.headers[UPSTREAM_HEADER.toLowerCase()])));
    });
    req.on('error', reject);
    req.end(csv);
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
  // The whole app, as serve runs it: the proxy, and the admin API with the console.
  const app = await startApp(
    {
      flags: {
        listen,
        admin: '127.0.0.1:0',
        upstreams: [`flask=${flaskUrl}`, `fastapi=${fastapiUrl}`],
        weights: ['fastapi=5'],
        record: recordFile,
        recordSample: RECORD_SAMPLE,
        shadowSample: SHADOW_SAMPLE,
      },
    },
    { env: {}, log: createLogger('warn') },
  );
  running.push({ close: () => app.close() });
  const { proxy, shadow } = app;
  const host = demoHost(app.config.listen.host);
  const target = `http://${host}:${proxy.address.port}`;

  console.log(`drum-splitter demo: flask stand-in ${flaskUrl}, fastapi stand-in ${fastapiUrl}`);
  console.log(`proxy on ${target}, split_clients "\${remote_addr}\${uri}" { 5% fastapi; * flask; }`);
  console.log(`console (the admin API's page): http://127.0.0.1:${app.adminAddress.port}/`);
  console.log(`recording ${RECORD_SAMPLE * 100}% of predictions to ${recordFile}`);
  console.log(`shadowing ${SHADOW_SAMPLE * 100}% of flask's predictions to fastapi, answers compared`);

  const served = new Map<string, number>();
  const clientsOn = new Map<string, Set<string>>();
  for (let c = 0; c < CLIENTS; c++) {
    const localAddress = `127.0.${1 + Math.floor(c / 250)}.${1 + (c % 250)}`;
    for (let r = 0; r < REQUESTS_PER_CLIENT; r++) {
      const upstream = await predictFrom(localAddress, `${target}/predict/`, demoCsv(c));
      served.set(upstream, (served.get(upstream) ?? 0) + 1);
      clientsOn.set(localAddress, (clientsOn.get(localAddress) ?? new Set()).add(upstream));
    }
  }

  const total = CLIENTS * REQUESTS_PER_CLIENT;
  console.log(`\nsent ${total} POST /predict/ from ${CLIENTS} client addresses (one in ${MALFORMED_EVERY} a CSV without rows):`);
  for (const line of splitReport(served, clientsOn, total)) console.log(line);

  await until(() => shadow.view().inflight === 0);
  const { counts } = shadow.view();
  console.log(`\nlive shadow: ${counts.match + counts.mismatch} copies compared, ${counts.match} match, ${counts.mismatch} mismatch`);
  shadow.change({ enabled: false });

  // The recording is closed so the replay reads every line; the proxy serves on without it.
  await proxy.recording.close();
  const dir = dirname(recordFile);
  const output = join(dir, 'shadow_test_results.json');
  const html = join(dir, 'shadow_test_results.html');
  console.log(`\nreplaying the recording against both stand-ins (drum-splitter replay):`);
  const code = await replayCommand({ baseline: flaskUrl, canary: fastapiUrl, 'requests-file': [recordFile], output, html }, [], {
    stdout: () => {},
    // Its verdicts, not its progress lines.
    stderr: (text) => (/^replay: \d+% /.test(text) ? undefined : console.log(`  ${text}`)),
    stderrIsTTY: false,
  });
  console.log(`  exit code ${code}: the fastapi stand-in answers a 422 in FastAPI's shape ({"detail": ...}), flask's is {"message": ...}`);
  console.log(`  open the report: file://${html}`);
  console.log(`\nstill serving; try:
  curl -s ${target}/info/
  curl -s -X POST -H 'Content-Type: text/csv' --data-binary $'a,b\\n1,2\\n' ${target}/predict/ -i
  wc -l ${recordFile}
replay the recording again (while this runs), or with the seed's Option A script:
  drum-splitter replay --baseline ${flaskUrl} --canary ${fastapiUrl} ${recordFile}
  python3 shadow_replay_test.py --flask-url ${flaskUrl} --fastapi-url ${fastapiUrl} --requests-file ${recordFile}
watch it, and steer it, in the console: http://127.0.0.1:${app.adminAddress.port}/
Ctrl-C to stop.`);
}
