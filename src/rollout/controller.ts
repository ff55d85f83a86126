import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Timers } from '../common/timers.js';
import { applyWeights, percentages } from '../weights/shares.js';
import type { WeightStore } from '../weights/store.js';
import { judge, type CheckResult, type Verdict } from './checks.js';
import { cannotRun, gatherCustomChecks } from './custom.js';
import type { EvidenceSource } from './evidence.js';
import { EMPTY_LEDGER, ledgerDecided, ledgerReset, ledgerTicked, ledgerTotals, summarize, type Ledger, type UpstreamSummary } from './ledger.js';
import { ACTIVE, NotNow, onCheck, onCommand, onManualChange, onStartup, PHASES, type Command, type DecisionAction, type RolloutState, type Transition } from './machine.js';
import type { Notifier } from './notify.js';
import { describePlan, formatDuration, type RolloutPlan } from './plan.js';
import { buildReport, type RolloutReport } from './report.js';

/** The weight store's source for the rollout's own changes. */
export const ROLLOUT_SOURCE = 'rollout';
/** The last this many decisions are kept (and saved). */
export const DECISIONS_LIMIT = 1000;

/** One decision that changed something, with the numbers it was made on. */
export interface Decision {
  readonly at: string;
  readonly action: DecisionAction;
  readonly text: string;
  /** The canary's percent before and after. */
  readonly from: number;
  readonly to: number;
  readonly phase: RolloutState['phase'];
  readonly step: number;
  readonly who: string;
  readonly reason: string | null;
  readonly checks?: readonly CheckResult[];
}

/** What a restart resumes from (kept next to the --state file). */
export interface SavedRollout {
  readonly format: 1;
  readonly state: RolloutState;
  readonly decisions: readonly Decision[];
  /** What each step saw, for the report; absent from files written before it. */
  readonly ledger?: Ledger;
}

/** The hourly summary notice's numbers (the notifier event's `summary`). */
export interface RolloutSummary {
  readonly step: number;
  readonly weight: number;
  readonly heldMs: number;
  readonly upstreams: Readonly<Record<string, UpstreamSummary>>;
}

export interface RolloutView {
  /** The plan's settings, its steps as one line. */
  readonly plan: Pick<RolloutPlan, 'canary' | 'baseline' | 'intervalMs' | 'windowMs' | 'minRequests' | 'settle' | 'confirm' | 'minP99DifferenceMs'> & { readonly steps: string };
  /** Checks still skipped after the last weight change (settle). */
  readonly settling: number;
  /** Failing windows in a row so far, toward the plan's confirm. */
  readonly strikes: number;
  readonly phase: RolloutState['phase'];
  readonly step: { readonly index: number; readonly of: number; readonly weight: number; readonly holdMs: number; readonly heldMs: number; readonly approve: boolean } | null;
  readonly weight: number;
  readonly weights: Record<string, number>;
  readonly note: string | null;
  readonly lastVerdict: (Verdict & { readonly at: string }) | null;
  /** When the next tick gathers its evidence (one under way: when it began) (ISO); null when nothing is judged, or the loop is stopped. */
  readonly nextCheckAt: string | null;
  /** While reducing: when the reduced canary is judged again (ISO). */
  readonly reduceAt: string | null;
  /** The fleet controller that runs this replica's rollout, while its claim holds; this process's own cannot start. */
  readonly controller: { readonly controller: string; readonly who: string; readonly until: string } | null;
}

/** A fleet controller's claim on this process (PUT /rollout/controller): one judge per fleet. */
export interface Claim {
  /** Where the controller is (its admin URL, or a name), shown to people. */
  readonly controller: string;
  /** The token's name that made the claim. */
  readonly who: string;
  readonly ttlMs: number;
}

export interface ControllerDeps {
  readonly plan: RolloutPlan;
  readonly store: WeightStore;
  readonly upstreams: readonly string[];
  /** This process's exchanges and polls (LocalEvidence), or the fleet's from Prometheus. */
  readonly evidence: EvidenceSource;
  readonly registry: Registry;
  readonly notifier: Notifier;
  readonly log: Logger;
  readonly now: () => number;
  /** The check loop's timer. */
  readonly timers: Timers;
  /** Run at the end of every tick, idle or not, before the next can start: the fleet brings its replicas to the weights. */
  readonly afterTick?: (() => Promise<void>) | undefined;
  readonly saved?: SavedRollout | undefined;
  readonly save?: (saved: SavedRollout) => void;
  /** A rollout ended (complete, rolled back, aborted): its report, to be written. */
  readonly onEnd?: (report: RolloutReport) => void;
}

