import type { FastifyInstance, FastifyReply } from 'fastify';
import { NotNow, type RolloutController } from '../rollout/controller.js';
import type { Command, CommandOptions } from '../rollout/machine.js';
import { MAX_REASON, objectBody, optionalBody, REASON } from './schema.js';
import { replyError } from './errors.js';

const COMMANDS: readonly Command[] = ['start', 'pause', 'resume', 'approve', 'abort', 'retry', 'promote'];
const AT_STEP = { type: 'integer', minimum: 1, description: 'a step of the plan counted from 1 (GET /rollout\'s step.index + 1)' } as const;
const FORCE = { type: 'boolean', description: 'true or false (true: even if it lowers the canary)' } as const;
/** Each command's body: a reason, and start's, retry's and promote's options. */
const BODIES: Readonly<Record<Command, object>> = {
  // start's replayReport: a passing `drum-splitter replay` report may stand in for the shadow phase (checked by the rollout, a 400 naming why).
  start: objectBody({
    reason: REASON,
    atStep: AT_STEP,
    fromCurrent: { type: 'boolean', description: 'true or false' },
    force: FORCE,
    replayReport: { type: 'object', description: "a drum-splitter replay report's JSON (its --output file)" },
  }),
  retry: objectBody({ reason: REASON, atStep: AT_STEP, force: FORCE }),
  // 100% at once is recorded with why.
  promote: objectBody(
    { reason: { type: 'string', minLength: 1, maxLength: MAX_REASON, description: `why, a string of 1 to ${MAX_REASON} characters` }, full: { type: 'boolean', const: true, description: 'true (to 100% now)' } },
    ['full', 'reason'],
  ),
  pause: objectBody({ reason: REASON }),
  resume: objectBody({ reason: REASON }),
  approve: objectBody({ reason: REASON }),
  abort: objectBody({ reason: REASON }),
};
const CONTROLLER = { type: 'string', minLength: 1, maxLength: 500, description: 'the controller\'s admin URL or name, 1 to 500 characters' } as const;
const CLAIM_BODY = objectBody(
  {
    controller: CONTROLLER,
    ttlSeconds: { type: 'number', minimum: 1, maximum: 3600, description: 'a number of seconds from 1 to 3600' },
  },
  ['controller', 'ttlSeconds'],
);
const RELEASE_BODY = objectBody({ controller: CONTROLLER }, ['controller']);

/**
 * GET /rollout, GET /rollout/decisions, GET /rollout/report, POST /rollout/{start,pause,resume,approve,abort,retry,promote},
 * PUT /rollout/controller (a fleet controller's claim), DELETE /rollout/controller (its release).
 */
export function rolloutRoutes(app: FastifyInstance, deps: { rollout: RolloutController; extra?: () => Record<string, unknown> }): void {
  const { rollout, extra } = deps;

  app.get('/rollout', async () => ({ ...rollout.view(), ...extra?.() }));
  app.get('/rollout/decisions', async () => ({ decisions: rollout.decisions }));
  app.get('/rollout/report', async () => rollout.report());

  const conflict = (reply: FastifyReply, err: unknown) => {
    if (!(err instanceof NotNow)) throw err;
    return replyError(reply, 'conflict', err.message, { phase: rollout.state.phase, ...err.details });
  };

  app.put<{ Body: { controller: string; ttlSeconds: number } }>('/rollout/controller', { schema: { body: CLAIM_BODY }, config: { write: true } }, async (req, reply) => {
    try {
      return rollout.claim({ controller: req.body.controller, who: req.who, ttlMs: req.body.ttlSeconds * 1000 });
    } catch (err) {
      return conflict(reply, err);
    }
  });

  app.delete<{ Body: { controller: string } }>('/rollout/controller', { schema: { body: RELEASE_BODY }, config: { write: true } }, async (req, reply) => {
    try {
      return rollout.release(req.body.controller);
    } catch (err) {
      return conflict(reply, err);
    }
  });

  for (const command of COMMANDS) {
    app.post<{ Body: { reason?: string | null; replayReport?: unknown } & Omit<CommandOptions, 'current'> }>(
      `/rollout/${command}`,
      {
        schema: { body: BODIES[command] },
        config: { write: true },
        preValidation: optionalBody,
      },
      async (req, reply) => {
        try {
          const { reason, ...opts } = req.body;
          return await rollout.command(command, req.who, reason ?? null, opts);
        } catch (err) {
          return conflict(reply, err);
        }
      },
    );
  }
}
