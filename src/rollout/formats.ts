import { isObject } from '../common/json-shape.js';
import type { RolloutEvent } from './notify.js';
import { formatDuration, type NotifyTarget } from './plan.js';

/**
 * A rollout event as each webhook's service reads it (pure): the generic JSON is the event as it
 * is; Slack gets Block Kit blocks, Microsoft Teams a MessageCard, PagerDuty an Events API v2
 * event. Long text is cut to each service's limits here, so a receiver never refuses a payload
 * for its size.
 */

/** Who the events are about: the dedup key and the titles name them. */
export interface EventContext {
  readonly canary: string;
  readonly baseline: string;
}

/** A verification item as the controller reports it (rollout/verify.ts); ok null: skipped. */
interface Item {
  readonly name: string;
  readonly ok: boolean | null;
  readonly detail: string;
}

// Slack's documented limits (Block Kit reference): a message's blocks, a section's text and
// each field, fields per section, a context's elements, a header's plain text.
const SLACK = { blocks: 50, sectionText: 3000, fieldText: 2000, fields: 10, contextElements: 10, header: 150 } as const;
// PagerDuty Events API v2: payload.summary and dedup_key.
const PAGERDUTY = { summary: 1024, dedupKey: 255 } as const;
// A Teams connector refuses a card above 28 KB: the text (four sections at most) and the six facts are cut so that the card stays under it.
const TEAMS = { text: 2000, fact: 300 } as const;

