import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { InputError } from '../common/input-error.js';
import type { Recording } from '../record/recording.js';
import { objectBody, REASON } from './schema.js';

const PUT_RECORDING = objectBody({
  enabled: { type: 'boolean', description: 'true or false' },
  sampleRate: { type: 'number', minimum: 0, maximum: 1, description: 'a number from 0 to 1, e.g. 0.01 for 1%' },
  reason: REASON,
});

/** GET/PUT /recording: switch recording and its sample rate at runtime. */
export function recordingRoutes(app: FastifyInstance, deps: { recording: Recording; log: Logger }): void {
  const { recording, log } = deps;

  app.get('/recording', async () => recording.view());

  app.put<{ Body: { enabled?: boolean; sampleRate?: number; reason?: string | null } }>(
    '/recording',
    { schema: { body: PUT_RECORDING }, config: { write: true } },
    async (req) => {
      const { enabled, sampleRate, reason } = req.body;
      if (enabled === undefined && sampleRate === undefined) {
        throw new InputError('send "enabled" and/or "sampleRate", e.g. {"enabled": true, "sampleRate": 0.01}', 'body');
      }
      const from = recording.view();
      recording.change({ enabled, sampleRate });
      const to = recording.view();
      log.info({ who: req.who, reason, from: { enabled: from.enabled, sampleRate: from.sampleRate }, to: { enabled: to.enabled, sampleRate: to.sampleRate } }, 'recording changed');
      return to;
    },
  );
}
