import type { Criterion, MismatchGroup, P99Test, Verdict } from './report.js';

/**
 * The report's numbers as a person reads them, in the replay's lines and on its HTML page alike:
 * rates as percents with one decimal, each criterion beside what it was judged against. The JSON
 * keeps the numbers as they are.
 */

/** A share, 0..1, as a percent with one decimal; never "100.0%" for one short of all, nor "0.0%" for one of many. */
export function share(x: number): string {
  const text = (x * 100).toFixed(1);
  if (text === '100.0' && x < 1) return '>99.9%';
  if (text === '0.0' && x > 0) return '<0.1%';
  return `${text}%`;
}

/** A threshold as a percent, without decimals it does not have (1 → 100%, 1.2 → 120%). */
const limit = (x: number): string => `${Number((x * 100).toFixed(1))}%`;

/** Each criterion's value and what it is judged against, by its name. */
const SHOWN: Readonly<Record<string, { value(v: number): string; criterion(c: Criterion): string }>> = {
  match_rate: { value: share, criterion: (c) => limit(c.threshold) },
  canary_p99_within_20_percent: {
    value: (v) => `${(v * 100).toFixed(1)}% of the baseline's p99`,
    criterion: (c) => {
      const test = c.test as P99Test;
      const floor = test.min_difference_ms > 0 ? `under ${test.min_difference_ms} ms more or ` : '';
      return `at most ${limit(c.threshold)}, unless ${floor}not slower by Mann–Whitney p < ${test.significance}`;
    },
  },
  error_responses_match: { value: share, criterion: (c) => limit(c.threshold) },
  no_oom: { value: (v) => `${v} at the limit`, criterion: (c) => `${c.threshold} backends at their container memory limit` },
};

/** A criterion's value as shown; null when it has none (inconclusive, not measured, nothing replayed). */
export function shownValue(c: Criterion): string | null {
  return c.value === null ? null : SHOWN[c.name]!.value(c.value);
}

/** What a criterion was judged against, in words. */
export const shownCriterion = (c: Criterion): string => SHOWN[c.name]!.criterion(c);

/** A verdict as the lines show it: a failing or inconclusive one in capitals, to stand out. */
export const verdictWord = (v: string): string => (v === 'fail' || v === 'inconclusive' ? v.toUpperCase() : v);

/** One criterion, one line: `FAIL match_rate: 93.2% (criterion: 100%); 178 of 191 requests match`. */
export function criterionLine(c: Criterion): string {
  const value = shownValue(c);
  const criterion = `(criterion: ${shownCriterion(c)})`;
  if (value === null) return `${verdictWord(c.verdict)} ${c.name}: ${c.note} ${criterion}`;
  return `${verdictWord(c.verdict)} ${c.name}: ${value} ${criterion}${c.note === undefined ? '' : `; ${c.note}`}`;
}

const VERDICTS: readonly Verdict[] = ['pass', 'fail', 'inconclusive', 'not measured'];

/** How many criteria came out each way, with their names: `1 pass (…), 2 fail (…), 1 not measured (no_oom)`. */
export function verdictCounts(criteria: readonly Criterion[]): string {
  return VERDICTS.flatMap((v) => {
    const names = criteria.filter((c) => c.verdict === v).map((c) => c.name);
    return names.length === 0 ? [] : [`${names.length} ${v} (${names.join(', ')})`];
  }).join(', ');
}

/** The fields where a group's requests differed, each with how: `$.message (removed), $.detail (added)`. */
export function groupFields(g: MismatchGroup): string {
  const fields = [...new Set(g.example.differences.map((d) => `${d.field} (${d.kind})`))];
  return fields.join(', ');
}

/** A group of mismatches, one line: `13 × POST /predict/ 422 vs 422 at $.message (removed), …; e.g. rec.jsonl:12`. */
export function groupLine(g: MismatchGroup): string {
  const r = g.example;
  const same = g.variants === 1 ? (g.count === 1 ? '' : ', all alike') : `, ${g.variants} different values`;
  return `${g.count} × ${r.method} ${r.route} ${r.flask_status} vs ${r.fastapi_status} at ${groupFields(g)}${same}; e.g. ${r.source}`;
}
