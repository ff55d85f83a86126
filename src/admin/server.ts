import { fastify, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Server as TlsServer } from 'node:https';
import { answerParserError } from '../common/errors.js';
import type { FilesWatcher } from '../common/watch-files.js';
import { readKeyPair, secureOptions, watchKeyPair, type KeyPairFiles } from '../common/tls.js';
import { InputError } from '../common/input-error.js';
import type { Metrics } from '../observe/metrics.js';
import type { SeriesView } from '../observe/series.js';
import type { Recording } from '../record/recording.js';
import type { WeightStore } from '../weights/store.js';
import { loopbackHost, otherOrigin, whoIs, type Tokens } from './auth.js';
import { CONSOLE_CSP, consoleRoutes, type ServerKind } from './console.js';
import { replyError } from './errors.js';
import { healthRoutes } from './health.js';
import { rolloutRoutes } from './rollout.js';
import { switchRoutes } from './switch.js';
import type { Shadow } from '../shadow/shadow.js';
import type { RolloutController } from '../rollout/controller.js';
import { AJV_OPTIONS, BODY_LIMIT, schemaError } from './schema.js';
import { weightsRoutes, type SplitView } from './weights.js';
import { routesRoutes, type RoutesDeps } from './routes.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A write: it needs the token (or, with none configured, a loopback Host and no other origin) and a JSON body. */
    write?: boolean;
  }
  interface FastifyRequest {
    /** Who sent a write: the token's name, or "anonymous" when no tokens are configured. */
    who: string;
  }
}

export interface AdminDeps {
  /** Which server this is, for the console (GET /about): a proxy (`serve`) or a fleet controller. */
  readonly server: ServerKind;
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
  /** The console's samples (GET /series); a fleet controller has none. */
  readonly series?: () => SeriesView;
  /** How this proxy's key picks an upstream, shown beside the weights; a fleet controller has none of its own. */
  readonly split?: SplitView;
  /** The cohort rules (GET/PUT /routes); a fleet controller has none of its own. */
  readonly routes?: RoutesDeps;
  /** Its certificate and key (--admin-tls-cert): HTTPS, the pair reloaded when the files change. */
  readonly tls?: KeyPairFiles | undefined;
}

/**
 * The one check of every request, before a body is read. Without tokens: a loopback Host, for
 * reads too (403, against DNS rebinding). Then, for a write: a valid bearer token when any is
 * configured (401); without tokens, no other origin (403, against a page in the user's browser
 * writing cross-site); and a JSON content type (415).
 */
function authorize(tokens: Tokens) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const anonymous = tokens.size === 0;
    if (anonymous && !loopbackHost(req.headers.host)) {
      const message = `without a token, the admin API answers only a loopback Host (localhost, 127.0.0.1, [::1]), not "${req.headers.host ?? ''}"; set DRUM_SPLITTER_ADMIN_TOKEN to reach it by another name`;
      return replyError(reply, 'forbidden', message);
    }
    if (req.routeOptions.config.write !== true) return;
    const who = whoIs(tokens, req.headers.authorization);
    if (who === undefined) {
      return replyError(reply.header('www-authenticate', 'Bearer realm="drum-splitter"'), 'unauthorized');
    }
    const other = anonymous ? otherOrigin(req.headers, req.protocol) : undefined;
    if (other !== undefined) {
      const message = `without a token, a write from another web page (${other}) is refused; use the console on this address, or a client that sends no Origin (curl, drum-splitter weights|rollout), or set DRUM_SPLITTER_ADMIN_TOKEN and send Authorization: Bearer <token>`;
      return replyError(reply, 'forbidden', message);
    }
    // JSON only, a body-less write too: a browser cannot send that from another origin without asking first (a CORS preflight, which gets no yes).
    if (req.mediaType !== 'application/json') {
      return replyError(reply, 'unsupported_media_type', undefined, { field: 'content-type' });
    }
    req.who = who;
    return undefined;
  };
}

