import cluster, { type Worker } from 'node:cluster';
import { isIP, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { Config } from './config/config.js';
import type { Upstream } from './proxy/options.js';
import { createLogger } from './common/log.js';
import { createMetrics, MetricsUnavailable, type Metrics } from './observe/metrics.js';
import type { RecorderMetrics } from './record/writer.js';
import type { RecordLine } from './record/line.js';
import { Outcomes, type Outcome } from './observe/outcomes.js';
import { Recording, type RecordSink } from './record/recording.js';
import { startProxy, type RunningProxy } from './proxy/listener.js';
import type { Share } from './weights/shares.js';
import type { RouteRule } from './weights/routes.js';
import { closeBackends, createBackends } from './proxy/forward.js';
import { startShadow, type NoiseJudged, type RunningShadow, type Shadow, type ShadowLine, type ShadowPair, type ShadowResult } from './shadow/shadow.js';

/**
 * --workers N: the primary keeps the one copy of everything that must be one — weights and
 * their audit trail, the admin API, upstream polling, the record file — and N workers
 * (node:cluster, sharing the listening socket) serve traffic. The primary tells workers of
 * every weight and recording change; workers send it their records, and their metrics when
 * /metrics is scraped (aggregated with prom-client's AggregatorRegistry).
 */

/** What a worker needs to be in step: the split, the cohort rules, and the recording's and the shadow's switches. */
export interface WorkerState {
  readonly shares: readonly Share[];
  readonly routes: readonly RouteRule[];
  readonly recording: { readonly enabled: boolean; readonly sampleRate: number };
  readonly shadow: { readonly enabled: boolean; readonly sampleRate: number };
}

type ToWorker =
  | { readonly drum: 'state'; readonly state: WorkerState }
  | { readonly drum: 'metrics'; readonly id: number }
  | { readonly drum: 'stop'; readonly graceMs: number };

/** One process's metrics, as AggregatorRegistry takes them. */
type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[];

export type ToPrimary =
  | { readonly drum: 'record'; readonly line: RecordLine }
  | { readonly drum: 'shadow'; readonly result: ShadowResult; readonly line: ShadowLine | undefined; readonly noise: NoiseJudged | undefined; readonly pair?: ShadowPair | undefined }
  | { readonly drum: 'metrics'; readonly id: number; readonly metrics: WorkerMetrics }
  | { readonly drum: 'outcomes'; readonly batch: readonly Outcome[] }
  | { readonly drum: 'stopped'; readonly cut: number };

/** A worker's start: the primary's resolved config, and the state of the moment. */
interface WorkerStart {
  readonly config: ConfigJSON;
  readonly state: WorkerState;
}

/**
 * Sends to a worker. A worker that is exiting can still look connected while its end of the
 * channel is gone (EPIPE): with a callback that is the callback's error, not the Worker's
 * 'error' event, which nothing would catch. Its 'exit' follows, and is what is waited for.
 */
function tell(w: Worker, msg: ToWorker): void {
  w.send(msg, undefined, undefined, () => {});
}

/** The environment variable carrying a new worker's WorkerStart. */
const START_ENV = 'DRUM_SPLITTER_WORKER_START';
/** How long /metrics waits for the workers' counts. */
const METRICS_TIMEOUT_MS = 5000;
/** A worker sends its outcomes at most this long after they happen, or once this many wait. */
const OUTCOME_FLUSH_MS = 100;
const OUTCOME_BATCH = 256;
/** How long a stopping worker may take past its grace before it is killed. */
const STOP_GRACE_MS = 5000;

/**
 * The traffic side as the primary sees it: what startProxy gives in a single process. With
 * workers, setShares and setRoutes send each the whole state: the split and the rules (the
 * `shares` and `routes` startWorkers reads, the same ones), and the recording's and the shadow's
 * switches.
 */
export type TrafficPlane = Pick<RunningProxy, 'address' | 'backends' | 'recording' | 'metrics' | 'outcomes' | 'close' | 'setShares' | 'setRoutes'>;

export function isWorker(): boolean {
  return cluster.isWorker;
}

/** Config as JSON: the upstreams' URLs as strings; the rest is plain data already (JSON drops the undefined ones). */
type ConfigJSON = Omit<Config, 'upstreams'> & { readonly upstreams: readonly (Omit<Upstream, 'url'> & { readonly url: string })[] };

export function configToJSON(config: Config): ConfigJSON {
  return { ...config, upstreams: config.upstreams.map((u) => ({ ...u, url: u.url.href })) };
}

/** The config again, its settings left unset back as undefined keys, so it is the same object. */
export function configFromJSON(json: ConfigJSON): Config {
  const { tls, overrideHeader, adminTls, adminTokenFile, state, rollout, record, shadow } = json;
  return {
    ...json,
    tls,
    overrideHeader,
    adminTls,
    adminTokenFile,
    state,
    rollout,
    record: { ...record, file: record.file, rotateBytes: record.rotateBytes },
    shadow: { ...shadow, upstream: shadow.upstream, log: shadow.log },
    upstreams: json.upstreams.map((u) => ({ ...u, url: new URL(u.url), ca: u.ca })),
  };
}

/** Primary: forks `config.workers` workers and resolves once every one is listening. */
export async function startWorkers(
  config: Config,
  deps: { log: Logger; metrics: Metrics; shares: () => readonly Share[]; routes: () => readonly RouteRule[]; shadow: RunningShadow },
): Promise<TrafficPlane> {
  const { log, metrics } = deps;
  const { shadow } = deps.shadow;
  const state = (): WorkerState => ({
    shares: deps.shares(),
    routes: deps.routes(),
    recording: { enabled: recording.enabled, sampleRate: recording.sampleRate },
    shadow: { enabled: shadow.enabled, sampleRate: shadow.sampleRate },
  });
  /** Each worker not yet exited, and the promise of its exit. */
  const running = new Map<Worker, Promise<void>>();
  /** The running workers that have listened: only they can have counts. */
  const serving = new Set<Worker>();
  const broadcast = (msg: ToWorker): void => {
    for (const w of running.keys()) if (w.isConnected()) tell(w, msg);
  };
  const recording = new Recording(config.record, {
    metrics: metrics.recorder,
    log,
    onChange: () => broadcast({ drum: 'state', state: state() }),
  });
  // The primary's own pools, for /readyz and the poller; traffic uses the workers'.
  const backends = createBackends(config);

  let stopping = false;
  let nextMetricsId = 0;
  const pendingMetrics = new Map<number, (m: WorkerMetrics) => void>();

  /** Requests the workers cut at their drain timeout, as they report it when they stop. */
  let cut = 0;
  // The whole process's outcomes: every worker's, as they send them. Counters come from /metrics, not from these.
  const outcomes = new Outcomes({ log, errors: metrics.subscriberErrors });
  const onMessage = (_worker: Worker, msg: ToPrimary): void => {
    if (msg.drum === 'record') recording.write(msg.line);
    else if (msg.drum === 'shadow') {
      deps.shadow.finished(msg.result, msg.line, undefined, msg.pair);
      if (msg.noise !== undefined) shadow.observe(msg.noise);
    }
    else if (msg.drum === 'metrics') pendingMetrics.get(msg.id)?.(msg.metrics);
    else if (msg.drum === 'outcomes') for (const o of msg.batch) outcomes.publish(o);
    else cut += msg.cut;
  };
  cluster.on('message', onMessage);

  const fork = (): Worker => {
    // The config as the primary resolved it: the file may have changed since, or broken.
    const w = cluster.fork({ [START_ENV]: JSON.stringify({ config: configToJSON(config), state: state() } satisfies WorkerStart) });
    running.set(
      w,
      new Promise((resolve) =>
        w.once('exit', () => {
          running.delete(w);
          serving.delete(w);
          resolve();
        }),
      ),
    );
    return w;
  };
  const onExit = (worker: Worker, code: number | null, signal: string | null): void => {
    if (stopping) return;
    log.error({ worker: worker.id, code, signal }, 'a worker died; starting another');
    const w = fork();
    w.once('listening', () => log.info({ worker: w.id }, 'the new worker is listening'));
  };
  // A change made while a worker was starting reaches it here, once it can hear.
  const onListening = (worker: Worker): void => {
    serving.add(worker);
    tell(worker, { drum: 'state', state: state() });
  };
  cluster.on('listening', onListening);

  const listening = new Promise<AddressInfo>((resolve, reject) => {
    let ready = 0;
    const onReady = (_w: Worker, address: { address: string; port: number; addressType: number | string }): void => {
      if (++ready < config.workers) return;
      cluster.off('listening', onReady);
      cluster.off('exit', onEarlyExit);
      resolve({ address: address.address, port: address.port, family: isIP(address.address) === 6 ? 'IPv6' : 'IPv4' });
    };
    // A worker that cannot start (address in use) exits before listening: so does the primary.
    const onEarlyExit = (worker: Worker, code: number | null): void => {
      stopping = true;
      reject(new Error(`worker ${worker.id} exited with code ${code} before listening (see its log line)`));
    };
    cluster.on('listening', onReady);
    cluster.on('exit', onEarlyExit);
  });
  for (let i = 0; i < config.workers; i++) fork();

  /** Each worker drains for up to `graceMs` (as RunningProxy.close does), then cuts the rest. */
  async function stop(graceMs: number): Promise<number> {
    stopping = true;
    const exits = [...running].map(([w, exited]) => {
      const timer = setTimeout(() => w.kill('SIGKILL'), graceMs + STOP_GRACE_MS);
      if (w.isConnected()) tell(w, { drum: 'stop', graceMs });
      return exited.then(() => clearTimeout(timer));
    });
    await Promise.all(exits);
    cluster.off('message', onMessage);
    cluster.off('exit', onExit);
    cluster.off('listening', onListening);
    await closeBackends(backends);
    // Every record a worker sent arrived before its exit; now they go to disk.
    await recording.close();
    return cut;
  }

  let address: AddressInfo;
  try {
    address = await listening;
  } catch (err) {
    await stop(config.drainTimeoutMs);
    throw err;
  }
  // From now on a worker that dies is replaced.
  cluster.on('exit', onExit);

  /** A worker's counts; undefined if it does not answer in time, none if it exits first. */
  const ask = (w: Worker): Promise<WorkerMetrics | undefined> =>
    new Promise((resolve) => {
      const id = nextMetricsId++;
      // Its counts went with it: the next scrape will not have them either.
      const exited = (): void => done([]);
      const done = (m: WorkerMetrics | undefined): void => {
        clearTimeout(timer);
        pendingMetrics.delete(id);
        w.off('exit', exited);
        resolve(m);
      };
      const timer = setTimeout(() => done(undefined), METRICS_TIMEOUT_MS);
      pendingMetrics.set(id, done);
      w.once('exit', exited);
      tell(w, { drum: 'metrics', id });
    });

  /** Every process's metrics, summed (or as each metric's aggregator says); all of them or none. */
  async function text(): Promise<string> {
    const asked = [...serving].filter((w) => w.isConnected());
    const replies = await Promise.all(asked.map(ask));
    const missing = replies.filter((m) => m === undefined).length;
    if (missing > 0) throw new MetricsUnavailable(`${missing} of ${asked.length} workers did not answer within ${METRICS_TIMEOUT_MS} ms; a smaller sum would read as a counter reset`, missing);
    return AggregatorRegistry.aggregate([await metrics.registry.getMetricsAsJSON(), ...(replies as WorkerMetrics[])]).metrics();
  }

  let closing: Promise<number> | undefined;
  return {
    address,
    backends,
    recording,
    metrics: { ...metrics, text },
    outcomes,
    setShares: () => broadcast({ drum: 'state', state: state() }),
    setRoutes: () => broadcast({ drum: 'state', state: state() }),
    close: (graceMs = config.drainTimeoutMs) => (closing ??= stop(graceMs)),
  };
}

/**
 * Records from a worker go to the primary, which owns the file. At most `maxBytes` of them
 * may be on their way at once; past that they are dropped and counted, as the writer does.
 */
export class PrimarySink implements RecordSink {
  #pending = 0;
  readonly #sent = new Set<Promise<void>>();

  /** `send` is process.send: it calls back once the message is handed to the channel, or failed. */
  constructor(
    private readonly maxBytes: number,
    private readonly metrics: RecorderMetrics,
    private readonly send: (msg: ToPrimary, done: (err: Error | null) => void) => void,
  ) {}

  write(line: RecordLine): boolean {
    const size = line.body_hex.length + (line.response?.body_hex.length ?? 0) + 1024;
    if (this.#pending > 0 && this.#pending + size > this.maxBytes) {
      this.metrics.dropped.inc({ reason: 'queue_full' });
      return false;
    }
    this.#pending += size;
    const sent = new Promise<void>((resolve) => {
      this.send({ drum: 'record', line }, (err) => {
        this.#pending -= size;
        if (err) this.metrics.dropped.inc({ reason: 'closed' });
        resolve();
      });
    });
    this.#sent.add(sent);
    void sent.then(() => this.#sent.delete(sent));
    return true;
  }

  async close(): Promise<void> {
    await Promise.all(this.#sent);
  }
}

/**
 * Worker: serves traffic with the config and state the primary sends; stops when it says so
 * (or goes away). It reads neither the config file nor the environment's settings.
 */
export async function runWorker(): Promise<void> {
  const start = JSON.parse(process.env[START_ENV]!) as WorkerStart;
  const config = configFromJSON(start.config);
  const initial = start.state;
  const log = createLogger(config.logLevel);
  const metrics = createMetrics();
  const shadow = startShadow(config, {
    registry: metrics.registry,
    log,
    // A copy may finish after the primary has gone (a worker stopping without it): with a
    // callback, the closed channel is its error rather than the process's 'error' event.
    report: (result, line, noise, pair) => process.send!({ drum: 'shadow', result, line, noise, pair } satisfies ToPrimary, undefined, undefined, () => {}),
  });
  let proxy: RunningProxy;
  try {
    proxy = await startProxy(config, log, {
      shares: initial.shares,
      routes: initial.routes,
      metrics,
      recordSink: new PrimarySink(config.record.queueBytes, metrics.recorder, (msg, done) => process.send!(msg, undefined, undefined, done)),
      shadow: shadow.shadow,
    });
  } catch (err) {
    // The caller reports err; then the process must end, or its IPC channel keeps it up.
    setImmediate(() => process.exit(1));
    throw err;
  }
  const apply = (s: WorkerState): void => applyState(proxy, shadow.shadow, s);
  apply(initial);

  const flush = batchOutcomes(proxy.outcomes, (batch) => process.send!({ drum: 'outcomes', batch } satisfies ToPrimary));
  const stop = (graceMs: number): void => {
    void proxy.close(graceMs).then(async (cut) => {
      await shadow.close(); // its last results go before 'stopped'
      flush(); // before 'stopped': the channel keeps their order
      process.send!({ drum: 'stopped', cut } satisfies ToPrimary, undefined, undefined, () => process.disconnect());
    });
  };
  process.on('message', (msg: ToWorker) => {
    if (msg.drum === 'state') apply(msg.state);
    else if (msg.drum === 'metrics') {
      void metrics.registry.getMetricsAsJSON().then((m) => process.send!({ drum: 'metrics', id: msg.id, metrics: m } satisfies ToPrimary));
    } else stop(msg.graceMs);
  });
  // The primary decides when to stop (a terminal's Ctrl-C reaches every process in the group).
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  // Without a primary there is no one to stop us, and no one to take records.
  process.once('disconnect', () => void proxy.close().then(() => process.exit(0)));
}

/**
 * A worker takes the primary's state: the split, the cohort rules, and each switch through its
 * change(), the one way a switch changes (the primary's own change() has passed it already, on
 * the same config).
 */
export function applyState(proxy: Pick<RunningProxy, 'setShares' | 'setRoutes' | 'recording'>, shadow: Pick<Shadow, 'change'>, s: WorkerState): void {
  proxy.setShares(s.shares);
  proxy.setRoutes(s.routes);
  proxy.recording.change(s.recording);
  shadow.change(s.shadow);
}

/**
 * Collects a worker's outcomes and hands them on in batches (one IPC message per batch rather than
 * per exchange): at most OUTCOME_FLUSH_MS after the first of a batch, or once OUTCOME_BATCH wait.
 * Returns the function that sends what waits now.
 */
export function batchOutcomes(source: Outcomes, send: (batch: readonly Outcome[]) => void, flushMs = OUTCOME_FLUSH_MS, max = OUTCOME_BATCH): () => void {
  let batch: Outcome[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    clearTimeout(timer);
    timer = undefined;
    if (batch.length === 0) return;
    const out = batch;
    batch = [];
    send(out);
  };
  source.subscribe('to-primary', (o) => {
    batch.push(o);
    if (batch.length >= max) flush();
    else timer ??= setTimeout(flush, flushMs).unref();
  });
  return flush;
}
