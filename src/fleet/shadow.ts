import type { Logger } from 'pino';
import type { ShadowSwitch } from '../rollout/shadow-phase.js';
import type { MismatchSample } from '../shadow/shadow.js';
import { callReplica, type CallResult, type FleetOptions } from './replicas.js';

/** A replica's GET /shadow, as far as we read it. */
interface ReplicaShadow {
  readonly enabled: boolean;
  readonly sampleRate: number;
  readonly lastMismatch?: MismatchSample | null;
}

const isShadow = (json: unknown): json is ReplicaShadow =>
  typeof json === 'object' && json !== null && typeof (json as ReplicaShadow).enabled === 'boolean' && typeof (json as ReplicaShadow).sampleRate === 'number';

/** The JSON of a 2xx answer that is a GET /shadow's; undefined otherwise. */
const shadowOf = (answer: CallResult): ReplicaShadow | undefined => ('code' in answer && answer.code >= 200 && answer.code < 300 && isShadow(answer.json) ? answer.json : undefined);

/**
 * The fleet's live shadow for the shadow phase: every replica's (PUT /shadow on its admin API),
 * on at the step's share while the rollout is there, then each put back as it was before. set()
 * says what is wanted (and asks for a reconcile); sync() brings the replicas listed to it, at
 * every reconcile, so a replica that restarted or came later is switched too.
 */
export class FleetShadow implements ShadowSwitch {
  #share: number | undefined;
  /** Each replica's shadow before the phase switched it, until it is put back. */
  readonly #before = new Map<string, { enabled: boolean; sampleRate: number }>();
  /** Replicas whose switch failed, said once until it works. */
  readonly #failing = new Set<string>();

  constructor(
    private readonly opts: Pick<FleetOptions, 'token' | 'timeoutMs'> & { readonly log: Logger; readonly changed: () => void },
  ) {}

  set(share: number | undefined): void {
    if (share === this.#share) return;
    this.#share = share;
    this.opts.changed();
  }

  async sync(urls: readonly string[]): Promise<void> {
    const share = this.#share;
    if (share === undefined) {
      await Promise.all([...this.#before].map(async ([url, before]) => {
        if (await this.#put(url, before, 'the shadow phase is over: back as it was')) this.#before.delete(url);
      }));
      return;
    }
    await Promise.all(urls.map(async (url) => {
      const answer = await callReplica(url, 'GET', '/shadow', undefined, this.opts);
      const now = shadowOf(answer);
      if (now === undefined) return this.#failed(url, answer);
      if (!this.#before.has(url)) this.#before.set(url, { enabled: now.enabled, sampleRate: now.sampleRate });
      if (!now.enabled || now.sampleRate !== share) await this.#put(url, { enabled: true, sampleRate: share }, 'the rollout\'s shadow phase');
    }));
  }

  async #put(url: string, body: { enabled: boolean; sampleRate: number }, reason: string): Promise<boolean> {
    const answer = await callReplica(url, 'PUT', '/shadow', { ...body, reason }, this.opts);
    if (shadowOf(answer) === undefined) {
      this.#failed(url, answer);
      return false;
    }
    this.#failing.delete(url);
    this.opts.log.info({ replica: url, ...body }, `replica ${url}: live shadow switched (${reason})`);
    return true;
  }

  /** A call that did not give the shadow switch: said once a replica until it works. */
  #failed(url: string, answer: CallResult): void {
    const why = 'error' in answer ? answer.error : `${answer.code}: ${answer.text.slice(0, 200)}`;
    if (!this.#failing.has(url)) this.opts.log.warn({ replica: url, err: why }, `replica ${url}: cannot switch its live shadow for the shadow phase`);
    this.#failing.add(url);
  }
}

/**
 * The last differing pair any replica kept (its GET /shadow's lastMismatch), for a mismatch
 * rollback's decision; where to look when none answers with one.
 */
export async function replicaMismatch(urls: readonly string[], opts: Pick<FleetOptions, 'token' | 'timeoutMs'>): Promise<MismatchSample | { readonly where: string }> {
  const answers = await Promise.all(urls.map(async (url) => shadowOf(await callReplica(url, 'GET', '/shadow', undefined, opts))?.lastMismatch ?? undefined));
  const samples = answers.filter((a): a is MismatchSample => a !== undefined).sort((a, b) => b.at.localeCompare(a.at));
  return samples[0] ?? { where: `no replica answered with one: GET /shadow (lastMismatch) on the replicas (${urls.join(', ')}), or their --shadow-log` };
}