/** The admin API: one fastify app, a plugin per concern, JSON errors naming the field. */
export function createAdmin(deps: AdminDeps): FastifyInstance {
  // forceCloseConnections: closing the admin API cuts its connections; otherwise one a browser or Prometheus
  // keeps open (idle, or opened ahead and never used) holds shutdown for minutes.
  // Requests fastify's router or Node's parser refuse get the catalog's names too, not fastify's own answers.
  const { tls } = deps;
  // Read before anything listens: a pair that does not load stops start-up.
  const pair = tls === undefined ? undefined : readKeyPair(tls, 'adminTlsCert');
  const app = fastify({
    ...(pair === undefined ? {} : { https: secureOptions(pair) }),
    logger: false,
    forceCloseConnections: true,
    bodyLimit: BODY_LIMIT,
    ajv: { customOptions: AJV_OPTIONS },
    schemaErrorFormatter: (errors) => schemaError(errors),
    frameworkErrors: (err, _req, reply) => void replyError(reply, 'bad_request', err.message),
    clientErrorHandler: (err, socket) => void answerParserError(err, socket),
  });
  if (pair !== undefined) {
    let certificates: FilesWatcher | undefined;
    app.addHook('onListen', async () => {
      // fastify types its server as node:http's whatever the options; with `https` it is node:https's.
      certificates = watchKeyPair(tls!, pair, (next) => (app.server as unknown as TlsServer).setSecureContext(secureOptions(next)), { log: deps.log, listener: 'admin' });
    });
    app.addHook('onClose', async () => certificates?.close());
  }
  app.decorateRequest('who', '');
  // Every answer, errors and 404s included: the console's policy (none but our files run, no framing) and no type sniffing.
  app.addHook('onRequest', async (_req, reply) => void reply.header('content-security-policy', CONSOLE_CSP).header('x-content-type-options', 'nosniff'));
  app.addHook('onRequest', authorize(deps.tokens));

  app.setErrorHandler((err: Error, _req, reply) => {
    if (err instanceof InputError) return replyError(reply, 'invalid', err.message, { field: err.field });
    // fastify's own: 413 body too large; 400 malformed, empty or short JSON (authorize already sent any other type away).
    const { statusCode = 500 } = err as { statusCode?: number };
    if (statusCode === 413) return replyError(reply, 'payload_too_large', `body is too large (over ${BODY_LIMIT} bytes)`, { field: 'body' });
    if (statusCode < 500) return replyError(reply, 'invalid', err.message, { field: 'body' });
    deps.log.error({ err }, 'admin request failed');
    return replyError(reply, 'internal_error', err.message);
  });
  const { recording, shadow, rollout, rolloutExtra, series, routes } = deps;
  // What this server answers of what the console reads: it asks for no other (GET /about).
  const reads = [
    '/weights', '/history',
    ...(routes === undefined ? [] : ['/routes']),
    ...(rollout === undefined ? [] : ['/rollout', '/rollout/decisions']),
    ...(series === undefined ? [] : ['/series']),
    ...(recording === undefined ? [] : ['/recording']),
    ...(shadow === undefined ? [] : ['/shadow']),
  ];
  app.setNotFoundHandler((req, reply) =>
    replyError(reply, 'not_found', `no ${req.method} ${req.url}; see GET / (the console), ${reads.join(', ')}, /healthz, /readyz, /metrics`),
  );

  void app.register(async (scope) => weightsRoutes(scope, deps));
  if (routes !== undefined) void app.register(async (scope) => routesRoutes(scope, { ...routes, upstreams: deps.upstreams }));
  if (recording !== undefined) void app.register(async (scope) => switchRoutes(scope, { path: '/recording', what: 'recording', subject: recording, log: deps.log }));
  if (shadow !== undefined) void app.register(async (scope) => switchRoutes(scope, { path: '/shadow', what: 'shadow', subject: shadow, log: deps.log }));
  void app.register(async (scope) => healthRoutes(scope, deps));
  if (rollout !== undefined) void app.register(async (scope) => rolloutRoutes(scope, { rollout, ...(rolloutExtra === undefined ? {} : { extra: rolloutExtra }) }));
  void app.register(async (scope) => consoleRoutes(scope, { about: { server: deps.server, reads }, ...(series === undefined ? {} : { series }) }));
  return app;
}
