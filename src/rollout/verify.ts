import { Pool } from 'undici';
import { describeIdentity, drumMemory, getStatus, readIdentity, readMemInfo, type Backend } from '../observe/health.js';

/**
 * The check of the baseline after a rollback (ROLLBACK_PLAN.md, "Verification After Rollback"):
 * /ping and /health/ answer 200, /info/ names a DRUM server other than the canary's, one single
 * and one batch prediction succeed, /stats/ reports memory. The items are gathered here (I/O);
 * what they add up to is verificationOutcome's (pure).
 */

/** One item of the checklist; ok null: skipped (nothing to replay), said in the detail. */
export interface VerifyItem {
  readonly name: string;
  readonly ok: boolean | null;
  readonly detail: string;
}

export interface Verification {
  readonly items: readonly VerifyItem[];
}

/** A request to replay, ready to send (replay's ReplayRecord is one). */
export interface VerifyRequest {
  readonly method: string;
  readonly path: string;
  /** Flat [name, value, ...]. */
  readonly headers: readonly string[];
  readonly body: Uint8Array;
  /** Where it came from ("FILE:LINE"), for the detail. */
  readonly source: string;
}

/** The requests a verification may replay, and where they were looked for (for a skipped item's detail: "in FILE"). */
export interface VerifyRequests {
  readonly requests: readonly VerifyRequest[];
  readonly from: string;
}

/** What a process runs after a rollback: the items, given the canary's last /info/ identity (null: unknown). */
export type VerifyBaseline = (canaryIdentity: string | null, signal: AbortSignal) => Promise<readonly VerifyItem[]>;

export type VerifyOutcome = { readonly action: 'verified' | 'verification_failed'; readonly text: string };

/**
 * What the items add up to: any failed item fails the verification. A skipped item (no request to
 * replay) does not: the checks that ran passed, and failing a rollback's verification for want of
 * a recording would page people (PagerDuty) for nothing; the text names what was skipped.
 */
export function verificationOutcome(items: readonly VerifyItem[], target: string): VerifyOutcome {
  const failed = items.filter((i) => i.ok === false);
  const skipped = items.filter((i) => i.ok === null);
  const also = skipped.length === 0 ? '' : `; skipped: ${skipped.map((i) => i.name).join(', ')}`;
  if (failed.length > 0) {
    return { action: 'verification_failed', text: `${target} failed its verification after the rollback: ${failed.map((i) => `${i.name} (${i.detail})`).join('; ')}${also}` };
  }
  return { action: 'verified', text: `${target} verified after the rollback: ${items.filter((i) => i.ok === true).map((i) => i.name).join(', ')} ok${also}` };
}

/** The data rows of a CSV body (header excluded); undefined for a body that is not CSV. */
export function csvRows(req: VerifyRequest): number | undefined {
  const type = req.headers.find((_, i, h) => i % 2 === 1 && h[i - 1]!.toLowerCase() === 'content-type');
  if (type === undefined || !/csv/i.test(type)) return undefined;
  return Math.max(0, Buffer.from(req.body).toString('utf8').split(/\r?\n/).filter((l) => l.trim() !== '').length - 1);
}

/**
 * The single and the batch prediction to replay, from candidates newest first: a batch has two
 * rows or more; a single has one — or is a batch's header and first row, so one recorded batch
 * gives both; a request whose rows cannot be counted (not CSV) serves as the single last.
 */
export function pickPredictions(requests: readonly VerifyRequest[]): { single?: VerifyRequest; batch?: VerifyRequest } {
  const rows = requests.map((r) => [r, csvRows(r)] as const);
  const batch = rows.find(([, n]) => n !== undefined && n >= 2)?.[0];
  const single = rows.find(([, n]) => n === 1)?.[0] ?? (batch === undefined ? undefined : firstRow(batch)) ?? rows.find(([, n]) => n === undefined)?.[0];
  return { ...(single === undefined ? {} : { single }), ...(batch === undefined ? {} : { batch }) };
}

/** A CSV batch cut to its header and first data row. */
function firstRow(batch: VerifyRequest): VerifyRequest {
  const [header, first] = Buffer.from(batch.body).toString('utf8').split(/\r?\n/).filter((l) => l.trim() !== '');
  return { ...batch, body: Buffer.from(`${header}\n${first}\n`), source: `${batch.source} (its first row)` };
}


/** How long a reply's body may be read for a prediction: its size does not matter, only its status. */
async function replay(b: Backend, req: VerifyRequest, timeoutMs: number, signal: AbortSignal): Promise<string> {
  const res = await b.pool.request({
    method: req.method,
    path: b.basePath + req.path,
    headers: [...req.headers],
    body: Buffer.from(req.body),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), signal]),
  });
  await res.body.dump();
  return `${req.method} ${req.path} → ${res.statusCode}`;
}

