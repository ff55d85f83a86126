import type { FastifyInstance } from 'fastify';
import { MetricsUnavailable, type Metrics } from '../observe/metrics.js';
import { replyError } from './errors.js';

/** /healthz (the process), /readyz (some upstream answers, and what is live is on disk), /metrics (all or nothing with workers). */
export function healthRoutes(
  app: FastifyInstance,
  deps: { probe: () => Promise<Record<string, boolean>>; notSaved: () => readonly string[]; metrics: Pick<Metrics, 'registry' | 'text'> },
): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const answering = await deps.probe();
    // Weights that would be lost in a restart are not ready: the operator must hear of it.
    const notSaved = deps.notSaved();
    const ready = Object.values(answering).some(Boolean) && notSaved.length === 0;
    return reply.code(ready ? 200 : 503).send({ ready, upstreams: answering, ...(notSaved.length === 0 ? {} : { notSaved }) });
  });

  app.get('/metrics', async (_req, reply) => {
    let text: string;
    try {
      text = await deps.metrics.text();
    } catch (err) {
      // Part of the workers' counts would look to Prometheus like a counter reset: better none.
      if (err instanceof MetricsUnavailable) return replyError(reply, 'metrics_unavailable', err.message, { workers: err.missing });
      throw err;
    }
    return reply.type(deps.metrics.registry.contentType).send(text);
  });
}
