import { accessSync, constants, statSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * A problem with what a user gave us: a flag, a config file, an admin request.
 * The CLI turns it into one line and exit code 2; the admin API into a 4xx JSON body.
 */
export class InputError extends Error {
  /**
   * The setting or field at fault, e.g. "weights.fastapi" or "--listen". Declared, not a class
   * field: no field initializer, which an older Node that only says it is too old would never run.
   */
  declare readonly field: string | undefined;

  constructor(message: string, field?: string) {
    super(field === undefined ? message : `${field}: ${message}`);
    this.field = field;
    this.name = 'InputError';
  }
}

/** Throws an InputError for `field` unless `file` can be created or written in its directory; `hint` says what to do. */
export function checkWritableDir(file: string, field: string, hint: string): void {
  const dir = dirname(file);
  try {
    accessSync(dir, constants.W_OK);
    if (statSync(dir).isDirectory()) return;
  } catch {
    // reported below
  }
  throw new InputError(`${dir} is not a writable directory, so ${file} cannot be written (${hint})`, field);
}
