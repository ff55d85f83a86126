import { UsageError } from '../common/flags.js';
import { parseDuration } from '../common/units.js';
import { asJson, EXIT, failure, requestAdmin, type AdminAnswer, type ClientOptions } from './admin-client.js';
import { decisionsOf, decisionsSummary, isRolloutAnswer, statusSummary } from './summaries.js';
import { lookOnce, watch, type Drawn, type Failed, type Look, type WatchIo } from './watch.js';

/** How `rollout status` and `rollout decisions` show what they read. */
export interface ReadOptions {
  /** The admin API's JSON as it came, rather than the summary. */
  readonly json: boolean;
  /** Look again every `intervalMs` until Ctrl-C. */
  readonly watch: boolean;
  readonly intervalMs: number;
}

/** The watch's shortest interval: a person reads it; more often would only load the admin API. */
const MIN_INTERVAL_MS = 100;

/** --interval: a duration of 100ms or more. */
export function parseInterval(value: string): number {
  const ms = parseDuration(value, '--interval');
  if (ms < MIN_INTERVAL_MS) throw new UsageError('rollout', `--interval ${value}: at least ${MIN_INTERVAL_MS}ms`);
  return ms;
}

type Answered = Extract<AdminAnswer, { status: number }>;

/** A 2xx answer; another as a failed look: a 4xx is final (it would say the same again), an admin API out of reach or failing is not. */
function answered(opts: ClientOptions, path: string, answer: AdminAnswer): Answered | Failed {
  if (!('unreachable' in answer) && answer.status >= 200 && answer.status < 300) return answer;
  const { line, code } = failure(opts, path, answer);
  return { failed: line, code, final: code === EXIT.rejected || code === EXIT.unauthorized };
}

/** An answer this version cannot read (an admin API of another version): said, and final. */
const unreadable = (path: string): Failed => ({
  failed: `the admin API answered GET ${path} with nothing this drum-splitter can read (another version?); --json prints it as it came`,
  code: EXIT.unreachable,
  final: true,
});

/** GET `path`, drawn as the JSON that came. */
function jsonLook(opts: ClientOptions, path: string): Look {
  return async () => {
    const answer = answered(opts, path, await requestAdmin(opts, 'GET', path));
    if ('failed' in answer) return answer;
    const screen = asJson(answer.json, answer.text);
    return { screen, items: [{ key: answer.text, text: screen }] };
  };
}

/** GET /rollout and /rollout/decisions, drawn as the status summary. */
function statusLook(opts: ClientOptions): Look {
  return async (at) => {
    const [rollout, decisions] = await Promise.all([requestAdmin(opts, 'GET', '/rollout'), requestAdmin(opts, 'GET', '/rollout/decisions')]);
    const r = answered(opts, '/rollout', rollout);
    if ('failed' in r) return r;
    const d = answered(opts, '/rollout/decisions', decisions);
    if ('failed' in d) return d;
    const list = decisionsOf(d.json);
    if (!isRolloutAnswer(r.json)) return unreadable('/rollout');
    if (list === undefined) return unreadable('/rollout/decisions');
    const screen = statusSummary(r.json, list.decisions, at);
    return { screen, items: [{ key: r.text + d.text, text: screen }] };
  };
}

/** GET /rollout/decisions, drawn a line each (on a terminal, the last that fit). */
function decisionsLook(opts: ClientOptions): Look {
  return async (at, rows) => {
    const answer = answered(opts, '/rollout/decisions', await requestAdmin(opts, 'GET', '/rollout/decisions'));
    if ('failed' in answer) return answer;
    const list = decisionsOf(answer.json);
    if (list === undefined) return unreadable('/rollout/decisions');
    const { decisions, skipped } = list;
    const note = skipped === 0 ? '' : `\n${skipped === 1 ? '1 entry is not a decision' : `${skipped} entries are not decisions`} this drum-splitter can read; --json prints them`;
    // A line for "the last N of M"; a decision's verification items may take more, which the terminal scrolls.
    const screen = decisionsSummary(decisions, at, rows === undefined ? undefined : Math.max(1, rows - 1)) + note;
    const items = decisions.map((d) => ({ key: JSON.stringify(d), text: decisionsSummary([d], at) }));
    return { screen, items } satisfies Drawn;
  };
}

/** What `rollout status` or `rollout decisions` looks at, and how it draws it: the summary, or the JSON. */
export function rolloutLook(sub: 'status' | 'decisions', opts: ClientOptions, json: boolean): Look {
  if (json) return jsonLook(opts, sub === 'status' ? '/rollout' : '/rollout/decisions');
  return sub === 'status' ? statusLook(opts) : decisionsLook(opts);
}

/** `rollout status` and `rollout decisions`: a summary (or --json), once or --watch. */
export async function readRollout(sub: 'status' | 'decisions', opts: ClientOptions, read: ReadOptions): Promise<number> {
  const out = (text: string): void => console.log(text);
  const err = (line: string): void => console.error(line);
  if (!read.watch) return lookOnce(rolloutLook(sub, opts, read.json), { out, err });
  const stop = new AbortController();
  // Ctrl-C also ends a call in flight: an admin API that does not answer would hold the watch for its timeout.
  const look = rolloutLook(sub, { ...opts, signal: stop.signal }, read.json);
  const interrupt = (): void => stop.abort();
  process.once('SIGINT', interrupt);
  const io: WatchIo = { tty: process.stdout.isTTY === true, rows: process.stdout.rows, out, err, signal: stop.signal };
  try {
    return await watch(look, `drum-splitter rollout ${sub}, every ${read.intervalMs / 1000}s (Ctrl-C to stop)`, read.intervalMs, io);
  } finally {
    process.removeListener('SIGINT', interrupt);
  }
}
