// The verdict bench's corpus: scenarios whose truth is known (healthy or faulty, and which fault),
// each with the traffic and rollout plan it runs under. Data and pure helpers only; the runner is
// verdicts.ts.
import type { Faults } from '../src/cli/standin.js';

/** Faults the bench's stand-in adds to createStandin's (errorRate, extraMemoryMb). */
export interface BenchFaults {
  /** Every service time drawn is multiplied by this: 1.3 makes every quantile, p99 included, 30% longer. */
  latencyScale: number;
  /** Share of predictions answered 200 with a wrong value (each prediction + 1). */
  wrongRate: number;
  /** /ping never answers (DRUM's deadlock sign); predictions still do. */
  pingDead: boolean;
  /** /stats/ reports container_max_used at container_limit. */
  oom: boolean;
}

export type StandinFaults = Partial<Pick<Faults, 'errorRate' | 'extraMemoryMb'> & BenchFaults>;

/** What verdicts-standin.js is started with (its one argument, as JSON). */
export interface StandinSpec {
  readonly name: string;
  readonly port: number;
  readonly controlPort: number;
  /** Serve at once; false for a fresh canary that waits for POST /listen (the cold-canary swap). */
  readonly listen: boolean;
  readonly latency: Latency;
  readonly faults: StandinFaults;
}

/** A model's service time: lognormal, given by its median and p99. */
export interface Latency { readonly medianMs: number; readonly p99Ms: number }

/**
 * The service time of both stand-ins: a lognormal fitted to the gunicorn stand-in the issue
 * measured (p50 4.0 ms, p99 18.7 ms over 30 s), so the baseline's p99 is known by construction.
 */
export const MODEL_LATENCY: Latency = { medianMs: 4, p99Ms: 18.7 };

/** z of the standard normal's 99th percentile. */
const Z99 = 2.3263478740408408;
/** The σ of a lognormal with this median and p99 (μ is ln(median)). */
export const lognormalSigma = (medianMs: number, p99Ms: number): number => Math.log(p99Ms / medianMs) / Z99;

export interface PlanStep {
  readonly weight: number;
  readonly holdS: number;
  readonly maxErrorRate: number;
  readonly maxP99Increase: number;
  readonly maxMemoryIncrease: number;
}

export interface BenchPlan {
  /** Predictions a second, in all, from the bench's client addresses. */
  readonly rate: number;
  readonly minRequests: number;
  readonly steps: readonly PlanStep[];
}

/** Every plan checks each second over the last 3 s. */
export const INTERVAL_MS = 1000;
export const WINDOW_MS = 3000;
/** /ping and /stats/ are read twice an interval. */
export const POLL_INTERVAL = '500ms';
/** Silence before the ping trigger: the shortest that means anything, as a failed probe takes the proxy's 2 s probe timeout. */
export const PING_TIMEOUT_MS = 2000;
export const REDUCTION_WAIT = '2s';
/** The seed's rollback thresholds (plan.ts DEFAULT_ROLLBACK), only the times made short. */
export const ROLLBACK = { maxErrorRate: 0.01, maxP99Increase: 0.5, maxMemoryIncrease: 0.5, maxRssGrowthPerHour: 0.1 } as const;

// The seed's step criteria (CANARY_DEPLOYMENT.md, as plan.ts has them): 1%, 5%, and 10% and over.
const AT_1 = { maxErrorRate: 0.001, maxP99Increase: 0.3, maxMemoryIncrease: 0.5 };
const AT_5 = { maxErrorRate: 0.001, maxP99Increase: 0.25, maxMemoryIncrease: 0.4 };
const AT_10 = { maxErrorRate: 0.001, maxP99Increase: 0.2, maxMemoryIncrease: 0.3 };

/**
 * Healthy runs: 5% then 25%, at 200 predictions a second (the runs had ~700; three runs
 * at once, each proxy and stand-in new and not yet warmed up, take about as much CPU as this
 * shared 2-core machine can give); minRequests is about what one interval brings the canary at 5%.
 */
