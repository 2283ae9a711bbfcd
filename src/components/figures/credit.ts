// labels.json stores some author names with HTML entities or octal-escaped UTF-8 bytes (`Ag\303\252ncia`): captions
// show them as text.
export function creditName(raw: string): string {
  const s = raw.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
  if (!/\\[0-7]{3}/.test(s)) return s;
  const bytes = s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return new TextDecoder().decode(Uint8Array.from(bytes, (ch) => ch.charCodeAt(0)));
}
