import type { Logger } from 'pino';
import { checkShares, percentages, sameShares, type HistoryEntry, type Percentages, type RecordedSource, type Share, type Snapshot, type Source, type WeightState } from './shares.js';

/** The last this many changes are kept in the audit trail (and the state file). */
export const HISTORY_LIMIT = 1000;

export interface WeightView {
  readonly weights: Percentages;
  readonly version: number;
  readonly updatedAt: string;
  readonly source: RecordedSource;
}

/**
 * Hears of an accepted change. `history` is the store's own list, growing with later
 * changes: read it now, copy what you keep.
 */
export type WeightListener = (snapshot: Snapshot) => void;

/** What change() did: applied it, found it changed nothing, or refused it for a stale version. */
export type ChangeResult = 'changed' | 'unchanged' | 'conflict';

export interface ChangeMeta {
  readonly source: Source;
  readonly who: string;
  readonly reason?: string | null;
}

/**
 * The live weights, their version and audit trail. Whoever acts on a change (the proxy's
 * split table, workers, the state file) subscribes; the store knows none of them.
 */
export class WeightStore {
  #state: WeightState;
  readonly #history: HistoryEntry[];
  readonly #listeners = new Set<WeightListener>();

  constructor(
    private readonly upstreams: readonly string[],
    snapshot: Snapshot,
    private readonly deps: { now: () => Date; log: Logger; persist?: (snapshot: Snapshot) => void },
  ) {
    this.#state = snapshot.state;
    this.#history = [...snapshot.history];
  }

  get state(): WeightState {
    return this.#state;
  }

  get history(): readonly HistoryEntry[] {
    return this.#history;
  }

  /**
   * Calls `listener` after every accepted change, once `persist` has it, synchronously and in
   * the order subscribed. A listener that throws is logged: the change stands, the caller
   * and the other listeners carry on. Returns the function that unsubscribes.
   */
  subscribe(listener: WeightListener): () => void {
    // Our own wrapper, so that one function subscribed twice is two subscriptions.
    const own: WeightListener = (snapshot) => listener(snapshot);
    this.#listeners.add(own);
    return () => {
      this.#listeners.delete(own);
    };
  }

  view(): WeightView {
    const { shares, version, updatedAt, source } = this.#state;
    return { weights: percentages(this.upstreams, shares), version, updatedAt, source };
  }

  /**
   * Applies shares, checked here too since any writer may call this (an InputError changes
   * nothing). With `expectVersion`, only if the weights are still at that version: a writer
   * that decided on an older view is refused ('conflict') before anything else, even if its
   * change would be none. 'unchanged', recording nothing, when the split would stay as it is.
   */
  change(shares: readonly Share[], meta: ChangeMeta, opts: { expectVersion?: number | undefined } = {}): ChangeResult {
    checkShares(shares, this.upstreams, 'weights');
    if (opts.expectVersion !== undefined && opts.expectVersion !== this.#state.version) return 'conflict';
    if (sameShares(this.#state.shares, shares)) return 'unchanged';
    const from = percentages(this.upstreams, this.#state.shares);
    const to = percentages(this.upstreams, shares);
    const at = this.deps.now().toISOString();
    const version = this.#state.version + 1;
    this.#state = { shares: [...shares], version, updatedAt: at, source: meta.source };
    this.#history.push({ at, version, source: meta.source, who: meta.who, reason: meta.reason ?? null, from, to });
    if (this.#history.length > HISTORY_LIMIT) this.#history.splice(0, this.#history.length - HISTORY_LIMIT);
    this.deps.log.info({ version, source: meta.source, who: meta.who, reason: meta.reason, from, to }, 'weights changed');
    const snapshot = { state: this.#state, history: this.#history };
    this.deps.persist?.(snapshot);
    for (const listener of this.#listeners) {
      try {
        listener(snapshot);
      } catch (err) {
        this.deps.log.error({ err: (err as Error).message, version }, 'a weights listener failed');
      }
    }
    return 'changed';
  }
}
