import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Pool } from 'undici';
import { checkIgnorePaths, parseTolerance } from '../compare/answers.js';
import { NoiseTally } from '../compare/noise.js';
import { drumMemory, readMemInfo, type DrumMemory } from '../observe/health.js';
import { UsageError, withDefaults } from '../common/flags.js';
import { InputError } from '../common/input-error.js';
import { writePrivate } from '../common/private-file.js';
import { parseDuration } from '../common/units.js';
import { parseRate } from '../record/policy.js';
import { parseMinP99Difference } from '../rollout/plan.js';
import { renderHtml } from './html.js';
import { openRecordings } from './input.js';
import { judge, withoutNoise, type Judged } from './judge.js';
import { REPLAY_FLAGS } from './options.js';
import { createProgress } from './progress.js';
import { buildReport, mismatchGroups, outcome } from './report.js';
import { criterionLine, groupLine, verdictCounts, verdictWord } from './shown.js';
import { replayRecords } from './run.js';

/** A backend's DRUM /stats/ memory now; null when it reports none (not DRUM, or unreachable). */
async function memoryOf(url: URL, timeoutMs: number): Promise<DrumMemory | null> {
  const pool = new Pool(url.origin);
  try {
    return drumMemory(await readMemInfo({ name: url.href, basePath: url.pathname.replace(/\/+$/, ''), pool }, timeoutMs)) ?? null;
  } finally {
    await pool.close();
  }
}

export interface ReplayDeps {
  /** One line for a person (no newline); default: stderr. */
  readonly stderr?: (line: string) => void;
  /** The seed's printed summary; default: stdout. */
  readonly stdout?: (text: string) => void;
  /** Whether stderr is a terminal, for a progress bar; default: process.stderr.isTTY. */
  readonly stderrIsTTY?: boolean;
  /** Where the progress bar draws; default: process.stderr. */
  readonly barStream?: NodeJS.WritableStream;
}

