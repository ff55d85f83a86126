import { Gauge, type Registry } from 'prom-client';
import { AuditedStore, HISTORY_LIMIT, type AuditedDeps, type AuditedKind, type ChangeMeta as Meta, type ChangeResult, type SnapshotSaver as Saver } from '../common/audited-store.js';
import { checkShares, percentages, sameShares, type HistoryEntry, type Percentages, type RecordedSource, type Share, type Snapshot, type Source, type WeightState } from './shares.js';

export { HISTORY_LIMIT, type ChangeResult };

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

/** Where the store keeps its snapshots (the --state file: SnapshotWriter). */
export type SnapshotSaver = Saver<Snapshot>;

export type ChangeMeta = Meta<Source>;

/** The weights as an audited value: the shares' one check, their percentages in the audit trail. */
const weightsKind = (upstreams: readonly string[]): AuditedKind<readonly Share[], WeightState, HistoryEntry, ChangeMeta> => ({
  what: 'weights',
  check: (shares) => checkShares(shares, upstreams, 'weights'),
  same: (state, shares) => sameShares(state.shares, shares),
  next: (from, shares, { at, version, meta }) => ({
    state: { shares: [...shares], version, updatedAt: at, source: meta.source },
    entry: { at, version, source: meta.source, who: meta.who, reason: meta.reason ?? null, from: percentages(upstreams, from.shares), to: percentages(upstreams, shares) },
  }),
  logged: ({ version, from, to }, meta) => ({ version, source: meta.source, who: meta.who, reason: meta.reason, from, to }),
});

/**
 * The live weights, their version and audit trail (AuditedStore: checks, compare-and-set,
 * listeners). Whoever acts on a change (the proxy's split table, workers, the state file)
 * subscribes; the store knows none of them.
 */
export class WeightStore extends AuditedStore<readonly Share[], WeightState, HistoryEntry, ChangeMeta> {
  constructor(
    private readonly upstreams: readonly string[],
    snapshot: Snapshot,
    deps: AuditedDeps<WeightState, HistoryEntry>,
  ) {
    super(weightsKind(upstreams), snapshot, deps);
  }

  view(): WeightView {
    const { shares, version, updatedAt, source } = this.state;
    return { weights: percentages(this.upstreams, shares), version, updatedAt, source };
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
