import type { FastifyRequest, FastifySchemaValidationError } from 'fastify';
import { InputError } from '../common/input-error.js';

/** Admin request bodies are small; anything bigger is a mistake. */
export const BODY_LIMIT = 64 * 1024;
export const MAX_REASON = 500;

/**
 * Strict checking: no type coercion ("7" is not 7) and no silent dropping of unknown fields.
 * `verbose` hands each error its schema, whose `description` says what was expected.
 */
export const AJV_OPTIONS = { coerceTypes: false, removeAdditional: false, useDefaults: false, verbose: true, allErrors: false } as const;

/** Every write may say why; the audit trail and the log keep it. */
export const REASON = { type: ['string', 'null'], maxLength: MAX_REASON, description: `a string of at most ${MAX_REASON} characters` } as const;

/** A route's preValidation for a body that may be left out: none is an empty one. */
export async function optionalBody(req: FastifyRequest): Promise<void> {
  req.body ??= {};
}

/** An object body with only the listed properties. */
export function objectBody<P extends Record<string, object>>(properties: P, required: readonly (keyof P & string)[] = []) {
  return { type: 'object', properties, required, additionalProperties: false, description: 'a JSON object' } as const;
}

type AjvError = FastifySchemaValidationError & { parentSchema?: { description?: string; properties?: Record<string, unknown> } };

/** The first schema error of a body, as the InputError (a 400 naming the field) the other checks give. */
export function schemaError(errors: readonly FastifySchemaValidationError[]): InputError {
  const e = errors[0] as AjvError;
  const path = e.instancePath.split('/').slice(1).join('.');
  const params = e.params as { additionalProperty?: string; missingProperty?: string };
  if (e.keyword === 'additionalProperties') {
    const allowed = Object.keys(e.parentSchema?.properties ?? {}).join(', ');
    return new InputError(`unknown field; allowed: ${allowed}`, [path, params.additionalProperty].filter(Boolean).join('.'));
  }
  if (e.keyword === 'required') return new InputError('is required', [path, params.missingProperty].filter(Boolean).join('.'));
  const expected = e.parentSchema?.description;
  return new InputError(expected === undefined ? e.message ?? 'is invalid' : `must be ${expected}`, path === '' ? 'body' : path);
}