const STEPS: BenchPlan = { rate: 200, minRequests: 8, steps: [{ weight: 5, holdS: 3, ...AT_5 }, { weight: 25, holdS: 3, ...AT_10 }] };
/**
 * Faulty runs: the canary is faulty as deployed, from its first step, at 25% (50 canary
 * predictions an interval): a fault must show in a few intervals' sample for "detected within
 * 2 intervals" to be a question about the judge, not about the sample (at 5%, 10 an interval,
 * one 5xx is already 10%).
 */
const FAULTY: BenchPlan = { rate: 200, minRequests: 40, steps: [{ weight: 25, holdS: 5, ...AT_10 }, { weight: 50, holdS: 5, ...AT_10 }] };

export type Expected = 'hold' | 'reduce' | 'rollback';

export interface Scenario {
  readonly name: string;
  readonly truth: 'healthy' | 'faulty';
  /** One line for the table. */
  readonly what: string;
  readonly plan: BenchPlan;
  /** Each stand-in's behaviour from its start. */
  readonly baseline: StandinFaults;
  readonly canary: StandinFaults;
  /** Set on the canary the moment the rollout starts (faulty scenarios). */
  readonly fault?: StandinFaults;
  /** The least the controller must do to have detected the fault (a step's miss holds; a gradual trigger reduces; an immediate one rolls back). */
  readonly expect?: Expected;
  /** How fast the gate wants it: immediate triggers within 2 intervals, gradual ones within settle + confirm + 1. */
  readonly trigger?: 'immediate' | 'gradual';
  /** When the fault can first be seen after it starts (the ping trigger needs pingTimeout of silence). */
  readonly detectableAfterMs?: number;
  /** The canary is replaced by a fresh process when it is promoted. */
  readonly coldCanary?: boolean;
  /** CPU burners on the machine while it runs; runs alone. */
  readonly noisy?: boolean;
  /** --shadow-sample: the fault is found by the shadow, not (yet) by the rollout. */
  readonly shadowSample?: number;
  /** Why it cannot be run here. */
  readonly notMeasurable?: string;
}

