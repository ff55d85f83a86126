import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { FORWARDED_HEADERS, upstreamRequestHeaders } from './headers.js';
import { compileKey, type RequestFacts } from './key.js';
import { parseHost, parsePath } from './nginx-uri.js';
import { sendError } from './reply.js';
import { methodLabel, NO_UPSTREAM, type Metrics } from './metrics.js';
import { hashKey, pickByHash, type SplitTable } from './split.js';
import type { PendingRecord, Recording } from './recording.js';
import { BodyTooLarge, classifyFailure, forward, type Backend, type ForwardBody, type ForwardFailure } from './upstream.js';

export const UPSTREAM_HEADER = 'X-Drum-Splitter-Upstream';

/** The live split; its table is replaced whole on a weight change, never edited. */
export interface Routes {
  readonly table: SplitTable;
}

export interface ProxyDeps {
  readonly config: Config;
  readonly routes: Routes;
  readonly backends: ReadonlyMap<string, Backend>;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly recording: Recording;
}

/** One request on its way through the stages. */
interface Exchange {
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
  /** Set when drum-splitter wrote the response itself rather than passing the upstream's. */
  answeredByProxy: boolean;
  /** Set for a sampled request once its body is read; written out when the exchange ends. */
  record: PendingRecord | undefined;
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

const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)(.*)$/i;

