import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { request } from 'undici';
import { InputError } from '../common/input-error.js';
import { renderEvent, type EventContext } from './formats.js';
import type { NotifyTarget } from './plan.js';

/** Webhooks for rollout events: a JSON POST per event to each configured URL, off the controller's path. */

export interface RolloutEvent {
  /** e.g. 'promote', 'pause', 'hold', 'reduce', 'rollback', 'complete', 'abort', 'approve-needed' */
  readonly action: string;
  /** One line a person reads: "canary error rate 4.8% (n=1,204) over 1% → to 0%". */
  readonly text: string;
  /** Canary percent before. */
  readonly from: number;
  /** Canary percent after. */
  readonly to: number;
  /** ISO time. */
  readonly at: string;
  /** Anything else the controller adds (verdict numbers). */
  readonly [key: string]: unknown;
}

/** Why an event did not reach a webhook: a full queue, a non-2xx answer, no answer at all, or still queued when shutdown's bound passed. */
export type NotifyFailure = 'queue_full' | 'status' | 'error' | 'shutdown';

/** drum_rollout_notify_failures_total: the Notifier's `failures`. */
export function notifyFailures(registry: Registry): Counter<'reason'> {
  return new Counter({ name: 'drum_rollout_notify_failures_total', help: 'Rollout webhooks not delivered, by reason.', labelNames: ['reason'], registers: [registry] });
}

export interface NotifierDeps {
  readonly log: Logger;
  /** Events not delivered, by reason, one per event and URL. */
  readonly failures: Counter<'reason'>;
  /** Per POST: headers, body and the whole exchange. Default 5000. */
  readonly timeoutMs?: number;
  /** Events waiting per URL behind the one being sent. Default 100. */
  readonly maxQueue?: number;
  /** The canary and baseline the events are about, for the services' formats. Default: "canary", "baseline". */
  readonly context?: EventContext;
}

/**
 * A URL as it may be logged: scheme and host only. A webhook's secret may be in any other part:
 * user:password, the query, or the path (Slack's /services/T…/B…/<secret>).
 */
function shown(url: URL): string {
  return `${url.protocol}//${url.host}/…`;
}

/** One webhook: its events go one at a time, in order, so a slow receiver delays only its own. */
class Lane {
  /** Settles when the last accepted event has been sent or has failed; never rejects. */
  tail: Promise<void> = Promise.resolve();
  /** Accepted and not yet settled: the one in flight and those waiting behind it. */
  private pending = 0;
  /** Aborts the POST in flight once shutdown gives up on this lane; those waiting then are not sent. */
  private readonly dropped = new AbortController();

  constructor(
    readonly target: NotifyTarget,
    private readonly url: string,
    private readonly shown: string,
    private readonly deps: Required<NotifierDeps>,
  ) {}

  push(action: string, body: string): void {
    if (this.pending > this.deps.maxQueue) {
      // The newest goes: those queued are older and already owed.
      this.fail(action, 'queue_full', {});
      return;
    }
    this.pending++;
    const go = (): Promise<void> => this.deliver(action, body).finally(() => this.pending--);
    // Idle: start now rather than a microtask later, so what is in flight is never counted as waiting.
    this.tail = this.pending === 1 ? go() : this.tail.then(go);
  }

  /**
   * One POST, no retries: a promotion notice that arrives late, after later steps, misleads more
   * than a missing one, and a failure is counted for alerting instead.
   */
  private async deliver(action: string, body: string): Promise<void> {
    // Counted as dropped, all at once, by drop().
    if (this.dropped.signal.aborted) return;
    const timeoutMs = this.deps.timeoutMs;
    let status: number;
    try {
      const res = await request(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'drum-splitter' },
        body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        // The undici timeouts leave out connecting; this bounds the whole exchange.
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), this.dropped.signal]),
      });
      status = res.statusCode;
      // Read to the end so the connection can be reused; what it says does not matter, and
      // dump() never rejects.
      await res.body.dump();
    } catch (err) {
      if (!this.dropped.signal.aborted) this.fail(action, 'error', { error: (err as Error).message });
      return;
    }
    if (status < 200 || status > 299) this.fail(action, 'status', { status });
  }

  /** Gives up on what is in flight and waiting; returns how many events that is. */
  drop(): number {
    this.dropped.abort();
    return this.pending;
  }

  fail(action: string, reason: NotifyFailure, detail: Record<string, unknown>): void {
    this.deps.failures.inc({ reason });
    this.deps.log.warn({ url: this.shown, reason, action, ...detail }, `rollout webhook not delivered: ${reason}`);
  }
}

export class Notifier {
  private readonly lanes: readonly Lane[];
  private readonly deps: Required<NotifierDeps>;

  /** Throws an InputError for a URL that is not http(s): better at startup than on every event. A URL alone gets the generic JSON. */
  constructor(targets: readonly (string | NotifyTarget)[], deps: NotifierDeps) {
    const full: Required<NotifierDeps> = { timeoutMs: 5000, maxQueue: 100, context: { canary: 'canary', baseline: 'baseline' }, ...deps };
    this.deps = full;
    this.lanes = targets.map((given, i) => {
      const target: NotifyTarget = typeof given === 'string' ? { url: given, format: 'json' } : given;
      const raw = target.url;
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new InputError('not a URL', `webhook ${i + 1}`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new InputError(`${shown(url)} is not http or https`, `webhook ${i + 1}`);
      }
      return new Lane(target, raw, shown(url), full);
    });
  }

  /** Queues a POST of the event to every URL, in each one's format; returns at once. */
  send(event: RolloutEvent): void {
    for (const lane of this.lanes) {
      let body: string;
      try {
        const payload = renderEvent(lane.target, event, this.deps.context);
        // Not an action this service takes (PagerDuty: only incidents opening or closing).
        if (payload === undefined) continue;
        body = JSON.stringify(payload);
      } catch (err) {
        // A BigInt or a cycle among the controller's extra fields.
        lane.fail(event.action, 'error', { error: (err as Error).message });
        continue;
      }
      lane.push(event.action, body);
    }
  }

  /** Resolves when everything queued so far has been sent or has failed. */
  async flush(): Promise<void> {
    await Promise.all(this.lanes.map((lane) => lane.tail));
  }

  /**
   * For shutdown: lets what is queued go for up to `boundMs`, then drops the rest — the POSTs in
   * flight aborted, those waiting never sent — counts each as "shutdown" and says how many in one
   * line. A receiver that accepts and never answers would otherwise hold the exit for 5 s an event.
   * Returns the number dropped; send() is not to be called after it.
   */
  async close(boundMs: number): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise((resolve) => (timer = setTimeout(resolve, boundMs)))]);
    clearTimeout(timer);
    const dropped = this.lanes.reduce((n, lane) => n + lane.drop(), 0);
    if (dropped > 0) {
      this.deps.failures.inc({ reason: 'shutdown' }, dropped);
      this.deps.log.warn({ dropped, boundMs }, `shutdown: ${dropped} rollout webhooks still queued after ${boundMs} ms were dropped`);
      // The aborted POSTs settle at once.
      await this.flush();
    }
    return dropped;
  }
}
