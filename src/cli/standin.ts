import { fastify, type FastifyInstance } from 'fastify';

/** Faults a stand-in can be told to show, changeable while it runs (the rollout demo turns its canary bad). */
export interface Faults {
  /** Share of predictions answered 500, 0..1. */
  errorRate: number;
  /** Milliseconds added to every prediction. */
  addedLatencyMs: number;
  /** Megabytes added to the drum_rss its /stats/ reports (both stand-ins share one process). */
  extraMemoryMb: number;
  /** Added to every prediction: a model that answers, fast and 200, with other numbers (the seed's data corruption). */
  predictionShift?: number;
}

export const NO_FAULTS: Readonly<Faults> = Object.freeze({ errorRate: 0, addedLatencyMs: 0, extraMemoryMb: 0 });

/**
 * A small stand-in for a DRUM model server: the routes the proxy, its health checks
 * and the demo touch, answering the way DRUM does, without a model.
 */
export function createStandin(drumServer: string, faults: Readonly<Faults> = NO_FAULTS, random: () => number = Math.random): FastifyInstance {
  const app = fastify({ logger: false });
  const started = Date.now();

  // DRUM takes CSV (and other bodies) on its prediction routes; read any body as text.
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.get('/ping', async () => ({ message: 'OK' }));
  app.get('/', async () => ({ message: 'OK' }));
  app.get('/health/', async () => ({ message: 'OK' }));
  app.get('/info/', async () => ({
    drumServer,
    drumVersion: 'stand-in',
    language: 'python',
    modelMetadata: { name: `${drumServer} stand-in`, targetType: 'regression' },
  }));
  app.get('/stats/', async () => {
    const mem = process.memoryUsage();
    return {
      mem_info: {
        drum_rss: Math.round(mem.rss / 2 ** 20) + faults.extraMemoryMb,
        total: 16384,
        avail: 8192,
        container_used: Math.round(mem.heapUsed / 2 ** 20),
      },
      time_info: { uptime_seconds: Math.round((Date.now() - started) / 1000) },
    };
  });

  // One prediction per CSV data row: the mean of its numeric cells, rounded.
  app.post('/predict/', async (req, reply) => {
    if (faults.addedLatencyMs > 0) await new Promise((r) => setTimeout(r, faults.addedLatencyMs));
    if (random() < faults.errorRate) return reply.code(500).send({ message: 'ERROR: stand-in fault' });
    const text = typeof req.body === 'string' ? req.body : '';
    const rows = text.split(/\r?\n/).filter((l) => l.trim() !== '').slice(1);
    if (rows.length === 0) {
      const message = 'ERROR: Samples should be provided as a csv with a header row';
      // FastAPI's own error shape ({"detail": ...}) where Flask's handler says {"message": ...}:
      // the kind of difference a migration brings, which the demo's replay and shadow show.
      return reply.code(422).send(drumServer === 'fastapi' ? { detail: message } : { message });
    }
    const predictions = rows.map((row) => {
      // Number('') is 0, so empty cells are dropped first: a missing value is not a number.
      const cells = row.split(',').filter((c) => c.trim() !== '').map(Number).filter((n) => Number.isFinite(n));
      const mean = cells.length === 0 ? 0 : cells.reduce((a, b) => a + b, 0) / cells.length;
      return Math.round(mean * 1000) / 1000 + (faults.predictionShift ?? 0);
    });
    return { predictions };
  });

  return app;
}