/** Text cut to `max` characters (code points are not split), an ellipsis saying so. */
export function cut(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/** The body to POST for `event`, or undefined when the target does not take this action (PagerDuty pages only on incidents). */
export function renderEvent(target: NotifyTarget, event: RolloutEvent, ctx: EventContext): unknown {
  switch (target.format) {
    case 'json':
      // Today's body, unchanged: Slack-compatible receivers show its top-level "text".
      return event;
    case 'slack':
      return slackMessage(event, ctx);
    case 'teams':
      return teamsCard(event, ctx);
    case 'pagerduty':
      return pagerDutyEvent(event, ctx, target.routingKey!);
  }
}

/** Red for what went wrong, amber for what holds or waits, green for what went well; blue otherwise. */
export function tone(action: string): 'bad' | 'warn' | 'good' | 'info' {
  if (['rollback', 'verification_failed', 'abort'].includes(action)) return 'bad';
  if (['reduce', 'suspect', 'hold', 'pause', 'await_approval'].includes(action)) return 'warn';
  if (['promote', 'complete', 'verified', 'recovered', 'approve', 'promote_full'].includes(action)) return 'good';
  return 'info';
}

const EMOJI = { bad: ':red_circle:', warn: ':large_yellow_circle:', good: ':large_green_circle:', info: ':large_blue_circle:' } as const;
const COLOR = { bad: 'D32F2F', warn: 'F9A825', good: '2E7D32', info: '1565C0' } as const;

/** "verification_failed" → "Verification failed". */
const title = (action: string): string => {
  const words = action.replaceAll('_', ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
};

/** The facts every format shows, as [name, value]. */
function facts(event: RolloutEvent, ctx: EventContext): [string, string][] {
  const rows: [string, string][] = [
    ['Canary', `${ctx.canary}: ${event.from}% → ${event.to}%`],
    ['Baseline', ctx.baseline],
  ];
  if (typeof event.phase === 'string') rows.push(['Phase', event.phase]);
  if (typeof event.who === 'string') rows.push(['By', event.who]);
  if (typeof event.reason === 'string' && event.reason !== '') rows.push(['Reason', event.reason]);
  const next = nextLine(event.next);
  if (next !== undefined) rows.push(['Next', next]);
  rows.push(['At', event.at]);
  return rows;
}

/** The controller's `next` (what comes if every check passes): "10% in 5d if every check passes, then a person approves". */
export function nextLine(next: unknown): string | undefined {
  if (!isObject(next) || typeof next.inMs !== 'number') return undefined;
  const what = typeof next.weight === 'number' ? `${next.weight}%` : 'complete';
  const approve = next.approve === true ? (typeof next.weight === 'number' ? ', once a person approves' : '') : '';
  return `${what} in ${formatDuration(Math.round(next.inMs))} if every check passes${approve}`;
}

const ms = (seconds: unknown): string => (typeof seconds === 'number' ? `${Math.round(seconds * 10_000) / 10} ms` : '–');
const pct = (rate: unknown): string => (typeof rate === 'number' ? `${Math.round(rate * 10_000) / 100}%` : '–');
const mib = (bytes: unknown): string => (typeof bytes === 'number' ? `${Math.round(bytes / 2 ** 20)} MiB` : '–');
const count = (n: unknown): string => (typeof n === 'number' ? n.toLocaleString('en-US') : '–');

/** The hourly summary's lines (helper D's `summary` field): per upstream, requests, error rate, p50/p99, memory; the step and time held. */
export function summaryLines(summary: unknown): string[] {
  if (!isObject(summary)) return [];
  const lines: string[] = [];
  const held = typeof summary.heldMs === 'number' ? ` held ${Math.round(summary.heldMs / 60_000)} min` : '';
  if (typeof summary.weight === 'number') lines.push(`step ${typeof summary.step === 'number' ? summary.step + 1 : '?'} at ${summary.weight}%${held}`);
  if (isObject(summary.upstreams)) {
    for (const [name, u] of Object.entries(summary.upstreams)) {
      if (!isObject(u)) continue;
      lines.push(`${name}: ${count(u.requests)} requests, ${pct(u.errorRate)} errors, p50 ${ms(u.p50)}, p99 ${ms(u.p99)}, RSS ${mib(u.rss)}`);
    }
  }
  return lines;
}

/** The verification's items, one line each: "✔ ping: 200". */
export function verificationLines(verification: unknown): string[] {
  if (!isObject(verification) || !Array.isArray(verification.items)) return [];
  return (verification.items as unknown[]).filter(isObject).map((raw) => {
    const item = raw as unknown as Item;
    const mark = item.ok === null ? '–' : item.ok ? '✔' : '✘';
    return `${mark} ${item.name}: ${item.detail}${item.ok === null ? ' (skipped)' : ''}`;
  });
}

/** A mismatch rollback's difference (helper A's `mismatch` field), as JSON for a code block. */
function mismatchText(mismatch: unknown): string | undefined {
  return mismatch === undefined ? undefined : JSON.stringify(mismatch, null, 1);
}

/** The event's own detail sections, [heading, lines], for the formats that show text. */
function details(event: RolloutEvent): [string, string[], boolean][] {
  const parts: [string, string[], boolean][] = [];
  const verification = verificationLines(event.verification);
  if (verification.length > 0) parts.push(['Verification of the baseline', verification, false]);
  const summary = summaryLines(event.summary);
  if (summary.length > 0) parts.push(['Hourly summary', summary, false]);
  const mismatch = mismatchText(event.mismatch);
  if (mismatch !== undefined) parts.push(['The differing answers', [mismatch], true]);
  return parts;
}

/** Slack's mrkdwn treats &, < and > as markup: escaped, as Slack's formatting reference asks. */
const escapeSlack = (text: string): string => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

/** A Slack incoming-webhook message: `text` is the notification's fallback; the blocks are what people see. */
export function slackMessage(event: RolloutEvent, ctx: EventContext): unknown {
  const t = tone(event.action);
  const mrkdwn = (text: string, max: number) => ({ type: 'mrkdwn', text: cut(text, max) });
  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: cut(`${title(event.action)}: ${ctx.canary}`, SLACK.header), emoji: true } },
    { type: 'section', text: mrkdwn(`${EMOJI[t]} ${escapeSlack(event.text)}`, SLACK.sectionText) },
    { type: 'section', fields: facts(event, ctx).slice(0, SLACK.fields).map(([name, value]) => mrkdwn(`*${name}*\n${escapeSlack(value)}`, SLACK.fieldText)) },
  ];
  for (const [heading, lines, code] of details(event)) {
    const body = code ? `\`\`\`${cut(lines.join('\n'), SLACK.sectionText - heading.length - 12)}\`\`\`` : lines.map(escapeSlack).join('\n');
    blocks.push({ type: 'section', text: mrkdwn(`*${heading}*\n${body}`, SLACK.sectionText) });
  }
  blocks.push({ type: 'context', elements: [mrkdwn(`drum-splitter rollout · ${event.action} · ${event.at}`, SLACK.fieldText)] });
  return { text: cut(event.text, SLACK.sectionText), blocks: blocks.slice(0, SLACK.blocks) };
}

