import type { FastifyReply } from 'fastify';
import { ERRORS, errorBody, type ErrorName } from '../common/errors.js';

/** Answers with an entry of the error catalog: its status, and `{"error", "message", …extra}`. */
export function replyError(reply: FastifyReply, name: ErrorName, message?: string, extra?: Record<string, unknown>): FastifyReply {
  return reply.code(ERRORS[name].status).send(errorBody(name, message, extra));
}
