import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Timers } from '../common/timers.js';
import { applyWeights, percentages } from '../weights/shares.js';
import type { WeightStore } from '../weights/store.js';
import { judge, type CheckResult, type Evidence, type ShadowEvidence, type Verdict } from './checks.js';
import { gatherCustomChecks } from './custom-calls.js';
import { cannotRun } from './custom.js';
import type { EvidenceSource } from './evidence.js';
import { callHook, describeAnswer, gateHooks, type HookAnswer } from './hooks.js';
import { EMPTY_LEDGER, ledgerDecided, ledgerReset, ledgerTicked, ledgerTotals, summarize, type Ledger, type UpstreamSummary } from './ledger.js';
import { ACTIVE, NotNow, onCheck, onCommand, onManualChange, onReplayStart, onStartup, PHASES, type Command, type CommandOptions, type DecisionAction, type Gate, type RolloutState, type Transition } from './machine.js';
import type { Notifier } from './notify.js';
import { describePlan, formatDuration, type HookEvent, type RolloutPlan } from './plan.js';
import { buildReport, type RolloutReport } from './report.js';
import { replayStandIn, type ReplayStandIn } from './replay-report.js';
import type { ShadowSwitch } from './shadow-phase.js';
import { verificationOutcome, type Verification, type VerifyBaseline } from './verify.js';

/** The weight store's source for the rollout's own changes. */
export const ROLLOUT_SOURCE = 'rollout';
/** The phases a rollout ends in: its post-rollout hooks are called on entering one. */
const ENDS: ReadonlySet<RolloutState['phase']> = new Set(['complete', 'rolled_back', 'aborted']);
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
  /** A rollback on a prediction mismatch: the differing request and both answers (bounded), or where to read them. */
  readonly mismatch?: unknown;
  /** A start with a replay report standing in for the shadow phase: its numbers. */
  readonly replay?: ReplayStandIn;
  /** The plan's dryRun: what the rollout would have done; the weights did not move. */
  readonly dryRun?: true;
  /** action hook: the gating hook that did not pass. */
  readonly hook?: HookAnswer;
  /** A verification of the baseline after a rollback: each item of the seed's checklist. */
  readonly verification?: Verification;
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

/** The last tick's verdict, when it came, and (where the evidence counts them) the requests cohort rules took in its window. */
export type LastVerdict = Verdict & { readonly at: string; readonly routed?: Evidence['routed'] };

