import { promises as dns, type LookupAddress } from 'node:dns';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { request } from 'undici';
import { baseUrl } from '../common/base-url.js';
import { InputError } from '../common/input-error.js';
import { parseJson } from '../common/json-shape.js';

/** Where the replicas' admin APIs are, asked again at every reconcile. */
export interface ReplicaTargets {
  /** The replicas' admin base URLs now: from --proxy URL (fixed) or --proxies-dns NAME:PORT (re-resolved each call). */
  list(): Promise<string[]>;
}

/** A fixed list of admin base URLs (or HOST:PORT); a bad one is an InputError naming it. */
export function staticTargets(urls: readonly string[]): ReplicaTargets {
  const bases = [...new Set(urls.map((u) => baseUrl(u, '--proxy')))];
  return { list: async () => [...bases] };
}


/** dns.promises.lookup with { all: true }: every address of a name. */
export type Lookup = (hostname: string, options: { all: true }) => Promise<LookupAddress[]>;

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const NAME_PORT = new RegExp(`^(${LABEL}(?:\\.${LABEL})*\\.?):(\\d{1,5})$`);

/**
 * NAME:PORT of a headless Service: every address NAME resolves to, each as http://ADDR:PORT
 * (IPv6 in brackets). Resolved at every list(), so pods that come and go are followed; a
 * failed lookup throws "cannot resolve NAME: …".
 */
export function dnsTargets(nameAndPort: string, lookup: Lookup = (name, opts) => dns.lookup(name, opts)): ReplicaTargets {
  const m = NAME_PORT.exec(nameAndPort);
  const port = Number(m?.[2]);
  if (m === null || port < 1 || port > 65535) {
    throw new InputError(
      `"${nameAndPort}" is not NAME:PORT (a headless Service's DNS name and the admin port, e.g. drum-splitter-admin.default.svc.cluster.local:9901)`,
      '--proxies-dns',
    );
  }
  const name = m[1]!;
  return {
    async list() {
      let addresses: LookupAddress[];
      try {
        addresses = await lookup(name, { all: true });
      } catch (err) {
        throw new Error(`cannot resolve ${name}: ${(err as Error).message}`);
      }
      const urls = addresses.map(({ address }) => (isIPv6(address) ? `http://[${address}]:${port}` : `http://${address}:${port}`));
      return [...new Set(urls)];
    },
  };
}

/**
 * promoted, reduced, updated: the replica was written the fleet's new weights (the baseline's
 * share lower, higher, or the same with the canaries' shares moved) — a routine change.
 * corrected: it was written weights the fleet already had (restarted with old ones, or drifted),
 * or found differing at the controller's first reconcile. file_changed: the replica's own config
 * file (the ConfigMap: ROLLBACK_PLAN's `kubectl patch configmap`) set other weights while it ran
 * — a person's change, for the caller to take as the fleet's, never to undo.
 */
export type ReplicaStatus = 'in_sync' | 'promoted' | 'reduced' | 'updated' | 'corrected' | 'file_changed' | 'unreachable' | 'unauthorized' | 'rejected';
const STATUSES: readonly ReplicaStatus[] = ['in_sync', 'promoted', 'reduced', 'updated', 'corrected', 'file_changed', 'unreachable', 'unauthorized', 'rejected'];
/** The statuses of a replica this reconcile wrote to. */
const written = (s: ReplicaStatus): s is 'promoted' | 'reduced' | 'updated' | 'corrected' => ['promoted', 'reduced', 'updated', 'corrected'].includes(s);

/**
 * How the fleet's weights moved from `before` to `after`, as a replica written them reports it:
 * by the baseline's share (the canaries take the rest); undefined when they are the same.
 */
export function fleetMove(baseline: string, before: Readonly<Weights>, after: Readonly<Weights>): 'promoted' | 'reduced' | 'updated' | undefined {
  if (differing(after, before).length === 0) return undefined;
  const was = Math.round(before[baseline]! * 100);
  const is = Math.round(after[baseline]! * 100);
  return is < was ? 'promoted' : is > was ? 'reduced' : 'updated';
}

/** drum_fleet_replicas{status}: the replicas by what the last reconcile found, read at each scrape. */
export function replicasGauge(fleet: Pick<Fleet, 'replicas'>, registry: Registry): Gauge<'status'> {
  return new Gauge({
    name: 'drum_fleet_replicas',
    help: `Replicas by what the last reconcile found: ${STATUSES.join(', ')}.`,
    labelNames: ['status'],
    registers: [registry],
    collect() {
      for (const status of STATUSES) this.set({ status }, fleet.replicas.filter((r) => r.status === status).length);
    },
  });
}

