/** The services' documented payload schemas (test/fixtures/webhooks/), compiled once: a payload is checked as the service would. */
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';

const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
const load = (file: string): ValidateFunction => ajv.compile(JSON.parse(readFileSync(new URL(`../fixtures/webhooks/${file}`, import.meta.url), 'utf8')) as object);

export const SCHEMAS = {
  slack: load('slack-message.schema.json'),
  teams: load('teams-messagecard.schema.json'),
  pagerduty: load('pagerduty-event.schema.json'),
} as const;

/** The schema's complaints about `payload`, one line each; empty when it is valid. */
export function schemaErrors(format: keyof typeof SCHEMAS, payload: unknown): string[] {
  const validate = SCHEMAS[format];
  return validate(payload) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}
