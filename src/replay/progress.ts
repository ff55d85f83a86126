import cliProgress from 'cli-progress';
import type { ResultRow } from './report.js';

export interface Progress {
  tick(row: ResultRow): void;
  stop(): void;
}

export interface ProgressOutput {
  /** A terminal: draw a bar on `stream`. Otherwise a plain line at every tenth. */
  readonly tty: boolean;
  readonly stream: NodeJS.WritableStream;
  readonly line: (text: string) => void;
}

/** Progress on stderr: a bar for a person watching, a line per 10% for a log file. */
export function createProgress(total: number, out: ProgressOutput): Progress {
  let done = 0;
  let errors = 0;
  let mismatches = 0;
  const count = (row: ResultRow): void => {
    done++;
    if (row.error !== null) errors++;
    else if (row.diff !== null) mismatches++;
  };
  if (out.tty) {
    const bar = new cliProgress.SingleBar(
      {
        stream: out.stream,
        format: 'replay [{bar}] {value}/{total} | {mismatches} mismatches, {errors} errors | eta {eta_formatted}',
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { mismatches, errors });
    return {
      tick(row) {
        count(row);
        bar.update(done, { mismatches, errors });
      },
      stop: () => bar.stop(),
    };
  }
  let shown = 0;
  return {
    tick(row) {
      count(row);
      const tenth = Math.floor((done * 10) / total);
      if (tenth <= shown) return;
      shown = tenth;
      out.line(`replay: ${tenth * 10}% (${done}/${total}), ${mismatches} mismatches, ${errors} errors`);
    },
    stop: () => undefined,
  };
}