export interface ReplicaReport {
  readonly url: string;
  readonly status: ReplicaStatus;
  /** What the replica had before this reconcile; null if it could not be read. */
  readonly weights: Record<string, number> | null;
  /** One line a person reads, e.g. "had flask=95, fastapi=5; set to flask=90, fastapi=10". */
  readonly detail: string;
  readonly at: string;
}

export interface FleetOptions {
  readonly targets: ReplicaTargets;
  /** The upstream that takes the rest: whether new weights promote or reduce the canaries. */
  readonly baseline: string;
  /** Sent as Authorization: Bearer; the replicas' audit trails record its name. */
  readonly token: string | undefined;
  /** The most one request to a replica may take, connecting included. */
  readonly timeoutMs: number;
  readonly now: () => number;
  readonly log: Logger;
  /** Names this writer in the log lines. Default "controller". */
  readonly who?: string;
  /**
   * Renewed on every replica before its weights (PUT /rollout/controller): while it holds, the
   * replica's own rollout cannot start. `controller` is shown in the replica's GET /rollout.
   */
  readonly claim?: { readonly controller: string; readonly ttlSeconds: number };
}

type Weights = Record<string, number>;
/** A replica's GET /weights, as far as we use it. */
interface Read {
  readonly weights: Weights;
  readonly version: number;
  /** Who last set them: "file" when its watched config file did. */
  readonly source: unknown;
}
/** How a replica's handling ended, before the URL and time are added. */
type Verdict = Pick<ReplicaReport, 'status' | 'detail'>;
/** An HTTP answer, its body parsed if it is JSON. */
export interface Reply {
  readonly code: number;
  readonly json: unknown;
  readonly text: string;
}
/** A call's reply, or the error that kept us from getting one. */
export type CallResult = Reply | { readonly error: string };

/** A PUT that another writer beat to it, or whose result another writer replaced, is tried this many times in all. */
const ATTEMPTS = 2;

/**
 * Applies one set of weights to every replica of a fleet and keeps it there: the caller calls
 * reconcile() at every interval (awaiting each before the next), and a replica that restarted
 * with old weights, drifted or was down is brought back at the next one.
 */
export class Fleet {
  readonly #opts: FleetOptions;
  readonly #who: string;
  #reports = new Map<string, ReplicaReport>();
  /** The weights of the last reconcile: a write to keep them is news, one to apply new weights is not. */
  #desired: Readonly<Weights> | undefined;

  constructor(opts: FleetOptions) {
    this.#opts = opts;
    this.#who = opts.who ?? 'controller';
  }