/** A Microsoft Teams MessageCard (connector card): the title, the facts, a section per detail. */
export function teamsCard(event: RolloutEvent, ctx: EventContext): unknown {
  const sections: unknown[] = [{ activityTitle: cut(event.text, TEAMS.text), facts: facts(event, ctx).map(([name, value]) => ({ name, value: cut(value, TEAMS.fact) })) }];
  for (const [heading, lines, code] of details(event)) {
    // Teams' connector cards take Markdown; two spaces before a newline break the line.
    const text = code ? `\`\`\`\n${lines.join('\n')}\n\`\`\`` : lines.join('  \n');
    sections.push({ activityTitle: heading, text: cut(text, TEAMS.text) });
  }
  return {
    '@type': 'MessageCard',
    '@context': 'https://schema.org/extensions',
    summary: cut(event.text, 200),
    themeColor: COLOR[tone(event.action)],
    title: cut(`drum-splitter rollout: ${title(event.action)} (${ctx.canary})`, 200),
    sections,
  };
}

/** Actions that open an incident, with its severity: a rolled-back canary leaves the baseline serving; a baseline that fails its checks is an outage. */
const TRIGGERS: Readonly<Record<string, { severity: 'critical' | 'error'; incident: 'rollout' | 'baseline' }>> = {
  rollback: { severity: 'error', incident: 'rollout' },
  verification_failed: { severity: 'critical', incident: 'baseline' },
};
/**
 * Actions that close one: the rollout's incident when it recovers or ends (complete, aborted,
 * started again or retried by a person); the baseline's when a later verification passes.
 */
const RESOLVES: Readonly<Record<string, 'rollout' | 'baseline'>> = {
  recovered: 'rollout',
  complete: 'rollout',
  abort: 'rollout',
  start: 'rollout',
  retry: 'rollout',
  verified: 'baseline',
};

/** One key per canary and incident, so a resolve closes what its trigger opened. */
export const dedupKey = (ctx: EventContext, incident: 'rollout' | 'baseline'): string => cut(`drum-splitter/${ctx.canary}/${incident}`, PAGERDUTY.dedupKey);

/** A PagerDuty Events API v2 event; undefined for the actions that neither open nor close an incident, and in a dry run. */
export function pagerDutyEvent(event: RolloutEvent, ctx: EventContext, routingKey: string): unknown {
  // A dry run's would-be rollback is nobody's incident.
  if (event.dryRun === true) return undefined;
  const trigger = TRIGGERS[event.action];
  if (trigger !== undefined) {
    const custom: Record<string, unknown> = Object.fromEntries(facts(event, ctx));
    for (const field of ['verification', 'mismatch'] as const) if (event[field] !== undefined) custom[field] = event[field];
    return {
      routing_key: routingKey,
      event_action: 'trigger',
      dedup_key: dedupKey(ctx, trigger.incident),
      payload: {
        summary: cut(event.text, PAGERDUTY.summary),
        source: `drum-splitter/${ctx.canary}`,
        severity: trigger.severity,
        timestamp: event.at,
        component: trigger.incident === 'rollout' ? ctx.canary : ctx.baseline,
        group: 'drum-splitter rollout',
        class: event.action,
        custom_details: custom,
      },
      client: 'drum-splitter',
    };
  }
  const incident = RESOLVES[event.action];
  return incident === undefined ? undefined : { routing_key: routingKey, event_action: 'resolve', dedup_key: dedupKey(ctx, incident) };
}
