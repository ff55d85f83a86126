import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { ProxyConfig } from './options.js';
import { ERRORS, sendError, type ErrorName } from '../common/errors.js';
import { FORWARDED_HEADERS, sameName, upstreamRequestHeaders } from '../common/headers.js';
import { compileKey, type RequestFacts } from './key.js';
import { parseHost, parsePath } from './nginx-uri.js';
import type { Metrics } from '../observe/metrics.js';
import { NO_UPSTREAM, refusedOutcome, type FailedAttempt, type FallbackReason, type Outcome, type Outcomes } from '../observe/outcomes.js';
import { HASH_FUNCTIONS, pickByHash, type SplitTable } from './split.js';
import { firstMatch, type CompiledRoute } from './cohorts.js';
import type { PendingRecord, Recording } from '../record/recording.js';
import { BufferFailed, SpillFile } from './spill.js';
import { BodyTooLarge, classifyFailure, dispatch, tapped, toClient, type Backend, type Blame, type ClientAnswer, type ClientSink, type FailedAt, type ForwardBody, type ForwardFailure, type Tap } from './forward.js';
import { fallbackReason } from './fallback.js';

export const UPSTREAM_HEADER = 'X-Drum-Splitter-Upstream';
/** On an answer the baseline gave after the split's choice failed: the name of the one that failed. */
export const FALLBACK_HEADER = 'X-Drum-Splitter-Fallback';

/** A failed forward's log level by whose fault it was: the client's is no operator's problem. */
const LOG_LEVEL = { client: 'info', upstream: 'warn', proxy: 'warn' } as const satisfies Record<Blame, 'info' | 'warn'>;

/** More request headers than this get 431: Node would otherwise drop the rest silently, Content-Length among them. */
export const MAX_HEADERS = 1000;

/**
 * What the live shadow (src/shadow) is given of an exchange it copies: the handler passes it
 * the request's body and the primary's answer as they go by, never waiting for it.
 */
export interface ShadowCopy {
  /** Each chunk of the request body. */
  readonly body: { add(chunk: Buffer): void };
  /** The primary's answer, each chunk of its body. */
  readonly answer: { add(chunk: Buffer): void };
  /** The request goes to the primary now, with these headers. */
  sending(headers: readonly string[]): void;
  /** The primary's answer has begun, with this status. */
  head(status: number): void;
}

export interface Shadowing {
  /** A copy of exchange `id`, sent by the split to `upstream`, for the shadow to fill; undefined when it is not copied. */
  copy(id: number, req: IncomingMessage, path: string, uri: string, upstream: string, bodyLength: number): ShadowCopy | undefined;
  /** Every exchange's end: a copied one is sent to the shadow now. */
  ended(outcome: Outcome): void;
}

/** The live routing: the cohort rules, then the split. Each is replaced whole on a change, never edited. */
export interface Routes {
  table: SplitTable;
  /** Checked in order before the split (config routes:, PUT /routes); none: every request is the split's. */
  rules: readonly CompiledRoute[];
}

export interface ProxyDeps {
  readonly config: ProxyConfig;
  readonly routes: Routes;
  readonly backends: ReadonlyMap<string, Backend>;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly recording: Recording;
  /** Where each exchange's outcome is published. */
  readonly outcomes: Outcomes;
  /** The live shadow, which copies some exchanges; it hears their end from the outcomes. */
  readonly shadow?: Shadowing;
}

/** The request handler, and what shutdown needs of it. */
export interface Proxy {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Exchanges not yet ended. */
  readonly inFlight: number;
  /**
   * Shutdown: every answer from now on carries Connection: close, and connections whose
   * answer is already on its way are closed once it ends. Resolves when nothing is in flight.
   */
  drain(): Promise<void>;
}