  /** The last report of each replica listed at the last reconcile, for GET /rollout and the log. */
  get replicas(): readonly ReplicaReport[] {
    return [...this.#reports.values()];
  }

  /**
   * Brings every replica to `desired` (every upstream named, in percent, as GET /weights shows
   * them). Replicas are handled concurrently and one failing never stops the others; resolves
   * to a report per replica. Rejects only when the targets cannot be listed.
   */
  async reconcile(desired: Readonly<Weights>, reason: string): Promise<ReplicaReport[]> {
    const urls = await this.#opts.targets.list();
    // A write of the weights the fleet already had (or first found) corrects the replica; of new ones, follows the fleet.
    const write = (this.#desired === undefined ? undefined : fleetMove(this.#opts.baseline, this.#desired, desired)) ?? 'corrected';
    const reports = await Promise.all(
      urls.map(async (url): Promise<ReplicaReport> => {
        const { before, verdict } = await this.#bring(url, desired, reason, write);
        return { url, ...verdict, weights: before, at: new Date(this.#opts.now()).toISOString() };
      }),
    );
    const previous = this.#reports;
    const kept = write === 'corrected' && this.#desired !== undefined;
    this.#reports = new Map(reports.map((r) => [r.url, r]));
    this.#desired = { ...desired };
    for (const report of reports) this.#tell(report, previous.get(report.url)?.status, kept);
    for (const url of previous.keys()) {
      if (!this.#reports.has(url)) this.#opts.log.info({ replica: url, who: this.#who }, `replica ${url} is no longer listed`);
    }
    return reports;
  }

  /** One replica: read, and while it differs, write with the version read and read back; reported as `write` once it has them. */
  async #bring(url: string, desired: Readonly<Weights>, reason: string, write: ReplicaStatus): Promise<{ before: Weights | null; verdict: Verdict }> {
    const refused = await this.#claim(url);
    if (refused !== undefined) return { before: null, verdict: refused };
    const first = await this.#read(url);
    if (!('weights' in first)) return { before: null, verdict: first };
    const before = first.weights;
    let current: Read = first;
    const done = (verdict: Verdict) => ({ before, verdict });
    for (let attempt = 1; ; attempt++) {
      const missing = Object.keys(desired).filter((name) => !(name in current.weights));
      if (missing.length > 0) {
        return done({
          status: 'rejected',
          detail: `has no upstream ${missing.join(', ')} (has ${Object.keys(current.weights).join(', ')}): its config differs`,
        });
      }
      // Also after a 409: whoever wrote in between may have set just these weights.
      const changed = differing(desired, current.weights);
      if (changed.length === 0) return done({ status: 'in_sync', detail: `at ${show(desired, Object.keys(desired))}` });
      if (current.source === 'file') return done({ status: 'file_changed', detail: `its config file set ${show(current.weights, changed)}` });
      if (attempt > ATTEMPTS) {
        return done({
          status: 'rejected',
          detail: `another writer keeps changing its weights (now ${show(current.weights, Object.keys(desired))}, version ${current.version})`,
        });
      }
      const put = await this.#call(url, 'PUT', { weights: desired, reason, version: current.version });
      if ('code' in put && put.code === 409) {
        // Someone wrote between our read and our write: read again, decide again.
        const again = await this.#read(url);
        if (!('weights' in again)) return done(again);
        current = again;
        continue;
      }
      const failed = this.#failure(put);
      if (failed !== undefined) return done(failed);
      const after = await this.#read(url);
      if (!('weights' in after)) return done(after);
      if (differing(desired, after.weights).length === 0) {
        const changed = differing(desired, before);
        return done({ status: write, detail: `had ${show(before, changed)}; set to ${show(desired, changed)}` });
      }
      // Another writer changed it right after ours: the same as a 409.
      current = after;
    }
  }

  /** The claim renewed, or why the replica refuses it. A replica with no rollout (one upstream, a 404) has nothing to claim. */
  async #claim(url: string): Promise<Verdict | undefined> {
    const { claim } = this.#opts;
    if (claim === undefined) return undefined;
    const answer = await this.#call(url, 'PUT', claim, '/rollout/controller');
    if ('code' in answer && answer.code === 404) return undefined;
    if ('code' in answer && answer.code === 409) return { status: 'rejected', detail: `refuses the ${this.#who}: ${oneLine(answer)}` };
    return this.#failure(answer);
  }

  /**
   * Drops the claim on every replica of the last reconcile (DELETE /rollout/controller), for a
   * controller that stops: their own rollout may start at once, not when the claim lapses. Each
   * failure is logged and left to the claim's end; resolves once every replica has answered.
   */
  async release(): Promise<void> {
    const { claim, log } = this.#opts;
    if (claim === undefined) return;
    const urls = [...this.#reports.keys()];
    const answers = await Promise.all(urls.map((url) => this.#call(url, 'DELETE', { controller: claim.controller }, '/rollout/controller')));
    let released = 0;
    answers.forEach((answer, i) => {
      // 404: a replica with one upstream has no rollout to claim.
      if ('code' in answer && (answer.code === 404 || (answer.code >= 200 && answer.code < 300))) return void released++;
      const why = 'error' in answer ? answer.error : `${answer.code}: ${oneLine(answer)}`;
      log.warn({ replica: urls[i], who: this.#who }, `replica ${urls[i]}: the claim is not released (${why}); it lapses within ${claim.ttlSeconds} s`);
    });
    log.info({ released, of: urls.length, who: this.#who }, `released the ${this.#who}'s claim on ${released} of ${urls.length} replicas`);
  }

  /** GET /weights: the replica's weights and version, or why not. */
  async #read(url: string): Promise<Read | Verdict> {
    const answer = await this.#call(url, 'GET');
    const failed = this.#failure(answer);
    if (failed !== undefined) return failed;
    const reply = answer as Reply;
    const { weights, version, source } = (reply.json ?? {}) as { weights?: unknown; version?: unknown; source?: unknown };
    if (!isWeights(weights) || !Number.isInteger(version)) {
      return { status: 'rejected', detail: `GET /weights answered without weights and a version, not as a drum-splitter admin API: ${oneLine(reply)}` };
    }
    return { weights, version: version as number, source };
  }

  /**
   * What an answer says of the replica, or undefined for a 2xx. 401/403: our token (or its
   * absence) is the problem; 5xx and no answer: try again later; other 4xx: it refuses these
   * weights, and a person has to look.
   */
  #failure(answer: CallResult): Verdict | undefined {
    if ('error' in answer) return { status: 'unreachable', detail: answer.error };
    const { code } = answer;
    if (code >= 200 && code < 300) return undefined;
    if (code === 401) {
      const why = this.#opts.token === undefined ? 'no token was given and the replica wants one' : 'the token is not accepted';
      return { status: 'unauthorized', detail: `401: ${why} (misconfigured)` };
    }
    if (code === 403) return { status: 'unauthorized', detail: `403: ${oneLine(answer)}` };
    return { status: code >= 500 ? 'unreachable' : 'rejected', detail: `${code}: ${oneLine(answer)}` };
  }

  #call(url: string, method: 'GET' | 'PUT' | 'DELETE', body?: unknown, path = '/weights'): Promise<CallResult> {
    return callReplica(url, method, path, body, this.#opts);
  }

  /**
   * Logs a replica's status when it changes (an outage once, its end once), and every write;
   * `kept`: the weights are the last reconcile's, so a replica that needed them had lost them.
   */
  #tell(report: ReplicaReport, was: ReplicaStatus | undefined, kept: boolean): void {
    const { url, status, detail } = report;
    const fields = { replica: url, status, weights: report.weights, detail, who: this.#who };
    const { log } = this.#opts;
    if (status === 'file_changed') {
      log.warn(fields, `replica ${url}: ${detail}; the fleet takes it (a person's change)`);
      return;
    }
    if (written(status)) {
      log.info(fields, kept ? `replica ${url} restarted with old weights or drifted: ${detail}` : `replica ${url} set to the fleet's weights: ${detail}`);
      return;
    }
    if (status === was) return;
    if (status === 'in_sync') {
      // The end of an outage or a refusal; after our own write it goes without saying.
      if (was !== undefined && !written(was)) log.info(fields, `replica ${url} is in sync again: ${detail}`);
      return;
    }
    const what = { unreachable: 'is unreachable', unauthorized: `refuses the ${this.#who}'s writes`, rejected: 'rejects the weights' }[status];
    log.warn(fields, `replica ${url} ${what}: ${detail}`);
  }
}

/** One call to a replica's admin API: its answer (JSON parsed), or why there is none. */
export async function callReplica(url: string, method: 'GET' | 'PUT' | 'DELETE', path: string, body: unknown, opts: Pick<FleetOptions, 'token' | 'timeoutMs'>): Promise<CallResult> {
  const { token, timeoutMs } = opts;
  try {
    const res = await request(`${url}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      // headersTimeout starts once the request is sent: this bounds the connect too (a pod gone without a RST).
      signal: AbortSignal.timeout(timeoutMs),
      // A connection per request: a kept-alive one could be closed by a restarting replica just as we reuse it.
      reset: true,
    });
    const text = await res.body.text();
    return { code: res.statusCode, json: parseJson(text), text };
  } catch (err) {
    const e = err as Error;
    return { error: e.name === 'TimeoutError' ? `${method} ${path}: no answer within ${timeoutMs} ms` : e.message };
  }
}

/** The upstreams whose share in `weights` is not the desired one, compared in hundredths as the replicas keep them. */
const differing = (desired: Readonly<Weights>, weights: Readonly<Weights>): string[] =>
  Object.keys(desired).filter((name) => Math.round(desired[name]! * 100) !== Math.round(weights[name]! * 100));

/** "flask=95, fastapi=5": the named upstreams of `weights`, in the order given. */
const show = (weights: Readonly<Weights>, names: readonly string[]): string => names.map((n) => `${n}=${weights[n]}`).join(', ');

function isWeights(value: unknown): value is Weights {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'number');
}

/** An error answer's message (the admin API's JSON "message"), else its text, on one short line. */
function oneLine(answer: Reply): string {
  const message = (answer.json as { message?: unknown } | undefined)?.message;
  const text = typeof message === 'string' ? message : answer.text;
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
