import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loopbackName } from '../admin/auth.js';
import { InputError } from '../common/input-error.js';
import { parseHostPort } from '../config/config.js';
import type { HostPort } from '../proxy/options.js';
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

/** The demo's flags, as main.ts reads them. */
export interface DemoOptions {
  /** The proxy, HOST:PORT. */
  readonly listen: string;
  /** The admin API and its console, HOST:PORT on loopback (port 0: a free one). */
  readonly admin: string;
  /** Leave the demo's folder (its recording, reports) when it ends. */
  readonly keep: boolean;
  /** End when the show ends, instead of serving on until Ctrl-C. */
  readonly exit: boolean;
}

/**
 * The console's address for --admin: on loopback only, since the demo's admin API has no token
 * and anything that reaches it could steer the proxy. Throws an InputError for any other.
 */
export function demoAdmin(value: string): HostPort {
  const address = parseHostPort(value, 'admin');
  if (!loopbackName(address.host)) {
    throw new InputError(`the demo's console has no token, so it listens on loopback only: 127.0.0.1:PORT, [::1]:PORT or localhost:PORT, not "${value}"`, 'admin');
  }
  return address;
}

/** The console's URL, for a browser: an IPv6 address in brackets. */
export const consoleUrl = (host: string, port: number): string => `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}/`;

interface Closable {
  close(): Promise<unknown>;
}

/**
 * What a demo started, and its folder in the system's temp directory: closed and removed (unless
 * --keep) once, however the demo ends — Ctrl-C, --exit, an error — so that no open server keeps the
 * process alive after an error and no drum-splitter-demo-* folder is left behind.
 */
export class DemoSession {
  readonly dir = mkdtempSync(join(tmpdir(), 'drum-splitter-demo-'));
  readonly #running: Closable[] = [];
  #ended: Promise<void> | undefined;

  constructor(
    readonly keep: boolean,
    readonly print: (line: string) => void,
  ) {}

  /** Where the demo's files are, and what becomes of them. */
  get about(): string {
    return `the demo's files: ${this.dir}, ${this.keep ? 'kept when it ends (--keep)' : 'removed when it ends (--keep keeps them)'}`;
  }

  /** Something to close at the end (the last started closed first). */
  add<T extends Closable>(c: T): T {
    this.#running.push(c);
    return c;
  }

