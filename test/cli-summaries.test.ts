/**
 * What `rollout status`, `rollout decisions`, `recording` and `shadow` print: pure functions of
 * the admin API's answers, here the answers of a running proxy (test/fixtures/rollout/record.mjs)
 * in each phase of a rollout, read at the time each was taken, in UTC.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import type { Decision, RolloutView } from '../src/rollout/controller.js';
import {
  clock,
  decisionLine,
  decisionsOf,
  decisionsSummary,
  isRolloutAnswer,
  recordingSummary,
  roughDuration,
  shadowSummary,
  statusSummary,
  type ShadowAnswer,
} from '../src/cli/summaries.js';

interface Taken {
  readonly now: string;
  readonly rollout: RolloutView;
  readonly decisions: Decision[];
}
const answers = JSON.parse(readFileSync(new URL('fixtures/rollout/answers.json', import.meta.url), 'utf8')) as {
  states: Record<string, Taken>;
  switches: Record<string, ShadowAnswer & { file: string | null }>;
};
const { states, switches } = answers;
const at = (taken: Taken) => ({ now: Date.parse(taken.now), timeZone: 'UTC' });
const status = (name: string, rollout: RolloutView = states[name]!.rollout): string[] => statusSummary(rollout, states[name]!.decisions, at(states[name]!)).split('\n');

t.test('every recorded answer is one the CLI reads', async (t) => {
  for (const [name, taken] of Object.entries(states)) {
    t.ok(isRolloutAnswer(taken.rollout), `${name}: GET /rollout`);
    t.same(decisionsOf({ decisions: taken.decisions }), { decisions: taken.decisions, skipped: 0 }, `${name}: GET /rollout/decisions`);
  }
});

t.test('rollout status while running: the step, weights, time held, next check, each check on a line, the decisions, the plan', async (t) => {
  t.strictSame(status('running'), [
    'canary        fastapi (baseline flask)',
    'phase         running',
    'step          2 of 4: 10%, held 2s of 4s, then a person approves',
    'weights       flask 90%, fastapi 10%',
    'next check    in 369ms',
    'last verdict  pass at 14:47:13: all checks pass',
    '  pass            error_rate  canary error rate 0% (0 of 86) under 0.1%',
    '  pass            p99         canary p99 36.6 ms vs baseline 22.0 ms (+66.1%, +14.6 ms; Mann–Whitney p=0.74, n=70/466); not significant, so not a regression',
    '  pass            memory      canary RSS 146 MB vs baseline 146 MB (+0%)',
    '  not measured    rss_growth  RSS growth: not enough /stats/ polls yet',
    '  not measured    oom         OOM: the canary does not report its container limit',
    '  pass            ping        canary answers /ping',
    'decisions     2',
    "  14:47:07  start                 0% → 0%    rollout started: the shadow phase, 50% of the baseline's requests copied to the canary → canary to 0% (admin: release 2.4 to fastapi)",
    '  14:47:10  shadow_pass           0% → 10%   shadow 50% held with every check passing → canary to 10%',
    'plan          shadow 50% 3s → 10% 4s (approve) → 50% 1h → 100% 1h',
  ]);
});

t.test('rollout status says what cohort rules took out of the window, and nothing when they took none', async (t) => {
  const running = states.running!.rollout;
  const routed = { ...running, lastVerdict: { ...running.lastVerdict!, routed: { flask: 0, fastapi: 60 } } };
  t.ok(status('running', routed).includes('not judged    60 to fastapi in the window, taken by cohort rules'));
  t.notOk(status('running').some((l) => l.startsWith('not judged')));
  const none = { ...running, lastVerdict: { ...running.lastVerdict!, routed: { flask: 0, fastapi: 0 } } };
  t.notOk(status('running', none).some((l) => l.startsWith('not judged')));
});

t.test('rollout status in each phase: what that phase has to say', async (t) => {
  // Each row: the recorded phase, and lines the summary holds, in this order.
  const rows: [string, (string | RegExp)[]][] = [
    ['unmanaged', ['phase         unmanaged', 'step          none', 'weights       flask 95%, fastapi 5%', 'next check    none', /^note {10}the canary takes traffic and no rollout watches it/, 'last verdict  none yet', 'decisions     none yet']],
    ['idle', ['phase         idle', 'step          none', 'weights       flask 100%, fastapi 0%', 'next check    none', 'last verdict  none yet']],
    ['shadow', ['step          1 of 4: shadow 50%, held 1.4s of 3s', 'weights       flask 100%, fastapi 0%', 'next check    in 397ms', '  pass            mismatch    0 of 176 shadow pairs differ beyond the ignore list and the noise (0%)', 'decisions     1']],
    ['awaiting_approval', ['phase         awaiting approval', 'step          2 of 4: 10%, held 4s of 4s, then a person approves', 'note          10% held with every check passing; waiting for approval to go to 50%']],
    ['paused', ['phase         paused', 'step          3 of 4: 50%, held 0s of 1h', 'note          paused at 50%', 'last verdict  inconclusive at 14:47:16: settling after a weight change: only the immediate triggers act (1 check left)', '  14:47:16  pause                50% → 50%   paused at 50% (admin: waiting for the batch jobs)']],
    ['reducing', [
      'phase         reducing',
      'weights       flask 75%, fastapi 25%',
      'reduced       judged again in 989ms',
      /^ {2}fail: reduce {4}p99 {9}canary p99 164\.9 ms vs baseline 8\.9 ms \(\+1754\.6%/,
      'decisions     the last 5 of 8 (all: drum-splitter rollout decisions)',
      /^ {2}14:47:20 {2}reduce {15}50% → 25% {3}canary p99 164\.9 ms .* → canary reduced to 25%, checked again in 1s$/,
    ]],
    ['rolled_back', [
      'phase         rolled back',
      'next check    none',
      /^last verdict {2}rollback at 14:47:20: canary error rate 37\.5% \(12 of 32\) over 1%/,
      /^ {2}fail: rollback {2}error_rate {2}canary error rate 37\.5%/,
      /^ {2}inconclusive {4}p99 {9}.*fewer than 100 latencies a side/,
      'verification  verified at 14:47:20',
      '  ✔ ping: GET /ping → 200',
      '  ✔ stats: GET /stats/: drum_rss 149 MiB',
      /^ {2}14:47:20 {2}verified {14}0% → 0% {4}the baseline flask verified after the rollback/,
    ]],
    ['claimed', ['phase         rolled back', 'run by        the fleet controller http://drum-splitter-controller:9902 (token "admin"), its claim until 14:47:51']],
    ['complete', ['phase         complete', 'step          2 of 2: 100%, held 1s of 1s', 'weights       flask 0%, fastapi 100%', '  not measured    p99         p99: the baseline takes no traffic to compare with', '  14:47:22  promote              50% → 100%  50% held with every check passing → canary to 100%', 'plan          50% 1s → 100% 1s']],
  ];
  for (const [name, want] of rows) {
    const lines = status(name);
    let from = 0;
    for (const line of want) {
      const i = lines.findIndex((l, j) => j >= from && (typeof line === 'string' ? l === line : line.test(l)));
      t.ok(i >= 0, `${name}: ${String(line)}`) || t.comment(lines.join('\n'));
      from = i + 1;
    }
    t.notOk(lines.some((l) => l.startsWith('run by')) !== (name === 'claimed'), `${name}: a fleet controller's claim shown only when there is one`);
  }
});

t.test("a fleet controller's answer: its replicas, each with its status", async (t) => {
  const fleet = {
    prometheus: 'http://prometheus:9090/',
    replicas: [
      { url: 'http://10.0.0.7:9901', status: 'in_sync', weights: { flask: 90, fastapi: 10 }, detail: 'at flask=90, fastapi=10', at: '2026-12-07T14:47:13.000Z' },
      { url: 'http://10.0.0.8:9901', status: 'unreachable', weights: null, at: '2026-12-07T14:47:13.000Z' },
    ],
  };
  const lines = status('running', { ...states.running!.rollout, fleet } as RolloutView);
  t.strictSame(lines.slice(-3), ['fleet         2 replicas, judged from http://prometheus:9090/', '  in_sync       http://10.0.0.7:9901  at flask=90, fastapi=10', '  unreachable   http://10.0.0.8:9901']);
  const one = status('running', { ...states.running!.rollout, fleet: { replicas: [fleet.replicas[0]] } } as RolloutView);
  t.equal(one.at(-2), 'fleet         1 replica', 'no Prometheus named: none said');
  t.notOk(status('running', { ...states.running!.rollout, fleet: { replicas: 'many' } } as unknown as RolloutView).some((l) => l.startsWith('fleet')), 'replicas it cannot read: no fleet lines');
});

t.test('a dry run, and a check status of a newer version, are said as they are', async (t) => {
  const running = states.running!.rollout;
  const dry = status('running', { ...running, plan: { ...running.plan, dryRun: true } });
  t.equal(dry[0], 'canary        fastapi (baseline flask), a dry run: the weights do not move');
  const verdict = { ...running.lastVerdict!, checks: [{ ...running.lastVerdict!.checks[0]!, status: 'skipped' as 'ok' }] };
  t.equal(status('running', { ...running, lastVerdict: verdict })[6], '  skipped         error_rate  canary error rate 0% (0 of 86) under 0.1%');
  t.equal(status('running', { ...running, lastVerdict: { ...verdict, checks: [] } })[6], 'decisions     2', 'a verdict with no checks: no check lines');
  t.equal(status('running', { ...running, nextCheckAt: '2026-12-07T14:47:13.000Z' })[4], 'next check    due now', 'a check under way');
});

t.test('rollout decisions: a line each, oldest first, a verification\'s items under it', async (t) => {
  const { decisions } = states.rolled_back!;
  const lines = decisionsSummary(decisions, at(states.rolled_back!)).split('\n');
  t.equal(lines.length, decisions.length + 6, 'ten decisions, six verification items');
  t.ok(lines.join('\n').length * 4 < JSON.stringify({ decisions }, null, 2).length, 'under a quarter of the JSON --json prints');
  t.equal(lines[3], '14:47:16  approve              10% → 50%   approved at 10% → canary to 50% (admin: dashboards look fine)');
  t.equal(lines[5], '14:47:17  resume               50% → 50%   resumed at 50% (admin)', 'a person without a reason: named');
  t.equal(lines[1], '14:47:10  shadow_pass           0% → 10%   shadow 50% held with every check passing → canary to 10%', "the rollout's own: no one named");
  t.ok(lines.slice(-6).every((l) => l.startsWith('          ✔ ')), 'the items under the decision');
  t.match(lines.at(-1), /^ {10}✔ stats: GET \/stats\/: drum_rss 149 MiB$/);
  const tail = decisionsSummary(decisions, at(states.rolled_back!), 2).split('\n');
  t.strictSame(tail.slice(0, 2), ['the last 2 of 10 decisions', lines[8]]);
  t.equal(decisionsSummary(decisions, at(states.rolled_back!), 10), lines.join('\n'), 'a limit that takes them all: no "last N of"');
  t.equal(decisionsSummary([], at(states.idle!)), 'no decisions yet');
  const dry = { ...decisions[1]!, dryRun: true as const, who: 'rollout', reason: 'by the plan' };
  t.equal(decisionLine(dry, at(states.rolled_back!)), '14:47:10  shadow_pass           0% → 10%   shadow 50% held with every check passing → canary to 10% (by the plan) [dry run]');
});

t.test('times: of day in the given zone, with the date when not that day; durations to two units', async (t) => {
  const now = Date.parse('2026-12-07T14:47:20.000Z');
  t.equal(clock('2026-12-07T14:47:16.500Z', { now, timeZone: 'UTC' }), '14:47:16');
  t.equal(clock('2026-12-07T14:47:16.500Z', { now, timeZone: 'Asia/Tokyo' }), '23:47:16');
  t.equal(clock('2026-12-06T23:59:59.000Z', { now, timeZone: 'UTC' }), '2026-12-06 23:59:59');
  t.equal(clock('not a time', { now }), 'not a time', 'what it cannot read, as it came');
  const durations: [number, string][] = [
    [0, '0s'], [-5, '0s'], [1, '1ms'], [850, '850ms'], [1000, '1s'], [4260, '4.2s'], [59_990, '59.9s'], [60_000, '1m'], [185_000, '3m 5s'],
    [3_600_000, '1h'], [7_830_000, '2h 10m'], [86_400_000, '1d'], [5 * 86_400_000 + 3 * 3_600_000 + 59_000, '5d 3h'],
  ];
  for (const [ms, text] of durations) t.equal(roughDuration(ms), text, `${ms} ms`);
});

t.test('answers the CLI cannot read are told apart', async (t) => {
  t.notOk(isRolloutAnswer(null));
  t.notOk(isRolloutAnswer({ phase: 'running' }), 'no plan');
  t.notOk(isRolloutAnswer({ ...states.running!.rollout, weights: null }), 'no weights');
  t.equal(decisionsOf([]), undefined, 'not an object');
  t.equal(decisionsOf({ decisions: {} }), undefined, 'not a list');
  t.same(decisionsOf({ decisions: [states.running!.decisions[0], { at: 5 }, 'x'] }), { decisions: [states.running!.decisions[0]], skipped: 2 });
});

t.test('recording and shadow: what is sampled where, and what the copies came to', async (t) => {
  const paths = '/predict/, /predictions/, /transform/, /invocations, /predictUnstructured/, /predictionsUnstructured/';
  const file = switches.recordingOn!.file!;
  t.equal(recordingSummary(switches.recordingOn!), `recording on: 5% of the requests to ${paths}, written to ${file}`);
  t.equal(recordingSummary(switches.recordingOff!), `recording off (on: 5% of the requests to ${paths}, written to ${file})`);
  t.equal(recordingSummary(switches.recordingNoFile!), 'recording off; with no --record file, it cannot be switched on');
  t.equal(shadowSummary(switches.shadowOn!), `shadow on: 50% of the baseline's requests to ${paths} copied to fastapi\ncompared 194: 0 differ (100% match); 0 failed, 0 dropped, 0 in flight`);
  t.equal(shadowSummary(switches.shadowOff!), 'shadow off; to copy to fastapi: drum-splitter shadow on --sample RATE\ncompared 451: 0 differ (100% match); 0 failed, 0 dropped, 0 in flight', 'off at 0, as the shadow phase leaves it');
  t.equal(shadowSummary({ ...switches.shadowOff!, sampleRate: 0.125, counts: { match: 7, mismatch: 1, error: 2, dropped: 3 }, matchRate: 0.875, inflight: 4 }),
    `shadow off (on: 12.5% of the baseline's requests to ${paths} copied to fastapi)\ncompared 8: 1 differ (87.5% match); 2 failed, 3 dropped, 4 in flight`);
  t.equal(shadowSummary(switches.shadowNoUpstream!), 'shadow off; with one upstream, there is none to copy to');
  t.equal(shadowSummary({ ...switches.shadowOn!, counts: { match: 0, mismatch: 0, error: 0, dropped: 0 }, matchRate: null }).split('\n')[1], 'compared 0: 0 differ; 0 failed, 0 dropped, 0 in flight', 'no match rate before any comparison');
});

t.test("the README's examples are what the CLI prints for these answers", async (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const example = (command: string): string | undefined => new RegExp(`\\n\\$ ${command}\\n([^\`]*?)\\n\`\`\`\\n`).exec(readme)?.[1];
  t.equal(example('drum-splitter rollout status'), status('running').join('\n'));
  t.equal(example('drum-splitter shadow status'), shadowSummary(switches.shadowOn!));
});
