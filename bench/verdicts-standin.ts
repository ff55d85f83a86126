// The verdict bench's DRUM stand-in, one process per upstream: the demo's createStandin
// (src/cli/standin.ts) with a model's service time and the faults a scenario needs, changeable
// while it runs through a control port of its own (the served port may be shared with a second,
// fresh process: SO_REUSEPORT, for the cold-canary swap).
// Usage: node dist/bench/verdicts-standin.js '{"name":"fastapi","port":8081,"controlPort":9081,...}'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Server } from 'node:net';
import { createStandin, type Faults } from '../src/cli/standin.js';
import { lognormalSigma, type BenchFaults, type StandinSpec } from './verdicts-scenarios.js';

const spec = JSON.parse(process.argv[2] ?? '') as StandinSpec;
/** What /stats/ reports as the container's memory limit, in MB (DRUM's container_limit). */
const CONTAINER_LIMIT_MB = 4096;
/** A drained process lingers past the proxy's 1 s upstream keep-alive, so no idle pooled connection is cut under a request. */
const DRAIN_MS = 3000;

const faults: Faults & BenchFaults = { errorRate: 0, addedLatencyMs: 0, extraMemoryMb: 0, latencyScale: 1, wrongRate: 0, pingDead: false, oom: false, ...spec.faults };
const sigma = lognormalSigma(spec.latency.medianMs, spec.latency.p99Ms);
const mu = Math.log(spec.latency.medianMs);

/** One service time in ms: lognormal (Box–Muller), scaled by the latency fault. */
function serviceMs(): number {
  const u = 1 - Math.random();
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
  return Math.exp(mu + sigma * z) * faults.latencyScale;
}

const app = createStandin(spec.name, faults);
let draining = false;
// Deadlock as DRUM shows it: /ping never answers.
app.addHook('onRequest', async (req, reply) => {
  if (draining) void reply.header('connection', 'close');
  if (faults.pingDead && req.url === '/ping') await new Promise(() => {});
});
app.addHook('preHandler', async (req) => {
  if (req.url === '/predict/') await new Promise((r) => setTimeout(r, serviceMs()));
});
app.addHook('onSend', async (req, reply, payload) => {
  if (typeof payload !== 'string') return payload;
  if (req.url === '/predict/' && reply.statusCode === 200 && Math.random() < faults.wrongRate) {
    const body = JSON.parse(payload) as { predictions: number[] };
    return JSON.stringify({ predictions: body.predictions.map((p) => p + 1) });
  }
  if (req.url === '/stats/') {
    // DRUM in a container reports its limit and the most it used; OOM is the one reaching the other.
    const body = JSON.parse(payload) as { mem_info: Record<string, number> };
    body.mem_info.container_limit = CONTAINER_LIMIT_MB;
    body.mem_info.container_max_used = faults.oom ? CONTAINER_LIMIT_MB : body.mem_info.drum_rss!;
    return JSON.stringify(body);
  }
  return payload;
});
await app.ready();

function listen(): Promise<void> {
  return new Promise((resolve, reject) => {
    app.server.once('error', reject);
    app.server.listen({ host: '127.0.0.1', port: spec.port, reusePort: true }, () => resolve());
  });
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};
const read = async (req: IncomingMessage): Promise<string> => {
  let s = '';
  for await (const chunk of req) s += String(chunk);
  return s;
};

// Served first, so the control port answering (what the bench waits for) means both are up.
if (spec.listen) await listen();
createServer((req, res) => {
  void (async () => {
    try {
      if (req.method === 'POST' && req.url === '/faults') {
        Object.assign(faults, JSON.parse(await read(req)) as Partial<BenchFaults & Faults>);
      } else if (req.method === 'POST' && req.url === '/listen') {
        await listen();
      } else if (req.method === 'POST' && req.url === '/drain') {
        // Stop taking connections, leaving open ones alone (http's close() would cut the idle ones,
        // racing a request the proxy may be sending on one): each is closed after its next answer,
        // and the proxy drops idle ones itself after its 1 s keep-alive.
        draining = true;
        Server.prototype.close.call(app.server);
        setTimeout(() => process.exit(0), DRAIN_MS).unref();
      }
      json(res, 200, { faults, listening: app.server.listening, draining });
    } catch (e) {
      json(res, 500, { error: (e as Error).message });
    }
  })();
}).listen(spec.controlPort, '127.0.0.1');
