/** Text for HTML content and double- or single-quoted attributes (the replay's and the rollout's reports). */
export function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