/**
 * The canary controller. Its check loop runs one tick at a time, every interval: gather the
 * evidence (at once from this process's window, or Prometheus's answer), judge it (checks.ts),
 * feed the verdict to the state machine (machine.ts), carry out the transition (#apply: the
 * weight through the store, a decision record, a log line, metrics, webhooks, the saved state),
 * then afterTick. Commands come from the admin API; a weight change by anyone else pauses it.
 */
export class RolloutController {
  #state: RolloutState;
  readonly #decisions: Decision[];
  #verdict: (Verdict & { at: string }) | null = null;
  #claim: { controller: string; who: string; until: number } | undefined;
  /** When the loop started: ticks are due every interval from then. */
  #loopStart = 0;
  /** The next tick's timer and when it fires; undefined while none is set. */
  #next: { timer: unknown; at: number } | undefined;
  /** The tick under way and when it began. */
  #running: { at: number; done: Promise<Verdict | undefined> } | undefined;
  /** Aborted by stop(): a gather still waiting gives up, no tick starts after. */
  readonly #stopped = new AbortController();
  readonly #unsubscribe: (() => void)[] = [];
  readonly #metrics: { step: Gauge; state: Gauge<'state'>; check: Gauge<'check'>; decisions: Counter<'action'> };
  #ledger: Ledger;
  /** While a rollout is active: when the next summary notice is due, and each upstream's totals at the last. */
  #summary: { due: number; totals: Record<string, { requests: number; errors: number }> } | undefined;