/** One request on its way through the stages. */
interface Exchange {
  /** Its number in this process, which its outcome and record carry. */
  readonly id: number;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly started: number;
  /** The TCP peer, IPv4 without the ::ffff: prefix. */
  readonly clientAddr: string;
  /** The path and query to send upstream, as received. */
  readonly path: string;
  readonly facts: RequestFacts;
  /** Bytes announced by Content-Length, or -1 for a chunked body, 0 for none. */
  readonly bodyLength: number;
  backend: Backend | undefined;
  /** The cohort rule the request matched, if any. */
  route: CompiledRoute | undefined;
  /**
   * Set once drum-splitter answered (or cut) the exchange itself: the one "already answered"
   * guard every stage checks, and whose fault it was, for counting.
   */
  failure: ForwardFailure | undefined;
  /** Set for a sampled request, whose bodies it captures; the recording completes it from the outcome. */
  record: PendingRecord | undefined;
  /** Set for a request the live shadow copies. */
  shadow: ShadowCopy | undefined;
  /** Bytes of the answer's body passed to the client. */
  bytes: number;
  /** The request body's overflow file, removed when the exchange ends. */
  spill: SpillFile | undefined;
  /** Its index in the list of exchanges in flight. */
  slot: number;
  /** The client's response as the upstream's answer goes to it, told when the response closes. */
  client: ClientSink | undefined;
  /** Set when the split's choice failed and the request went to the baseline (--fallback). */
  fallback: FailedAttempt | undefined;
}

/** Node reports IPv4 peers of a dual-stack socket as ::ffff:a.b.c.d; nginx as a.b.c.d. */
export function plainAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/**
 * The last X-Forwarded-For entry, as nginx's realip module takes it, if it is an address.
 * Node has joined repeated X-Forwarded-For headers into one string.
 */
function forwardedFor(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const last = header.slice(header.lastIndexOf(',') + 1).trim();
  return isIP(last) === 0 ? undefined : last;
}

/**
 * What sees the answer's body on its way to the client: the byte count, and the copies the
 * record and the shadow keep. A class, not an object literal: V8 may pretenure a literal's
 * allocation site, and a tap allocated in old space keeps its exchange's young objects alive
 * through every scavenge until the next full collection (with --no-request-buffering that
 * promoted ~4.5 KB a request; bench:alloc).
 */
class AnswerTap implements Tap {
  constructor(private readonly ex: Exchange) {}

  head(status: number): void {
    this.ex.shadow?.head(status);
  }

  data(chunk: Buffer): void {
    const { ex } = this;
    ex.bytes += chunk.length;
    ex.record?.response?.add(chunk);
    ex.shadow?.answer.add(chunk);
  }
}

const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)(.*)$/i;

/** How many times a header occurs in Node's flat rawHeaders list. */
function occurrences(raw: readonly string[], lowerName: string): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (sameName(raw[i]!, lowerName)) n++;
  return n;
}

/** A refusal before any upstream is involved: [error, message]. */
type Refusal = readonly [ErrorName, string];

/** What is wrong with the request's headers (too many, no Host, two), or undefined. The request's fault in every case. */
export function headerFault(req: Pick<IncomingMessage, 'rawHeaders' | 'httpVersion'>, host: string | undefined): Refusal | undefined {
  if (req.rawHeaders.length > 2 * MAX_HEADERS) {
    return ['too_many_headers', `${req.rawHeaders.length / 2} request headers; at most ${MAX_HEADERS} are taken`];
  }
  if (host === undefined && req.httpVersion === '1.1') return ['bad_request', 'an HTTP/1.1 request needs a Host header'];
  // undici would refuse to send it; nginx refuses it too ("client sent duplicate host header").
  if (host !== undefined && occurrences(req.rawHeaders, 'host') > 1) return ['bad_request', 'the request has more than one Host header'];
  return undefined;
}

