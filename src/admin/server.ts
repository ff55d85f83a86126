import { fastify, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { InputError } from '../common/input-error.js';
import type { Metrics } from '../observe/metrics.js';
import type { SeriesView } from '../observe/series.js';
import type { Recording } from '../record/recording.js';
import type { WeightStore } from '../weights/store.js';
import { loopbackHost, whoIs, type Tokens } from './auth.js';
import { consoleRoutes } from './console.js';
import { healthRoutes } from './health.js';
import { rolloutRoutes } from './rollout.js';
import { switchRoutes } from './switch.js';
import type { Shadow } from '../shadow/shadow.js';
import type { RolloutController } from '../rollout/controller.js';
import { AJV_OPTIONS, BODY_LIMIT, schemaError } from './schema.js';
import { weightsRoutes } from './weights.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A write: it needs the token (or, with none configured, a loopback Host). */
    write?: boolean;
  }
  interface FastifyRequest {
    /** Who sent a write: the token's name, or "anonymous" when no tokens are configured. */
    who: string;
  }
}

export interface AdminDeps {
  readonly store: WeightStore;
  readonly upstreams: readonly string[];
  readonly tokens: Tokens;
  /** The proxy's switches; a fleet controller has neither. */
  readonly recording?: Recording;
  /** Whether each upstream answers, for /readyz. */
  readonly probe: () => Promise<Record<string, boolean>>;
  /** Why what is live is not on disk (a state file that cannot be written), for /readyz; none when it is. */
  readonly notSaved: () => readonly string[];
  readonly metrics: Pick<Metrics, 'registry' | 'text'>;
  readonly log: Logger;
  /** The canary controller, when there is one (two upstreams or more). */
  readonly rollout?: RolloutController | undefined;
  /** More for GET /rollout to show: the fleet controller's replicas and Prometheus. */
  readonly rolloutExtra?: () => Record<string, unknown>;
  readonly shadow?: Shadow;
  /** The console's samples; with them, GET / serves the console (consoleRoutes). */
  readonly series?: () => SeriesView;
}

/**
 * The one check of every write, before its body is read: a valid bearer token when any is
 * configured (401), else a loopback Host (403, against DNS rebinding).
 */
function authorize(tokens: Tokens) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (req.routeOptions.config.write !== true) return;
    const who = whoIs(tokens, req.headers.authorization);
    if (who === undefined) {
      await reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="drum-splitter"')
        .send({ error: 'unauthorized', message: 'a write needs Authorization: Bearer <token>' });
    } else if (tokens.size === 0 && !loopbackHost(req.headers.host)) {
      const message = `without a token, writes are taken only with a loopback Host (localhost, 127.0.0.1, [::1]), not "${req.headers.host ?? ''}"; set DRUM_SPLITTER_ADMIN_TOKEN to write from elsewhere`;
      await reply.code(403).send({ error: 'forbidden', message });
    } else {
      req.who = who;
    }
  };
}

/** The admin API: one fastify app, a plugin per concern, JSON errors naming the field. */
export function createAdmin(deps: AdminDeps): FastifyInstance {
  // forceCloseConnections: closing the admin API cuts its connections; otherwise one a browser or Prometheus
  // keeps open (idle, or opened ahead and never used) holds shutdown for minutes.
  const app = fastify({ logger: false, forceCloseConnections: true, bodyLimit: BODY_LIMIT, ajv: { customOptions: AJV_OPTIONS }, schemaErrorFormatter: (errors) => schemaError(errors) });
  // JSON only: fastify also parses text/plain by default, which must get 415 here.
  app.removeContentTypeParser('text/plain');
  app.decorateRequest('who', '');
  app.addHook('onRequest', authorize(deps.tokens));

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
    reply.code(404).send({ error: 'not_found', message: `no ${req.method} ${req.url}; see GET / (the console), /weights, /history, /recording, /shadow, /rollout, /series, /healthz, /readyz, /metrics` }),
  );

  void app.register(async (scope) => weightsRoutes(scope, deps));
  const { recording, shadow, rollout, rolloutExtra } = deps;
  if (recording !== undefined) void app.register(async (scope) => switchRoutes(scope, { path: '/recording', what: 'recording', subject: recording, log: deps.log }));
  if (shadow !== undefined) void app.register(async (scope) => switchRoutes(scope, { path: '/shadow', what: 'shadow', subject: shadow, log: deps.log }));
  void app.register(async (scope) => healthRoutes(scope, deps));
  if (rollout !== undefined) void app.register(async (scope) => rolloutRoutes(scope, { rollout, ...(rolloutExtra === undefined ? {} : { extra: rolloutExtra }) }));
  const { series } = deps;
  if (series !== undefined) void app.register(async (scope) => consoleRoutes(scope, { series }));
  return app;
}
