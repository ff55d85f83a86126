import { escape } from '../common/html.js';
import { mismatchGroups, outcome, type Criterion, type Report } from './report.js';
import { groupFields, shownCriterion, shownValue, verdictCounts } from './shown.js';

export { escape };

/**
 * The replay report as one HTML page for a person: verdicts, summary, both backends' latency
 * CDFs, routes and mismatches. Self-contained (inline CSS and SVG, no script, nothing fetched)
 * so it can be attached to a ticket or opened from a CI artifact offline.
 */

export interface HtmlMeta {
  readonly baseline: string;
  readonly canary: string;
  /** When the replay ran, as shown. */
  readonly at: string;
}

/** Kinds of mismatch listed; more would make the page unwieldy, the JSON has every request. */
export const MAX_GROUPS = 200;
/** A value longer than this is cut in the differences table. */
const MAX_VALUE = 300;

const BASELINE_COLOUR = '#1f6fb4';
const CANARY_COLOUR = '#e6550d';

/** Up to 3 decimals, without trailing zeros. */
const num = (n: number): string => String(Math.round(n * 1000) / 1000);

/** A difference's value as JSON, cut to MAX_VALUE; "(absent)" where one side has none. */
function value(v: unknown): string {
  const text = v === undefined ? '(absent)' : JSON.stringify(v);
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE)}…` : text;
}

/** A verdict as shown, and its CSS class. */
const shown = (verdict: string): string => `<span class="${verdict.replace(' ', '-')}">${verdict.toUpperCase()}</span>`;

function verdicts(criteria: readonly Criterion[]): string {
  const rows = criteria.map((c) => {
    const value = shownValue(c);
    const note = c.note === undefined ? '' : escape(c.note);
    const said = value === null ? note : `${escape(value)}${note === '' ? '' : ` <small>(${note})</small>`}`;
    return `<tr><td>${escape(c.name)}</td><td>${said}</td><td>${escape(shownCriterion(c))}</td><td>${shown(c.verdict)}</td></tr>`;
  });
  return `<table><tr><th>criterion</th><th>value</th><th>judged against</th><th>verdict</th></tr>${rows.join('')}</table>`;
}

/** The noise sample's fields: which differences were not counted, and why. */
function noise(report: Report): string {
  const n = report.noise!;
  const pct = (x: number): string => `${num(x * 100)}%`;
  const rows = n.fields.map(
    (f) =>
      `<tr><td>${escape(f.route)}</td><td><code>${escape(f.field)}</code></td><td>${f.differences} of ${f.compared} (${pct(f.rate)})</td><td>${f.noiseDifferences} of ${f.noisePairs} (${pct(f.noiseRate)})</td><td>${pct(f.relative)}</td><td>${pct(f.absolute)}</td><td>${f.verdict}</td><td>${f.discounted}</td></tr>`,
  );
  return `<p>Fields that differed between two answers of the baseline. A field is noise unless the canary differs there more often than the baseline from itself by over ${pct(n.thresholds.relative)} relative and ${pct(n.thresholds.absolute)} absolute; differences at noise fields do not count. ${n.discounted} requests matched only so.</p>
<table><tr><th>route</th><th>field</th><th>baseline vs canary</th><th>baseline vs baseline</th><th>relative</th><th>absolute</th><th>verdict</th><th>not counted</th></tr>${rows.join('')}</table>`;
}

function summary(report: Report): string {
  const s = report.summary;
  const lat = (name: string, l: Report['summary']['flask_latency']): string => `<tr><th>${name} latency ms (p50 / p95 / p99)</th><td>${num(l.p50)} / ${num(l.p95)} / ${num(l.p99)}</td></tr>`;
  const sk = report.skipped.counts;
  return `<table>
