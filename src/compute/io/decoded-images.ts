// Decoded, preprocessed photos kept for the rest of the process. One article build reads the 3100 reference photos
// in six steps (activations, depth, feature visualization's comparison, and the compared model's activations and
// depth), and decoding costs about a third of a MobileNetV2 pass over them on 2 cores. The decoder's own 8-bit RGB
// bytes are kept, so a photo served from here is bit-identical to a fresh decode. Up to a budget; past it, photos not
// yet kept are decoded each time rather than evicting others (a scan longer than the budget would miss on every photo
// in least-recently-used order).
import { stat } from 'node:fs/promises';
import os from 'node:os';

/** An eighth of the machine's memory, at most 1 GiB: the 3100 reference photos at 224 px take 467 MB. */
export const DECODED_BUDGET_BYTES = Math.min(2 ** 30, Math.floor(os.totalmem() / 8));

export class DecodedImages {
  private readonly kept = new Map<string, Uint8Array>();
  private bytes = 0;
  private readonly budget: number;

  constructor(budget = DECODED_BUDGET_BYTES) {
    this.budget = budget;
  }

  /** The kept bytes for this file and preprocessing, decoding (and keeping, while the budget lasts) on a miss. */
  async get(path: string, preprocessing: string, decode: () => Promise<Uint8Array>): Promise<Uint8Array> {
    // The file's size and modification time are part of the key, so a photo replaced during a run is decoded again.
    const s = await stat(path).catch(() => undefined);
    if (!s) return decode(); // the decoder says what is wrong with the path
    const key = `${path}\0${s.size}\0${s.mtimeMs}\0${preprocessing}`;
    const hit = this.kept.get(key);
    if (hit) return hit;
    const raw = await decode();
    if (this.bytes + raw.byteLength <= this.budget && !this.kept.has(key)) {
      this.kept.set(key, raw);
      this.bytes += raw.byteLength;
    }
    return raw;
  }

  get size(): number {
    return this.kept.size;
  }
}
