/**
 * A problem with what a user gave us: a flag, a config file, an admin request.
 * The CLI turns it into one line and exit code 2; the admin API into a 4xx JSON body.
 */
export class InputError extends Error {
  constructor(
    message: string,
    /** The setting or field at fault, e.g. "weights.fastapi" or "--listen". */
    readonly field?: string,
  ) {
    super(field === undefined ? message : `${field}: ${message}`);
    this.name = 'InputError';
  }
}
