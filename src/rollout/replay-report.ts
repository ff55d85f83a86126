import { InputError } from '../common/input-error.js';
import { isObject } from '../common/json-shape.js';

/**
 * A `drum-splitter replay` report standing in for the rollout's shadow phase (`rollout start
 * --replay-report FILE`, POST /rollout/start `{ "replayReport": … }`): only a passing one. Read
 * here, below the admin API, from the report's JSON (replay/report.ts writes it).
 */

export type ReplayOutcome = 'pass' | 'fail' | 'inconclusive';
const VERDICTS = ['pass', 'fail', 'inconclusive', 'not measured'];

/** What the criteria add up to: fail if one fails, else inconclusive if one is, else pass (not measured fails nothing). */
export function replayOutcome(criteria: readonly { readonly verdict: string }[]): ReplayOutcome {
  if (criteria.some((c) => c.verdict === 'fail')) return 'fail';
  return criteria.some((c) => c.verdict === 'inconclusive') ? 'inconclusive' : 'pass';
}

/** The report's numbers, as the start decision records them. */
export interface ReplayStandIn {
  readonly requests: number;
  readonly mismatches: number;
  readonly errors: number;
  /** The seed's "99.50%". */
  readonly matchRate: string;
  /** Each criterion's name, verdict and value. */
  readonly criteria: readonly { readonly name: string; readonly verdict: string; readonly value: number | null }[];
  /** One line with the numbers. */
  readonly text: string;
}

const FIELD = 'replayReport';

/** A passing report's numbers; an InputError (one line, a 400) for a failing, inconclusive, interrupted or malformed one. */
export function replayStandIn(raw: unknown): ReplayStandIn {
  const malformed = (what: string): InputError => new InputError(`not a drum-splitter replay report (${what}); give the --output file of drum-splitter replay`, FIELD);
  if (!isObject(raw)) throw malformed('not a JSON object');
  const { summary, criteria, interrupted } = raw;
  if (!isObject(summary)) throw malformed('no "summary"');
  const requests = summary.total_requests;
  const mismatches = summary.response_mismatches;
  const errors = summary.errors;
  const matchRate = summary.match_rate;
  if (typeof requests !== 'number' || typeof mismatches !== 'number' || typeof errors !== 'number' || typeof matchRate !== 'string') {
    throw malformed('"summary" lacks total_requests, response_mismatches, errors or match_rate');
  }
  if (!Array.isArray(criteria) || criteria.length === 0) throw malformed('no "criteria"');
  const judged = criteria.map((c) => {
    if (!isObject(c) || typeof c.name !== 'string' || typeof c.verdict !== 'string' || !VERDICTS.includes(c.verdict)) throw malformed('a criterion without a name and a verdict');
    return { name: c.name, verdict: c.verdict, value: typeof c.value === 'number' ? c.value : null };
  });
  if (interrupted === true) throw new InputError('the replay was interrupted: its report covers only part of the recording; replay it whole', FIELD);
  const outcome = replayOutcome(judged);
  const said = judged.map((c) => `${c.name} ${c.verdict}${c.value === null ? '' : ` (${Number(c.value.toPrecision(4))})`}`).join(', ');
  if (outcome !== 'pass') throw new InputError(`the replay report is ${outcome === 'fail' ? 'failing' : 'inconclusive'} (${said}): only a passing one stands in for the shadow phase`, FIELD);
  const text = `${requests} requests, match rate ${matchRate}, ${mismatches} mismatches, ${errors} errors; ${said}`;
  return { requests, mismatches, errors, matchRate, criteria: judged, text };
}
