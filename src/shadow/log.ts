import type { Logger } from 'pino';
import sonicBoom from 'sonic-boom';
import { checkWritableDir } from '../common/input-error.js';
import { Throttled } from '../common/log.js';
import { PRIVATE, privateOnOpen } from '../common/private-file.js';
import type { ShadowLine } from './shadow.js';

const { SonicBoom } = sonicBoom;

/** Bytes of mismatch lines waiting for the disk before new ones are dropped (and counted in the log). */
const QUEUE_BYTES = 16 * 1024 * 1024;

/**
 * --shadow-log: mismatches as JSONL, 0600 (bodies and headers of real requests), an existing
 * file made so too. Lines the disk cannot take in time are dropped and said, never queued
 * without bound; write errors are logged once a minute, as the recorder's are.
 */
export class ShadowLog {
  readonly #boom: InstanceType<typeof SonicBoom>;
  readonly #log: Logger;
  #dropped = 0;

  constructor(path: string, log: Logger, now?: () => number) {
    checkWritableDir(path, 'shadowLog', 'create it, or pass another --shadow-log FILE');
    this.#log = log;
    const errors = new Throttled(log, 'error', now);
    this.#boom = new SonicBoom({ dest: path, append: true, mode: PRIVATE, maxLength: QUEUE_BYTES });
    privateOnOpen(this.#boom, path, log);
    this.#boom.on('error', (err: Error) => errors.write({ file: path, err: err.message }, 'cannot write the shadow log'));
    this.#boom.on('drop', () => {
      if (this.#dropped++ === 0) log.warn({ file: path }, 'the shadow log cannot keep up; mismatch lines are being dropped');
    });
  }

  write(line: ShadowLine): void {
    this.#boom.write(`${JSON.stringify(line)}\n`);
  }

  /** Writes what is queued and closes the file. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#boom.once('close', () => resolve());
      this.#boom.end();
    });
    if (this.#dropped > 0) this.#log.warn({ dropped: this.#dropped }, 'shadow log lines dropped (the disk could not keep up)');
  }
}
