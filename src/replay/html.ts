import { escape } from '../common/html.js';
import { outcome, type Criterion, type Report } from './report.js';

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

/** Mismatches listed in full; more would make the page unwieldy, the JSON has them all. */
export const MAX_MISMATCHES = 200;
/** A value longer than this is cut in the differences table. */
const MAX_VALUE = 300;

const BASELINE_COLOUR = '#1f6fb4';
const CANARY_COLOUR = '#e6550d';

/** Up to 3 decimals, without trailing zeros; '—' for no number. */
function num(n: number | null): string {
  return n === null || !Number.isFinite(n) ? '—' : String(Math.round(n * 1000) / 1000);
}

/** A difference's value as JSON, cut to MAX_VALUE; "(absent)" where one side has none. */
function value(v: unknown): string {
  const text = v === undefined ? '(absent)' : JSON.stringify(v);
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE)}…` : text;
}

/** A verdict as shown, and its CSS class. */
const shown = (verdict: string): string => `<span class="${verdict.replace(' ', '-')}">${verdict.toUpperCase()}</span>`;

function verdicts(criteria: readonly Criterion[]): string {
  const rows = criteria.map(
    (c) => `<tr><td>${escape(c.name)}</td><td>${num(c.value)}${c.note === undefined ? '' : ` <small>(${escape(c.note)})</small>`}</td><td>${num(c.threshold)}</td><td>${shown(c.verdict)}</td></tr>`,
  );
  return `<table><tr><th>criterion</th><th>value</th><th>threshold</th><th>verdict</th></tr>${rows.join('')}</table>`;
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

// Plot area inside the SVG, in its own units.
const W = 720;
const H = 320;
const LEFT = 56;
const RIGHT = 32; // room for the last tick's label
const TOP = 16;
const BOTTOM = 44;

/** Ticks for a log axis: 1, 2, 5 × each power of ten within [lo, hi]. */
function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let p = Math.floor(Math.log10(lo)); p <= Math.ceil(Math.log10(hi)); p++) {
    for (const m of [1, 2, 5]) {
      const t = m * 10 ** p;
      if (t >= lo && t <= hi) ticks.push(t);
    }
  }
  return ticks;
}

/**
 * Both backends' empirical CDFs of latency (requests with an error left out, as in the summary),
 * with each one's p50 and p99 marked. The x axis is logarithmic where the range spans more than 20×,
 * so that a long tail does not squash the body of the distribution against the left edge.
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
  let lo = positive.length ? positive.reduce((a, b) => Math.min(a, b)) : 1;
  let hi = all.length ? all.reduce((a, b) => Math.max(a, b)) : 1;
  const log = hi / lo > 20;
  if (!log) {
    lo = 0;
    if (hi === 0) hi = 1;
  }
  const pw = W - LEFT - RIGHT;
  const ph = H - TOP - BOTTOM;
  const x = (v: number): number => {
    const f = log ? (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) : v / hi;
    return +(LEFT + f * pw).toFixed(1);
  };
  const y = (f: number): number => +(TOP + (1 - f) * ph).toFixed(1);

  const xTicks = log ? logTicks(lo, hi) : [0, 0.25, 0.5, 0.75, 1].map((f) => f * hi);
  const grid = [
    ...xTicks.map((t) => `<line x1="${x(t)}" y1="${TOP}" x2="${x(t)}" y2="${TOP + ph}" class="grid"/><text x="${x(t)}" y="${TOP + ph + 14}" text-anchor="middle">${num(t)}</text>`),
    ...[0, 0.25, 0.5, 0.75, 1].map((f) => `<line x1="${LEFT}" y1="${y(f)}" x2="${LEFT + pw}" y2="${y(f)}" class="grid"/><text x="${LEFT - 6}" y="${y(f) + 4}" text-anchor="end">${f * 100}%</text>`),
  ];
  const curves = sides.map((s, i) => {
    if (s.data.length === 0) return '';
    const marks = [
      ['p50', s.l.p50],
      ['p99', s.l.p99],
    ] as const;
    // Labels stacked at the top, one line each, so close percentiles do not overprint; in the
    // right half they run leftwards from their line, so they stay inside the plot.
    const markers = marks.map(([label, v], j) => {
      const at = x(v);
      const place = at > LEFT + pw / 2 ? `x="${at - 3}" text-anchor="end"` : `x="${at + 3}"`;
      return `<line x1="${at}" y1="${TOP}" x2="${at}" y2="${TOP + ph}" stroke="${s.colour}" stroke-dasharray="4 3"/><text ${place} y="${TOP + 12 + (i * 2 + j) * 12}" fill="${s.colour}">${s.name} ${label} ${num(v)}</text>`;
    });
    // A step function: up by 1/n at each sorted latency.
    let d = `M${x(s.data[0]!)},${y(0)}`;
    s.data.forEach((v, k) => {
      d += ` H${x(v)} V${y((k + 1) / s.data.length)}`;
    });
    return `<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="2"/>${markers.join('')}`;
  });
  const legend = sides.map((s, i) => `<rect x="${LEFT + pw - 150}" y="${TOP + ph - 40 + i * 16}" width="12" height="3" fill="${s.colour}"/><text x="${LEFT + pw - 132}" y="${TOP + ph - 35 + i * 16}">${s.name}</text>`);
  return `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="latency CDFs of baseline and canary">
<g class="axis">${grid.join('')}</g>
${all.length === 0 ? `<text x="${LEFT + pw / 2}" y="${TOP + ph / 2}" text-anchor="middle">no latencies</text>` : curves.join('')}
${legend.join('')}
<text x="${LEFT + pw / 2}" y="${H - 6}" text-anchor="middle">latency ms${log ? ' (log scale)' : ''}</text>
</svg>`;
}

function routes(report: Report): string {
  const rows = Object.entries(report.routes).map(
    ([route, r]) => `<tr><td>${escape(route)}</td><td>${r.count}</td><td>${r.mismatches}</td><td>${r.errors}</td><td>${num(r.flask_p99_ms)}</td><td>${num(r.fastapi_p99_ms)}</td></tr>`,
  );
  return `<table><tr><th>route</th><th>requests</th><th>mismatches</th><th>errors</th><th>baseline p99 ms</th><th>canary p99 ms</th></tr>${rows.join('')}</table>`;
}

function mismatches(report: Report): string {
  const all = report.results.filter((r) => r.error === null && r.diff !== null);
  if (all.length === 0) return '<p>None.</p>';
  const shown = all.slice(0, MAX_MISMATCHES).map((r) => {
    const diffs = r.differences.map(
      (d) => `<tr><td><code>${escape(d.path)}</code></td><td>${escape(d.kind)}</td><td><code>${escape(value(d.baseline))}</code></td><td><code>${escape(value(d.canary))}</code></td></tr>`,
    );
    return `<div class="mismatch"><h3>${escape(r.method)} <code>${escape(r.path)}</code> <small>${escape(r.source)} · ${r.flask_status} vs ${r.fastapi_status}</small></h3>
<p>${escape(r.diff!)}</p>
<table><tr><th>path</th><th>kind</th><th>baseline</th><th>canary</th></tr>${diffs.join('')}</table></div>`;
  });
  const more = all.length > MAX_MISMATCHES ? `<p>Showing the first ${MAX_MISMATCHES} of ${all.length}; the JSON report has them all.</p>` : '';
  return more + shown.join('\n');
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
