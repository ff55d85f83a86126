import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { SeriesView } from '../observe/series.js';

/**
 * Nothing but our own files, no inline script or style: the page holds a token that can move
 * the traffic, so an injected script must not run and the page must not be framed. The admin
 * API sends it with every answer (createAdmin).
 */
export const CONSOLE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

/** The package's console/ folder: two levels above src/admin (from source), three above dist/src/admin. */
export function consoleDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  return [join(here, '../../console'), join(here, '../../../console')].find((d) => existsSync(join(d, 'index.html')));
}

/** The console's files, read once: console/* by name, and uPlot's build under vendor/ (bundled, never a CDN). */
export function consoleAssets(dir: string | undefined): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  // A package without the console's files still serves everything else; GET / is then a 404.
  if (dir !== undefined) {
    for (const name of readdirSync(dir)) {
      const type = TYPES[extname(name)];
      if (type !== undefined) assets.set(name, { type, body: readFileSync(join(dir, name)) });
    }
  }
  const uplot = join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
  for (const name of ['uPlot.iife.min.js', 'uPlot.min.css']) assets.set(`vendor/${name}`, { type: TYPES[extname(name)]!, body: readFileSync(join(uplot, name)) });
  return assets;
}

/** A proxy (`serve`) or a fleet controller: the one console shows either. */
export type ServerKind = 'proxy' | 'controller';

/** GET /about: which server the console talks to, and which of its reads this one answers. */
export interface About {
  readonly server: ServerKind;
  readonly reads: readonly string[];
}

/**
 * GET / (the console), GET /console/NAME (its files), GET /about (what it may read here), and,
 * on a proxy, GET /series (the last hour, a point per interval).
 */
export function consoleRoutes(app: FastifyInstance, deps: { about: About; series?: () => SeriesView; assets?: Map<string, Asset> }): void {
  const assets = deps.assets ?? consoleAssets(consoleDir());
  const send = (name: string, reply: FastifyReply): FastifyReply | void => {
    const asset = assets.get(name);
    if (asset === undefined) return reply.callNotFound();
    return reply.header('cache-control', 'no-cache').type(asset.type).send(asset.body);
  };
  app.get('/', async (_req, reply) => send('index.html', reply));
  app.get<{ Params: { '*': string } }>('/console/*', async (req, reply) => send(req.params['*'], reply));
  app.get('/about', async () => deps.about);
  const { series } = deps;
  if (series !== undefined) app.get('/series', async () => series());
}
