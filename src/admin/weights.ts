import type { FastifyInstance, FastifyReply } from 'fastify';
import { InputError } from '../common/input-error.js';
import { NotWritten } from '../common/atomic-file.js';
import { applyWeights, percentages, rolledBack, type Share } from '../weights/shares.js';
import type { ChangeMeta, ChangeResult, WeightStore, WeightView } from '../weights/store.js';
import type { SplitHash } from '../proxy/split.js';
import { objectBody, optionalBody, REASON } from './schema.js';
import { replyError } from './errors.js';

const VERSION = { type: 'integer', minimum: 0, description: 'the version GET /weights gave, e.g. 3' } as const;
const PUT_WEIGHTS = objectBody(
  { weights: { type: 'object', description: 'an object of upstream: percent, e.g. {"fastapi": 10}' }, reason: REASON, version: VERSION },
  ['weights'],
);
const ROLLBACK = objectBody({ reason: REASON, version: VERSION });

/**
 * The version a write is conditional on: the body's "version" or an If-Match header ("3" as the
 * ETag of GET `path` gives it, or a bare 3); undefined when neither is given.
 */
export function expectedVersion(inBody: number | undefined, ifMatch: string | undefined, path = '/weights'): number | undefined {
  if (ifMatch === undefined) return inBody;
  const m = /^(?:"(\d{1,15})"|(\d{1,15}))$/.exec(ifMatch);
  if (m === null) throw new InputError(`must be the ETag GET ${path} gave, e.g. "3"`, 'if-match');
  const inHeader = Number(m[1] ?? m[2]);
  if (inBody !== undefined && inBody !== inHeader) {
    throw new InputError(`says version ${inHeader} and the body's "version" ${inBody}; send one`, 'if-match');
  }
  return inHeader;
}

/**
 * An audited write through `run` (a store's change or changeSaved), answered when it was not
 * applied: 503 naming the cause when the state file cannot take it, 409 naming the version in
 * force when the writer's is stale (or another change came first while it was being saved).
 * Undefined when it was applied, or changed nothing.
 */
export async function savedWrite(reply: FastifyReply, what: string, store: { readonly state: { readonly version: number } }, expectVersion: number | undefined, run: () => Promise<ChangeResult>): Promise<FastifyReply | undefined> {
  let result: ChangeResult;
  try {
    result = await run();
  } catch (err) {
    if (!(err instanceof NotWritten)) throw err;
    const { version } = store.state;
    return replyError(reply, 'not_saved', `not applied: ${err.message}; the ${what} stay at version ${version}`, { version });
  }
  if (result !== 'conflict') return undefined;
  const { version } = store.state;
  const message = expectVersion === undefined
    ? `the ${what} changed (now version ${version}) while this change was being saved; it was not applied, send it again`
    : `${what} are at version ${version}, not ${expectVersion}`;
  return replyError(reply, 'conflict', message, { version });
}

/** What the weights are applied to: the split key and its hash. */
export interface SplitView {
  readonly key: string;
  readonly hash: SplitHash;
}

/** GET/PUT /weights, POST /rollback, GET /history: the live weights, written with compare-and-set. */
export function weightsRoutes(app: FastifyInstance, deps: { store: WeightStore; upstreams: readonly string[]; split?: SplitView | undefined }): void {
  const { store, upstreams, split } = deps;

  /** The weights (and what they split by), their version also as the ETag that If-Match sends back. */
  const weights = (reply: FastifyReply): WeightView & { split?: SplitView } => {
    const view = store.view();
    void reply.header('etag', `"${view.version}"`);
    return split === undefined ? view : { ...view, split };
  };

  /**
   * A weight write, applied only once the state file has it (savedWrite). Every canary to 0% is
   * the exception, safety first: applied at once, and answered with a warning while it is not yet
   * on disk.
   */
  const write = async (reply: FastifyReply, shares: readonly Share[], meta: ChangeMeta, expectVersion: number | undefined): Promise<FastifyReply | (WeightView & { warning?: string })> => {
    const toBaseline = Object.entries(percentages(upstreams, shares)).every(([name, percent]) => name === upstreams[0] || percent === 0);
    const refused = await savedWrite(reply, 'weights', store, expectVersion, async () => (toBaseline ? store.change(shares, meta, { expectVersion }) : store.changeSaved(shares, meta, { expectVersion })));
    if (refused !== undefined) return refused;
    const view = weights(reply);
    const unsaved = toBaseline ? await store.saved() : undefined;
    return unsaved === undefined ? view : { ...view, warning: `applied, but not yet durable: ${unsaved.message}; retrying, and /readyz answers 503 until it is on disk` };
  };

  app.get('/weights', async (_req, reply) => weights(reply));

  app.put<{ Body: { weights: unknown; reason?: string | null; version?: number } }>(
    '/weights',
    { schema: { body: PUT_WEIGHTS }, config: { write: true } },
    async (req, reply) => {
      const expectVersion = expectedVersion(req.body.version, req.headers['if-match']);
      const shares = applyWeights(upstreams, store.state.shares, req.body.weights);
      return write(reply, shares, { source: 'admin', who: req.who, reason: req.body.reason }, expectVersion);
    },
  );

  app.post<{ Body: { reason?: string | null; version?: number } }>(
    '/rollback',
    {
      schema: { body: ROLLBACK },
      config: { write: true },
      preValidation: optionalBody,
    },
    async (req, reply) => {
      const expectVersion = expectedVersion(req.body.version, req.headers['if-match']);
      return write(reply, rolledBack(store.state.shares), { source: 'admin', who: req.who, reason: req.body.reason ?? 'rollback' }, expectVersion);
    },
  );

  app.get('/history', async () => ({ history: store.history }));
}
