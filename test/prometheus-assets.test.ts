/**
 * The Prometheus rules and the Grafana dashboard in config/ hold to the seeds (CANARY_DEPLOYMENT.md,
 * ROLLBACK_PLAN.md) and query only the metrics drum-splitter exports.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { startApp } from '../src/app.js';
import { parse } from 'yaml';
import { silentLog } from './helpers/net.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const rulesPath = `${root}config/prometheus/drum-splitter-rules.yaml`;
const rulesTestPath = `${root}config/prometheus/drum-splitter-rules.test.yaml`;
const dashboardPath = `${root}config/grafana/drum-splitter-dashboard.json`;
const seedPath = `${root}../shared/seeds/CANARY_DEPLOYMENT.md`;

/**
 * The metrics drum-splitter really exports, read off a running app's registry (the histogram
 * by its series' names), so a renamed metric fails here rather than in someone's Grafana.
 */
const EXPORTED = await (async () => {
  const app = await startApp({ flags: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', upstreams: ['flask=http://127.0.0.1:1'] } }, { env: {}, log: silentLog });
  const families = await app.metrics.registry.getMetricsAsJSON();
  await app.close();
  return new Set(
    families
      .filter((f) => f.name.startsWith('drum_') && !f.name.startsWith('drum_splitter_'))
      .flatMap((f) => (String(f.type) === 'histogram' ? ['_bucket', '_sum', '_count'].map((x) => f.name + x) : [f.name])),
  );
})();

t.test("the seed's metric names are among those exported", async (t) => {
  for (const name of ['drum_requests_total', 'drum_request_duration_seconds_bucket', 'drum_memory_bytes']) t.ok(EXPORTED.has(name), name);
});

/** CANARY_DEPLOYMENT.md "Monitoring Dashboard": panel title -> query, as the seed writes them. */
const SEED_PANELS: Record<string, string> = {
  'Request Rate by Server Type': 'sum(rate(drum_requests_total[5m])) by (server_type)',
  'P99 Latency Comparison': `histogram_quantile(0.99,
  sum(rate(drum_request_duration_seconds_bucket[5m])) by (le, server_type)
)`,
  'Error Rate Comparison': `sum(rate(drum_requests_total{status=~"5.."}[5m])) by (server_type)
/ sum(rate(drum_requests_total[5m])) by (server_type)`,
  'Memory Usage Comparison': 'avg(drum_memory_bytes{type="rss"}) by (server_type)',
};

/** The seed's rollback triggers, one alert each. */
const ALERTS = [
  'DrumCanaryErrorRateHigh',
  'DrumCanary5xxRateElevated',
  'DrumCanaryLatencyP99High',
  'DrumCanaryLatencyRegression',
  'DrumCanaryMemoryHigh',
  'DrumCanaryMemoryLeak',
  'DrumCanaryPingDown',
];

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleTests {
  tests: { name: string; alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}
interface Target {
  refId: string;
  expr: string;
  legendFormat?: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  schemaVersion: number;
  __inputs: { name: string; type: string; pluginId: string }[];
  templating: { list: { name: string; type: string; query: string }[] };
  panels: Panel[];
}

const rulesText = readFileSync(rulesPath, 'utf8');
const rules = (parse(rulesText) as { groups: { name: string; rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const recorded = new Set(rules.flatMap((r) => (r.record === undefined ? [] : [r.record])));
const alerts = rules.filter((r) => r.alert !== undefined);
const ruleTests = parse(readFileSync(rulesTestPath, 'utf8')) as RuleTests;
const dashboardText = readFileSync(dashboardPath, 'utf8');
const dashboard = JSON.parse(dashboardText) as Dashboard;
const targets = dashboard.panels.flatMap((p) => p.targets ?? []);

/** Whitespace-insensitive form of a query. */
const squash = (s: string): string => s.replace(/\s+/g, ' ').trim();
/** Every string in a parsed document (so YAML comments are not searched). */
const strings = (v: unknown): string[] =>
  typeof v === 'string' ? [v] : typeof v === 'object' && v !== null ? Object.values(v).flatMap(strings) : [];
/** The names (metric-name syntax) in a text; a trailing colon is prose ("drum_memory_bytes: rss and ..."). */
const names = (text: string): string[] => [...text.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)].map((m) => m[0].replace(/:+$/, ''));
/** drum_ names that are neither exported nor a recording rule defined here. */
const unknownMetrics = (text: string): string[] =>
  [...new Set(names(text).filter((n) => /drum_[a-z_]+/.test(n) && !recorded.has(n) && !EXPORTED.has(n)))];

const promtool = process.env.PROMTOOL ?? 'promtool';
const hasPromtool = spawnSync(promtool, ['--version']).error === undefined;
const needsPromtool = hasPromtool ? {} : { skip: `${promtool} not found; install it (apt-get install prometheus) to run this (CI does)` };
const runPromtool = (...args: string[]) => spawnSync(promtool, args, { encoding: 'utf8' });

t.test('promtool check rules accepts the rules file', needsPromtool, async (t) => {
  const r = runPromtool('check', 'rules', rulesPath);
  t.equal(r.status, 0, r.stdout + r.stderr);
  t.match(r.stdout, `SUCCESS: ${rules.length} rules found`);
});

t.test('promtool test rules passes the unit tests', needsPromtool, async (t) => {
  const r = runPromtool('test', 'rules', rulesTestPath);
  t.equal(r.status, 0, r.stdout + r.stderr);
  t.match(r.stdout, /SUCCESS/);
});

t.test("the dashboard's queries are valid PromQL (as promtool parses them)", needsPromtool, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'drum-dashboard-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'dashboard-queries.yaml');
  const records = targets.map((x, i) => ({ record: `dashboard_query_${i}`, expr: x.expr }));
  writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules: records }] }));
  const r = runPromtool('check', 'rules', file);
  t.equal(r.status, 0, r.stdout + r.stderr);
});

