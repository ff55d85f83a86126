import { UsageError } from '../common/flags.js';
import { InputError } from '../common/input-error.js';
import { isObject } from '../common/json-shape.js';
import { buildConfig, isSettingKey, KNOWN_SETTINGS, parseConfigDocument, readConfigText, type Config, type ConfigDocument } from '../config/config.js';
import { describePlan } from '../rollout/plan.js';
import { describeRoute } from '../weights/routes.js';

/**
 * `drum-splitter check --config FILE`: a config file judged by the very functions serve reads it
 * with (readConfigText, parseConfigDocument, isSettingKey, buildConfig and, through it,
 * parsePlan), starting nothing. They stop at their first problem; to name every problem of a
 * file, they are asked about parts of it (see problems()). The file alone is judged: flags, the
 * environment and the files it names (tokens, state) are the pod's, not the file's.
 */

type Mapping = Record<string, unknown>;

/** A judge throws an InputError at the first problem of what it is given. */
type Judge = (settings: Mapping) => void;

/** A file's verdict: its summary when good, with what was read (a ConfigMap's key); else every problem found, each a line naming the file. */
export type FileVerdict = { readonly source: string; readonly ok: string } | { readonly problems: readonly string[]; readonly unknownKeys: boolean };

/**
 * Checks each file; a line each on stdout when good, a line per problem on stderr (the settings
 * a file may hold once, after them all, when a key is unknown); 0 if all are good, else 2.
 */
export function checkCommand(files: readonly string[]): number {
  if (files.length === 0) throw new UsageError('check', 'needs --config FILE (repeatable)');
  const verdicts = files.map(checkFile);
  for (const verdict of verdicts) {
    if ('ok' in verdict) console.log(`drum-splitter: ${verdict.source}: ok (${verdict.ok})`);
    else for (const line of verdict.problems) console.error(`drum-splitter: ${line}`);
  }
  if (verdicts.some((v) => 'unknownKeys' in v && v.unknownKeys)) console.error(`drum-splitter: ${KNOWN_SETTINGS}`);
  return verdicts.every((v) => 'ok' in v) ? 0 : 2;
}

/** A file judged: read, parsed (a ConfigMap's config from its data), each key known, the settings as serve builds them. */
export function checkFile(path: string): FileVerdict {
  let doc: ConfigDocument;
  try {
    doc = parseConfigDocument(readConfigText(path), path);
  } catch (err) {
    // Unreadable, not YAML, not a mapping: the message names the file; its "--config: " would add nothing.
    const e = err as InputError;
    return { problems: [e.message.slice(`${e.field!}: `.length)], unknownKeys: false };
  }
  const { settings, source } = doc;
  const known: Mapping = {};
  const found: string[] = [];
  for (const [key, value] of Object.entries(settings)) {
    if (isSettingKey(key)) known[key] = value;
    else found.push(`${source}: unknown setting "${key}"`);
  }
  const unknownKeys = found.length > 0;
  // The rollout plan's keys are looked into as the settings are: a bad hold and a bad threshold are two lines.
  const inside = (key: string, good: Mapping): Judge | undefined => (key === 'rollout' ? (plan) => buildConfig({ ...good, rollout: plan }) : undefined);
  found.push(...new Set(problems(known, (s) => buildConfig(s), 0, inside).map((p) => `${source}: ${p}`)));
  if (found.length > 0) return { problems: found, unknownKeys };
  return { source, ok: summary(buildConfig(known)) };
}

/**
 * Every problem `judge` finds in `settings`, though it stops at its first. Each key alone, with
 * the others at their defaults, so that one problem never hides another; then the keys good
 * alone together, a problem at a time, the key at fault set aside after each (each of workers: 4
 * and metricsOnTraffic is fine alone); then each key that failed alone again, beside the good
 * ones (weights naming the file's own upstreams fail on the default ones). `depth` is the
 * settings' place in a problem's field (1 for "rollout.steps"); `inside` gives a judge for a
 * failing key whose mapping is looked into the same way.
 * A setting that depends on one found bad (weights naming an upstream whose URL is wrong) is
 * judged against that one's default, and may be reported too, as a compiler reports the uses
 * of a declaration that failed.
 */
function problems(settings: Mapping, judge: Judge, depth: number, inside?: (key: string, good: Mapping) => Judge | undefined): string[] {
  const good: Mapping = {};
  const failing: string[] = [];
  for (const [key, value] of Object.entries(settings)) {
    if (attempt(() => judge({ [key]: value })) === undefined) good[key] = value;
    else failing.push(key);
  }
  const found: string[] = [];
  for (let err = attempt(() => judge(good)); err !== undefined; err = attempt(() => judge(good))) {
    found.push(err.message);
    // The key at this depth the field points into: "rollout.steps[2].hold" is "rollout", then "steps".
    const key = err.field!.split(/[.[]/)[depth];
    // A problem outside this level (a plan's needing two upstreams) is not any of its keys'.
    if (key === undefined || !Object.hasOwn(good, key)) break;
    delete good[key];
  }
  // From here on `good` passes together, so a key's failure beside it is that key's.
  for (const key of failing) {
    const value = settings[key];
    const err = attempt(() => judge({ ...good, [key]: value }));
    if (err === undefined) {
      good[key] = value;
      continue;
    }
    const nested = inside?.(key, { ...good });
    found.push(...(nested !== undefined && isObject(value) ? problems(value, nested, depth + 1) : [err.message]));
  }
  return found;
}

/** Whatever serve's readers throw: they throw InputErrors, each naming its field. */
function attempt(run: () => void): InputError | undefined {
  try {
    run();
    return undefined;
  } catch (err) {
    return err as InputError;
  }
}

function summary(config: Config): string {
  const upstreams = `${config.upstreams.length} upstream${config.upstreams.length === 1 ? '' : 's'}`;
  const plan = config.rollout === undefined ? 'no rollout plan' : `rollout plan: ${config.rollout.canary} ${describePlan(config.rollout)}`;
  // nginx's murmur2 is the default and goes unsaid; the seed's Option B is named with its key.
  const split = config.splitHash === 'murmur2' ? '' : `, split ${config.splitHash} on ${config.key}`;
  const routes = config.routes.length === 0 ? '' : `, cohort rules: ${config.routes.map(describeRoute).join(', ')}`;
  return `${upstreams}${split}${routes}, ${plan}`;
}