export function createProxy(deps: ProxyDeps): Proxy {
  const { config, routes, backends, log, metrics, recording, outcomes, shadow } = deps;
  if (config.accessLog) {
    outcomes.subscribe('access-log', (o) =>
      log.info({ method: o.method, url: o.url, client: o.client, upstream: o.upstream, route: o.route, fallback: o.fallback?.from, status: o.status, ms: Math.round(o.seconds * 10000) / 10 }, 'request'),
    );
  }
  const splitKey = compileKey(config.key);
  // The table was compiled for this hash (listener.ts); both follow config.splitHash.
  const hashKey = HASH_FUNCTIONS[config.splitHash];
  const dropHeaders = new Set<string>(FORWARDED_HEADERS);
  if (config.overrideHeader !== undefined) dropHeaders.add(config.overrideHeader);
  // A buffered body is sent with the Content-Length of what was read, whatever the client said.
  const dropForBuffered = new Set([...dropHeaders, 'content-length']);
  const settingsOf = new Map(config.upstreams.map((u) => [u.name, u]));
  // This hop's scheme, for X-Forwarded-Proto.
  const proto = config.tls === undefined ? 'http' : 'https';
  // Built once per upstream rather than per request: how its answers reach the client, with the header naming it.
  const delivery = (name: string, extra: readonly string[] = []): ClientAnswer => ({
    responseHeaders: [...(config.upstreamHeader ? [UPSTREAM_HEADER, name] : []), ...extra],
    bufferResponse: settingsOf.get(name)!.responseBuffering,
    buffer: config.buffer,
  });
  const deliveries = new Map<string, ClientAnswer>([...backends.keys()].map((name) => [name, delivery(name)]));
  const baseline = backends.get(config.upstreams[0]!.name)!;
  // The baseline's answers to requests another upstream failed, by the one that failed.
  const fallbackDeliveries = new Map<string, ClientAnswer>([...backends.keys()].map((name) => [name, delivery(baseline.name, [FALLBACK_HEADER, name])]));
  /**
   * The exchanges in flight, an array with swap-remove rather than a Set: under steady churn a
   * Set rebuilds its hash table every few dozen adds, and each retired table keeps a link to the
   * next one and the entries it held. Once a retired table has reached old space, the young
   * collector follows that chain from it, so every exchange added since the last full collection
   * survived each scavenge and was promoted — ~2.2 KB a request, 5× the bare proxy's (bench:alloc).
   */
  const live: Exchange[] = [];
  let draining: (() => void) | undefined;
  let exchanges = 0;

  /** The one way drum-splitter answers for itself: marks the exchange answered, whose fault it was, and replies. */
  function answer(ex: Exchange, failure: ForwardFailure, extra: Record<string, unknown> = {}): void {
    ex.failure = failure;
    // An unread body would be taken as the next request: the connection goes with the answer.
    ex.bytes = sendError(ex.res, failure.error, failure.reason, extra, !ex.req.complete);
  }

  /** Stage 1: what nginx would see — $uri, $args, $host, $remote_addr — or a reason to refuse. */
  function readRequest(req: IncomingMessage, res: ServerResponse): Exchange | Refusal {
    const target = req.url!; // always set on a server's request
    let path = target;
    let hostValue = req.headers.host;
    const fault = headerFault(req, hostValue);
    if (fault !== undefined) return fault;
    if (!target.startsWith('/')) {
      const m = ABSOLUTE_FORM.exec(target);
      if (m === null) return ['bad_request', `request target "${target}" is not a path or an absolute URL`];
      hostValue = m[1];
      path = m[2]!.startsWith('/') ? m[2]! : `/${m[2]!}`;
    }
    const parsed = parsePath(path);
    if (parsed === null) return ['bad_request', `request target "${target}" is malformed or climbs above the root`];
    const host = hostValue === undefined ? '' : parseHost(hostValue);
    if (host === null) return ['bad_request', `Host "${hostValue}" is not a valid host name`];
    const clientAddr = plainAddress(req.socket.remoteAddress);
    const remoteAddr = (config.trustProxy ? forwardedFor(req.headers['x-forwarded-for'] as string | undefined) : undefined) ?? clientAddr;
    const length = req.headers['content-length'];
    return {
      id: ++exchanges,
      req,
      res,
      started: performance.now(),
      clientAddr,
      path,
      facts: { remoteAddr, requestUri: target, uri: parsed.uri, args: parsed.args, host, headers: req.headers },
      bodyLength: length !== undefined ? Number(length) : req.headers['transfer-encoding'] !== undefined ? -1 : 0,
      // Every field from the start: one object shape for every exchange keeps the stages' property access monomorphic.
      backend: undefined,
      route: undefined,
      failure: undefined,
      record: undefined,
      shadow: undefined,
      bytes: 0,
      spill: undefined,
      slot: -1,
      client: undefined,
      fallback: undefined,
    };
  }

  /** Stage 2: when the exchange ends, publish its one outcome (counters, the access log and the recording hear it), tidy up. */
  function observe(ex: Exchange): void {
    ex.slot = live.length;
    live.push(ex);
    // 'close' comes once: on(), without once()'s wrapper, on every exchange.
    ex.res.on('close', () => {
      ex.client?.closed();
      const last = live.pop()!;
      if (last !== ex) {
        live[ex.slot] = last;
        last.slot = ex.slot;
      }
      void ex.spill?.close();
      const finished = ex.res.writableFinished;
      const { failure, backend } = ex;
      // A body cut by the upstream is its failure (502/504), not a client that left (499, nginx's code).
      const status = failure !== undefined ? ERRORS[failure.error].status : finished ? ex.res.statusCode : 499;
      // Only an upstream's own failure counts against it; the client's and ours count as no upstream's.
      const serverType = backend !== undefined && (failure === undefined || failure.blame === 'upstream') ? backend.name : NO_UPSTREAM;
      // After a fallback, the answering upstream's own time: the failed attempt's is charged to the one that failed.
      const seconds = (performance.now() - ex.started) / 1000 - (ex.fallback?.seconds ?? 0);
      const origin = failure !== undefined || !finished ? 'proxy' : 'upstream';
      if (backend !== undefined) metrics.forwardEnded(backend.name);
      const { method, url, complete: requestComplete } = ex.req;
      const clientGone = !finished && failure === undefined;
      const sentStatus = ex.res.headersSent ? ex.res.statusCode : 0;
      const { route } = ex;
      outcomes.publish({ id: ex.id, serverType, upstream: backend?.name, status, sentStatus, origin, method, url, client: ex.clientAddr, seconds, clientGone, bytes: ex.bytes, requestComplete, route: route?.name, routed: route?.upstream !== undefined, fallback: ex.fallback });
      if (draining !== undefined && live.length === 0) draining();
    });
  }

  /** Stage 3: refuse a body over the limit without reading it (chunked ones are cut as they are read). */
  function admitBody(ex: Exchange): boolean {
    if (ex.bodyLength <= config.bodyLimit) return true;
    const reason = `request body of ${ex.bodyLength} bytes is over the limit of ${config.bodyLimit}`;
    answer(ex, { error: 'payload_too_large', reason, blame: 'client' });
    return false;
  }

  /**
   * Stage 4a, the cohort rules: the first whose conditions all hold (config routes:, PUT /routes),
   * remembered on the exchange for its outcome; none to check costs one length test.
   */
  function cohortOf(ex: Exchange): CompiledRoute | undefined {
    const { rules } = routes;
    if (rules.length === 0) return undefined;
    return (ex.route = firstMatch(rules, ex.req.method!, ex.facts));
  }

  /** Stage 4: the tester's override header, else a cohort rule's upstream, else the bucket of the key (split_clients', or md5 % 100). */
  function chooseBackend(ex: Exchange): Backend | undefined {
    let name: string | undefined;
    const forced = config.overrideHeader === undefined ? undefined : ex.req.headers[config.overrideHeader];
    if (typeof forced === 'string') {
      if (!backends.has(forced)) {
        const reason = `${config.overrideHeader}: "${forced}" is not an upstream`;
        answer(ex, { error: 'unknown_upstream', reason, blame: 'client' }, { upstreams: [...backends.keys()] });
        return undefined;
      }
      name = forced;
    } else {
      name = cohortOf(ex)?.upstream ?? pickByHash(routes.table, hashKey(Buffer.from(splitKey(ex.facts), 'latin1')));
    }
    return backends.get(name!);
  }

  /** The request body as it arrives: a chunked one cut off past the body limit, each chunk seen by the record. */
  async function* bodyChunks(ex: Exchange): AsyncGenerator<Buffer> {
    let seen = 0;
    for await (const chunk of ex.req as AsyncIterable<Buffer>) {
      seen += chunk.length;
      if (seen > config.bodyLimit) throw new BodyTooLarge(`request body is over the limit of ${config.bodyLimit} bytes`);
      ex.record?.body.add(chunk);
      ex.shadow?.body.add(chunk);
      yield chunk;
    }
  }

  /** Stage 5, streaming: the body goes upstream as it arrives (--no-request-buffering). */
  function streamBody(ex: Exchange): ForwardBody {
    if (ex.bodyLength === 0) return null;
    // Nothing to count or keep: hand undici the request itself.
    if (ex.bodyLength > 0 && ex.record === undefined && ex.shadow === undefined) return ex.req;
    return Readable.from(bodyChunks(ex), { objectMode: false });
  }

  /**
   * Stage 5, buffered (nginx's proxy_request_buffering): the whole body is read before an
   * upstream connection is taken, so a slow client holds none of the upstream's workers. Up to
   * --buffer-memory stays in memory, the rest goes to a temp file. Undefined if the exchange
   * was answered meanwhile (over the limit, the disk failed) or the client left.
   */
  async function bufferBody(ex: Exchange): Promise<{ body: ForwardBody; length: number } | undefined> {
    const held: Buffer[] = [];
    let length = 0;
    let whole = false;
    try {
      for await (const chunk of bodyChunks(ex)) {
        length += chunk.length;
        if (ex.spill !== undefined) {
          await ex.spill.append(chunk);
        } else if (length <= config.buffer.memory) {
          held.push(chunk);
        } else {
          ex.spill = await SpillFile.create(config.buffer.dir);
          const spill = ex.spill;
          await Promise.all([...held, chunk].map((c) => spill.append(c)));
          held.length = 0;
        }
      }
      whole = true;
    } catch (err) {
      // Over the limit or our disk: say so. The client gone: nothing to answer.
      if (err instanceof BodyTooLarge || err instanceof BufferFailed) answerFailedForward(ex, classifyFailure(err), err);
    }
    const spill = ex.spill;
    if (!whole || ex.res.destroyed) {
      // Nothing goes upstream. The exchange may have ended while the file was being made, before it could remove it.
      void spill?.close();
      return undefined;
    }
    if (spill === undefined) return { body: length === 0 ? null : held.length === 1 ? held[0]! : Buffer.concat(held, length), length };
    return { body: Readable.from(readBack(spill), { objectMode: false }), length };
  }

  /**
   * Stage 5, buffered, for a body whose Content-Length fits in memory (most predictions): read
   * with the stream's events and forwarded from its 'end', with no promise on the way — async
   * iteration (bufferBody) costs several promises a chunk. Admitted, so within the limit; Node
   * ends the stream at Content-Length. Nothing is sent if the client leaves first.
   */
  function holdThenForward(ex: Exchange, backend: Backend): void {
    const { req } = ex;
    const chunks: Buffer[] = [];
    const onData = (chunk: Buffer): void => {
      ex.record?.body.add(chunk);
      ex.shadow?.body.add(chunk);
      chunks.push(chunk);
    };
    // A client that leaves first never gets 'end'; its listeners go with it.
    const onEnd = (): void => {
      if (!ex.res.destroyed) forwardTo(ex, backend, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, ex.bodyLength), ex.bodyLength);
    };
    req.on('data', onData).on('end', onEnd);
  }

  /**
   * Answers for a failed forward; a failure in the middle of the answer's body cuts the
   * connection. `unsent` names the fallback a body that could not be sent again missed.
   */
  function answerFailedForward(ex: Exchange, failure: ForwardFailure, err: Error, midBody = false, unsent?: FallbackReason): void {
    const { req, res } = ex;
    const upstream = ex.backend!.name;
    if (failure.error !== 'payload_too_large') {
      const fields = {
        upstream, err: err.message, url: req.url, status: ERRORS[failure.error].status, blame: failure.blame,
        ...(unsent === undefined ? {} : { fallback: `${unsent}, not taken: the streamed request body was already read` }),
      };
      log[LOG_LEVEL[failure.blame]](fields, midBody ? `${failure.reason} in the middle of the answer; connection cut` : failure.reason);
    }
    // A 502 or 504 names the upstream that failed in the header that names the one that answered.
    if (!midBody && failure.blame === 'upstream' && config.upstreamHeader) res.setHeader(UPSTREAM_HEADER, upstream);
    if (!midBody) return answer(ex, failure, { upstream });
    ex.failure = failure;
    res.destroy();
  }

  /**
   * Stage 6, when the upstream failed the request: to the baseline once, if --fallback allows
   * it and the body can be sent again (fallback.ts decides); else the client hears the failure.
   */
  function forwardFailed(ex: Exchange, body: ForwardBody, bufferedLength: number | undefined, failure: ForwardFailure, err: Error, at: FailedAt): void {
    const from = ex.backend!;
    const reason = from === baseline || pinned(ex) ? undefined : fallbackReason(config.fallback, { at, code: (err as { code?: string }).code, blame: failure.blame, method: ex.req.method! });
    const again = reason === undefined ? undefined : resendable(ex, body, at);
    if (again === undefined) return answerFailedForward(ex, failure, err, at === 'answer', reason);
    ex.fallback = { from: from.name, reason: reason!, status: ERRORS[failure.error].status, seconds: (performance.now() - ex.started) / 1000 };
    log.warn({ upstream: from.name, err: err.message, url: ex.req.url, reason, to: baseline.name }, `${failure.reason}; sent to the baseline`);
    metrics.forwardEnded(from.name);
    metrics.forwardStarted(baseline.name);
    ex.backend = baseline;
    forwardTo(ex, baseline, again, bufferedLength);
  }

  /** A cohort rule or the override header chose the upstream: its answer, failure included, is what was asked for. */
  function pinned(ex: Exchange): boolean {
    return ex.route?.upstream !== undefined || (config.overrideHeader !== undefined && typeof ex.req.headers[config.overrideHeader] === 'string');
  }

  /**
   * The request's body to send again, or undefined if it cannot be: one in memory is, one
   * spilled is read back from its file again, and a stream only if undici never began on it.
   */
  function resendable(ex: Exchange, body: ForwardBody, at: FailedAt): ForwardBody | undefined {
    if (ex.spill !== undefined) return Readable.from(readBack(ex.spill), { objectMode: false });
    return body === null || Buffer.isBuffer(body) || at === 'connect' ? body : undefined;
  }

  /** Stage 6: send the request upstream and pass the answer back. */
  function forwardTo(ex: Exchange, backend: Backend, body: ForwardBody, bufferedLength: number | undefined): void {
    const { req, res } = ex;
    const headers = upstreamRequestHeaders(
      req.rawHeaders,
      req.headers,
      { clientAddr: ex.clientAddr, proto, host: req.headers.host },
      bufferedLength === undefined ? dropHeaders : dropForBuffered,
    );
    if (bufferedLength !== undefined) headers.push('Content-Length', String(bufferedLength));
    const clientAnswer = ex.fallback === undefined ? deliveries.get(backend.name)! : fallbackDeliveries.get(ex.fallback.from)!;
    ex.shadow?.sending(headers);
    dispatch(backend, { method: req.method!, path: ex.path, headers, body, timeoutMs: config.timeoutMs }, (call) => {
      ex.client = toClient(res, call, clientAnswer, (failure, err, at) => forwardFailed(ex, body, bufferedLength, failure, err, at));
      return tapped(ex.client, new AnswerTap(ex));
    });
  }

  /** Stage 5 buffered, then stage 6. */
  async function bufferThenForward(ex: Exchange, backend: Backend): Promise<void> {
    const buffered = await bufferBody(ex);
    if (buffered !== undefined && ex.failure === undefined) forwardTo(ex, backend, buffered.body, buffered.length);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const ex = readRequest(req, res);
    if (!('req' in ex)) {
      const [error, message] = ex;
      const bytes = sendError(res, error, message, {}, !req.complete);
      outcomes.publish(refusedOutcome(ERRORS[error].status, req.method, req.url, plainAddress(req.socket.remoteAddress), bytes));
      return;
    }
    observe(ex);
    if (!admitBody(ex)) return;
    const backend = chooseBackend(ex);
    if (backend === undefined) return;
    ex.backend = backend;
    metrics.forwardStarted(backend.name);
    if (recording.wants(ex.facts.uri)) ex.record = recording.start(ex.id, req, ex.path, ex.bodyLength);
    // What a cohort rule took is not the split's, and not copied: a customer kept on the baseline stays off the canary.
    if (shadow !== undefined && ex.route?.upstream === undefined) ex.shadow = shadow.copy(ex.id, req, ex.path, ex.facts.uri, backend.name, ex.bodyLength);
    // A body to buffer takes a detour; everything else goes on in this tick.
    if (ex.bodyLength === 0 || !settingsOf.get(backend.name)!.requestBuffering) forwardTo(ex, backend, streamBody(ex), undefined);
    else if (ex.bodyLength > 0 && ex.bodyLength <= config.buffer.memory) holdThenForward(ex, backend);
    else void bufferThenForward(ex, backend);
  }

  return {
    handle,
    get inFlight() {
      return live.length;
    },
    drain() {
      const done = new Promise<void>((resolve) => (draining = resolve));
      for (const ex of live) {
        if (!ex.res.headersSent) ex.res.shouldKeepAlive = false;
        else {
          // Already on its way with keep-alive: close the connection once it is delivered.
          const socket: Socket = ex.req.socket;
          ex.res.once('finish', () => socket.end());
        }
      }
      if (live.length === 0) draining!();
      return done;
    },
  };
}

/** A spilled request body, read back from its file, from the start each time (a failed read is a BufferFailed: ours, not the upstream's). */
async function* readBack(spill: SpillFile): AsyncGenerator<Buffer> {
  let at = 0;
  for (let chunk = await spill.readAt(at, 64 * 1024); chunk !== null; chunk = await spill.readAt(at, 64 * 1024)) {
    at += chunk.length;
    yield chunk;
  }
}
