import type { FastifyInstance, FastifyReply } from 'fastify';
import { parseRoutes, type RouteRule } from '../weights/routes.js';
import type { RouteStore } from '../weights/route-store.js';
import type { RecordedSource } from '../weights/shares.js';
import { objectBody, REASON } from './schema.js';
import { expectedVersion, savedWrite } from './weights.js';

const PUT_ROUTES = objectBody(
  {
    routes: { type: 'array', description: 'a list of rules, e.g. [{"name": "beta", "match": {"header": {"x-beta": "1"}}, "upstream": "fastapi"}]; [] for none' },
    reason: REASON,
    version: { type: 'integer', minimum: 0, description: 'the version GET /routes gave, e.g. 3' },
  },
  ['routes'],
);

/** The cohort rules as GET /routes shows them: each with the requests it matched since the start. */
export interface RoutesView {
  readonly routes: readonly (RouteRule & { readonly matches: number })[];
  readonly version: number;
  readonly updatedAt: string;
  readonly source: RecordedSource;
}

export interface RoutesDeps {
  readonly store: RouteStore;
  /** Requests each rule matched since the start, by name (every process's). */
  readonly matches: () => ReadonlyMap<string, number>;
}

/** GET/PUT /routes, GET /routes/history: the cohort rules, written with compare-and-set and audited as the weights are. */
export function routesRoutes(app: FastifyInstance, deps: RoutesDeps & { readonly upstreams: readonly string[] }): void {
  const { store, upstreams } = deps;

  /** The rules with their counts, their version also as the ETag that If-Match sends back. */
  const view = (reply: FastifyReply): RoutesView => {
    const { routes, version, updatedAt, source } = store.state;
    const matches = deps.matches();
    void reply.header('etag', `"${version}"`);
    return { routes: routes.map((rule) => ({ ...rule, matches: matches.get(rule.name) ?? 0 })), version, updatedAt, source };
  };

  app.get('/routes', async (_req, reply) => view(reply));

  // The whole list, replaced: rules are read in order, so a patch of one would have to say where it goes.
  app.put<{ Body: { routes: unknown[]; reason?: string | null; version?: number } }>(
    '/routes',
    { schema: { body: PUT_ROUTES }, config: { write: true } },
    async (req, reply) => {
      const expectVersion = expectedVersion(req.body.version, req.headers['if-match'], '/routes');
      const routes = parseRoutes(req.body.routes, upstreams);
      const meta = { source: 'admin', who: req.who, reason: req.body.reason } as const;
      const refused = await savedWrite(reply, 'cohort rules', store, expectVersion, () => store.changeSaved(routes, meta, { expectVersion }));
      return refused ?? view(reply);
    },
  );

  app.get('/routes/history', async () => ({ history: store.history }));
}
