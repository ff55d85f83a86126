import { Subscribers, type SubscriberDeps } from '../common/subscribers.js';

/** Who wrote the answer: the upstream, or drum-splitter itself (its 502, 504, 413, 400, 431, 499). */
export type Origin = 'upstream' | 'proxy';

/** The server_type of an exchange counted against no upstream. */
export const NO_UPSTREAM = 'none';

/**
 * Why a request went to the baseline after another upstream failed it (--fallback): the
 * connection was refused, reset or closed, it timed out (connecting, or with `safe` waiting
 * for the answer), or connecting failed otherwise (DNS, TLS).
 */
export type FallbackReason = 'refused' | 'reset' | 'timeout' | 'connect_failed';

/** The upstream that failed an exchange before the baseline answered it, and what it is charged with. */
export interface FailedAttempt {
  readonly from: string;
  readonly reason: FallbackReason;
  /** What its failure would have answered (502, or 504 for a timeout). */
  readonly status: number;
  /** From the request's arrival to the failure. */
  readonly seconds: number;
}

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
  /**
   * Set when `upstream` (the baseline) answered after the split's choice failed: that upstream
   * is charged with the failure as an exchange of its own (failedAttempt), besides this one.
   */
  readonly fallback?: FailedAttempt | undefined;
}

/**
 * A fallback's failed attempt as the exchange it charges its upstream with: what metrics, the
 * rollout's window and the console's series count beside the outcome itself, so a dead canary
 * shows as dead while its clients are answered by the baseline.
 */
export function failedAttempt(o: Outcome, f: FailedAttempt): Outcome {
  return { ...o, serverType: f.from, upstream: f.from, status: f.status, sentStatus: 0, origin: 'proxy', seconds: f.seconds, bytes: 0, fallback: undefined };
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
