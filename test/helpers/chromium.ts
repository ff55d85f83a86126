/** Debian's chromium through puppeteer-core, for pages that must render by themselves (reports). */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Page } from 'puppeteer-core';
import type { Test } from 'tap';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** tap's skip option: false, or why chromium cannot run here. */
export const withoutChromium = (): false | string => (existsSync(CHROMIUM) ? false : `${CHROMIUM} not installed (Debian package chromium)`);

/**
 * A file opened in a fresh headless chromium, closed at the test's end; `problems` collects
 * every console line, page error, failed request and anything fetched from outside the file.
 */
export async function openFile(t: Test, file: string): Promise<{ page: Page; problems: string[] }> {
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('console', (m) => problems.push(`console ${m.type()}: ${m.text()}`));
  page.on('pageerror', (err) => problems.push(`page error: ${(err as Error).message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:')) problems.push(`fetched ${r.url()}`);
  });
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  return { page, problems };
}
