import { InputError } from './input-error.js';

/** An admin API's base URL from a URL or HOST:PORT (http assumed), without a trailing slash; `field` names the flag in the error. */
export function baseUrl(value: string, field: string): string {
  const url = /^https?:\/\//.test(value) ? value : `http://${value}`;
  try {
    return new URL(url).href.replace(/\/$/, '');
  } catch {
    throw new InputError(`"${value}" is not a URL or HOST:PORT`, field);
  }
}
