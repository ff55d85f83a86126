import type { Logger } from 'pino';

/** How the controller turns the live shadow on for the shadow phase and back after: serve's own shadow, or every replica's (the fleet). */
export interface ShadowSwitch {
  /** A share: on at that share (the shadow phase); undefined: back to what it was before the phase. */
  set(share: number | undefined): void;
}

/** What the switch needs of a shadow: the admin API's switch (GET/PUT /shadow). */
export interface ShadowLike {
  readonly enabled: boolean;
  readonly sampleRate: number;
  change(patch: { enabled?: boolean; sampleRate?: number }): void;
}

/**
 * This process's shadow for the shadow phase: on at the step's share while the rollout is there,
 * then put back as it was (off, or a person's own sample rate, which then keeps watching the
 * canary steps for mismatches). A refused change is logged: the phase then has no pairs and holds.
 */
export class ShadowPhaseSwitch implements ShadowSwitch {
  #before: { enabled: boolean; sampleRate: number } | undefined;

  constructor(
    private readonly shadow: ShadowLike,
    private readonly log: Logger,
  ) {}

  set(share: number | undefined): void {
    const { shadow } = this;
    try {
      if (share !== undefined) {
        this.#before ??= { enabled: shadow.enabled, sampleRate: shadow.sampleRate };
        if (!shadow.enabled || shadow.sampleRate !== share) {
          shadow.change({ enabled: true, sampleRate: share });
          this.log.info({ sampleRate: share }, 'rollout: the shadow phase switched the live shadow on');
        }
      } else if (this.#before !== undefined) {
        shadow.change(this.#before);
        this.log.info(this.#before, 'rollout: the shadow phase is over; the live shadow is back as it was');
        this.#before = undefined;
      }
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'rollout: cannot switch the live shadow for the shadow phase');
    }
  }
}