  /** Closes everything and removes the folder, or says where it is when kept. Once: later calls wait for the first. */
  end(): Promise<void> {
    this.#ended ??= (async () => {
      for (const c of this.#running.reverse()) await c.close();
      if (this.keep) this.print(`kept ${this.dir}`);
      else rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.#ended;
  }
}

/**
 * Runs a demo's show in a session: Ctrl-C (or SIGTERM) at any point ends the session and the
 * process with exit code 0. After the show, with `exit` the session ends and this resolves to 0;
 * without, the lines the show returned are printed and this resolves to -1 (main.ts's "keeps
 * running"), the servers up until Ctrl-C. A show that fails ends the session and rethrows.
 */
export async function runShow(
  opts: Pick<DemoOptions, 'keep' | 'exit'>,
  print: (line: string) => void,
  show: (session: DemoSession) => Promise<string[]>,
): Promise<number> {
  const session = new DemoSession(opts.keep, print);
  // A show stopped midway fails on the servers closed under it; the exit registered here runs
  // before the rethrow below, which waits on the same end(), so that failure is never reported.
  const stop = (): void => void session.end().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let serving: string[];
  try {
    serving = await show(session);
  } catch (err) {
    await session.end();
    throw err;
  }
  if (!opts.exit) {
    for (const line of serving) print(line);
    return -1;
  }
  await session.end();
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  return 0;
}

/**
 * Two DRUM stand-ins behind the proxy at 5% to the second, a burst of predictions from many
 * client addresses (127.0.x.y, all loopback), the split that came out, what the live shadow
 * found, a replay of the recording; then it keeps serving, for curl and the console.
 */
export function runDemo(opts: DemoOptions): Promise<number> {
  const admin = demoAdmin(opts.admin);
  return runShow(opts, (line) => console.log(line), (session) => demo(opts, admin, session));
}

/** The replay's criteria that fail by design here: the stand-ins' 422s differ in shape. */
const BY_DESIGN = /^replay: FAIL (match_rate|error_responses_match)\b/;

async function demo(opts: DemoOptions, admin: HostPort, session: DemoSession): Promise<string[]> {
  const flask = session.add(createStandin('flask'));
  const flaskUrl = await flask.listen({ host: '127.0.0.1', port: 0 });
  const fastapi = session.add(createStandin('fastapi'));
  const fastapiUrl = await fastapi.listen({ host: '127.0.0.1', port: 0 });
  const recordFile = join(session.dir, 'recorded_requests.jsonl');
  // The whole app, as serve runs it: the proxy, and the admin API with the console.
  const app = await startApp(
    {
      flags: {
        listen: opts.listen,
        admin: opts.admin,
        upstreams: [`flask=${flaskUrl}`, `fastapi=${fastapiUrl}`],
        weights: ['fastapi=5'],
        record: recordFile,
        recordSample: RECORD_SAMPLE,
        shadowSample: SHADOW_SAMPLE,
      },
    },
    { env: {}, log: createLogger('warn') },
  );
  session.add({ close: () => app.close() });
  const { proxy, shadow } = app;
  const host = demoHost(app.config.listen.host);
  const target = `http://${host}:${proxy.address.port}`;
  const page = consoleUrl(admin.host, app.adminAddress.port);

  console.log(`drum-splitter demo: flask stand-in ${flaskUrl}, fastapi stand-in ${fastapiUrl}`);
  console.log(`proxy on ${target}, split_clients "\${remote_addr}\${uri}" { 5% fastapi; * flask; }`);
  console.log(`console (the admin API's page): ${page}`);
  console.log(`recording ${RECORD_SAMPLE * 100}% of predictions to ${recordFile}`);
  console.log(`shadowing ${SHADOW_SAMPLE * 100}% of flask's predictions to fastapi, answers compared`);
  console.log(session.about);

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
  console.log(`  the mismatches: the CSVs without rows, which both stand-ins answer with a 422, by design in different shapes (flask {"message": ...}, fastapi {"detail": ...})`);
  // Off once the burst is over: its recording complete for the replay, the shadow's counts as printed.
  shadow.change({ enabled: false });
  await proxy.recording.close();
  console.log(`\nrecording and shadow now switched off (the console shows both off): the burst is over, its recording complete for the replay`);

  const output = join(session.dir, 'shadow_test_results.json');
  const html = join(session.dir, 'shadow_test_results.html');
  console.log(`\nreplaying the recording against both stand-ins (drum-splitter replay); it finds the 422s, so match_rate and error_responses_match FAIL, by design:`);
  const code = await replayCommand({ baseline: flaskUrl, canary: fastapiUrl, 'requests-file': [recordFile], output, html }, [], {
    stdout: () => {},
    // Its verdicts, not its progress lines.
    stderr: (text) => (/^replay: \d+% /.test(text) ? undefined : console.log(`  ${text}${BY_DESIGN.test(text) ? '  ← by design' : ''}`)),
    stderrIsTTY: false,
  });
  console.log(`  exit code ${code} (1: a criterion failed; here the one difference the stand-ins were given)`);
  console.log(`  open the report: file://${html} (while the demo runs; ${session.about})`);
  return [
    `\nstill serving; try:
  curl -s ${target}/info/
  curl -s -X POST -H 'Content-Type: text/csv' --data-binary $'a,b\\n1,2\\n' ${target}/predict/ -i
  wc -l ${recordFile}
replay the recording again (while this runs):
  npx drum-splitter replay --baseline ${flaskUrl} --canary ${fastapiUrl} --output ${join(session.dir, 'again.json')} --html ${join(session.dir, 'again.html')} ${recordFile}
watch it, and steer it, in the console: ${page}
Ctrl-C to stop.`,
  ];
}
