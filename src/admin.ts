import { fastify, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { loopbackHost, whoIs, type Tokens } from './auth.js';
import { MetricsUnavailable, type Metrics } from './metrics.js';
import { parseRate } from './config.js';
import { InputError } from './input-error.js';
import type { Recording } from './recording.js';
import type { Share } from './split.js';
import type { ChangeMeta, WeightStore, WeightView } from './weight-store.js';
import { applyWeights, rolledBack } from './weights.js';

export interface AdminDeps {
  readonly store: WeightStore;
  readonly upstreams: readonly string[];
  readonly tokens: Tokens;
  readonly recording: Recording;
  /** Whether each upstream answers, for /readyz. */
  readonly probe: () => Promise<Record<string, boolean>>;
  readonly metrics: Metrics;
  readonly log: Logger;
}

/** Admin request bodies are small; anything bigger is a mistake. */
const BODY_LIMIT = 64 * 1024;
const MAX_REASON = 500;

/** Checks a JSON body's shape: an object with only `allowed` keys, `reason` a short string. */
function readBody(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new InputError('must be a JSON object', 'body');
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw new InputError(`unknown field; allowed: ${allowed.join(', ')}`, key);
  }
  const { reason } = body as { reason?: unknown };
  if (reason !== undefined && reason !== null && (typeof reason !== 'string' || reason.length > MAX_REASON)) {
    throw new InputError(`must be a string of at most ${MAX_REASON} characters`, 'reason');
  }
  return body as Record<string, unknown>;
}

/**
 * The version a weight write is conditional on: the body's "version" or an If-Match header
 * ("3" as GET /weights's ETag gives it, or a bare 3); undefined when neither is given.
 */
function expectedVersion(body: Record<string, unknown>, ifMatch: string | undefined): number | undefined {
  const inBody = body.version;
  if (inBody !== undefined && !(Number.isSafeInteger(inBody) && (inBody as number) >= 0)) {
    throw new InputError('must be the version GET /weights gave, e.g. 3', 'version');
  }
  if (ifMatch === undefined) return inBody as number | undefined;
  const m = /^(?:"(\d{1,15})"|(\d{1,15}))$/.exec(ifMatch);
  if (m === null) throw new InputError('must be the ETag GET /weights gave, e.g. "3"', 'if-match');
  const inHeader = Number(m[1] ?? m[2]);
  if (inBody !== undefined && inBody !== inHeader) {
    throw new InputError(`says version ${inHeader} and the body's "version" ${String(inBody)}; send one`, 'if-match');
  }
  return inHeader;
}

