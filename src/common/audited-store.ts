import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { Subscribers } from './subscribers.js';

/** The last this many changes are kept in an audit trail (and its state file). */
export const HISTORY_LIMIT = 1000;

/** A versioned state and its audit trail: what a state file keeps. */
export interface AuditedSnapshot<S, E> {
  readonly state: S;
  readonly history: readonly E[];
}

/** Who changes a value, from where, and why. */
export interface ChangeMeta<Source extends string = string> {
  readonly source: Source;
  readonly who: string;
  readonly reason?: string | null;
}

/** What change() did: applied it, found it changed nothing, or refused it for a stale version. */
export type ChangeResult = 'changed' | 'unchanged' | 'conflict';

/** Where a store keeps its snapshots (a --state file). */
export interface SnapshotSaver<T> {
  /** Latest wins; kept trying until it is on disk. */
  save(snapshot: T): void;
  /** Once, now: resolves when it is on disk (or a later save made it stale), rejects if it cannot be. */
  trySave(snapshot: T): Promise<void>;
  /** After the latest save's write: undefined if it is on disk, else why not. */
  flush(): Promise<Error | undefined>;
}

/** What one kind of audited value (the weights, the cohort rules) brings to the store. */
export interface AuditedKind<V, S extends { readonly version: number }, E, M extends ChangeMeta> {
  /** The list's name, for the subscriber counter and the log: "weights". */
  readonly what: string;
  /** Throws an InputError for a value no writer may set. */
  check(value: V): void;
  /** Whether `state` holds `value` already: setting it records nothing. */
  same(state: S, value: V): boolean;
  /** The state `value` makes as `version`, and the audit entry saying so. */
  next(from: S, value: V, change: { readonly at: string; readonly version: number; readonly meta: M }): { readonly state: S; readonly entry: E };
  /** The log line of an accepted change: its fields (who, reason and what changed). */
  logged(entry: E, meta: M): Record<string, unknown>;
}

export interface AuditedDeps<S, E> {
  readonly now: () => Date;
  readonly log: Logger;
  readonly subscriberErrors: Counter<'subscriber'>;
  readonly persist?: SnapshotSaver<AuditedSnapshot<S, E>> | undefined;
}

/**
 * A live value with its version and audit trail, changed by compare-and-set. Whoever acts on a
 * change (the proxy, workers) subscribes; the store knows none of them. The state file is written
 * by the store itself, before any listener hears: keeping a decision across restarts is part of
 * accepting it.
 */
export class AuditedStore<V, S extends { readonly version: number }, E, M extends ChangeMeta> {
  #state: S;
  readonly #history: E[];
  readonly #listeners: Subscribers<AuditedSnapshot<S, E>>;
  /** The last changeSaved() in turn: they go one at a time. */
  #saving: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly kind: AuditedKind<V, S, E, M>,
    snapshot: AuditedSnapshot<S, E>,
    private readonly deps: AuditedDeps<S, E>,
  ) {
    this.#listeners = new Subscribers(kind.what, { log: deps.log, errors: deps.subscriberErrors });
    this.#state = snapshot.state;
    this.#history = [...snapshot.history];
  }

  get state(): S {
    return this.#state;
  }

  get history(): readonly E[] {
    return this.#history;
  }

  /**
   * Calls `listener` after every accepted change, once `persist` has it, as a Subscribers list
   * does: a listener that throws is logged and counted; the change stands, the caller and the
   * other listeners carry on. `history` is the store's own list, growing with later changes: read
   * it now, copy what you keep. Returns the function that unsubscribes.
   */
  subscribe(name: string, listener: (snapshot: AuditedSnapshot<S, E>) => void): () => void {
    return this.#listeners.subscribe(name, listener);
  }

  /**
   * Applies a value, checked here too since any writer may call this (an InputError changes
   * nothing). With `expectVersion`, only if the store is still at that version: a writer that
   * decided on an older view is refused ('conflict') before anything else, even if its change
   * would be none. 'unchanged', recording nothing, when the value is the one in force. The new
   * snapshot is then saved (and retried until it is on disk): the change stands either way.
   */
  change(value: V, meta: M, opts: { expectVersion?: number | undefined } = {}): ChangeResult {
    const refused = this.#refused(value, opts.expectVersion);
    if (refused !== undefined) return refused;
    const next = this.#next(value, meta);
    this.deps.persist?.save(next);
    this.#commit(next, meta);
    return 'changed';
  }

  /**
   * change() for a writer that must not be told "done" unless the change survives a restart:
   * the new snapshot is written first and the change applied only once it is on disk. Rejects
   * with the write's error, nothing changed. 'conflict' also when the value changed meanwhile
   * (a rollout decision, the config file). One at a time, in the order called.
   */
  changeSaved(value: V, meta: M, opts: { expectVersion?: number | undefined } = {}): Promise<ChangeResult> {
    const turn = this.#saving.then(async (): Promise<ChangeResult> => {
      const persist = this.deps.persist;
      if (persist === undefined) return this.change(value, meta, opts);
      const refused = this.#refused(value, opts.expectVersion);
      if (refused !== undefined) return refused;
      const next = this.#next(value, meta);
      await persist.trySave(next);
      if (next.state.version !== this.#state.version + 1) return 'conflict';
      this.#commit(next, meta);
      return 'changed';
    });
    this.#saving = turn.catch(() => {});
    return turn;
  }

  /** After the latest change's write: undefined if it is on disk (or there is no state file), else why not. */
  async saved(): Promise<Error | undefined> {
    return this.deps.persist?.flush();
  }

  #refused(value: V, expectVersion: number | undefined): ChangeResult | undefined {
    this.kind.check(value);
    if (expectVersion !== undefined && expectVersion !== this.#state.version) return 'conflict';
    if (this.kind.same(this.#state, value)) return 'unchanged';
    return undefined;
  }

  /** The snapshot after the change: a new state, the history with its entry (kept to the limit). */
  #next(value: V, meta: M): AuditedSnapshot<S, E> {
    const at = this.deps.now().toISOString();
    const { state, entry } = this.kind.next(this.#state, value, { at, version: this.#state.version + 1, meta });
    return { state, history: [...this.#history, entry].slice(-HISTORY_LIMIT) };
  }

  #commit(next: AuditedSnapshot<S, E>, meta: M): void {
    this.#state = next.state;
    const entry = next.history.at(-1)!;
    this.#history.push(entry);
    if (this.#history.length > HISTORY_LIMIT) this.#history.splice(0, this.#history.length - HISTORY_LIMIT);
    this.deps.log.info(this.kind.logged(entry, meta), `${this.kind.what} changed`);
    this.#listeners.publish({ state: this.#state, history: this.#history });
  }
}
