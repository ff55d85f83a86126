import type { ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric, type MetricValueWithName } from 'prom-client';
import { failedAttempt, NO_UPSTREAM, type Outcome } from './outcomes.js';
import { createRecorderMetrics, type RecorderMetrics } from '../record/writer.js';
import { createSubscriberErrors } from '../common/subscribers.js';

/** Model serving: from a 1 ms cached answer to a 30 s batch prediction. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Methods get their own label value; anything else is "other", so clients cannot grow the series. */
const METHOD_LABELS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'other'] as const;
const METHOD_INDEX = new Map<string, number>(METHOD_LABELS.map((m, i) => [m, i]));
const OTHER = METHOD_LABELS.length - 1;
const methodIndex = (method: string | undefined): number => (method === undefined ? OTHER : (METHOD_INDEX.get(method) ?? OTHER));
export const methodLabel = (method: string | undefined): string => METHOD_LABELS[methodIndex(method)]!;

/** Per upstream: a count per bucket (the last: over every bound), their sum and count. */
type Sides = Map<string, { buckets: Float64Array; sum: number; count: number }>;

/**
 * drum_request_duration_seconds, counted per upstream in arrays and handed to the registry in
 * prom-client's histogram form when it is read: prom-client's observe() builds and hashes a label
 * object on every call, which was a tenth of what our features cost a request.
 */
export class DurationHistogram {
  readonly name = 'drum_request_duration_seconds';
  readonly help = 'Time from request to the end of the response, by upstream.';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #sides: Sides = new Map();
  /** The same for the exchanges a cohort rule took, by rule: under a `route` label, which the split's judges leave out. */
  readonly #routed = new Map<string, Sides>();

