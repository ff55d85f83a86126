import type { FastifyInstance } from 'fastify';
import { NotNow, type RolloutController } from '../rollout/controller.js';
import type { Command } from '../rollout/machine.js';
import { objectBody, optionalBody, REASON } from './schema.js';

const COMMANDS: readonly Command[] = ['start', 'pause', 'resume', 'approve', 'abort'];
const COMMAND_BODY = objectBody({ reason: REASON });

/** GET /rollout, GET /rollout/decisions, POST /rollout/{start,pause,resume,approve,abort}. */
export function rolloutRoutes(app: FastifyInstance, deps: { rollout: RolloutController }): void {
  const { rollout } = deps;

  app.get('/rollout', async () => rollout.view());
  app.get('/rollout/decisions', async () => ({ decisions: rollout.decisions }));

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
          if (!(err instanceof NotNow)) throw err;
          return reply.code(409).send({ error: 'conflict', message: err.message, phase: rollout.state.phase });
        }
      },
    );
  }
}
