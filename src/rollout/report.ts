import { besideState } from '../common/atomic-file.js';
import { escape } from '../common/html.js';
import type { Decision } from './controller.js';
import type { Ledger, Ratio } from './ledger.js';
import type { Phase } from './machine.js';
import { formatDuration } from './plan.js';

/**
 * The rollout's summary report (the seed's "summary report with metrics after completion"): per
 * period at one step and weight, its duration, requests, error rate, p99 and memory ratios and
 * the decisions made there, with their numbers; as JSON (GET /rollout/report), a self-contained
 * HTML page (inline CSS and SVG, nothing fetched) and Markdown that GitHub renders (its charts in
 * mermaid). Pure: the controller builds it, the CLI and the end of a rollout write it.
 */

export interface ReportUpstream {
  readonly requests: number;
  readonly errors: number;
  /** null without requests. */
  readonly errorRate: number | null;
  /** Seconds; null when unknown. */
  readonly p50: number | null;
  readonly p99: number | null;
  /** Bytes; null when unknown. */
  readonly rss: number | null;
}

export interface ReportStep {
  /** 1-based, as people count the plan's steps. */
  readonly step: number;
  readonly weight: number;
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly durationMs: number;
  readonly checks: number;
  readonly upstreams: Readonly<Record<string, ReportUpstream>>;
  readonly p99Ratio: Ratio;
  readonly memoryRatio: Ratio;
  readonly decisions: readonly Decision[];
  /** Earlier decisions of the period not kept. */
  readonly omitted: number;
}

