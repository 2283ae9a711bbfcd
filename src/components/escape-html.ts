// For text put into HTML strings (`set:html`). A module of its own so a client script could use it without pulling
// in the bibliography parser.
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
