/** How a route schema's error becomes the 400 the admin API gives: the field, and what was expected. */
import type { FastifySchemaValidationError } from 'fastify';
import t from 'tap';
import { schemaError } from '../src/admin/schema.js';

const error = (e: Partial<FastifySchemaValidationError> & { parentSchema?: unknown }): FastifySchemaValidationError[] => [
  { keyword: 'type', instancePath: '', schemaPath: '#', params: {}, message: 'must be object', ...e } as FastifySchemaValidationError,
];

const cases: [string, FastifySchemaValidationError[], { field: string; message: string }][] = [
  ['an unknown field at the top', error({ keyword: 'additionalProperties', params: { additionalProperty: 'weight' }, parentSchema: { properties: { weights: {}, reason: {} } } }), { field: 'weight', message: 'unknown field; allowed: weights, reason' }],
  ['an unknown field inside', error({ keyword: 'additionalProperties', instancePath: '/a', params: { additionalProperty: 'b' }, parentSchema: { properties: { c: {} } } }), { field: 'a.b', message: 'unknown field; allowed: c' }],
  ['an unknown field where nothing is allowed', error({ keyword: 'additionalProperties', params: { additionalProperty: 'x' }, parentSchema: {} }), { field: 'x', message: 'unknown field; allowed: ' }],
  ['a missing field', error({ keyword: 'required', params: { missingProperty: 'weights' } }), { field: 'weights', message: 'is required' }],
  ['a wrong type, described', error({ instancePath: '/version', parentSchema: { description: 'the version GET /weights gave, e.g. 3' } }), { field: 'version', message: 'must be the version GET /weights gave, e.g. 3' }],
  ['the body itself', error({ parentSchema: { description: 'a JSON object' } }), { field: 'body', message: 'must be a JSON object' }],
  ['no description: ajv says what was wrong', error({ instancePath: '/x/y', message: 'must be >= 0' }), { field: 'x.y', message: 'must be >= 0' }],
  ['no description, no message', error({ instancePath: '/x', message: undefined }), { field: 'x', message: 'is invalid' }],
];

for (const [name, errors, want] of cases) {
  const got = schemaError(errors);
  t.strictSame({ name: got.name, field: got.field, message: got.message.replace(/^[^:]*: /, '') }, { name: 'InputError', ...want }, name);
}
