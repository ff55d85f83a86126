import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { InputError } from '../common/input-error.js';
import type { Shadow } from '../shadow/shadow.js';
import { objectBody, REASON } from './schema.js';

const PUT_SHADOW = objectBody({
  enabled: { type: 'boolean', description: 'true or false' },
  sampleRate: { type: 'number', minimum: 0, maximum: 1, description: 'a number from 0 to 1, e.g. 0.1 for 10%' },
  reason: REASON,
});

/** GET/PUT /shadow: the live shadow's switch and share at runtime, and its counts. */
export function shadowRoutes(app: FastifyInstance, deps: { shadow: Shadow; log: Logger }): void {
  const { shadow, log } = deps;

  app.get('/shadow', async () => shadow.view());

  app.put<{ Body: { enabled?: boolean; sampleRate?: number; reason?: string | null } }>(
    '/shadow',
    { schema: { body: PUT_SHADOW }, config: { write: true } },
    async (req) => {
      const { enabled, sampleRate, reason } = req.body;
      const from = { enabled: shadow.enabled, sampleRate: shadow.sampleRate };
      if (enabled !== undefined) shadow.change(sampleRate === undefined ? { enabled } : { enabled, sampleRate });
      else if (sampleRate !== undefined) shadow.change({ sampleRate });
      else throw new InputError('send "enabled" and/or "sampleRate", e.g. {"enabled": true, "sampleRate": 0.1}', 'body');
      const to = shadow.view();
      log.info({ who: req.who, reason, from, to: { enabled: to.enabled, sampleRate: to.sampleRate } }, 'shadow changed');
      return to;
    },
  );
}