<tr><th>requests</th><td>${s.total_requests}</td></tr>
<tr><th>errors</th><td>${s.errors}</td></tr>
<tr><th>mismatches</th><td>${s.response_mismatches}</td></tr>
<tr><th>match rate</th><td>${escape(s.match_rate)}</td></tr>
${lat('baseline', s.flask_latency)}
${lat('canary', s.fastapi_latency)}
<tr><th>latency improvement (p50 / p99)</th><td>${escape(s.latency_improvement.p50)} / ${escape(s.latency_improvement.p99)}</td></tr>
<tr><th>lines skipped (malformed / truncated)</th><td>${sk.malformed} / ${sk.truncated}</td></tr>
</table>`;
}

// Plot area inside the SVG, in its own units; below it the ticks, the axis's name and the legend.
const W = 720;
const H = 364;
const LEFT = 64; // room for the ticks' labels and the vertical axis's name
const RIGHT = 24; // room for the last tick's label
const TOP = 16;
const BOTTOM = 88;
/** How the p50 and p99 marks are drawn (dashed, dotted), in the plot and in the legend alike. */
const MARKS = [
  ['p50', '6 3'],
  ['p99', '1.5 2.5'],
] as const;

/** A tick's label: as many decimals as the step between ticks has, no more (0.5, 10, 2000). */
const tickLabel = (t: number, step: number): string => t.toFixed(Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));

/**
 * Round ticks from 0 for a linear axis up to `hi`: a step of 1, 2 or 5 × a power of ten giving at
 * most five intervals, the axis ending at the first tick at or past `hi`.
 */
export function linearTicks(hi: number): { ticks: number[]; step: number } {
  const rough = hi / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((st) => st >= rough - 1e-12)!;
  const n = Math.ceil(hi / step - 1e-9);
  // Multiples of the step, not sums of it, so 0.1 + 0.2 never shows as 0.30000000000000004.
  return { ticks: Array.from({ length: n + 1 }, (_, i) => Number((i * step).toPrecision(12))), step };
}

/**
 * Ticks for a log axis over [lo, hi]: 1, 2 and 5 × each power of ten (only 1 × past four powers,
 * where the others would crowd), the axis widened to the ticks either side of the data.
 */
export function logTicks(lo: number, hi: number): number[] {
  const steps = Math.log10(hi) - Math.log10(lo) > 4 ? [1] : [1, 2, 5];
  const all: number[] = [];
  for (let p = Math.floor(Math.log10(lo)) - 1; p <= Math.ceil(Math.log10(hi)); p++) {
    for (const m of steps) all.push(Number((m * 10 ** p).toPrecision(12)));
  }
  const first = all.filter((t) => t <= lo).length - 1;
  const last = all.findIndex((t) => t >= hi);
  return all.slice(first, last + 1);
}

/** A latency for the legend: three significant digits, at most two decimals (0.42 ms, 12.3 ms, 250 ms). */
const ms = (v: number): string => `${v >= 100 ? Math.round(v) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ms`;

/**
 * Both backends' empirical CDFs of latency (requests with an error left out, as in the summary),
 * with each one's p50 and p99 marked by a dashed and a dotted line, named with their values in the
 * legend below the plot, not beside the lines where they would cover the curves. The x axis is
 * logarithmic where the range spans more than 20×, so that a long tail does not squash the body of
 * the distribution against the left edge.
 */
function cdfPlot(report: Report): string {
  const ok = report.results.filter((r) => r.error === null);
  const sides = [
    { name: 'baseline', colour: BASELINE_COLOUR, data: ok.map((r) => r.flask_latency_ms).sort((a, b) => a - b), l: report.summary.flask_latency },
    { name: 'canary', colour: CANARY_COLOUR, data: ok.map((r) => r.fastapi_latency_ms).sort((a, b) => a - b), l: report.summary.fastapi_latency },
  ];
  const all = sides.flatMap((s) => s.data);
  // A log axis needs a positive floor: a 0 ms latency (a clock's resolution) sits at the smallest positive one.
  // Folded, not spread into Math.min/max: a spread of every latency overflows the stack past ~120,000 requests.
  const positive = all.filter((v) => v > 0);
  const min = positive.length ? positive.reduce((a, b) => Math.min(a, b)) : 1;
  const max = all.length ? all.reduce((a, b) => Math.max(a, b)) : 1;
  const log = max / min > 20;
  let xTicks: number[];
  let labels: string[];
  if (log) {
    xTicks = logTicks(min, max);
    labels = xTicks.map((t) => tickLabel(t, t));
  } else {
    const { ticks, step } = linearTicks(max || 1);
    xTicks = ticks;
    labels = ticks.map((t) => tickLabel(t, step));
  }
  const [lo, hi] = [xTicks[0]!, xTicks.at(-1)!];
  const pw = W - LEFT - RIGHT;
  const ph = H - TOP - BOTTOM;
  const x = (v: number): number => {
    const f = log ? (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) : v / hi;
    return +(LEFT + f * pw).toFixed(1);
  };
  const y = (f: number): number => +(TOP + (1 - f) * ph).toFixed(1);

  const grid = [
    ...xTicks.map((t, i) => `<line x1="${x(t)}" y1="${TOP}" x2="${x(t)}" y2="${TOP + ph}" class="grid"/><text class="tick" x="${x(t)}" y="${TOP + ph + 14}" text-anchor="middle">${labels[i]}</text>`),
    ...[0, 0.25, 0.5, 0.75, 1].map((f) => `<line x1="${LEFT}" y1="${y(f)}" x2="${LEFT + pw}" y2="${y(f)}" class="grid"/><text class="tick" x="${LEFT - 6}" y="${y(f) + 4}" text-anchor="end">${f * 100}%</text>`),
  ];
  const curves = sides.map((s) => {
    if (s.data.length === 0) return '';
    const marks = MARKS.map(([p, dash]) => `<line x1="${x(s.l[p])}" y1="${TOP}" x2="${x(s.l[p])}" y2="${TOP + ph}" stroke="${s.colour}" stroke-dasharray="${dash}"/>`);
    // A step function: up by 1/n at each sorted latency.
    let d = `M${x(s.data[0]!)},${y(0)}`;
    s.data.forEach((v, k) => {
      d += ` H${x(v)} V${y((k + 1) / s.data.length)}`;
    });
    return `<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="2"/>${marks.join('')}`;
  });
  // A row a side under the axis: its curve's colour, then its p50 and p99 with their lines' dashes.
  const legend = sides.map((s, i) => {
    const row = TOP + ph + 50 + i * 18;
    const swatch = (at: number, dash: string | null): string =>
      `<line x1="${at}" y1="${row - 4}" x2="${at + 20}" y2="${row - 4}" stroke="${s.colour}" stroke-width="${dash === null ? 2 : 1}"${dash === null ? '' : ` stroke-dasharray="${dash}"`}/>`;
    const marks = s.data.length === 0 ? [] : MARKS.map(([p, dash], j) => `${swatch(LEFT + 110 + j * 150, dash)}<text class="legend" x="${LEFT + 136 + j * 150}" y="${row}">${p} ${ms(s.l[p])}</text>`);
    return `${swatch(LEFT, null)}<text class="legend" x="${LEFT + 26}" y="${row}">${s.name}</text>${marks.join('')}`;
  });
  return `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="latency CDFs of baseline and canary">
<g class="axis">${grid.join('')}</g>
${all.length === 0 ? `<text x="${LEFT + pw / 2}" y="${TOP + ph / 2}" text-anchor="middle">no latencies</text>` : curves.join('')}
<text class="axis-name" x="${LEFT + pw / 2}" y="${TOP + ph + 32}" text-anchor="middle">latency (ms${log ? ', log scale' : ''})</text>
<text class="axis-name" transform="rotate(-90)" x="${-(TOP + ph / 2)}" y="14" text-anchor="middle">requests at or under it (%)</text>
${legend.join('')}
</svg>`;
}

function routes(report: Report): string {
  const rows = Object.entries(report.routes).map(
    ([route, r]) => `<tr><td>${escape(route)}</td><td>${r.count}</td><td>${r.mismatches}</td><td>${r.errors}</td><td>${num(r.flask_p99_ms)}</td><td>${num(r.fastapi_p99_ms)}</td></tr>`,
  );
  return `<table><tr><th>route</th><th>requests</th><th>mismatches</th><th>errors</th><th>baseline p99 ms</th><th>canary p99 ms</th></tr>${rows.join('')}</table>`;
}

function mismatches(report: Report): string {
  const groups = mismatchGroups(report.results);
  if (groups.length === 0) return '<p>None.</p>';
  const requests = groups.reduce((n, g) => n + g.count, 0);
  const cut = groups.length > MAX_GROUPS ? ` The first ${MAX_GROUPS} kinds are shown; the JSON report has every request.` : '';
  const intro = `<p>${requests} requests differed, in ${groups.length} ${groups.length === 1 ? 'way' : 'ways'}: each way once, with how many requests and the first of them.${cut}</p>`;
  const shown = groups.slice(0, MAX_GROUPS).map((g) => {
    const r = g.example;
    const diffs = r.differences.map(
      (d) => `<tr><td><code>${escape(d.path)}</code></td><td>${escape(d.kind)}</td><td><code>${escape(value(d.baseline))}</code></td><td><code>${escape(value(d.canary))}</code></td></tr>`,
    );
    const alike = g.count === 1 ? 'one request' : g.variants === 1 ? `${g.count} requests, all with these values` : `${g.count} requests, with ${g.variants} different sets of values`;
    return `<div class="mismatch"><h3>${g.count} × ${escape(r.method)} <code>${escape(r.route)}</code> <small>${r.flask_status} vs ${r.fastapi_status} at ${escape(groupFields(g))}</small></h3>
<p>${alike}; the first: <code>${escape(r.path)}</code> <small>${escape(r.source)}</small></p>
<table><tr><th>path</th><th>kind</th><th>baseline</th><th>canary</th></tr>${diffs.join('')}</table></div>`;
  });
  return intro + shown.join('\n');
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
code{font:12px ui-monospace,monospace;word-break:break-all}
.pass{background:#dafbe1;color:#1a7f37;font-weight:bold}
.fail{background:#ffebe9;color:#cf222e;font-weight:bold}
.inconclusive{background:#fff8c5;color:#9a6700;font-weight:bold}
.not-measured{color:#57606a}
.warn{background:#fff8c5;padding:.5em}
.mismatch{margin-bottom:1em}
.mismatch h3{font-size:14px;margin:.5em 0 .2em}
svg text{font:11px system-ui,sans-serif}
svg .grid{stroke:#ddd}`;

/** The whole page; pure, so the command writes it and a test reads it. */
export function renderHtml(report: Report, meta: HtmlMeta): string {
  const verdict = outcome(report.criteria);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Replay report: ${verdict.toUpperCase()}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Replay report: ${shown(verdict)}</h1>
<p>Criteria: ${escape(verdictCounts(report.criteria))}.${report.criteria.some((c) => c.verdict === 'not measured') ? ' Not measured is neither a pass nor a fail: there was nothing to judge it by.' : ''}</p>
<p>Ran ${escape(meta.at)}: baseline <code>${escape(meta.baseline)}</code>, canary <code>${escape(meta.canary)}</code>.</p>
${report.interrupted ? '<p class="warn">Interrupted: the report covers only the requests that finished.</p>' : ''}
<h2>Verdicts</h2>
${verdicts(report.criteria)}
<h2>Summary</h2>
${summary(report)}
${report.noise === null ? '' : `<h2>Noise</h2>\n${noise(report)}`}
<h2>Latency</h2>
${cdfPlot(report)}
<h2>Routes</h2>
${routes(report)}
<h2>Mismatches</h2>
${mismatches(report)}
</body>
</html>
`;
}