  /** One exchange's time against `serverType`; `route`: the rule that took it to its upstream, if one did. */
  observe(serverType: string, seconds: number, route?: string): void {
    let sides = this.#sides;
    if (route !== undefined) {
      const routed = this.#routed.get(route);
      if (routed === undefined) this.#routed.set(route, (sides = new Map()));
      else sides = routed;
    }
    let side = sides.get(serverType);
    if (side === undefined) sides.set(serverType, (side = { buckets: new Float64Array(DURATION_BUCKETS.length + 1), sum: 0, count: 0 }));
    let i = 0;
    while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]!) i++;
    side.buckets[i]!++;
    side.sum += seconds;
    side.count++;
  }

  /** What the registry reads of a metric: prom-client's own histograms give the same. */
  async get(): Promise<{ name: string; help: string; type: string; values: MetricValueWithName<string>[]; aggregator: string }> {
    const values: MetricValueWithName<string>[] = [];
    const add = (sides: Sides, route: { route: string } | undefined): void => {
      for (const [server_type, side] of sides) {
        const labels = { server_type, ...route };
        let cumulative = 0;
        DURATION_BUCKETS.forEach((le, i) => {
          cumulative += side.buckets[i]!;
          values.push({ metricName: `${this.name}_bucket`, labels: { le, ...labels }, value: cumulative });
        });
        values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: side.count });
        values.push({ metricName: `${this.name}_sum`, labels, value: side.sum });
        values.push({ metricName: `${this.name}_count`, labels, value: side.count });
      }
    };
    add(this.#sides, undefined);
    for (const [route, sides] of this.#routed) add(sides, { route });
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

export interface Metrics {
  readonly registry: Registry;
  /** drum_requests_total; an exchange a cohort rule took to its upstream also has the rule's name as `route`. */
  readonly requests: Counter<'server_type' | 'status' | 'method' | 'origin' | 'route'>;
  /** drum_route_matches_total: requests each cohort rule matched, whatever its target. */
  readonly routeMatches: Counter<'route'>;
  readonly duration: DurationHistogram;
  readonly inFlight: Gauge<'server_type'>;
  /** drum_fallback_total: requests the baseline answered after another upstream failed them. */
  readonly fallbacks: Counter<'from' | 'to' | 'reason'>;
  /** An exchange is forwarded to `upstream` from now until forwardEnded (drum_requests_in_flight). */
  forwardStarted(upstream: string): void;
  forwardEnded(upstream: string): void;
  readonly recorder: RecorderMetrics;
  /** drum_subscriber_errors_total, which every subscriber list of the process counts in. */
  readonly subscriberErrors: Counter<'subscriber'>;
  /** drum_requests_total, drum_request_duration_seconds and drum_route_matches_total for one outcome (and its failed attempt, drum_fallback_total, after a fallback). */
  count(outcome: Outcome): void;
  /** The text exposition: this registry's, or (with --workers) every process's, aggregated. */
  text(): Promise<string>;
}

/**
 * The registry and the request-path metrics, named as the seed's dashboard queries them
 * (drum_requests_total, drum_request_duration_seconds), plus Node's own under drum_splitter_.
 * Gauges read from elsewhere (weights, upstream health and memory) are added by their owners.
 */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'drum_splitter_' });
  // Per-request counts are kept in Maps and handed to prom-client when it is read: its inc()
  // hashes a label object each call, and four labels a request were a tenth of our features' CPU.
  /** Exchanges being forwarded now, by upstream; drum_requests_in_flight reads it at each scrape. */
  const forwarding = new Map<string, number>();
  /**
   * drum_requests_total's increments since it was last read, by a number that packs its labels
   * (no string built a request): upstream's index, status, method's index, origin.
   */
  const counted = new Map<number, number>();
  /** The same for the exchanges a cohort rule took, by rule. */
  const countedRouted = new Map<string, Map<number, number>>();
  /** drum_route_matches_total's increments since it was last read, by rule. */
  const matched = new Map<string, number>();
  const serverTypes: string[] = [];
  const serverIndex = new Map<string, number>();
  const duration = new DurationHistogram();
  registry.registerMetric(duration as unknown as Metric);
  const countOne = (o: Outcome): void => {
    let server = serverIndex.get(o.serverType);
    if (server === undefined) serverIndex.set(o.serverType, (server = serverTypes.push(o.serverType) - 1));
    const key = ((server * 1000 + o.status) * 8 + methodIndex(o.method)) * 2 + (o.origin === 'upstream' ? 0 : 1);
    // Only a rule that took the request labels it: the split's judges select route="".
    const taken = o.routed === true ? o.route : undefined;
    let keys = counted;
    if (taken !== undefined) {
      const routed = countedRouted.get(taken);
      if (routed === undefined) countedRouted.set(taken, (keys = new Map()));
      else keys = routed;
    }
    keys.set(key, (keys.get(key) ?? 0) + 1);
    // Our own quick refusals would flatter an upstream's latency: only what counts against it is timed.
    if (o.serverType !== NO_UPSTREAM) duration.observe(o.serverType, o.seconds, taken);
  };
  const fallbacks = new Counter({
    name: 'drum_fallback_total',
    help: 'Requests sent to the baseline (to) after another upstream (from) failed them, by why (reason); the failure also counts against from in drum_requests_total.',
    labelNames: ['from', 'to', 'reason'],
    registers: [registry],
  });
  return {
    registry,
    requests: new Counter({
      name: 'drum_requests_total',
      help: 'Requests by upstream (server_type), HTTP status, method, and who answered (origin).',
      labelNames: ['server_type', 'status', 'method', 'origin', 'route'],
      registers: [registry],
      collect() {
        const add = (keys: Map<number, number>, route: { route: string } | undefined): void => {
          for (const [key, n] of keys) {
            const origin = key % 2 === 0 ? 'upstream' : 'proxy';
            const method = METHOD_LABELS[Math.floor(key / 2) % 8]!;
            const status = String(Math.floor(key / 16) % 1000);
            const server_type = serverTypes[Math.floor(key / 16000)]!;
            this.inc({ server_type, status, method, origin, ...route }, n);
          }
          keys.clear();
        };
        add(counted, undefined);
        for (const [route, keys] of countedRouted) add(keys, { route });
      },
    }),
    routeMatches: new Counter({
      name: 'drum_route_matches_total',
      help: 'Requests each cohort rule (routes:) matched, by rule: those it took to its upstream and those it sent on to the split.',
      labelNames: ['route'],
      registers: [registry],
      collect() {
        for (const [route, n] of matched) this.inc({ route }, n);
        matched.clear();
      },
    }),
    duration,
    inFlight: new Gauge({
      name: 'drum_requests_in_flight',
      help: 'Requests being forwarded now, by upstream.',
      labelNames: ['server_type'],
      registers: [registry],
      collect() {
        for (const [server_type, n] of forwarding) this.set({ server_type }, n);
      },
    }),
    forwardStarted(upstream) {
      forwarding.set(upstream, (forwarding.get(upstream) ?? 0) + 1);
    },
    forwardEnded(upstream) {
      forwarding.set(upstream, forwarding.get(upstream)! - 1);
    },
    recorder: createRecorderMetrics(registry),
    subscriberErrors: createSubscriberErrors(registry),
    fallbacks,
    count(o) {
      countOne(o);
      const { route } = o;
      if (route !== undefined) matched.set(route, (matched.get(route) ?? 0) + 1);
      const f = o.fallback;
      if (f === undefined) return;
      // The upstream that failed is charged as if its failure had been the answer: a dead canary shows as dead.
      countOne(failedAttempt(o, f));
      fallbacks.inc({ from: f.from, to: o.upstream, reason: f.reason });
    },
    text: () => registry.metrics(),
  };
}

/** The exposition would be incomplete (with --workers, a worker did not answer): better none than a smaller sum. */
export class MetricsUnavailable extends Error {
  constructor(
    message: string,
    /** How many processes did not answer. */
    readonly missing: number,
  ) {
    super(message);
  }
}

/** The Prometheus text exposition of every metric. */
export async function sendMetrics(metrics: Metrics, res: ServerResponse): Promise<void> {
  const text = await metrics.text();
  res.writeHead(200, { 'content-type': metrics.registry.contentType, 'content-length': Buffer.byteLength(text) }).end(text);
}
