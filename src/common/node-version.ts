import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InputError } from './input-error.js';

/** The oldest Node.js drum-splitter runs on: undici 8 needs 22.19, and Node 20 is past its end of life. */
export const NODE_MIN = '22.19.0';

/** Why this Node.js (`process.versions.node`) cannot run drum-splitter, or undefined when it can. */
export function unsupportedNode(version: string): string | undefined {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const [minMajor, minMinor] = NODE_MIN.split('.').map(Number) as [number, number];
  if (major > minMajor || (major === minMajor && minor >= minMinor)) return undefined;
  return `needs Node.js ${NODE_MIN} or newer, this is ${version}; \`npm ci\` installs Node 24 for the project: run it through npm (npm run demo, npx drum-splitter ...) or see the README's "Node.js"`;
}

/**
 * Where `npm ci` put the project's own Node (the optional `node-linux-*` package) relative to the
 * package's root, for this machine's platform and CPU.
 */
export function bundledNodePath(root: URL, platform: string, arch: string): URL {
  return new URL(`node_modules/node-${platform}-${arch}/bin/node`, root);
}

/** The Node to run drum-splitter under in place of this too old one (`why` says which); an InputError saying `why` when there is none. */
export function bundledNode(root: URL, platform: string, arch: string, why: string): string {
  const path = bundledNodePath(root, platform, arch);
  if (!existsSync(path)) throw new InputError(why);
  return fileURLToPath(path);
}
