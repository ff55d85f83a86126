import { writeFile } from 'node:fs/promises';
import { renderMarkdown, renderReportHtml, type RolloutReport } from '../rollout/report.js';
import { askAdmin, EXIT, type ClientOptions } from './admin-client.js';

/**
 * `drum-splitter rollout report`: GET /rollout/report, written as --html FILE and --md FILE;
 * with neither, the Markdown on stdout.
 */
export async function rolloutReportCommand(opts: ClientOptions, files: { readonly html?: string | undefined; readonly md?: string | undefined }): Promise<number> {
  return askAdmin(opts, 'GET', '/rollout/report', undefined, async (json) => {
    const report = json as RolloutReport | undefined;
    if (report?.format !== 1 || !Array.isArray(report.steps)) {
      console.error('drum-splitter: the admin API answered GET /rollout/report with no report (a version without it?)');
      return EXIT.unreachable;
    }
    const outputs = ([[files.html, renderReportHtml], [files.md, renderMarkdown]] as const).filter(([file]) => file !== undefined);
    if (outputs.length === 0) {
      process.stdout.write(renderMarkdown(report));
      return EXIT.ok;
    }
    try {
      await Promise.all(outputs.map(([file, render]) => writeFile(file!, render(report))));
    } catch (err) {
      console.error(`drum-splitter: the report cannot be written: ${(err as Error).message}`);
      return EXIT.rejected;
    }
    console.error(`drum-splitter: rollout report (${report.phase}, ${report.steps.length} periods) written to ${outputs.map(([file]) => file).join(' and ')}`);
    return EXIT.ok;
  });
}
