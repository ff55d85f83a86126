import { Subscribers, type SubscriberDeps } from '../common/subscribers.js';

/** Who wrote the answer: the upstream, or drum-splitter itself (its 502, 504, 413, 400, 431, 499). */
export type Origin = 'upstream' | 'proxy';

/** The server_type of an exchange counted against no upstream. */
export const NO_UPSTREAM = 'none';

/**
 * What one exchange came to, published once when it ends. Metrics and the access log are
 * built from these; anything else that judges the backends (rollout windows, shadow
 * comparisons) subscribes the same way rather than reading counters back.
 */
export interface Outcome {
  /** The exchange's number in this process; 0 for a request refused before it became one. */
  readonly id: number;
  /** Whom it counts against: the upstream's name, or "none" (the request's or the proxy's own fault). */
  readonly serverType: string;
  /** The upstream it was sent to, if one was chosen, whether or not it counts against it. */
  readonly upstream: string | undefined;
  /** What the client got: the upstream's status, ours, 499 for a client that left. */
  readonly status: number;
  /** The status line the client was sent; 0 if none was (it left first). */
  readonly sentStatus: number;
  readonly origin: Origin;
  readonly method: string | undefined;
  readonly url: string | undefined;
  /** The client's address ($remote_addr before any X-Forwarded-For). */
  readonly client: string;
  /** From the request's arrival to the end of its answer. */
  readonly seconds: number;
  /** The client left before the answer was complete. */
  readonly clientGone: boolean;
  /** Bytes of the answer's body passed to the client (the upstream's, or our error's). */
  readonly bytes: number;
  /** The request's body arrived whole. */
  readonly requestComplete: boolean;
  /** The cohort rule (config routes:) the request matched, by name; undefined when none did. */
  readonly route?: string | undefined;
  /** That rule took it to its upstream: not the split's choice, so what judges the split (the rollout, the console's series) leaves it out. */
  readonly routed?: boolean;
}

/** The outcome of a request refused before any upstream was chosen: ours, at once, counted against none. */
export function refusedOutcome(status: number, method: string | undefined, url: string | undefined, client: string, bytes: number): Outcome {
  return { id: 0, serverType: NO_UPSTREAM, upstream: undefined, status, sentStatus: status, origin: 'proxy', method, url, client, seconds: 0, clientGone: false, bytes, requestComplete: false, route: undefined, routed: false };
}

/**
 * Every exchange's outcome, as it ends; one list per proxy, so in-process proxies stay apart.
 * Published from the response's 'close': a subscriber that throws is logged and counted, never
 * thrown into the request path.
 */
export class Outcomes extends Subscribers<Outcome> {
  constructor(deps: SubscriberDeps) {
    super('outcomes', deps);
  }
}
