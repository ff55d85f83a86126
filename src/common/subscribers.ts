import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { Throttled } from './log.js';

/** drum_subscriber_errors_total: one per registry (createMetrics makes it), shared by every list of the process. */
export function createSubscriberErrors(registry: Registry): Counter<'subscriber'> {
  return new Counter({
    name: 'drum_subscriber_errors_total',
    help: 'Subscribers that threw, by list and subscriber (e.g. outcomes/shadow); what they were told went on to the others. Each is logged at most once a minute.',
    labelNames: ['subscriber'],
    registers: [registry],
  });
}

/** Where a list says that a subscriber threw. */
export interface SubscriberDeps {
  readonly log: Logger;
  /** drum_subscriber_errors_total of the process. */
  readonly errors: Counter<'subscriber'>;
  /** Milliseconds, for the log's throttle; default Date.now. */
  readonly now?: () => number;
}

/** What a subscriber is given: the means to subscribe, without the means to publish. */
export interface Subscribable<T> {
  subscribe(name: string, subscriber: (value: T) => void): () => void;
}

/**
 * One publish/subscribe list: the outcomes of exchanges, weight changes, upstream polls.
 * Subscribers are told synchronously, in the order they subscribed. One that throws is
 * logged (at most once a minute per subscriber) and counted in drum_subscriber_errors_total:
 * the publisher and the other subscribers carry on, so an outcome published from a response's
 * 'close' never becomes an uncaught exception.
 */
export class Subscribers<T> implements Subscribable<T> {
  /** Replaced, never edited: a publish goes through the list as it was when it began. */
  #entries: readonly { readonly fn: (value: T) => void; readonly label: string }[] = [];
  readonly #throttles = new Map<string, Throttled>();

  /** `list` names the list in the counter's label and the log ("outcomes", "weights", "polls"). */
  constructor(
    private readonly list: string,
    private readonly deps: SubscriberDeps,
  ) {}

  /**
   * Adds `subscriber`, named `name` in the counter and the log. Each call is its own
   * subscription: a function subscribed twice is told twice, and each returned function
   * (idempotent) ends its own.
   */
  subscribe(name: string, subscriber: (value: T) => void): () => void {
    const entry = { fn: subscriber, label: `${this.list}/${name}` };
    this.#entries = [...this.#entries, entry];
    return () => {
      this.#entries = this.#entries.filter((e) => e !== entry);
    };
  }

  publish(value: T): void {
    for (const entry of this.#entries) {
      try {
        entry.fn(value);
      } catch (err) {
        this.#failed(entry.label, err);
      }
    }
  }

  #failed(label: string, err: unknown): void {
    this.deps.errors.inc({ subscriber: label });
    let throttle = this.#throttles.get(label);
    if (throttle === undefined) this.#throttles.set(label, (throttle = new Throttled(this.deps.log, 'error', this.deps.now)));
    throttle.write({ subscriber: label, err: err instanceof Error ? err.message : String(err) }, 'a subscriber failed (drum_subscriber_errors_total)');
  }
}
