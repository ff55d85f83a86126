import type { FastifyInstance, FastifyReply } from 'fastify';
import { NotNow, type RolloutController } from '../rollout/controller.js';
import type { Command } from '../rollout/machine.js';
import { objectBody, optionalBody, REASON } from './schema.js';
import { replyError } from './errors.js';

const COMMANDS: readonly Command[] = ['start', 'pause', 'resume', 'approve', 'abort'];
const COMMAND_BODY = objectBody({ reason: REASON });
const CLAIM_BODY = objectBody(
  {
    controller: { type: 'string', minLength: 1, maxLength: 500, description: 'the controller\'s admin URL or name, 1 to 500 characters' },
    ttlSeconds: { type: 'number', minimum: 1, maximum: 3600, description: 'a number of seconds from 1 to 3600' },
  },
  ['controller', 'ttlSeconds'],
);

/** GET /rollout, GET /rollout/decisions, GET /rollout/report, POST /rollout/{start,pause,resume,approve,abort}, PUT /rollout/controller (a fleet controller's claim). */
export function rolloutRoutes(app: FastifyInstance, deps: { rollout: RolloutController; extra?: () => Record<string, unknown> }): void {
  const { rollout, extra } = deps;

  app.get('/rollout', async () => ({ ...rollout.view(), ...extra?.() }));
  app.get('/rollout/decisions', async () => ({ decisions: rollout.decisions }));
  app.get('/rollout/report', async () => rollout.report());

  const conflict = (reply: FastifyReply, err: unknown) => {
    if (!(err instanceof NotNow)) throw err;
    return replyError(reply, 'conflict', err.message, { phase: rollout.state.phase });
  };

  app.put<{ Body: { controller: string; ttlSeconds: number } }>('/rollout/controller', { schema: { body: CLAIM_BODY }, config: { write: true } }, async (req, reply) => {
    try {
      return rollout.claim({ controller: req.body.controller, who: req.who, ttlMs: req.body.ttlSeconds * 1000 });
    } catch (err) {
      return conflict(reply, err);
    }
  });

  for (const command of COMMANDS) {
    app.post<{ Body: { reason?: string | null } }>(
      `/rollout/${command}`,
      {
        schema: { body: COMMAND_BODY },
        config: { write: true },
        preValidation: optionalBody,
      },
      async (req, reply) => {
        try {
          return rollout.command(command, req.who, req.body.reason ?? null);
        } catch (err) {
          return conflict(reply, err);
        }
      },
    );
  }
}