t.test('every alert implements a seed trigger with severity, action and annotations', async (t) => {
  t.same(alerts.map((a) => a.alert), ALERTS);
  for (const a of alerts) {
    const severity = a.labels?.severity;
    t.ok(severity === 'critical' || severity === 'warning', `${a.alert}: severity ${severity}`);
    t.equal(a.labels?.action, severity === 'critical' ? 'rollback' : 'reduce', `${a.alert}: critical rolls back, warning reduces`);
    t.equal(a.labels?.server_type, 'fastapi', `${a.alert}: about the canary`);
    t.ok(a.annotations?.summary, `${a.alert}: summary`);
    t.match(a.annotations?.description, /Implements (ROLLBACK_PLAN|CANARY_DEPLOYMENT)\.md .*row "/, `${a.alert}: names its seed row`);
  }
});

t.test('every alert fires in some promtool test and stays quiet in another', async (t) => {
  const cases = ruleTests.tests.flatMap((x) => x.alert_rule_test ?? []);
  for (const name of ALERTS) {
    const mine = cases.filter((c) => c.alertname === name);
    t.ok(mine.some((c) => c.exp_alerts.length > 0), `${name} fires`);
    t.ok(mine.some((c) => c.exp_alerts.length === 0), `${name} stays quiet`);
  }
});

t.test('every recording rule is used by another rule or the dashboard, or documented', async (t) => {
  const comments = rulesText.split('\n').filter((l) => /^\s*#/.test(l)).join('\n');
  const used = new Set([...rules.flatMap((r) => names(r.expr)), ...targets.flatMap((x) => names(x.expr))]);
  for (const name of recorded) t.ok(used.has(name) || comments.includes(name), name);
});

t.test('rules, their tests and the dashboard use only exported metrics and defined recordings', async (t) => {
  t.same(unknownMetrics(strings(rules).join('\n')), [], 'rules file');
  t.same(unknownMetrics(strings(ruleTests).join('\n')), [], 'rules test file');
  t.same(unknownMetrics(dashboardText), [], 'dashboard');
  t.same(targets.flatMap((x) => names(x.expr)).filter((n) => recorded.has(n)), [], 'the dashboard works without the rules loaded');
});

t.test('the dashboard imports with a Prometheus data source input', async (t) => {
  t.equal(dashboard.uid, 'drum-splitter');
  t.ok(dashboard.schemaVersion >= 36 && dashboard.schemaVersion <= 41, `schemaVersion ${dashboard.schemaVersion}`);
  t.match(dashboard.__inputs, [{ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }]);
  // A variable of the same name lets file provisioning (which skips __inputs) resolve ${DS_PROMETHEUS}.
  t.match(dashboard.templating.list, [{ name: 'DS_PROMETHEUS', type: 'datasource', query: 'prometheus' }]);
  t.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length, 'panel ids are unique');
  for (const p of dashboard.panels) {
    t.ok(p.targets !== undefined && p.targets.length > 0, `${p.title}: has targets`);
    t.equal(p.datasource?.uid, '${DS_PROMETHEUS}', `${p.title}: data source`);
    for (const x of p.targets ?? []) {
      t.ok(x.expr.trim() !== '' && x.refId !== '', `${p.title} ${x.refId}: expr`);
      t.equal(x.datasource?.uid, '${DS_PROMETHEUS}', `${p.title} ${x.refId}: data source`);
    }
  }
});

t.test("the dashboard has the seed's four panels with the seed's queries", async (t) => {
  for (const [title, query] of Object.entries(SEED_PANELS)) {
    const panel = dashboard.panels.find((p) => p.title === title);
    t.ok(panel, title);
    t.ok(panel?.targets?.some((x) => squash(x.expr) === squash(query)), `${title}: ${squash(query)}`);
  }
});

t.test("SEED_PANELS is the seed's text", { skip: existsSync(seedPath) ? false : `${seedPath} not present` }, async (t) => {
  const seed = squash(readFileSync(seedPath, 'utf8'));
  for (const [title, query] of Object.entries(SEED_PANELS)) {
    t.ok(seed.includes(`- title: "${title}" query: | ${squash(query)}`), title);
  }
});

t.test('the dashboard shows the split, upstream health, memory by type and proxy answers', async (t) => {
  const uses = (metric: string) => targets.filter((x) => names(x.expr).includes(metric));
  for (const metric of ['drum_split_weight_percent', 'drum_upstream_up', 'drum_upstream_down_seconds', 'drum_requests_in_flight']) {
    t.ok(uses(metric).length > 0, metric);
  }
  t.ok(uses('drum_memory_bytes').some((x) => x.legendFormat?.includes('{{type}}')), 'drum_memory_bytes by type');
  t.ok(uses('drum_requests_total').some((x) => /origin="proxy"/.test(x.expr)), 'requests answered by drum-splitter');
});