export function createProxy(deps: ProxyDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { config, routes, backends, log, metrics, recording } = deps;
  const splitKey = compileKey(config.key);
  const dropHeaders = new Set<string>(FORWARDED_HEADERS);
  if (config.overrideHeader !== undefined) dropHeaders.add(config.overrideHeader);
  // Built once per upstream rather than per request: the response header naming it.
  const upstreamHeader = new Map([...backends.keys()].map((name) => [name, config.upstreamHeader ? [UPSTREAM_HEADER, name] : []]));

  /** Stage 1: what nginx would see — $uri, $args, $host, $remote_addr — or a 400. */
  function readRequest(req: IncomingMessage, res: ServerResponse): Exchange | undefined {
    const target = req.url!; // always set on a server's request
    let path = target;
    let hostValue = req.headers.host;
    if (!target.startsWith('/')) {
      const m = ABSOLUTE_FORM.exec(target);
      if (m === null) {
        sendError(res, 400, 'bad_request', `request target "${target}" is not a path or an absolute URL`);
        return undefined;
      }
      hostValue = m[1];
      path = m[2]!.startsWith('/') ? m[2]! : `/${m[2]!}`;
    }
    const parsed = parsePath(path);
    if (parsed === null) {
      sendError(res, 400, 'bad_request', `request target "${target}" is malformed or climbs above the root`);
      return undefined;
    }
    const host = hostValue === undefined ? '' : parseHost(hostValue);
    if (host === null) {
      sendError(res, 400, 'bad_request', `Host "${hostValue}" is not a valid host name`);
      return undefined;
    }
    const clientAddr = plainAddress(req.socket.remoteAddress);
    const remoteAddr = (config.trustProxy ? forwardedFor(req.headers['x-forwarded-for'] as string | undefined) : undefined) ?? clientAddr;
    const length = req.headers['content-length'];
    return {
      req,
      res,
      started: performance.now(),
      clientAddr,
      path,
      facts: { remoteAddr, requestUri: target, uri: parsed.uri, args: parsed.args, host, headers: req.headers },
      bodyLength: length !== undefined ? Number(length) : req.headers['transfer-encoding'] !== undefined ? -1 : 0,
      // Every field from the start: one object shape for every exchange keeps the stages' property access monomorphic.
      backend: undefined,
      answeredByProxy: false,
      record: undefined,
    };
  }

  /** Stage 2: refuse a body over the limit without reading it (chunked ones are cut later). */
  function admitBody(ex: Exchange): boolean {
    if (ex.bodyLength <= config.bodyLimit) return true;
    ex.answeredByProxy = true;
    sendError(ex.res, 413, 'payload_too_large', `request body of ${ex.bodyLength} bytes is over the limit of ${config.bodyLimit}`, {}, true);
    return false;
  }

  /** Stage 3: the tester's override header, else the split_clients bucket of the key. */
  function chooseBackend(ex: Exchange): Backend | undefined {
    let name: string | undefined;
    const forced = config.overrideHeader === undefined ? undefined : ex.req.headers[config.overrideHeader];
    if (typeof forced === 'string') {
      if (!backends.has(forced)) {
        ex.answeredByProxy = true;
        sendError(ex.res, 400, 'unknown_upstream', `${config.overrideHeader}: "${forced}" is not an upstream`, {
          upstreams: [...backends.keys()],
        });
        return undefined;
      }
      name = forced;
    } else {
      name = pickByHash(routes.table, hashKey(Buffer.from(splitKey(ex.facts), 'latin1')));
    }
    return backends.get(name!);
  }

  /** Stage 4: count, time and (with --access-log) log the exchange as it ends. */
  function observe(ex: Exchange): void {
    ex.res.once('close', () => {
      const finished = ex.res.writableFinished;
      const status = finished ? ex.res.statusCode : 499; // nginx's code for a client that left
      const serverType = ex.backend?.name ?? NO_UPSTREAM;
      const seconds = (performance.now() - ex.started) / 1000;
      const origin = ex.answeredByProxy || !finished ? 'proxy' : 'upstream';
      metrics.requests.inc({ server_type: serverType, status: String(status), method: methodLabel(ex.req.method), origin });
      if (ex.backend !== undefined) {
        metrics.duration.observe({ server_type: serverType }, seconds);
        metrics.inFlight.dec({ server_type: serverType });
      }
      // Only requests whose body arrived whole: a body cut off (client gone, over the body limit) is no request to replay.
      if (ex.record !== undefined && ex.req.complete) {
        // Status 0 when no response had started, as the seed's replay script writes "no answer".
        const response = { status: ex.res.headersSent ? ex.res.statusCode : 0, complete: finished };
        recording.finish(ex.record, { upstream: serverType, status, latencyMs: seconds * 1000, response });
      }
      if (config.accessLog) {
        const fields = { method: ex.req.method, url: ex.req.url, client: ex.clientAddr, upstream: ex.backend?.name, status, ms: Math.round(seconds * 10000) / 10 };
        log.info(fields, 'request');
      }
    });
  }

  /** The request body as it arrives: a chunked one is cut off past the body limit. */
  function incomingBody(ex: Exchange): Readable | null {
    if (ex.bodyLength === 0) return null;
    return ex.bodyLength === -1 ? Readable.from(capped(ex.req, config.bodyLimit), { objectMode: false }) : ex.req;
  }

  /**
   * Stage 5, for a sampled request only: read the body into memory (up to the record cap), so
   * the record has it, and forward those same bytes. A body over the cap is forwarded whole
   * (what was read, then the rest as it streams in) and its record says it was truncated.
   */
  async function record(ex: Exchange): Promise<ForwardBody | undefined> {
    const pending = recording.start(ex.req, ex.path);
    const source = incomingBody(ex);
    let body: ForwardBody = null;
    if (source !== null) {
      const read: Buffer[] = [];
      const chunks = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      try {
        for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
          read.push(next.value);
          pending.body.add(next.value);
          if (pending.body.truncated) break;
        }
      } catch (err) {
        // Over the body limit: refused as the streaming path would; the client gone: nothing to do.
        if (err instanceof BodyTooLarge) refuse(ex, classifyFailure(err), err);
        return undefined;
      }
      body = pending.body.truncated ? Readable.from(readThenRest(read, chunks), { objectMode: false }) : Buffer.concat(read);
    }
    ex.record = pending;
    return body;
  }

  /** Answers for a failed forward, closing the connection if the request body was not read. */
  function refuse(ex: Exchange, failure: ForwardFailure, err: Error): void {
    const { req, res } = ex;
    if (failure.status !== 413) log.warn({ upstream: ex.backend!.name, err: err.message, url: req.url }, failure.reason);
    const error = failure.status === 413 ? 'payload_too_large' : failure.status === 504 ? 'gateway_timeout' : 'bad_gateway';
    ex.answeredByProxy = true;
    sendError(res, failure.status, error, failure.reason, { upstream: ex.backend!.name }, !req.complete);
  }

  /** Stage 6: send the request upstream and stream the answer back. */
  function forwardTo(ex: Exchange, backend: Backend, body: ForwardBody): void {
    const { req, res } = ex;
    const headers = upstreamRequestHeaders(
      req.rawHeaders,
      req.headers,
      { clientAddr: ex.clientAddr, proto: 'http', host: req.headers.host },
      dropHeaders,
    );
    const response = ex.record?.response;
    forward(
      backend,
      {
        method: req.method!,
        path: ex.path,
        headers,
        body,
        timeoutMs: config.timeoutMs,
        responseHeaders: upstreamHeader.get(backend.name)!,
        ...(response === undefined ? {} : { onData: (chunk: Buffer) => response.add(chunk) }),
      },
      res,
      (failure, err) => refuse(ex, failure, err),
    );
  }

  return function handle(req, res) {
    const ex = readRequest(req, res);
    if (ex === undefined) {
      metrics.requests.inc({ server_type: NO_UPSTREAM, status: '400', method: methodLabel(req.method), origin: 'proxy' });
      return;
    }
    observe(ex);
    if (!admitBody(ex)) return;
    const backend = chooseBackend(ex);
    if (backend === undefined) return;
    ex.backend = backend;
    metrics.inFlight.inc({ server_type: backend.name });
    if (!recording.wants(ex.facts.uri)) {
      forwardTo(ex, backend, incomingBody(ex));
      return;
    }
    void record(ex).then((body) => {
      if (body !== undefined) forwardTo(ex, backend, body);
    });
  };
}

/** The chunks already read, then the rest of the body as it arrives. */
async function* readThenRest(read: readonly Buffer[], rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield* read;
  for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
}

/** A chunked body, stopped with BodyTooLarge once it passes `limit` bytes. */
async function* capped(body: AsyncIterable<Buffer>, limit: number): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of body) {
    seen += chunk.length;
    if (seen > limit) throw new BodyTooLarge(`request body is over the limit of ${limit} bytes`);
    yield chunk;
  }
}