export const SCENARIOS: readonly Scenario[] = [
  { name: 'identical', truth: 'healthy', what: 'the same server on both sides', plan: STEPS, baseline: {}, canary: {} },
  {
    name: 'within-thresholds', truth: 'healthy', what: 'canary +10% service time; both 0.3% errors',
    plan: STEPS, baseline: { errorRate: 0.003 }, canary: { errorRate: 0.003, latencyScale: 1.1 },
  },
  { name: 'cold-canary', truth: 'healthy', what: 'identical; a fresh canary process at the promotion to 25%', plan: STEPS, baseline: {}, canary: {}, coldCanary: true },
  { name: 'noisy-neighbour', truth: 'healthy', what: 'identical; CPU burners on every core, on and off', plan: STEPS, baseline: {}, canary: {}, noisy: true },
  {
    name: 'low-traffic', truth: 'healthy', what: 'identical; 6 predictions a second, 25% then 50%',
    plan: { rate: 6, minRequests: 4, steps: [{ weight: 25, holdS: 3, ...AT_10 }, { weight: 50, holdS: 3, ...AT_10 }] }, baseline: {}, canary: {},
  },
  { name: 'canary-1pct', truth: 'healthy', what: 'identical; the canary at 1%', plan: { rate: 200, minRequests: 3, steps: [{ weight: 1, holdS: 7, ...AT_1 }] }, baseline: {}, canary: {} },
  { name: 'errors-0.5pct', truth: 'faulty', what: '0.5% 5xx (step criterion 0.1%)', plan: FAULTY, baseline: {}, canary: {}, fault: { errorRate: 0.005 }, expect: 'hold', trigger: 'gradual' },
  { name: 'errors-2pct', truth: 'faulty', what: '2% 5xx (rollback 1%)', plan: FAULTY, baseline: {}, canary: {}, fault: { errorRate: 0.02 }, expect: 'rollback', trigger: 'immediate' },
  { name: 'errors-5pct', truth: 'faulty', what: '5% 5xx (rollback 1%)', plan: FAULTY, baseline: {}, canary: {}, fault: { errorRate: 0.05 }, expect: 'rollback', trigger: 'immediate' },
  { name: 'p99+30pct', truth: 'faulty', what: 'service time ×1.3 (step criterion +20%)', plan: FAULTY, baseline: {}, canary: {}, fault: { latencyScale: 1.3 }, expect: 'hold', trigger: 'gradual' },
  { name: 'p99+60pct', truth: 'faulty', what: 'service time ×1.6 (rollback +50%)', plan: FAULTY, baseline: {}, canary: {}, fault: { latencyScale: 1.6 }, expect: 'reduce', trigger: 'gradual' },
  { name: 'p99+100pct', truth: 'faulty', what: 'service time ×2 (rollback +50%)', plan: FAULTY, baseline: {}, canary: {}, fault: { latencyScale: 2 }, expect: 'reduce', trigger: 'gradual' },
  {
    name: 'rss-growth', truth: 'faulty', what: 'drum_rss growing 15%/h (rollback 10%/h)', plan: FAULTY, baseline: {}, canary: {}, expect: 'rollback', trigger: 'immediate',
    notMeasurable: "the leak check fits RSS only once it has 15 minutes of /stats/ polls (RssHistory, src/rollout/evidence.ts: HOUR / 4, not configurable), so no accelerated growth can reach it in a run of seconds",
  },
  { name: 'oom', truth: 'faulty', what: '/stats/ container_max_used = container_limit', plan: FAULTY, baseline: {}, canary: {}, fault: { oom: true }, expect: 'rollback', trigger: 'immediate' },
  {
    name: 'ping-dead', truth: 'faulty', what: '/ping stops answering (predictions still do)', plan: FAULTY, baseline: {}, canary: {}, fault: { pingDead: true },
    expect: 'rollback', trigger: 'immediate', detectableAfterMs: PING_TIMEOUT_MS,
  },
  { name: 'wrong-1pct', truth: 'faulty', what: '1% of predictions wrong; shadow copies 50% of the baseline\'s', plan: FAULTY, baseline: {}, canary: {}, fault: { wrongRate: 0.01 }, shadowSample: 0.5 },
];

/** Judge settings the lead's rollout adds (settle, confirm, minP99Difference): passed through when the bench's environment sets them. */
export interface JudgeKnobs { readonly settle?: number; readonly confirm?: number; readonly minP99Difference?: string }

/** The drum-splitter config file for one run (JSON, which YAML reads). */
export function configFile(s: Scenario, baselineUrl: string, canaryUrl: string, knobs: JudgeKnobs): Record<string, unknown> {
  const fmt = (ms: number): string => `${ms}ms`;
  return {
    upstreams: { flask: baselineUrl, fastapi: canaryUrl },
    weights: { fastapi: 0 },
    logLevel: 'warn',
    pollInterval: POLL_INTERVAL,
    ...(s.shadowSample === undefined ? {} : { shadowSample: s.shadowSample }),
    rollout: {
      interval: fmt(INTERVAL_MS),
      window: fmt(WINDOW_MS),
      minRequests: s.plan.minRequests,
      ...knobs,
      steps: s.plan.steps.map((p) => ({ weight: p.weight, hold: `${p.holdS}s`, maxErrorRate: p.maxErrorRate, maxP99Increase: p.maxP99Increase, maxMemoryIncrease: p.maxMemoryIncrease })),
      rollback: { ...ROLLBACK, pingTimeout: fmt(PING_TIMEOUT_MS), reductionWait: REDUCTION_WAIT },
    },
  };
}