export interface VerifyOptions {
  /** Each request's bound. */
  readonly timeoutMs: number;
  /** The canary's identity (DRUM's /info/), which the baseline's must differ from; null: only that /info/ names a DRUM server. */
  readonly canaryIdentity: string | null;
  /** The predictions to replay; a rejection (a file that cannot be read) fails both prediction items. */
  readonly requests: () => Promise<VerifyRequests>;
  readonly signal?: AbortSignal;
}

const errorText = (err: unknown): string => ((err as Error).name === 'TimeoutError' ? 'no answer in time' : (err as Error).message);

/** The checklist against `target`, item by item, in the seed's order. Never rejects: an item that cannot run fails. */
export async function verifyUpstream(target: Backend, opts: VerifyOptions): Promise<VerifyItem[]> {
  const { timeoutMs } = opts;
  const signal = opts.signal ?? new AbortController().signal;
  const status = async (name: string, path: string): Promise<VerifyItem> => {
    try {
      const code = await getStatus(target, path, timeoutMs);
      return { name, ok: code === 200, detail: `GET ${path} → ${code}` };
    } catch (err) {
      return { name, ok: false, detail: `GET ${path}: ${errorText(err)}` };
    }
  };
  const info = async (): Promise<VerifyItem> => {
    const identity = await readIdentity(target, timeoutMs);
    if (identity === undefined) return { name: 'info', ok: false, detail: 'GET /info/: no DRUM server named (unreachable, not 200, or not DRUM)' };
    if (opts.canaryIdentity !== null && identity === opts.canaryIdentity) {
      return { name: 'info', ok: false, detail: `GET /info/ names the canary's server: ${describeIdentity(identity)}` };
    }
    const canary = opts.canaryIdentity === null ? '' : ` (the canary: ${describeIdentity(opts.canaryIdentity)})`;
    return { name: 'info', ok: true, detail: `GET /info/: ${describeIdentity(identity)}${canary}` };
  };
  const stats = async (): Promise<VerifyItem> => {
    const memory = drumMemory(await readMemInfo(target, timeoutMs));
    return memory === undefined
      ? { name: 'stats', ok: false, detail: 'GET /stats/: no mem_info.drum_rss (unreachable, not 200, or not DRUM)' }
      : { name: 'stats', ok: true, detail: `GET /stats/: drum_rss ${Math.round(memory.rss / 2 ** 20)} MiB` };
  };
  const predictions = async (): Promise<VerifyItem[]> => {
    let found: VerifyRequests;
    try {
      found = await opts.requests();
    } catch (err) {
      const detail = `no request to replay: ${(err as Error).message}`;
      return [{ name: 'predict_single', ok: false, detail }, { name: 'predict_batch', ok: false, detail }];
    }
    const picked = pickPredictions(found.requests);
    const one = async (name: string, req: VerifyRequest | undefined, what: string): Promise<VerifyItem> => {
      if (req === undefined) return { name, ok: null, detail: `no ${what} prediction to replay ${found.from}` };
      const rows = csvRows(req);
      const from = `${rows === undefined ? '' : `${rows} row${rows === 1 ? '' : 's'}, `}${req.source}`;
      try {
        const said = await replay(target, req, timeoutMs, signal);
        return { name, ok: /→ 2\d\d$/.test(said), detail: `${said} (${from})` };
      } catch (err) {
        return { name, ok: false, detail: `${req.method} ${req.path}: ${errorText(err)} (${from})` };
      }
    };
    return Promise.all([one('predict_single', picked.single, 'single-row'), one('predict_batch', picked.batch, 'multi-row CSV')]);
  };
  const [ping, health, named, predicted, memory] = await Promise.all([status('ping', '/ping'), status('health', '/health/'), info(), predictions(), stats()]);
  return [ping, health, named, ...predicted, memory];
}

/** `use` on an upstream at `url` (its path a prefix), over connections of its own, closed after. */
async function atUrl<T>(name: string, url: URL, use: (b: Backend) => Promise<T>): Promise<T> {
  const pool = new Pool(url.origin, { connections: 4 });
  try {
    return await use({ name, basePath: url.pathname.replace(/\/$/, ''), pool });
  } finally {
    await pool.close();
  }
}

/** The checklist against an upstream at `url`. */
export function verifyUrl(name: string, url: URL, opts: VerifyOptions): Promise<VerifyItem[]> {
  return atUrl(name, url, (b) => verifyUpstream(b, opts));
}

/** An upstream's identity from its /info/ at `url` (null: none readable), for a process that does not poll it. */
export function identityAt(name: string, url: URL, timeoutMs: number): Promise<string | null> {
  return atUrl(name, url, async (b) => (await readIdentity(b, timeoutMs)) ?? null);
}