/** One of two spellings of a flag; both only if they agree. */
function either(values: Record<string, unknown>, seed: string, ours: string): string {
  const [a, b] = [values[seed] as string | undefined, values[ours] as string | undefined];
  if (a !== undefined && b !== undefined && a !== b) throw new UsageError('replay', `--${seed} and --${ours} name the same backend; give one`);
  const value = a ?? b;
  if (value === undefined) throw new UsageError('replay', `needs --${ours} URL (or --${seed} URL)`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InputError(`"${value}" is not a URL`, `--${ours}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InputError(`"${value}" is not an http(s) URL`, `--${ours}`);
  return value;
}

function positive(value: unknown, flag: string, integer: boolean): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new InputError(`"${String(value)}" is not a positive ${integer ? 'whole ' : ''}number`, flag);
  }
  return n;
}

/** --noise-sample RATE (default 0), or --noise-check (every exchange); `given`: the flags given, to refuse both. */
function noiseSample(given: Record<string, unknown>, values: Record<string, unknown>): number {
  if (given['noise-check'] === true) {
    if (given['noise-sample'] !== undefined) throw new InputError('--noise-check is --noise-sample 1; give one');
    return 1;
  }
  return parseRate(values['noise-sample'], '--noise-sample');
}

/**
 * Exit codes: 0 every criterion passes (one not measured aside), 1 one fails or Ctrl-C, 3 none
 * fails but one is inconclusive; bad usage (an InputError) is main.ts's 2.
 */
export const EXIT = { pass: 0, fail: 1, inconclusive: 3 } as const;

/** Kinds of mismatch given a line each; the HTML page lists them all. */
const LISTED_GROUPS = 5;

/**
 * `drum-splitter replay`: reads the recordings, sends each request to both backends, writes
 * the report to --output and resolves to the exit code. `given` holds the flags given, by name;
 * the others take their table's defaults. Bad usage throws InputError.
 */
export async function replayCommand(given: Record<string, unknown>, positionals: readonly string[], deps: ReplayDeps = {}): Promise<number> {
  const values = withDefaults(REPLAY_FLAGS, given);
  const line = deps.stderr ?? ((text: string) => process.stderr.write(`${text}\n`));
  const print = deps.stdout ?? ((text: string) => process.stdout.write(text));
  const baseline = new URL(either(values, 'flask-url', 'baseline'));
  const canary = new URL(either(values, 'fastapi-url', 'canary'));
  const files = [...((values['requests-file'] as string[] | undefined) ?? []), ...positionals];
  if (files.length === 0) throw new UsageError('replay', 'needs a recording: --requests-file FILE or FILE arguments');
  const concurrency = positive(values.concurrency, '--concurrency', true);
  const rate = values.rate === undefined ? undefined : positive(values.rate, '--rate', false);
  const timeoutMs = parseDuration(values.timeout, '--timeout');
  const repeat = positive(values.repeat, '--repeat', true);
  const noise = noiseSample(given, values);
  const minP99DifferenceMs = parseMinP99Difference(values['min-p99-difference'], '--min-p99-difference');
  const tolerance = parseTolerance(values.relative, values.absolute, { relative: '--relative', absolute: '--absolute' });
  const ignore = (values.ignore as string[] | undefined) ?? [];
  checkIgnorePaths(ignore, '--ignore');
  const output = values.output as string;
  const html = values.html as string | undefined;
  // Checked before the replay, which may take long, rather than failing at its end.
  for (const [flag, target] of [['--output', output], ['--html', html]] as const) {
    if (target === undefined) continue;
    // A replay reads recordings and never writes one.
    if (files.some((f) => resolve(f) === resolve(target))) throw new InputError(`${flag} ${target} is one of the recordings being replayed`);
    try {
      await access(dirname(resolve(target)), constants.W_OK);
    } catch {
      throw new InputError(`cannot write ${target}: its folder is missing or not writable`, flag);
    }
  }
  if (html !== undefined && resolve(html) === resolve(output)) throw new InputError(`--html ${html} is the --output file`);
  const at = new Date().toISOString();

  // Read through once for the count and what is skipped; the records are read again as they are sent.
  const recordings = await openRecordings(files, values.strict === true);
  const { skipped } = recordings;
  const skips = skipped.counts.malformed + skipped.counts.truncated;
  line(`replay: loaded ${recordings.count} requests for replay from ${files.length} file(s)${skips ? `, skipped ${skips} (${skipped.counts.malformed} malformed, ${skipped.counts.truncated} truncated)` : ''}${repeat > 1 ? `, each sent ${repeat} times` : ''}`);

  const stop = new AbortController();
  const onSigint = (): void => {
    line('replay: interrupted; reporting the requests done so far');
    stop.abort();
  };
  // Once: a second Ctrl-C ends the process the usual way.
  process.once('SIGINT', onSigint);
  const progress = createProgress(recordings.count * repeat, {
    tty: deps.stderrIsTTY ?? process.stderr.isTTY === true,
    stream: deps.barStream ?? process.stderr,
    line,
  });
  const before = await Promise.all([memoryOf(baseline, timeoutMs), memoryOf(canary, timeoutMs)]);
  let judged: Judged[];
  try {
    judged = await replayRecords(recordings.records(), {
      baseline,
      canary,
      concurrency,
      ...(rate === undefined ? {} : { rate }),
      timeoutMs,
      noiseSample: noise,
      repeat,
      signal: stop.signal,
      onExchange: (exchange) => {
        const j = judge(exchange, { ignore, tolerance });
        // The progress counts mismatches before any is found to be noise.
        progress.tick(j.row);
        return j;
      },
    });
  } finally {
    progress.stop();
    process.off('SIGINT', onSigint);
    await recordings.close();
  }

  // Every exchange counted first: whether a field is noise is known only from all of them.
  const tally = new NoiseTally();
  for (const j of judged) if (j.compared !== undefined) tally.add(j.compared.observation);
  const rows = judged.map((j) => withoutNoise(j, tally));
  const after = await Promise.all([memoryOf(baseline, timeoutMs), memoryOf(canary, timeoutMs)]);
  const memory = { flask: { before: before[0], after: after[0] }, fastapi: { before: before[1], after: after[1] } };
  const report = buildReport(rows, skipped, stop.signal.aborted, memory, { minP99DifferenceMs, noise: noise > 0 ? tally.report() : null });
  // Private as the recordings are: it has their paths and parts of the answers.
  await writePrivate(output, `${JSON.stringify(report, null, 2)}\n`, line);
  if (html !== undefined) await writePrivate(html, renderHtml(report, { baseline: baseline.href, canary: canary.href, at }), line);
  print(`${JSON.stringify(report.summary, null, 2)}\n`);
  for (const c of report.criteria) line(`replay: ${criterionLine(c)}`);
  line(`replay: ${verdictWord(outcome(report.criteria))} overall; criteria: ${verdictCounts(report.criteria)}`);
  const groups = mismatchGroups(rows);
  for (const g of groups.slice(0, LISTED_GROUPS)) line(`replay: mismatch ${groupLine(g)}`);
  if (groups.length > LISTED_GROUPS) line(`replay: ${groups.length - LISTED_GROUPS} more kinds of mismatch: the --html page lists every kind, the JSON every request`);
  if (report.noise !== null) {
    const noisy = report.noise.fields.filter((f) => f.verdict === 'noise');
    line(`replay: noise: ${noisy.length === 0 ? 'no field' : noisy.map((f) => `${f.route} ${f.field} (${f.discounted} differences)`).join(', ')} discounted; ${report.noise.discounted} requests matched only so`);
  }
  line(`replay: ${rows.length} requests, ${report.summary.response_mismatches} mismatches, ${report.summary.errors} errors; report in ${output}${html === undefined ? '' : ` and ${html}`}`);
  if (stop.signal.aborted) return EXIT.fail;
  return EXIT[outcome(report.criteria)];
}
