import { accessSync, constants, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerOptions } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { answerParserError, ERRORS, sendRawError } from '../common/errors.js';
import { InputError } from '../common/input-error.js';
import type { Logger } from 'pino';
import type { ProxyConfig } from './options.js';
import { createMetrics, sendMetrics, type Metrics } from '../observe/metrics.js';
import { Outcomes, refusedOutcome } from '../observe/outcomes.js';
import { createProxy, plainAddress, type Routes, type Shadowing } from './handler.js';
import { Recording, type RecordSink } from '../record/recording.js';
import { compileSplit } from './split.js';
import { compileRoutes } from './cohorts.js';
import type { RouteRule } from '../weights/routes.js';
import type { Share } from '../weights/shares.js';
import { closeBackends, createBackends, type Backend } from './forward.js';
import { readKeyPair, secureOptions, watchKeyPair } from '../common/tls.js';

export interface RunningProxy {
  /** node:http, or node:https with --tls-cert: HTTP/1.1 either way, the same handler and refusals. */
  readonly server: Server | TlsServer;
  readonly address: AddressInfo;
  /**
   * Replaces the split: a new table swapped in with one assignment. A request reads the
   * table once, so it sees the old split or the new one, never a mix, and requests already
   * forwarded finish where they started. The shares must have passed checkShares.
   */
  setShares(shares: readonly Share[]): void;
  /** Replaces the cohort rules as setShares replaces the split: compiled, then swapped in with one assignment. The rules must have passed parseRoutes. */
  setRoutes(rules: readonly RouteRule[]): void;
  readonly backends: ReadonlyMap<string, Backend>;
  readonly metrics: Metrics;
  readonly recording: Recording;
  /** Every exchange's outcome, as it ends. */
  readonly outcomes: Outcomes;
  /**
   * Drains as nginx's graceful quit does: stops accepting, closes idle connections, lets the
   * requests in flight finish with Connection: close for up to `graceMs` (default: the
   * config's drain timeout), then cuts the rest; closes the pools and writes out the
   * recording. Resolves to the number of requests cut. Idempotent.
   */
  close(graceMs?: number): Promise<number>;
}

/** The client of a request refused on its socket, before it was one. */
const clientOf = (socket: Duplex): string => plainAddress((socket as { remoteAddress?: string }).remoteAddress);

/** A writable directory for spill files, or an InputError saying why not. */
function checkBufferDir(dir: string): void {
  try {
    accessSync(dir, constants.W_OK);
    if (statSync(dir).isDirectory()) return;
  } catch {
    // reported below
  }
  throw new InputError(`${dir} is not a writable directory for buffered bodies (create it, or pass --buffer-dir DIR)`, 'bufferDir');
}

export interface ProxyOptions {
  /** The split at start (default: the config's weights); setShares changes it. */
  readonly shares?: readonly Share[];
  /** The cohort rules at start (default: the config's); setRoutes changes them. */
  readonly routes?: readonly RouteRule[];
  readonly metrics?: Metrics;
  /** Where records go instead of the config's file (a --workers worker sends them to the primary). */
  readonly recordSink?: RecordSink;
  /** The live shadow, if any: it copies exchanges as they pass and hears their outcomes. Its owner closes it. */
  readonly shadow?: Shadowing;
}

/** Starts the traffic listener. */
export async function startProxy(config: ProxyConfig, log: Logger, opts: ProxyOptions = {}): Promise<RunningProxy> {
  const baseline = config.upstreams[0]!.name;
  const routes: Routes = { table: compileSplit(opts.shares ?? config.weights, baseline, config.splitHash), rules: compileRoutes(opts.routes ?? config.routes) };
  const metrics = opts.metrics ?? createMetrics();
  if (config.upstreams.some((u) => u.requestBuffering || u.responseBuffering)) checkBufferDir(config.buffer.dir);
  // Read before anything is opened: a pair that does not load stops start-up.
  const { tls } = config;
  const pair = tls === undefined ? undefined : readKeyPair(tls, 'tlsCert');
  const backends = createBackends(config);
  const recording = new Recording(config.record, { metrics: metrics.recorder, log, ...(opts.recordSink === undefined ? {} : { sink: opts.recordSink }) });
  const outcomes = new Outcomes({ log, errors: metrics.subscriberErrors });
  outcomes.subscribe('metrics', (outcome) => metrics.count(outcome));
  outcomes.subscribe('recording', (outcome) => recording.ended(outcome));
  const { shadow } = opts;
  if (shadow !== undefined) outcomes.subscribe('shadow', (outcome) => shadow.ended(outcome));
  const proxy = createProxy({ config, routes, backends, log, metrics, recording, outcomes, ...(shadow === undefined ? {} : { shadow }) });
  const options: ServerOptions = {
    // A large upload may take longer than Node's default 300 s for a whole request;
    // idle clients are cut by the socket timeout below instead.
    requestTimeout: 0,
    headersTimeout: 60_000,
    // Answered by the proxy in JSON, and counted, rather than with Node's bare 400.
    requireHostHeader: false,
  };
  const handle: RequestListener = config.metricsOnTraffic
    ? (req, res) => {
        if (req.method === 'GET' && req.url === '/metrics') void sendMetrics(metrics, res);
        else proxy.handle(req, res);
      }
    : proxy.handle;
  const server = pair === undefined ? createServer(options, handle) : createTlsServer({ ...options, ...secureOptions(pair) }, handle);
  // Node drops headers past this count silently (Content-Length among them); the proxy answers 431 instead.
  server.maxHeadersCount = 0;
  server.setTimeout(config.timeoutMs + 10_000);
  // Requests refused before they were one are answered in JSON too, and counted.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const answered = answerParserError(err, socket);
    if (answered !== undefined) outcomes.publish(refusedOutcome(answered.status, undefined, undefined, clientOf(socket), answered.bytes));
  });
  // Without a listener Node drops a CONNECT's socket without a word; a canary proxy is no tunnel.
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    const bytes = sendRawError(socket, 'bad_request', `${req.method} is not proxied`);
    outcomes.publish(refusedOutcome(ERRORS.bad_request.status, req.method, undefined, clientOf(socket), bytes));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const certificates = pair === undefined ? undefined : watchKeyPair(tls!, pair, (next) => (server as TlsServer).setSecureContext(secureOptions(next)), { log, listener: 'traffic' });

  let closing: Promise<number> | undefined;
  async function close(graceMs: number): Promise<number> {
    const drained = proxy.drain();
    certificates?.close();
    server.close();
    server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      drained.then(() => 0),
      new Promise<number>((resolve) => (timer = setTimeout(() => resolve(proxy.inFlight), graceMs))),
    ]);
    clearTimeout(timer);
    if (late > 0) log.warn({ cut: late, drainTimeoutMs: graceMs }, `shutdown: ${late} requests still in flight at the drain timeout were cut`);
    // What is left: connections mid-headers, and those cut.
    server.closeAllConnections();
    await closeBackends(backends);
    await recording.close();
    return late;
  }

  return {
    server,
    address,
    setShares: (shares) => {
      routes.table = compileSplit(shares, baseline, config.splitHash);
    },
    setRoutes: (rules) => {
      routes.rules = compileRoutes(rules);
    },
    backends,
    metrics,
    recording,
    outcomes,
    // A second call (a second signal, a test's teardown) waits for the first.
    close: (graceMs = config.drainTimeoutMs) => (closing ??= close(graceMs)),
  };
}
