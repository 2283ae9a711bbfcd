// ATLAS_MIRROR serves the data directory's files under the same relative paths, from a base URL or a folder (a copy
// of ../shared, a lab's file server, a USB disk). One function says where a file is on it.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where data-directory file `file` (forward slashes) is on `mirror`: a URL for an http(s) mirror, else a local path. */
export function mirrorLocation(mirror: string, file: string): string {
  if (/^https?:\/\//i.test(mirror)) {
    const base = mirror.endsWith('/') ? mirror : `${mirror}/`;
    return new URL(file.split('/').map(encodeURIComponent).join('/'), base).href;
  }
  const folder = /^file:\/\//i.test(mirror) ? fileURLToPath(mirror) : path.resolve(mirror);
  return path.join(folder, ...file.split('/'));
}