  constructor(private readonly deps: ControllerDeps) {
    this.#state = onStartup(deps.saved?.state, this.#canaryPercent(), deps.now());
    this.#decisions = [...(deps.saved?.decisions ?? [])];
    // The evidence's window does not survive a restart: counting starts again from what it holds next.
    this.#ledger = ledgerReset(deps.saved?.ledger ?? EMPTY_LEDGER, deps.now());
    const registers = [deps.registry];
    const self = this;
    this.#metrics = {
      step: new Gauge({ name: 'drum_rollout_step_percent', help: "The canary's percent as the rollout set it.", registers, collect() { this.set(self.#state.weight); } }),
      state: new Gauge({
        name: 'drum_rollout_state',
        help: 'The rollout phase: 1 for the current one.',
        labelNames: ['state'],
        registers,
        collect() {
          for (const phase of PHASES) this.set({ state: phase }, phase === self.#state.phase ? 1 : 0);
        },
      }),
      check: new Gauge({ name: 'drum_canary_check', help: "Each rollout check's last measured value (rates and increases as fractions, ping in seconds).", labelNames: ['check'], registers }),
      decisions: new Counter({ name: 'drum_rollout_decisions_total', help: 'Rollout decisions that changed something, by action.', labelNames: ['action'], registers }),
    };
  }

  /** Starts listening and the check loop; a restored active rollout carries on where it was. */
  start(): void {
    const { deps } = this;
    deps.evidence.start?.(() => ACTIVE.has(this.#state.phase));
    this.#unsubscribe.push(
      deps.store.subscribe('rollout', (snapshot) => {
        const last = snapshot.history.at(-1)!;
        if (last.source !== ROLLOUT_SOURCE) this.#apply(onManualChange(this.#state, this.#canaryPercent(), last.who), last.who, last.reason);
      }),
    );
    this.#loopStart = deps.now();
    this.#arm(this.#loopStart);
    const refused = cannotRun(deps.plan.checks, deps.evidence.query);
    if (refused !== undefined) deps.log.warn({ checks: deps.plan.checks.map((c) => c.name) }, `rollout: ${refused}; this process will not start it`);
    if (this.#state.phase === 'unmanaged') {
      // Where the rollout is kept (--state), its file was removed or never written while the canary took traffic: a warning.
      // Without, this is how static weights start.
      deps.log[deps.save === undefined ? 'info' : 'warn'](
        { canary: deps.plan.canary, weight: this.#state.weight },
        `rollout: ${deps.plan.canary} is at ${this.#state.weight}% with no saved rollout state: unmanaged, nothing watches it; start the rollout, or set its weight`,
      );
    }
    if (ACTIVE.has(this.#state.phase)) {
      deps.log.info({ phase: this.#state.phase, weight: this.#state.weight, step: this.#state.step, heldMs: this.#state.heldMs }, 'rollout resumed from the saved state');
      // The weights may have moved while we were down; the person's change wins, as live.
      this.#apply(onManualChange(this.#state, this.#canaryPercent(), 'a change while stopped'), 'restart', null);
    }
  }

  /** Stops the loop: no tick starts after; resolves once the tick under way has ended (a gather still waiting gives up, and decides nothing). */
  async stop(): Promise<void> {
    this.#stopped.abort();
    if (this.#next !== undefined) this.deps.timers.clearTimeout(this.#next.timer);
    this.#next = undefined;
    this.deps.evidence.stop?.();
    for (const off of this.#unsubscribe.splice(0)) off();
    await this.#running?.done;
  }

  /**
   * Sets the timer for the next tick: the first interval boundary after now, and after `after`
   * (the boundary just due: a timer may fire a millisecond before the clock reads it). A boundary
   * passed while a tick ran is skipped.
   */
  #arm(after: number): void {
    if (this.#stopped.signal.aborted) return;
    const { now, plan, timers } = this.deps;
    const from = Math.max(now(), after);
    const at = this.#loopStart + (Math.floor((from - this.#loopStart) / plan.intervalMs) + 1) * plan.intervalMs;
    const fire = (): void => {
      // Node's timers may fire a millisecond before the clock reads their time: the tick waits for
      // it, so that it never begins before the nextCheckAt it was announced at.
      const early = at - now();
      if (early > 0) {
        this.#next = { timer: timers.setTimeout(fire, early), at };
        return;
      }
      this.#next = undefined;
      void this.tick().finally(() => this.#arm(at));
    };
    this.#next = { timer: timers.setTimeout(fire, at - now()), at };
  }

  /**
   * One tick now (the loop's timer calls it): gather → judge → transition → apply, then
   * afterTick. Skipped (undefined) while another runs, or once stopped. The verdict; undefined
   * when nothing was judged: idle, or the rollout changed while the evidence was gathered.
   */
  async tick(): Promise<Verdict | undefined> {
    if (this.#running !== undefined || this.#stopped.signal.aborted) return undefined;
    const at = this.deps.now();
    const done = this.#tick(at).finally(() => (this.#running = undefined));
    this.#running = { at, done };
    return done;
  }

  async #tick(at: number): Promise<Verdict | undefined> {
    let verdict: Verdict | undefined;
    try {
      verdict = await this.#check(at);
    } catch (err) {
      // E.g. a step the weights cannot take (other canaries' shares leave no room): nothing changed; said every interval until fixed.
      this.deps.log.error({ err: (err as Error).message, phase: this.#state.phase, step: this.#state.step }, 'rollout: the check could not be carried out; holding');
    }
    this.#summaryDue(at);
    if (!this.#stopped.signal.aborted) {
      await this.deps.afterTick?.().catch((err: unknown) => this.deps.log.error({ err: (err as Error).message }, 'rollout: the work after the check failed'));
    }
    return verdict;
  }

  /** Gathered idle too: the fleet's RSS history (the leak check's last hour) fills before a rollout starts. */
  async #check(at: number): Promise<Verdict | undefined> {
    const { plan } = this.deps;
    const before = this.#state;
    // The plan's own checks only while a rollout runs: nobody's webhook is asked about an idle canary.
    const [evidence, custom] = await Promise.all([this.deps.evidence.gather(at, this.#stopped.signal), ACTIVE.has(before.phase) ? this.#custom(at) : []]);
    // Stopped meanwhile, or the rollout moved (a command, a person's change): these numbers are
    // for a state that is gone, and a new step judges only its own traffic. The next tick gathers again.
    if (this.#stopped.signal.aborted || this.#state !== before || !ACTIVE.has(before.phase)) return undefined;
    const step = plan.steps[Math.max(0, before.step)]!;
    const judged = judge(evidence, step, plan.rollback, { minRequests: plan.minRequests, minP99Difference: plan.minP99DifferenceMs / 1000 }, custom);
    const { settling } = before;
    // Settling, only an immediate trigger counts; the rest is shown as what it is.
    const verdict: Verdict =
      settling > 0 && judged.action !== 'rollback'
        ? { ...judged, action: 'inconclusive', text: `settling after a weight change: only the immediate triggers act (${settling} check${settling === 1 ? '' : 's'} left)` }
        : judged;
    this.#verdict = { ...verdict, at: new Date(at).toISOString() };
    for (const c of verdict.checks) {
      if (c.value !== null && Number.isFinite(c.value)) this.#metrics.check.set({ check: c.check }, c.value);
    }
    this.#ledger = ledgerTicked(this.#ledger, at, evidence, verdict, plan, plan.windowMs);
    this.#apply(onCheck(plan, before, verdict, at, evidence.canaryIdentity), 'rollout', null, verdict.checks);
    return verdict;
  }

  /** The plan's own checks for the tick at `at` (none: at once). */
  async #custom(at: number): Promise<CheckResult[]> {
    const { plan } = this.deps;
    if (plan.checks.length === 0) return [];
    const s = this.#state;
    const context = { canary: plan.canary, baseline: plan.baseline, phase: s.phase, step: s.step, weight: s.weight, heldMs: s.heldMs, at: new Date(at).toISOString(), windowMs: plan.windowMs };
    const { evidence } = this.deps;
    return gatherCustomChecks(plan.checks, context, at, this.#stopped.signal, { query: evidence.query?.bind(evidence) });
  }

  /** The summary report as of now (GET /rollout/report). */
  report(): RolloutReport {
    const { plan, now } = this.deps;
    return buildReport(this.#ledger, { canary: plan.canary, baseline: plan.baseline, phase: this.#state.phase, note: this.#state.note, weight: this.#state.weight }, now());
  }

  /** The summary notice's clock: it runs while a rollout is active, from when it became so. */
  #summaries(): void {
    const active = ACTIVE.has(this.#state.phase);
    if (active === (this.#summary !== undefined)) return;
    this.#summary = active ? { due: this.deps.now() + this.deps.plan.summaryIntervalMs, totals: ledgerTotals(this.#ledger) } : undefined;
  }

  /**
   * At each tick of the loop (idle or not): the summary notice, once it is due. On the loop's
   * timer, so it goes out at the first tick from its time: within an interval of it.
   */
  #summaryDue(at: number): void {
    const summary = this.#summary;
    if (summary === undefined || at < summary.due || this.#stopped.signal.aborted) return;
    this.#sendSummary(summary.totals);
    this.#summary = { due: summary.due + Math.ceil((at + 1 - summary.due) / this.deps.plan.summaryIntervalMs) * this.deps.plan.summaryIntervalMs, totals: ledgerTotals(this.#ledger) };
  }

  /** The summary notice: each upstream's requests and error rate since the last, its latest p50, p99 and RSS; the step and time held. */
  #sendSummary(before: Record<string, { requests: number; errors: number }>): void {
    const { plan, now } = this.deps;
    const s = this.#state;
    const upstreams = summarize(this.#ledger, before, [plan.canary, plan.baseline]);
    const summary: RolloutSummary = { step: s.step, weight: s.weight, heldMs: s.heldMs, upstreams };
    const text = `drum-splitter rollout (${plan.canary}): ${s.phase.replace('_', ' ')} at step ${s.step + 1} of ${plan.steps.length} (${s.weight}%), held ${s.heldMs < 1000 ? '0s' : formatDuration(Math.round(s.heldMs / 1000) * 1000)}; ${Object.entries(upstreams).map(([name, u]) => describeUpstream(name, u)).join('; ')}`;
    this.deps.notifier.send({ action: 'summary', text, from: s.weight, to: s.weight, at: new Date(now()).toISOString(), phase: s.phase, summary });
  }

  /** A person's command; NotNow (a 409) when it does not fit the state. */
  command(command: Command, who: string, reason: string | null): RolloutView {
    const claim = this.#claimNow();
    if (command === 'start' && claim !== undefined) {
      throw new NotNow(`this fleet's rollout is run by the controller at ${claim.controller} (${claim.who}); start it there`);
    }
    const refused = command === 'start' ? cannotRun(this.deps.plan.checks, this.deps.evidence.query) : undefined;
    if (refused !== undefined) throw new NotNow(refused);
    const transition = onCommand(this.deps.plan, this.#state, command, this.deps.now());
    if (command === 'start') this.deps.evidence.reset();
    this.#apply(transition, who, reason);
    return this.view();
  }

  /**
   * A fleet controller takes over (or renews its hold): until the claim lapses, this process's own
   * rollout cannot start. Refused (NotNow) while that rollout is active: two judges would fight.
   */
  claim(claim: Claim): RolloutView {
    if (ACTIVE.has(this.#state.phase)) {
      throw new NotNow(`an in-proxy rollout is ${this.#state.phase} here; abort it before a fleet controller takes over`);
    }
    this.#claim = { controller: claim.controller, who: claim.who, until: this.deps.now() + claim.ttlMs };
    return this.view();
  }

  #claimNow(): { controller: string; who: string; until: number } | undefined {
    return this.#claim !== undefined && this.#claim.until > this.deps.now() ? this.#claim : undefined;
  }

  view(): RolloutView {
    const { plan } = this.deps;
    const s = this.#state;
    const step = plan.steps[s.step];
    const claim = this.#claimNow();
    const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
    return {
      plan: {
        canary: plan.canary,
        baseline: plan.baseline,
        steps: describePlan(plan),
        intervalMs: plan.intervalMs,
        windowMs: plan.windowMs,
        minRequests: plan.minRequests,
        settle: plan.settle,
        confirm: plan.confirm,
        minP99DifferenceMs: plan.minP99DifferenceMs,
      },
      settling: ACTIVE.has(s.phase) ? s.settling : 0,
      strikes: s.strikes,
      phase: s.phase,
      step: step === undefined ? null : { index: s.step, of: plan.steps.length, weight: step.weight, holdMs: step.holdMs, heldMs: s.heldMs, approve: step.approve },
      weight: s.weight,
      weights: this.deps.store.view().weights,
      note: s.note,
      lastVerdict: this.#verdict,
      // A tick under way (waiting for Prometheus, say) is the next check: it began then.
      nextCheckAt: ACTIVE.has(s.phase) ? iso(this.#running?.at ?? this.#next?.at ?? null) : null,
      reduceAt: iso(s.reduceAt),
      controller: claim === undefined ? null : { controller: claim.controller, who: claim.who, until: iso(claim.until)! },
    };
  }

  get decisions(): readonly Decision[] {
    return this.#decisions;
  }

  get state(): RolloutState {
    return this.#state;
  }

  #canaryPercent(): number {
    return percentages(this.deps.upstreams, this.deps.store.state.shares)[this.deps.plan.canary]!;
  }

  /** Carries out a transition: the weight, then the record, log, metrics, webhooks and saved state. */
  #apply(t: Transition, who: string, reason: string | null, checks?: readonly CheckResult[]): void {
    const from = this.#state.weight;
    const { store, upstreams, plan, log } = this.deps;
    if (t.weight !== undefined && t.weight !== this.#canaryPercent()) {
      const shares = applyWeights(upstreams, store.state.shares, { [plan.canary]: t.weight }, 'rollout');
      // Set before the store tells its subscribers, so our own change is not taken for a person's.
      this.#state = t.state;
      store.change(shares, { source: ROLLOUT_SOURCE, who: who === 'rollout' ? 'rollout' : `rollout (${who})`, reason: t.text });
      this.deps.evidence.reset();
    } else if (t.fresh !== undefined) {
      this.deps.evidence.reset(t.fresh);
      if (t.fresh === 'all') this.#ledger = ledgerReset(this.#ledger, this.deps.now());
    }
    this.#state = t.state;
    if (t.action !== undefined) {
      const decision: Decision = {
        at: new Date(this.deps.now()).toISOString(),
        action: t.action,
        text: t.text,
        from,
        to: t.state.weight,
        phase: t.state.phase,
        step: t.state.step,
        who,
        reason,
        ...(checks === undefined ? {} : { checks }),
      };
      this.#decisions.push(decision);
      if (this.#decisions.length > DECISIONS_LIMIT) this.#decisions.splice(0, this.#decisions.length - DECISIONS_LIMIT);
      this.#metrics.decisions.inc({ action: t.action });
      const level = t.action === 'rollback' || t.action === 'reduce' ? 'warn' : 'info';
      log[level]({ action: t.action, from, to: t.state.weight, phase: t.state.phase, who, reason }, `rollout: ${t.text}`);
      this.deps.notifier.send({ action: t.action, text: `drum-splitter rollout (${plan.canary}): ${t.text}`, from, to: t.state.weight, at: decision.at, phase: t.state.phase, who, reason });
      const ended = this.#ledger.endedAt;
      this.#ledger = ledgerDecided(this.#ledger, decision, ACTIVE.has(t.state.phase), this.deps.now());
      if (ended === null && this.#ledger.endedAt !== null) this.deps.onEnd?.(this.report());
    }
    this.#summaries();
    this.deps.save?.({ format: 1, state: this.#state, decisions: this.#decisions, ledger: this.#ledger });
  }
}

/** "fastapi 1,204 requests, 0.1% errors, p50 12.0 ms, p99 45.0 ms, RSS 300 MB". */
function describeUpstream(name: string, u: UpstreamSummary): string {
  const ms = (x: number | null): string => (x === null ? 'unknown' : `${(x * 1000).toFixed(1)} ms`);
  const errors = u.errorRate === null ? 'no errors measured' : `${(u.errorRate * 100).toFixed(2).replace(/\.?0+$/, '')}% errors`;
  return `${name} ${u.requests.toLocaleString('en-US')} requests, ${errors}, p50 ${ms(u.p50)}, p99 ${ms(u.p99)}, RSS ${u.rss === null ? 'unknown' : `${Math.round(u.rss / 2 ** 20)} MB`}`;
}

export { NotNow };