export interface RolloutView {
  /** The plan's settings, its steps as one line. */
  readonly plan: Pick<RolloutPlan, 'canary' | 'baseline' | 'intervalMs' | 'windowMs' | 'minRequests' | 'settle' | 'confirm' | 'minP99DifferenceMs' | 'dryRun'> & {
    readonly steps: string;
    /** The hooks and checks of one's own by name (their URLs may carry secrets). */
    readonly hooks: readonly { readonly name: string; readonly on: string }[];
    readonly checks: readonly string[];
  };
  /** Checks still skipped after the last weight change (settle). */
  readonly settling: number;
  /** Failing windows in a row so far, toward the plan's confirm. */
  readonly strikes: number;
  readonly phase: RolloutState['phase'];
  readonly step: { readonly index: number; readonly of: number; readonly weight: number; readonly holdMs: number; readonly heldMs: number; readonly approve: boolean } | null;
  readonly weight: number;
  readonly weights: Record<string, number>;
  readonly note: string | null;
  /** With the requests cohort rules took in its window, by upstream, where the evidence counts them. */
  readonly lastVerdict: LastVerdict | null;
  /** When the next tick gathers its evidence (one under way: when it began) (ISO); null when nothing is judged, or the loop is stopped. */
  readonly nextCheckAt: string | null;
  /** While reducing: when the reduced canary is judged again (ISO). */
  readonly reduceAt: string | null;
  /** The fleet controller that runs this replica's rollout, while its claim holds; this process's own cannot start. */
  readonly controller: { readonly controller: string; readonly who: string; readonly until: string } | null;
  /** The baseline's last verification after a rollback (its decision's); null before any. */
  readonly lastVerification: Pick<Decision, 'at' | 'action' | 'text'> & Verification | null;
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
  /** The live shadow, switched on for the shadow phase and back after; undefined where there is none. */
  readonly shadow?: ShadowSwitch | undefined;
  /** Checks the baseline after the canary is brought to 0% from above (rollout/verify.ts); none when absent. */
  readonly verify?: VerifyBaseline | undefined;
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
  #verdict: LastVerdict | null = null;
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
  /** The failing gating hook last said in a decision (its name and outcome): said once until it changes. */
  #hookFailure: string | undefined;
  /** post-rollout and rollback hooks still being called. */
  readonly #told = new Set<Promise<void>>();
  /** Verifications of the baseline under way; stop() waits for them. */
  readonly #verifying = new Set<Promise<void>>();
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
        // A dry run moves no weight: the weights are the people's, and their changes pause nothing.
        if (last.source !== ROLLOUT_SOURCE && !deps.plan.dryRun) this.#apply(onManualChange(this.#state, this.#canaryPercent(), last.who), last.who, last.reason);
      }),
    );
    this.#loopStart = deps.now();
    this.#arm(this.#loopStart);
    // A rollout restored in its shadow phase needs the shadow on again.
    this.#syncShadow();
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
      // The weights may have moved while we were down; the person's change wins, as live (a dry run's are the people's anyway).
      if (!deps.plan.dryRun) this.#apply(onManualChange(this.#state, this.#canaryPercent(), 'a change while stopped'), 'restart', null);
    }
    // A restored active rollout's summaries (a dry run's too, which #apply above does not reach).
    this.#summaries();
  }

  /** Stops the loop: no tick starts after; resolves once the tick under way has ended (a gather still waiting gives up, and decides nothing). */
  async stop(): Promise<void> {
    this.#stopped.abort();
    if (this.#next !== undefined) this.deps.timers.clearTimeout(this.#next.timer);
    this.#next = undefined;
    this.deps.evidence.stop?.();
    for (const off of this.#unsubscribe.splice(0)) off();
    await Promise.all([this.#running?.done, ...this.#verifying]);
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
    const shadowStep = step.shadow !== undefined;
    const judged = judge(shadowStep ? shadowPhaseEvidence(evidence) : evidence, step, plan.rollback, { minRequests: plan.minRequests, minP99Difference: plan.minP99DifferenceMs / 1000, shadowStep }, custom);
    const { settling } = before;
    // Settling, only an immediate trigger counts; the rest is shown as what it is.
    const verdict: Verdict =
      settling > 0 && judged.action !== 'rollback'
        ? { ...judged, action: 'inconclusive', text: `settling after a weight change: only the immediate triggers act (${settling} check${settling === 1 ? '' : 's'} left)` }
        : judged;
    this.#verdict = { ...verdict, at: new Date(at).toISOString(), ...(evidence.routed === undefined ? {} : { routed: evidence.routed }) };
    for (const c of verdict.checks) {
      if (c.value !== null && Number.isFinite(c.value)) this.#metrics.check.set({ check: c.check }, c.value);
    }
    this.#ledger = ledgerTicked(this.#ledger, at, evidence, verdict, plan, plan.windowMs);
    const transition = onCheck(plan, before, verdict, at, evidence.canaryIdentity);
    const gate = this.#gateOf(transition);
    const failed = gate === undefined ? undefined : await this.#ask(gate, transition.state.weight);
    // Moved while the hooks were asked (a command, a person's change): that move stands.
    if (this.#stopped.signal.aborted || this.#state !== before) return verdict;
    if (failed === undefined) this.#apply(transition, 'rollout', null, verdict.checks);
    else this.#holdFor(failed, transition, 'rollout', null, verdict.checks);
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

  /** The plan's hooks a move must pass first (its gate), when it has any for it. */
  #gateOf(t: Transition): Gate | undefined {
    const gate = t.action === undefined ? undefined : t.gate;
    return gate !== undefined && this.deps.plan.hooks.some((h) => (gate.on as readonly HookEvent[]).includes(h.on)) ? gate : undefined;
  }

  /** Asks a gate's hooks: the first that does not answer 2xx in time, or undefined when all do. */
  async #ask(gate: Gate, to: number): Promise<{ answer: HookAnswer; held: RolloutState } | undefined> {
    const answer = await gateHooks(this.deps.plan.hooks, gate.on, this.#payload(gate.step, to));
    if (answer === undefined) {
      this.#hookFailure = undefined;
      return undefined;
    }
    return { answer, held: gate.held };
  }

  /** A gating hook did not pass: the move is not made, the canary stays; said once until the hook's answer changes. */
  #holdFor(failed: { answer: HookAnswer; held: RolloutState }, t: Transition, who: string, reason: string | null, checks?: readonly CheckResult[]): string {
    const { answer, held } = failed;
    const text = `${describeAnswer(answer)}: the move to ${t.state.weight}% is not made, the canary stays at ${held.weight}% (a miss; asked again ${who === 'rollout' ? 'at the next check' : 'when the command is given again'})`;
    const key = `${answer.hook} ${answer.status ?? answer.error}`;
    const said = this.#hookFailure === key;
    this.#hookFailure = key;
    const state = { ...held, note: text };
    this.#apply(said ? { state } : { state, action: 'hook', text }, who, reason, checks, { hook: answer });
    return text;
  }

  /** What a hook is told: the rollout, the step concerned, the weights and the last verdict. */
  #payload(step: number, to: number): Record<string, unknown> {
    const { plan } = this.deps;
    const s = plan.steps[step]!;
    return {
      rollout: { canary: plan.canary, baseline: plan.baseline },
      phase: this.#state.phase,
      dryRun: plan.dryRun,
      step: { index: step, number: step + 1, of: plan.steps.length, weight: s.weight },
      canary: { from: this.#state.weight, to },
      weights: this.deps.store.view().weights,
      lastVerdict: this.#verdict,
    };
  }

  /**
   * A person's command; NotNow (a 409) when it does not fit the state, or when a gating hook
   * does not pass (the move is not made; a decision says why). A start's `replayReport` (a
   * `drum-splitter replay` report's JSON) stands in for the shadow phase: an InputError (a 400)
   * unless it passes.
   */
  async command(command: Command, who: string, reason: string | null, opts: Omit<CommandOptions, 'current'> & { readonly replayReport?: unknown } = {}): Promise<RolloutView> {
    const { replayReport, ...options } = opts;
    const replay = command === 'start' && replayReport !== undefined ? replayStandIn(replayReport) : undefined;
    const claim = this.#claimNow();
    const starts = command === 'start' || command === 'retry';
    if (starts && claim !== undefined) {
      throw new NotNow(`this fleet's rollout is run by the controller at ${claim.controller} (${claim.who}); ${command} it there`);
    }
    const refused = starts ? cannotRun(this.deps.plan.checks, this.deps.evidence.query) : undefined;
    if (refused !== undefined) throw new NotNow(refused);
    const before = this.#state;
    // A dry run lowers nothing: nothing to refuse.
    const given = { ...options, current: this.#canaryPercent(), ...(this.deps.plan.dryRun ? { force: true } : {}) };
    const now = this.deps.now();
    const transition = replay === undefined ? onCommand(this.deps.plan, before, command, now, given) : onReplayStart(this.deps.plan, before, replay, now, given);
    // Without hooks to ask, carried out at once (no await): callers that do not wait see it done.
    const gate = this.#gateOf(transition);
    const failed = gate === undefined ? undefined : await this.#ask(gate, transition.state.weight);
    if (this.#state !== before) throw new NotNow('the rollout changed while its hooks were asked; read it again');
    if (failed !== undefined) throw new NotNow(this.#holdFor(failed, transition, who, reason), { hook: failed.answer });
    if (starts) this.deps.evidence.reset();
    this.#apply(transition, who, reason, undefined, replay === undefined ? undefined : { replay });
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

  /**
   * A fleet controller that stops lets go at once, not at its claim's end. Only its own claim:
   * another controller's is refused (NotNow); none held is nothing to do.
   */
  release(controller: string): RolloutView {
    const claim = this.#claimNow();
    if (claim !== undefined && claim.controller !== controller) {
      throw new NotNow(`this replica is claimed by the controller at ${claim.controller} (${claim.who}), not ${controller}`);
    }
    this.#claim = undefined;
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
        dryRun: plan.dryRun,
        hooks: plan.hooks.map(({ name, on }) => ({ name, on })),
        checks: plan.checks.map((c) => c.name),
      },
      settling: ACTIVE.has(s.phase) ? s.settling : 0,
      strikes: s.strikes,
      phase: s.phase,
      step: step === undefined ? null : { index: s.step, of: plan.steps.length, weight: step.weight, holdMs: step.holdMs, heldMs: s.heldMs, approve: step.approve, ...(step.shadow === undefined ? {} : { shadow: step.shadow }) },
      weight: s.weight,
      weights: this.deps.store.view().weights,
      note: s.note,
      lastVerdict: this.#verdict,
      // A tick under way (waiting for Prometheus, say) is the next check: it began then.
      nextCheckAt: ACTIVE.has(s.phase) ? iso(this.#running?.at ?? this.#next?.at ?? null) : null,
      reduceAt: iso(s.reduceAt),
      controller: claim === undefined ? null : { controller: claim.controller, who: claim.who, until: iso(claim.until)! },
      lastVerification: this.#lastVerification(),
    };
  }

  #lastVerification(): RolloutView['lastVerification'] {
    const d = [...this.#decisions].reverse().find((x) => x.verification !== undefined);
    return d === undefined ? null : { at: d.at, action: d.action, text: d.text, items: d.verification!.items };
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

  /**
   * Carries out a transition: the weight, then the record, log, metrics, webhooks and saved state;
   * at an end, the post-rollout hooks, at a rollback the rollback ones. A dry run moves no weight
   * and says each decision as what it would do.
   */
  #apply(t: Transition, who: string, reason: string | null, checks?: readonly CheckResult[], extra?: Pick<Decision, 'replay' | 'hook' | 'verification'>): void {
    const { store, upstreams, plan, log } = this.deps;
    // A move starts from the live weight: after a rollout ended, people may have set another (a dry run's starts from its own).
    const from = t.weight !== undefined && !plan.dryRun ? this.#canaryPercent() : this.#state.weight;
    const before = this.#state.phase;
    if (t.weight !== undefined && plan.dryRun) {
      // The machine's state moves as if the weight had: the next step is judged on the traffic the canary has.
      this.deps.evidence.reset();
    } else if (t.weight !== undefined && t.weight !== this.#canaryPercent()) {
      const shares = applyWeights(upstreams, store.state.shares, { [plan.canary]: t.weight }, 'rollout');
      // Set before the store tells its subscribers, so our own change is not taken for a person's.
      this.#state = t.state;
      store.change(shares, { source: ROLLOUT_SOURCE, who: who === 'rollout' ? 'rollout' : `rollout (${who})`, reason: t.text });
      this.deps.evidence.reset();
    } else if (t.state.weight !== this.#state.weight) {
      // A person's weight (the rollout pauses): what came before it is another weight's traffic.
      this.deps.evidence.reset();
    } else if (t.fresh !== undefined) {
      this.deps.evidence.reset(t.fresh);
      if (t.fresh === 'all') this.#ledger = ledgerReset(this.#ledger, this.deps.now());
    }
    this.#state = t.state;
    if (t.action !== undefined) {
      const text = plan.dryRun ? `would: ${t.text}` : t.text;
      const decision: Decision = {
        at: new Date(this.deps.now()).toISOString(),
        action: t.action,
        text,
        from,
        to: t.state.weight,
        phase: t.state.phase,
        step: t.state.step,
        who,
        reason,
        ...(checks === undefined ? {} : { checks }),
        ...mismatchOf(t, checks),
        ...extra,
        ...(plan.dryRun ? { dryRun: true as const } : {}),
      };
      this.#decisions.push(decision);
      if (this.#decisions.length > DECISIONS_LIMIT) this.#decisions.splice(0, this.#decisions.length - DECISIONS_LIMIT);
      this.#metrics.decisions.inc({ action: t.action });
      const level = t.action === 'rollback' || t.action === 'reduce' || t.action === 'hook' || t.action === 'verification_failed' ? 'warn' : 'info';
      log[level]({ action: t.action, from, to: t.state.weight, phase: t.state.phase, who, reason, ...(plan.dryRun ? { dryRun: true } : {}) }, `rollout: ${text}`);
      const next = upcoming(plan, t.state);
      this.deps.notifier.send({
        action: t.action, text: `drum-splitter rollout (${plan.canary}): ${text}`, from, to: t.state.weight, at: decision.at, phase: t.state.phase, who, reason,
        ...mismatchOf(t, checks), ...extra, ...(plan.dryRun ? { dryRun: true } : {}), ...(next === undefined ? {} : { next }),
      });
      if (ENDS.has(t.state.phase) && t.state.phase !== before) this.#tell('post-rollout');
      if (t.action === 'rollback' || t.action === 'abort') this.#tell('rollback');
      const ended = this.#ledger.endedAt;
      this.#ledger = ledgerDecided(this.#ledger, decision, ACTIVE.has(t.state.phase), this.deps.now());
      // Written when the rollout ends, and again once the baseline's verification after it is in.
      const verification = t.action === 'verified' || t.action === 'verification_failed';
      if (this.#ledger.endedAt !== null && (ended === null || verification)) this.deps.onEnd?.(this.report());
    }
    this.#summaries();
    this.deps.save?.({ format: 1, state: this.#state, decisions: this.#decisions, ledger: this.#ledger });
    this.#syncShadow();
    // A rollback, an abort, or a person's weights (already in the store when we hear of them): whichever took the canary to 0%, the baseline now takes all.
    // Not a start or resume that lands on the shadow phase's 0%, nor a dry run's would-be rollback.
    const toZero = t.action === 'rollback' || t.action === 'abort' || t.action === 'pause';
    if (toZero && !plan.dryRun && from > 0 && t.state.weight === 0 && this.#canaryPercent() === 0) this.#verifyBaseline();
  }

  /** The live shadow on at the shadow phase's share while the rollout is there (paused too), else back as it was. */
  #syncShadow(): void {
    const step = this.deps.plan.steps[this.#state.step];
    this.deps.shadow?.set(ACTIVE.has(this.#state.phase) && step?.shadow !== undefined ? step.shadow : undefined);
  }

  /** The seed's checks of the baseline after a rollback, then their decision: verified or verification_failed, each item in it. */
  #verifyBaseline(): void {
    const { verify, plan } = this.deps;
    if (verify === undefined) return;
    const run = verify(this.#state.canary, this.#stopped.signal).then(
      (items) => {
        if (this.#stopped.signal.aborted) return;
        const outcome = verificationOutcome(items, `the baseline ${plan.baseline}`);
        this.#apply({ state: this.#state, action: outcome.action, text: outcome.text }, 'rollout', null, undefined, { verification: { items } });
      },
      (err: unknown) => this.deps.log.error({ err: (err as Error).message }, 'rollout: the verification of the baseline could not run'),
    );
    this.#verifying.add(run);
    void run.finally(() => this.#verifying.delete(run));
  }

  /** post-rollout and rollback hooks: told, their answers logged; nothing waits on them. */
  #tell(on: HookEvent): void {
    const hooks = this.deps.plan.hooks.filter((h) => h.on === on);
    if (hooks.length === 0) return;
    const payload = this.#payload(this.#state.step, this.#state.weight);
    for (const hook of hooks) {
      const told = callHook(hook, payload).then((answer) => {
        if (answer.ok) this.deps.log.info({ hook: answer }, `rollout: ${describeAnswer(answer)}`);
        else this.deps.log.warn({ hook: answer }, `rollout: ${describeAnswer(answer)} (it gates nothing)`);
      });
      this.#told.add(told);
      void told.finally(() => this.#told.delete(told));
    }
  }

  /** Resolves once the post-rollout and rollback hooks called so far have answered (or failed). */
  async told(): Promise<void> {
    await Promise.all(this.#told);
  }
}

const NO_PAIRS: ShadowEvidence = { compared: 0, mismatches: 0, baseline: { requests: 0, errors: 0, latencies: [] }, canary: { requests: 0, errors: 0, latencies: [] } };

/**
 * The shadow phase judges the shadow's pairs: both sides answered the same requests, and the
 * canary takes no traffic of its own. No pairs (the shadow off) is too few: the hold does not count.
 */
function shadowPhaseEvidence(e: Evidence): Evidence {
  const shadow = e.shadow ?? NO_PAIRS;
  return { ...e, baseline: shadow.baseline, canary: shadow.canary, shadow };
}

/** A rollback the mismatch check decided: its differing pair, for the decision and the webhook. */
function mismatchOf(t: Transition, checks: readonly CheckResult[] | undefined): { mismatch?: unknown } {
  if (t.action !== 'rollback') return {};
  const check = checks?.find((c) => c.check === 'mismatch' && c.status === 'rollback');
  return check?.mismatch === undefined ? {} : { mismatch: check.mismatch };
}

/**
 * What a running rollout does next if every check passes, sent with each notice so that people
 * hear of a step before it comes (CANARY_DEPLOYMENT.md "Before Each Phase"): the next weight (null:
 * the rollout completes), in how long, and whether a person approves first.
 */
export function upcoming(plan: RolloutPlan, state: RolloutState): { weight: number | null; inMs: number; approve: boolean } | undefined {
  const step = plan.steps[state.step];
  if (state.phase !== 'running' || step === undefined) return undefined;
  return { weight: plan.steps[state.step + 1]?.weight ?? null, inMs: Math.max(0, step.holdMs - state.heldMs), approve: step.approve };
}

/** "fastapi 1,204 requests, 0.1% errors, p50 12.0 ms, p99 45.0 ms, RSS 300 MB". */
function describeUpstream(name: string, u: UpstreamSummary): string {
  const ms = (x: number | null): string => (x === null ? 'unknown' : `${(x * 1000).toFixed(1)} ms`);
  const errors = u.errorRate === null ? 'no errors measured' : `${(u.errorRate * 100).toFixed(2).replace(/\.?0+$/, '')}% errors`;
  return `${name} ${u.requests.toLocaleString('en-US')} requests, ${errors}, p50 ${ms(u.p50)}, p99 ${ms(u.p99)}, RSS ${u.rss === null ? 'unknown' : `${Math.round(u.rss / 2 ** 20)} MB`}`;
}

export { NotNow };
