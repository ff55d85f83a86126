import type { ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { NO_UPSTREAM, type Outcome } from './outcomes.js';
import { createRecorderMetrics, type RecorderMetrics } from '../record/writer.js';

/** Model serving: from a 1 ms cached answer to a 30 s batch prediction. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Methods get their own label value; anything else is "other", so clients cannot grow the series. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
export const methodLabel = (method: string | undefined): string => (method !== undefined && METHODS.has(method) ? method : 'other');

export interface Metrics {
  readonly registry: Registry;
  readonly requests: Counter<'server_type' | 'status' | 'method' | 'origin'>;
  readonly duration: Histogram<'server_type'>;
  readonly inFlight: Gauge<'server_type'>;
  /** Exchanges being forwarded now, by upstream; drum_requests_in_flight reads it at each scrape. */
  readonly forwarding: Map<string, number>;
  readonly recorder: RecorderMetrics;
  /** drum_requests_total and drum_request_duration_seconds for one outcome. */
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
  const forwarding = new Map<string, number>();
  /** drum_requests_total's increments since it was last read, by its label values joined with "\n". */
  const counted = new Map<string, number>();
  const duration = new Histogram({
    name: 'drum_request_duration_seconds',
    help: 'Time from request to the end of the response, by upstream.',
    labelNames: ['server_type'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  return {
    registry,
    requests: new Counter({
      name: 'drum_requests_total',
      help: 'Requests by upstream (server_type), HTTP status, method, and who answered (origin).',
      labelNames: ['server_type', 'status', 'method', 'origin'],
      registers: [registry],
      collect() {
        for (const [key, n] of counted) {
          const [server_type, status, method, origin] = key.split('\n');
          this.inc({ server_type, status, method, origin }, n);
        }
        counted.clear();
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
    forwarding,
    recorder: createRecorderMetrics(registry),
    count(o) {
      const key = `${o.serverType}\n${o.status}\n${methodLabel(o.method)}\n${o.origin}`;
      counted.set(key, (counted.get(key) ?? 0) + 1);
      // Our own quick refusals would flatter an upstream's latency: only what counts against it is timed.
      if (o.serverType !== NO_UPSTREAM) duration.observe({ server_type: o.serverType }, o.seconds);
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