export function createAdmin(deps: AdminDeps): FastifyInstance {
  const { store, upstreams, tokens } = deps;
  const app = fastify({ logger: false, bodyLimit: BODY_LIMIT });
  // JSON only: fastify also parses text/plain by default, which must get 415 here.
  app.removeContentTypeParser('text/plain');

  /** Writes need a valid bearer token when any is configured. */
  const writer = (req: FastifyRequest, reply: FastifyReply): string | undefined => {
    const who = whoIs(tokens, req.headers.authorization);
    if (who === undefined) {
      void reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="drum-splitter"')
        .send({ error: 'unauthorized', message: 'a write needs Authorization: Bearer <token>' });
    } else if (tokens.size === 0 && !loopbackHost(req.headers.host)) {
      const message = `without a token, writes are taken only with a loopback Host (localhost, 127.0.0.1, [::1]), not "${req.headers.host ?? ''}"; set DRUM_SPLITTER_ADMIN_TOKEN to write from elsewhere`;
      void reply.code(403).send({ error: 'forbidden', message });
      return undefined;
    }
    return who;
  };

  app.setErrorHandler((err: Error, _req, reply) => {
    if (err instanceof InputError) {
      return reply.code(400).send({ error: 'invalid', message: err.message, field: err.field });
    }
    // fastify's own: 415 content type, 413 body too large, 400 malformed or empty JSON.
    const { statusCode = 500, code = 'error' } = err as { statusCode?: number; code?: string };
    if (statusCode === 415) {
      return reply.code(415).send({ error: 'unsupported_media_type', message: 'send Content-Type: application/json', field: 'content-type' });
    }
    if (statusCode === 413) {
      return reply.code(413).send({ error: 'payload_too_large', message: `body is too large (over ${BODY_LIMIT} bytes)`, field: 'body' });
    }
    if (statusCode >= 500) deps.log.error({ err }, 'admin request failed');
    return reply.code(statusCode).send({ error: code, message: err.message, ...(statusCode < 500 ? { field: 'body' } : {}) });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no ${req.method} ${req.url}; see GET /weights, /history, /recording, /healthz, /readyz, /metrics` }),
  );

  /** The weights, their version also as the ETag that If-Match sends back. */
  const weights = (reply: FastifyReply): WeightView => {
    const view = store.view();
    void reply.header('etag', `"${view.version}"`);
    return view;
  };

  /** A weight write; 409 naming the version in force when the writer's is stale. */
  const write = (reply: FastifyReply, shares: readonly Share[], meta: ChangeMeta, expectVersion: number | undefined): FastifyReply | WeightView => {
    if (store.change(shares, meta, { expectVersion }) === 'conflict') {
      const { version } = store.state;
      return reply.code(409).send({ error: 'conflict', message: `weights are at version ${version}, not ${expectVersion}`, version });
    }
    return weights(reply);
  };

  app.get('/weights', async (_req, reply) => weights(reply));

  app.put('/weights', async (req, reply) => {
    const who = writer(req, reply);
    if (who === undefined) return reply;
    const body = readBody(req.body, ['weights', 'reason', 'version']);
    const expectVersion = expectedVersion(body, req.headers['if-match']);
    if (body.weights === undefined) throw new InputError('is required, e.g. {"weights": {"fastapi": 10}}', 'weights');
    const shares = applyWeights(upstreams, store.state.shares, body.weights);
    return write(reply, shares, { source: 'admin', who, reason: body.reason as string | undefined }, expectVersion);
  });

  app.post('/rollback', async (req, reply) => {
    const who = writer(req, reply);
    if (who === undefined) return reply;
    const body = readBody(req.body, ['reason', 'version']);
    const expectVersion = expectedVersion(body, req.headers['if-match']);
    return write(reply, rolledBack(store.state.shares), { source: 'admin', who, reason: (body.reason as string | undefined) ?? 'rollback' }, expectVersion);
  });

  app.get('/history', async () => ({ history: store.history }));

  app.get('/recording', async () => deps.recording.view());

  app.put('/recording', async (req, reply) => {
    const who = writer(req, reply);
    if (who === undefined) return reply;
    const body = readBody(req.body, ['enabled', 'sampleRate', 'reason']);
    const { enabled, sampleRate } = body;
    if (enabled === undefined && sampleRate === undefined) {
      throw new InputError('send "enabled" and/or "sampleRate", e.g. {"enabled": true, "sampleRate": 0.01}', 'body');
    }
    if (enabled !== undefined && typeof enabled !== 'boolean') throw new InputError('must be true or false', 'enabled');
    if (sampleRate !== undefined && typeof sampleRate !== 'number') throw new InputError('must be a number from 0 to 1', 'sampleRate');
    const from = deps.recording.view();
    deps.recording.change({ enabled, sampleRate: sampleRate === undefined ? undefined : parseRate(sampleRate, 'sampleRate') });
    const to = deps.recording.view();
    deps.log.info({ who, reason: body.reason, from: { enabled: from.enabled, sampleRate: from.sampleRate }, to: { enabled: to.enabled, sampleRate: to.sampleRate } }, 'recording changed');
    return to;
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/metrics', async (_req, reply) => {
    let text: string;
    try {
      text = await deps.metrics.text();
    } catch (err) {
      // Part of the workers' counts would look to Prometheus like a counter reset: better none.
      if (err instanceof MetricsUnavailable) return reply.code(503).send({ error: 'metrics_unavailable', message: err.message, workers: err.missing });
      throw err;
    }
    return reply.type(deps.metrics.registry.contentType).send(text);
  });

  app.get('/readyz', async (_req, reply) => {
    const answering = await deps.probe();
    const ready = Object.values(answering).some(Boolean);
    return reply.code(ready ? 200 : 503).send({ ready, upstreams: answering });
  });

  return app;
}
