// For text put into HTML strings (`set:html`, the explorer's innerHTML). A module of its own so the explorer's
// client script can use it without pulling in the bibliography parser.
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