export interface RolloutReport {
  readonly format: 1;
  readonly canary: string;
  readonly baseline: string;
  readonly generatedAt: string;
  readonly phase: Phase;
  readonly note: string | null;
  /** null before any rollout started. */
  readonly startedAt: string | null;
  readonly endedAt: string | null;
  /** The canary's percent now. */
  readonly weight: number;
  readonly steps: readonly ReportStep[];
  /** Each check's time, weight and ratios, for the charts. */
  readonly points: readonly { readonly at: string; readonly weight: number; readonly p99Ratio: number | null; readonly memoryRatio: number | null; readonly errorRate: number | null }[];
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Where a rollout's report is written when it ends, beside the --state file: /data/state.json → /data/state.rollout-report.html and .md. */
export function reportPaths(statePath: string): { readonly html: string; readonly md: string } {
  return { html: besideState(statePath, 'rollout-report.html'), md: besideState(statePath, 'rollout-report.md') };
}

/** The report from the ledger, as of `now`. */
export function buildReport(ledger: Ledger, meta: { readonly canary: string; readonly baseline: string; readonly phase: Phase; readonly note: string | null; readonly weight: number }, now: number): RolloutReport {
  const names = [meta.baseline, meta.canary];
  return {
    format: 1,
    canary: meta.canary,
    baseline: meta.baseline,
    generatedAt: iso(now),
    phase: meta.phase,
    note: meta.note,
    startedAt: ledger.startedAt === null ? null : iso(ledger.startedAt),
    endedAt: ledger.endedAt === null ? null : iso(ledger.endedAt),
    weight: meta.weight,
    steps: ledger.steps.map((s) => ({
      step: s.step + 1,
      weight: s.weight,
      startedAt: iso(s.startedAt),
      endedAt: s.endedAt === null ? null : iso(s.endedAt),
      durationMs: Math.max(0, (s.endedAt ?? now) - s.startedAt),
      checks: s.checks,
      upstreams: Object.fromEntries(
        names.map((name) => {
          const u = s.upstreams[name];
          const requests = Math.round(u?.requests ?? 0);
          const errors = Math.round(u?.errors ?? 0);
          return [name, { requests, errors, errorRate: requests > 0 ? errors / requests : null, p50: u?.p50 ?? null, p99: u?.p99 ?? null, rss: u?.rss ?? null }];
        }),
      ),
      p99Ratio: s.p99Ratio,
      memoryRatio: s.memoryRatio,
      decisions: s.decisions,
      omitted: s.omitted,
    })),
    points: ledger.points.map((p) => ({ ...p, at: iso(p.at) })),
  };
}

// Numbers as people read them; '—' where there is none.
const DASH = '—';
const count = (n: number): string => Math.round(n).toLocaleString('en-US');
const percent = (x: number | null): string => (x === null ? DASH : `${(x * 100).toFixed(2).replace(/\.?0+$/, '')}%`);
const ratio = (x: number): string => `${x.toFixed(2)}×`;
const ms = (seconds: number | null): string => (seconds === null ? DASH : `${(seconds * 1000).toFixed(1)} ms`);
const mb = (bytes: number | null): string => (bytes === null ? DASH : `${Math.round(bytes / 2 ** 20)} MB`);
const duration = (msValue: number): string => (msValue < 1000 ? `${msValue}ms` : formatDuration(Math.round(msValue / 1000) * 1000));
// The max is set whenever the last is.
const ratios = (r: Ratio): string => (r.last === null ? DASH : `${ratio(r.last)} (max ${ratio(r.max!)})`);

/** The one line on top: how it ended, or where it is. */
function headline(r: RolloutReport): string {
  if (r.startedAt === null) return `No rollout has run yet (${r.phase}).`;
  const span = `${r.startedAt} → ${r.endedAt ?? 'now'}`;
  return `${r.phase.replace('_', ' ')} at ${r.weight}% (${span})${r.note === null ? '' : `: ${r.note}`}`;
}

/** The checks a decision was made on, one line each. */
const checkLines = (d: Decision): string[] => (d.checks ?? []).map((c) => `${c.check} ${c.status}: ${c.text}`);

// --- Markdown ----------------------------------------------------------------------------------

/** A table cell: no pipes or line breaks. */
const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

/** A mermaid xychart: GitHub draws it; elsewhere it reads as the numbers it is. */
function mermaidBars(title: string, labels: readonly string[], values: readonly (number | null)[], yLabel: string): string {
  const shown = values.map((v) => (v === null ? 0 : Number(v.toFixed(3))));
  return ['```mermaid', 'xychart-beta', `  title "${title}"`, `  x-axis [${labels.map((l) => `"${l}"`).join(', ')}]`, `  y-axis "${yLabel}"`, `  bar [${shown.join(', ')}]`, '```'].join('\n');
}

export function renderMarkdown(r: RolloutReport): string {
  const out: string[] = [`# Rollout report: ${r.canary} over ${r.baseline}`, '', headline(r), '', `Generated ${r.generatedAt}.`, ''];
  if (r.steps.length === 0) return `${out.join('\n')}\n`;
  const labels = r.steps.map((s, i) => `${i + 1}: ${s.weight}%`);
  out.push('## Steps', '');
  out.push(`| # | step | weight | from | duration | checks | ${r.canary} requests | ${r.canary} error rate | ${r.baseline} requests | ${r.baseline} error rate | p99 ratio | memory ratio |`);
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  r.steps.forEach((s, i) => {
    const c = s.upstreams[r.canary]!;
    const b = s.upstreams[r.baseline]!;
    out.push(`| ${i + 1} | ${s.step} | ${s.weight}% | ${s.startedAt} | ${duration(s.durationMs)} | ${s.checks} | ${count(c.requests)} | ${percent(c.errorRate)} | ${count(b.requests)} | ${percent(b.errorRate)} | ${ratios(s.p99Ratio)} | ${ratios(s.memoryRatio)} |`);
  });
  out.push('', 'Requests are counted from each check\'s window: exact while the window covers the whole period, estimated from its rate after.', '');
  out.push('## Charts', '', mermaidBars('canary weight per period (%)', labels, r.steps.map((s) => s.weight), '%'), '');
  out.push(mermaidBars('p99 ratio, canary over baseline (last of each period)', labels, r.steps.map((s) => s.p99Ratio.last), 'ratio'), '');
  out.push(mermaidBars('memory ratio, canary over baseline (last of each period)', labels, r.steps.map((s) => s.memoryRatio.last), 'ratio'), '');
  out.push('## Decisions', '');
  r.steps.forEach((s, i) => {
    if (s.omitted > 0) out.push(`- (period ${i + 1}: ${s.omitted} earlier decisions not kept)`);
    for (const d of s.decisions) {
      out.push(`- **${d.at}** (period ${i + 1}, ${d.from}% → ${d.to}%) \`${d.action}\` by ${cell(d.who)}${d.reason === null ? '' : ` (${cell(d.reason)})`}: ${cell(d.text)}`);
      for (const line of checkLines(d)) out.push(`  - ${cell(line)}`);
    }
  });
  out.push('', '## Latency and memory per period', '', '| # | upstream | p50 | p99 | RSS |', '|---|---|---|---|---|');
  r.steps.forEach((s, i) => {
    for (const [name, u] of Object.entries(s.upstreams)) out.push(`| ${i + 1} | ${cell(name)} | ${ms(u.p50)} | ${ms(u.p99)} | ${mb(u.rss)} |`);
  });
  return `${out.join('\n')}\n`;
}

// --- HTML --------------------------------------------------------------------------------------

const W = 720;
const H = 260;
const LEFT = 56;
const RIGHT = 24;
const TOP = 16;
const BOTTOM = 40;
const CANARY_COLOUR = '#e6550d';
const LIMIT_COLOUR = '#888';

/** Four ticks from 0 to the top, rounded to what the scale shows. */
const yTicks = (top: number): number[] => [0, 0.25, 0.5, 0.75, 1].map((f) => f * top);
const label = (v: number): string => String(Math.round(v * 100) / 100);

/** The canary's weight over time: a step line through each change, from the rollout's start to its end (or now). */
function weightChart(r: RolloutReport): string {
  const pts: [number, number][] = [];
  for (const s of r.steps) {
    pts.push([Date.parse(s.startedAt), s.weight]);
    pts.push([Date.parse(s.endedAt ?? r.generatedAt), s.weight]);
  }
  // Where it ended: the last decision's weight (0 after a rollback or an abort).
  if (r.endedAt !== null) pts.push([Date.parse(r.endedAt), r.weight]);
  const t0 = pts[0]![0];
  const t1 = Math.max(pts.at(-1)![0], t0 + 1);
  const pw = W - LEFT - RIGHT;
  const ph = H - TOP - BOTTOM;
  const x = (t: number): number => +(LEFT + ((t - t0) / (t1 - t0)) * pw).toFixed(1);
  const y = (v: number): number => +(TOP + (1 - v / 100) * ph).toFixed(1);
  const d = pts.map(([t, v], i) => `${i === 0 ? 'M' : 'L'}${x(t)},${y(v)}`).join(' ');
  const grid = yTicks(100).map((v) => `<line x1="${LEFT}" y1="${y(v)}" x2="${LEFT + pw}" y2="${y(v)}" class="grid"/><text x="${LEFT - 6}" y="${y(v) + 4}" text-anchor="end">${label(v)}%</text>`);
  const axis = `<text x="${LEFT}" y="${H - 8}">${escape(new Date(t0).toISOString())}</text><text x="${LEFT + pw}" y="${H - 8}" text-anchor="end">${escape(new Date(t1).toISOString())}</text>`;
  return `<svg class="chart" id="weight-chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="canary weight over time">
<g class="axis">${grid.join('')}${axis}</g>
<path class="series" d="${d}" fill="none" stroke="${CANARY_COLOUR}" stroke-width="2"/>
</svg>`;
}

/** A ratio per period as bars (the last measured, its max marked), with 1× (the baseline) drawn across. */
function ratioChart(r: RolloutReport, id: string, what: string, pick: (s: ReportStep) => Ratio): string {
  const values = r.steps.map(pick);
  // A multiple of 2, so the four gridlines fall on round ratios (0.5× each up to 2×).
  const top = Math.max(2, Math.ceil((Math.max(...values.map((v) => v.max ?? 0)) * 1.1) / 2) * 2);
  const pw = W - LEFT - RIGHT;
  const ph = H - TOP - BOTTOM;
  const slot = pw / values.length;
  const y = (v: number): number => +(TOP + (1 - v / top) * ph).toFixed(1);
  const grid = yTicks(top).map((v) => `<line x1="${LEFT}" y1="${y(v)}" x2="${LEFT + pw}" y2="${y(v)}" class="grid"/><text x="${LEFT - 6}" y="${y(v) + 4}" text-anchor="end">${label(v)}×</text>`);
  const bars = values.map((v, i) => {
    const x = +(LEFT + i * slot + slot * 0.15).toFixed(1);
    const w = +(slot * 0.7).toFixed(1);
    const name = `<text x="${+(x + w / 2).toFixed(1)}" y="${TOP + ph + 14}" text-anchor="middle">${i + 1}: ${r.steps[i]!.weight}%</text>`;
    if (v.last === null) return `${name}<text x="${+(x + w / 2).toFixed(1)}" y="${TOP + ph - 4}" text-anchor="middle">—</text>`;
    const max = `<line x1="${x}" y1="${y(v.max!)}" x2="${+(x + w).toFixed(1)}" y2="${y(v.max!)}" stroke="#000" stroke-width="2"><title>max ${ratio(v.max!)}</title></line>`;
    return `<rect class="bar" x="${x}" y="${y(v.last)}" width="${w}" height="${+(TOP + ph - y(v.last)).toFixed(1)}" fill="${CANARY_COLOUR}"><title>period ${i + 1}: last ${ratio(v.last)}</title></rect>${max}${name}`;
  });
  const one = `<line x1="${LEFT}" y1="${y(1)}" x2="${LEFT + pw}" y2="${y(1)}" stroke="${LIMIT_COLOUR}" stroke-dasharray="4 3"/>`;
  return `<svg class="chart" id="${id}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escape(what)} per period">
<g class="axis">${grid.join('')}</g>
${bars.join('')}${one}
</svg>`;
}

function stepsTable(r: RolloutReport): string {
  const rows = r.steps.map((s, i) => {
    const c = s.upstreams[r.canary]!;
    const b = s.upstreams[r.baseline]!;
    return `<tr><td>${i + 1}</td><td>${s.step}</td><td>${s.weight}%</td><td>${escape(s.startedAt)}</td><td>${duration(s.durationMs)}</td><td>${s.checks}</td><td>${count(c.requests)}</td><td>${percent(c.errorRate)}</td><td>${count(b.requests)}</td><td>${percent(b.errorRate)}</td><td>${ms(c.p99)} / ${ms(b.p99)}</td><td>${ratios(s.p99Ratio)}</td><td>${mb(c.rss)} / ${mb(b.rss)}</td><td>${ratios(s.memoryRatio)}</td></tr>`;
  });
  const c = escape(r.canary);
  const b = escape(r.baseline);
  return `<table><tr><th>#</th><th>step</th><th>weight</th><th>from</th><th>duration</th><th>checks</th><th>${c} requests</th><th>${c} error rate</th><th>${b} requests</th><th>${b} error rate</th><th>p99 ${c} / ${b}</th><th>p99 ratio</th><th>RSS ${c} / ${b}</th><th>memory ratio</th></tr>${rows.join('')}</table>`;
}

function decisionsList(r: RolloutReport): string {
  const items = r.steps.flatMap((s, i) => [
    ...(s.omitted > 0 ? [`<li>(period ${i + 1}: ${s.omitted} earlier decisions not kept)</li>`] : []),
    ...s.decisions.map((d) => {
      const checks = checkLines(d);
      const list = checks.length === 0 ? '' : `<ul>${checks.map((l) => `<li>${escape(l)}</li>`).join('')}</ul>`;
      return `<li class="decision ${escape(d.action)}"><b>${escape(d.at)}</b> (period ${i + 1}, ${d.from}% → ${d.to}%) <code>${escape(d.action)}</code> by ${escape(d.who)}${d.reason === null ? '' : ` (${escape(d.reason)})`}: ${escape(d.text)}${list}</li>`;
    }),
  ]);
  return items.length === 0 ? '<p>None.</p>' : `<ul>${items.join('')}</ul>`;
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
code{font:12px ui-monospace,monospace}
li.rollback,li.reduce{color:#cf222e}
li.complete,li.promote{color:#1a7f37}
svg text{font:11px system-ui,sans-serif}
svg .grid{stroke:#ddd}`;

/** The whole page, self-contained: inline CSS and SVG, no script, nothing fetched. */
export function renderReportHtml(r: RolloutReport): string {
  const title = `Rollout report: ${r.canary} over ${r.baseline}`;
  const body =
    r.steps.length === 0
      ? ''
      : `<h2>Steps</h2>
${stepsTable(r)}
<p>Requests are counted from each check's window: exact while the window covers the whole period, estimated from its rate after.</p>
<h2>Canary weight over time</h2>
${weightChart(r)}
<h2>p99 ratio per period (canary over baseline; bar: last, line: max)</h2>
${ratioChart(r, 'p99-chart', 'p99 ratio', (s) => s.p99Ratio)}
<h2>Memory ratio per period (canary over baseline)</h2>
${ratioChart(r, 'memory-chart', 'memory ratio', (s) => s.memoryRatio)}
<h2>Decisions</h2>
${decisionsList(r)}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escape(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escape(title)}</h1>
<p>${escape(headline(r))}</p>
<p>Generated ${escape(r.generatedAt)}.</p>
${body}
</body>
</html>
`;
}
