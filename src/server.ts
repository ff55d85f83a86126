import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { createMetrics, sendMetrics, type Metrics } from './metrics.js';
import { createProxy, type Routes } from './proxy.js';
import { Recording, type RecordSink } from './recording.js';
import { compileSplit } from './split.js';
import { closeBackends, createBackends, type Backend } from './upstream.js';

export interface RunningProxy {
  readonly server: Server;
  readonly address: AddressInfo;
  readonly routes: Routes;
  readonly backends: ReadonlyMap<string, Backend>;
  readonly metrics: Metrics;
  readonly recording: Recording;
  /** Stops accepting, lets requests in flight finish (up to `graceMs`), then closes pools and writes out the recording. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

/** The status for a request Node's parser rejected, by its error code. */
export function malformedStatus(code: string | undefined): readonly [number, string] {
  if (code === 'HPE_HEADER_OVERFLOW') return [431, 'Request Header Fields Too Large'];
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'Request Timeout'];
  return [400, 'Bad Request'];
}

/** Answers a request Node's parser rejected, in JSON like our other errors. */
function rejectMalformed(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const [status, text] = malformedStatus(err.code);
  const body = JSON.stringify({ error: 'bad_request', message: `malformed request: ${err.code}` });
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export interface ProxyOptions {
  /** The live split, shared with whoever changes it (default: the config's weights, fixed). */
  readonly routes?: Routes;
  readonly metrics?: Metrics;
  /** Where records go instead of the config's file (a --workers worker sends them to the primary). */
  readonly recordSink?: RecordSink;
}

/** Starts the traffic listener. */
export async function startProxy(config: Config, log: Logger, opts: ProxyOptions = {}): Promise<RunningProxy> {
  const routes = opts.routes ?? { table: compileSplit(config.weights, config.upstreams[0]!.name) };
  const metrics = opts.metrics ?? createMetrics();
  const backends = createBackends(config);
  const recording = new Recording(config.record, { metrics: metrics.recorder, log, ...(opts.recordSink === undefined ? {} : { sink: opts.recordSink }) });
  const proxy = createProxy({ config, routes, backends, log, metrics, recording });
  const server = createServer(
    {
      // A large upload may take longer than Node's default 300 s for a whole request;
      // idle clients are cut by the socket timeout below instead.
      requestTimeout: 0,
      headersTimeout: 60_000,
    },
    config.metricsOnTraffic
      ? (req, res) => {
          if (req.method === 'GET' && req.url === '/metrics') void sendMetrics(metrics, res);
          else proxy(req, res);
        }
      : proxy,
  );
  server.setTimeout(config.timeoutMs + 10_000);
  server.on('clientError', rejectMalformed);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  async function close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
    await closeBackends(backends);
    await recording.close();
  }

  return {
    server,
    address,
    routes,
    backends,
    metrics,
    recording,
    // A second call (a second signal, a test's teardown) waits for the first.
    close: (graceMs = 10_000) => (closing ??= close(graceMs)),
  };
}
