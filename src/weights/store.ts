import type { Logger } from 'pino';
import { Gauge, type Counter, type Registry } from 'prom-client';
import { Subscribers } from '../common/subscribers.js';
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

/** Where the store keeps its snapshots (the --state file: SnapshotWriter). */
export interface SnapshotSaver {
  /** Latest wins; kept trying until it is on disk. */
  save(snapshot: Snapshot): void;
  /** Once, now: resolves when it is on disk (or a later save made it stale), rejects if it cannot be. */
  trySave(snapshot: Snapshot): Promise<void>;
  /** After the latest save's write: undefined if it is on disk, else why not. */
  flush(): Promise<Error | undefined>;
}

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
  readonly #listeners: Subscribers<Snapshot>;
  /** The last changeSaved() in turn: they go one at a time. */
  #saving: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly upstreams: readonly string[],
    snapshot: Snapshot,
    private readonly deps: { now: () => Date; log: Logger; subscriberErrors: Counter<'subscriber'>; persist?: SnapshotSaver | undefined },
  ) {
    this.#listeners = new Subscribers('weights', { log: deps.log, errors: deps.subscriberErrors });
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
   * Calls `listener` after every accepted change, once `persist` has it, as a Subscribers list
   * does: a listener that throws is logged and counted; the change stands, the caller and the
   * other listeners carry on. Returns the function that unsubscribes.
   */
  subscribe(name: string, listener: WeightListener): () => void {
    return this.#listeners.subscribe(name, listener);
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
   * The new snapshot is then saved (and retried until it is on disk): the change stands either way.
   */
  change(shares: readonly Share[], meta: ChangeMeta, opts: { expectVersion?: number | undefined } = {}): ChangeResult {
    const refused = this.#refused(shares, opts.expectVersion);
    if (refused !== undefined) return refused;
    const next = this.#next(shares, meta);
    this.deps.persist?.save(next);
    this.#commit(next, meta);
    return 'changed';
  }

  /**
   * change() for a writer that must not be told "done" unless the change survives a restart:
   * the new snapshot is written first and the change applied only once it is on disk. Rejects
   * with the write's error, nothing changed. 'conflict' also when the weights changed meanwhile
   * (a rollout decision, the config file). One at a time, in the order called.
   */
  changeSaved(shares: readonly Share[], meta: ChangeMeta, opts: { expectVersion?: number | undefined } = {}): Promise<ChangeResult> {
    const turn = this.#saving.then(async (): Promise<ChangeResult> => {
      const persist = this.deps.persist;
      if (persist === undefined) return this.change(shares, meta, opts);
      const refused = this.#refused(shares, opts.expectVersion);
      if (refused !== undefined) return refused;
      const next = this.#next(shares, meta);
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

  #refused(shares: readonly Share[], expectVersion: number | undefined): ChangeResult | undefined {
    checkShares(shares, this.upstreams, 'weights');
    if (expectVersion !== undefined && expectVersion !== this.#state.version) return 'conflict';
    if (sameShares(this.#state.shares, shares)) return 'unchanged';
    return undefined;
  }

  /** The snapshot after the change: a new state, the history with its entry (kept to the limit). */
  #next(shares: readonly Share[], meta: ChangeMeta): Snapshot {
    const at = this.deps.now().toISOString();
    const version = this.#state.version + 1;
    const entry: HistoryEntry = {
      at, version, source: meta.source, who: meta.who, reason: meta.reason ?? null,
      from: percentages(this.upstreams, this.#state.shares), to: percentages(this.upstreams, shares),
    };
    return { state: { shares: [...shares], version, updatedAt: at, source: meta.source }, history: [...this.#history, entry].slice(-HISTORY_LIMIT) };
  }

  #commit(next: Snapshot, meta: ChangeMeta): void {
    this.#state = next.state;
    const entry = next.history.at(-1)!;
    this.#history.push(entry);
    if (this.#history.length > HISTORY_LIMIT) this.#history.splice(0, this.#history.length - HISTORY_LIMIT);
    const { version, from, to } = entry;
    this.deps.log.info({ version, source: meta.source, who: meta.who, reason: meta.reason, from, to }, 'weights changed');
    this.#listeners.publish({ state: this.#state, history: this.#history });
  }
}

/** drum_split_weight_percent{server_type}: each upstream's share now, read at each scrape. */
export function splitWeightGauge(store: Pick<WeightStore, 'view'>, registry: Registry): Gauge<'server_type'> {
  return new Gauge({
    name: 'drum_split_weight_percent',
    help: "Each upstream's share of the traffic now, in percent.",
    labelNames: ['server_type'],
    registers: [registry],
    collect() {
      for (const [name, percent] of Object.entries(store.view().weights)) this.set({ server_type: name }, percent);
    },
  });
}
