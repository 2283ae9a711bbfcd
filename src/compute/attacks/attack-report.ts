// What an attack leaves for a reader: per image the clean crop, the adversarial image and the perturbation as PNGs,
// and one JSON row with predictions before/after, success and perturbation size. The CLI writes it to a folder; the
// build pipeline stores it in the cache.
import path from 'node:path';
import { perturbationPng, toPng } from '../io/image.ts';
import type { Classifier } from '../model/classifier.ts';
import type { AttackReportRow } from '../pipeline/outputs/attack.ts';
import type { AttackResult } from './attack-images.ts';

export interface AttackReport {
  rows: AttackReportRow[];
  /** file name → bytes */
  files: Map<string, Uint8Array>;
}

/**
 * `stems` name each result's files; by default unique stems of the results' own names. A shard of a larger attack
 * passes its slice of the whole attack's stems, so files are named as one run over all images would name them.
 */
export async function attackReport(results: readonly AttackResult[], classifier: Classifier, eps: number, stems: readonly string[] = uniqueStems(results.map((r) => r.name))): Promise<AttackReport> {
  const [, h, w] = classifier.inputDims;
  const { classes } = classifier;
  if (stems.length !== results.length) throw new Error(`internal: ${stems.length} file stems for ${results.length} attack results`);
  const files = new Map<string, Uint8Array>();
  const rows: AttackReportRow[] = [];
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    const stem = stems[i];
    const images = { clean: `${stem}.clean.png`, adversarial: `${stem}.adversarial.png`, perturbation: `${stem}.perturbation.png` };
    const delta = r.adversarial.map((v, k) => v - r.clean[k]);
    files.set(images.clean, await toPng(r.clean, h, w));
    files.set(images.adversarial, await toPng(r.adversarial, h, w));
    files.set(images.perturbation, await perturbationPng(delta, h, w, eps || 1 / 255));
    rows.push({
      file: r.name,
      label: r.label,
      label_name: classes[r.label].name,
      label_source: r.labelSource,
      ...(r.target === undefined ? {} : { target: r.target, target_name: classes[r.target].name }),
      top5_before: r.top5Before,
      top5_after: r.top5After,
      success: r.success,
      linf: r.linf,
      l2: r.l2,
      steps: r.steps,
      loss_before: r.lossBefore,
      loss_after: r.lossAfter,
      images,
    });
  }
  return { rows, files };
}

/** File-name stems for the images, made unique when two inputs share a base name. */
export function uniqueStems(names: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const stem = path.basename(n).replace(/\.[^.]+$/, '');
    const k = seen.get(stem) ?? 0;
    seen.set(stem, k + 1);
    return k === 0 ? stem : `${stem}-${k}`;
  });
}

/**
 * The adversarial image's probability for the clean top-1 class: 0 once that class leaves the saved top 5, so a
 * confidence drop computed from it is overstated by at most the 5th probability. The ε figure and the model
 * comparison both read confidence this way.
 */
export function cleanClassProbabilityAfter(row: { top5_before: readonly { class: number }[]; top5_after: readonly { class: number; probability: number }[] }): number {
  return row.top5_after.find((p) => p.class === row.top5_before[0].class)?.probability ?? 0;
}
