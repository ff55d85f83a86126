import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { AtomicFile, readKept, type NotWritten } from '../common/atomic-file.js';
import type { Timers } from '../common/timers.js';
import { InputError } from '../common/input-error.js';
import { array, Corrupt, formatted, number, object, string, stringOrNull, word } from '../common/json-shape.js';
import { checkShares, type Share, type HistoryEntry, type Percentages, type RecordedSource, type Snapshot, type WeightState } from './shares.js';

/**
 * The --state file: `{"format": 1, "state": {...}, "history": [...]}`, pretty-printed
 * for operators. A newer or older layout gets a new format number and is refused, not guessed at.
 */
export const STATE_FORMAT = 1;

/** A version number: a whole number from 1. */
export function version(value: unknown, where: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new Corrupt(`${where} must be a positive integer`);
  return value as number;
}

/** A source is ours (startup, env, file, admin) or any word a newer version records ("controller"), kept as written. */
export const source = (value: unknown, where: string): RecordedSource => word(value, where, 'admin or file');

function percentages(value: unknown, where: string): Percentages {
  const obj = object(value, where);
  for (const [name, percent] of Object.entries(obj)) number(percent, `${where}.${name}`);
  return obj as Percentages;
}

function shares(value: unknown, upstreams: readonly string[]): Share[] {
  const out: Share[] = [];
  array(value, 'state.shares').forEach((share, i) => {
    const where = `state.shares[${i}]`;
    if (!Array.isArray(share) || share.length !== 2 || typeof share[0] !== 'string' || typeof share[1] !== 'number') {
      throw new Corrupt(`${where} must be [upstream name, hundredths of a percent 0..10000], got ${JSON.stringify(share)}`);
    }
    out.push(share as [string, number]);
  });
  try {
    checkShares(out, upstreams, 'state.shares');
  } catch (err) {
    throw new Corrupt((err as Error).message);
  }
  return out;
}

function historyEntry(value: unknown, i: number): HistoryEntry {
  const where = `history[${i}]`;
  const entry = object(value, where);
  return {
    at: string(entry['at'], `${where}.at`),
    version: version(entry['version'], `${where}.version`),
    source: source(entry['source'], `${where}.source`),
    who: string(entry['who'], `${where}.who`),
    reason: stringOrNull(entry['reason'], `${where}.reason`),
    from: percentages(entry['from'], `${where}.from`),
    to: percentages(entry['to'], `${where}.to`),
  };
}

function parseSnapshot(text: string, upstreams: readonly string[]): Snapshot {
  const file = formatted(text, STATE_FORMAT);
  const st = object(file['state'], 'state');
  const state: WeightState = {
    shares: shares(st['shares'], upstreams),
    version: version(st['version'], 'state.version'),
    updatedAt: string(st['updatedAt'], 'state.updatedAt'),
    source: source(st['source'], 'state.source'),
  };
  // History entries may name upstreams that are no longer configured: they record the past.
  const history = array(file['history'], 'history').map(historyEntry);
  return { state, history };
}

/**
 * Reads a snapshot; undefined if the file does not exist. Anything else wrong (unreadable,
 * not JSON, wrong shape or format version, shares naming an upstream not in `upstreams`,
 * shares over 100%) is an InputError for '--state' naming the file — never a silent reset.
 */
export function readSnapshot(path: string, upstreams: readonly string[]): Snapshot | undefined {
  const text = readKept(path, 'state file');
  if (text === undefined) return undefined;
  try {
    return parseSnapshot(text, upstreams);
  } catch (err) {
    throw new InputError(`state file ${path} is corrupt: ${(err as Error).message}; fix or remove it`, '--state');
  }
}

/** The file's text: 2-space JSON with a trailing newline, shares as [[name, hundredths], ...]. */
export function formatSnapshot(snapshot: Snapshot): string {
  return `${JSON.stringify({ format: STATE_FORMAT, state: snapshot.state, history: snapshot.history }, null, 2)}\n`;
}

/** drum_state_write_failures_total: failed writes of the --state file (file="state"), the rollout's (file="rollout") and the cohort rules' (file="routes"). */
export function stateWriteFailures(registry: Registry): Counter<'file'> {
  return new Counter({ name: 'drum_state_write_failures_total', help: 'Failed writes of the state file, the rollout state and the cohort rules, by file.', labelNames: ['file'], registers: [registry] });
}

/** onError for such a file: each failed write counted and logged, with when it is tried again. */
export function reportWriteFailure(log: Logger, failures: Counter<'file'>, file: 'state' | 'rollout' | 'routes'): (err: NotWritten, retryInMs: number | undefined) => void {
  return (err, retryInMs) => {
    failures.inc({ file });
    log.error({ err: err.cause.message, file: err.path, retryInMs: retryInMs ?? null }, `cannot write ${err.what}`);
  };
}

/** The --state file's writer: every accepted change, atomically (see AtomicFile). */
export class SnapshotWriter extends AtomicFile<Snapshot> {
  constructor(path: string, onError: (err: NotWritten, retryInMs: number | undefined) => void, timers?: Timers) {
    super(path, { what: 'the state file', format: formatSnapshot, onError, ...(timers === undefined ? {} : { timers }) });
  }

  override save(snapshot: Snapshot): void {
    // Copy the history list: the caller may keep appending to its array before we write.
    super.save({ state: snapshot.state, history: [...snapshot.history] });
  }
}
