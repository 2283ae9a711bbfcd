// Text fields of labels.json (authors, titles) as people read them. The NIPS 2017 set stores some names with HTML
// entities (`O&#x27;Neil`, `&quot;`) and some with octal-escaped UTF-8 bytes (`Ag\303\252ncia`); both are decoded
// here, where labels are read, so results and figures carry plain text and nothing decodes twice.
import { decodeHTML } from 'entities';

export function labelText(raw: string): string {
  const s = decodeHTML(raw);
  if (!/\\[0-7]{3}/.test(s)) return s;
  const bytes = s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return new TextDecoder().decode(Uint8Array.from(bytes, (ch) => ch.charCodeAt(0)));
}
