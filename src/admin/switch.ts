import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { InputError } from '../common/input-error.js';
import { objectBody, REASON } from './schema.js';

/** What the admin API can switch at runtime: the recording, the live shadow. */
export interface Switchable {
  readonly enabled: boolean;
  readonly sampleRate: number;
  /** Applies what is given (at least one of the two); throws an InputError when it cannot. */
  change(patch: { enabled?: boolean | undefined; sampleRate?: number | undefined }): void;
  view(): { readonly enabled: boolean; readonly sampleRate: number };
}

const PUT_SWITCH = objectBody({
  enabled: { type: 'boolean', description: 'true or false' },
  sampleRate: { type: 'number', minimum: 0, maximum: 1, description: 'a number from 0 to 1, e.g. 0.01 for 1%' },
  reason: REASON,
});

/** GET/PUT `path`: one switch and its sample rate, read and changed at runtime; each change logged as "`what` changed". */
export function switchRoutes(app: FastifyInstance, opts: { path: string; what: string; subject: Switchable; log: Logger }): void {
  const { path, what, subject, log } = opts;

  app.get(path, async () => subject.view());

  app.put<{ Body: { enabled?: boolean; sampleRate?: number; reason?: string | null } }>(
    path,
    { schema: { body: PUT_SWITCH }, config: { write: true } },
    async (req) => {
      const { enabled, sampleRate, reason } = req.body;
      if (enabled === undefined && sampleRate === undefined) {
        throw new InputError('send "enabled" and/or "sampleRate", e.g. {"enabled": true, "sampleRate": 0.01}', 'body');
      }
      const from = { enabled: subject.enabled, sampleRate: subject.sampleRate };
      subject.change({ enabled, sampleRate });
      const to = subject.view();
      log.info({ who: req.who, reason, from, to: { enabled: to.enabled, sampleRate: to.sampleRate } }, `${what} changed`);
      return to;
    },
  );
}
