// The model card: a JSON file beside the ONNX file (`foo.onnx` → `foo.json`) saying how the model wants its
// input (name, shape, normalization, resize/crop) and what its output means (logits or probabilities, class list).
// Validated once here with zod, so nothing downstream re-checks it.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

const ClassSchema = z.object({ index: z.number().int().nonnegative(), wnid: z.string(), name: z.string() });
export type ImageNetClass = z.infer<typeof ClassSchema>;

const CardSchema = z.looseObject({
  id: z.string().optional(),
  /** what the model is, in a sentence (an article shows it beside the model's name) */
  task: z.string().optional(),
  input: z.looseObject({
    name: z.string(),
    shape: z.tuple([z.union([z.string(), z.number()]), z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]),
    layout: z.literal('NCHW').default('NCHW'),
    range: z.enum(['normalized', 'unit']).default('normalized'),
    mean: z.array(z.number()).default([0, 0, 0]),
    std: z.array(z.number().positive()).default([1, 1, 1]),
    resize: z.number().int().positive().optional(),
    crop: z.number().int().positive().optional(),
  }),
  output: z.looseObject({
    name: z.string(),
    shape: z.array(z.union([z.string(), z.number()])).optional(),
    kind: z.enum(['logits', 'probabilities']).default('logits'),
  }),
  classes: z.union([z.string(), z.array(ClassSchema)]),
});

export type ModelCard = z.infer<typeof CardSchema> & { classList: ImageNetClass[]; cardPath: string };

export function cardPathFor(onnxPath: string): string {
  return onnxPath.replace(/\.onnx$/i, '') + '.json';
}

/** The card beside `onnxPath`, or the one at `cardPath` (a model borrowing another's card: an int8 copy of it). */
export async function loadModelCard(onnxPath: string, cardPath = cardPathFor(onnxPath)): Promise<ModelCard> {
  let text: string;
  try {
    text = await readFile(cardPath, 'utf8');
  } catch {
    throw new Error(`model card not found: ${cardPath} — every model needs a card beside it (see README, "Models")`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`model card ${cardPath} is not valid JSON: ${err instanceof Error ? err.message : err}`);
  }
  const parsed = CardSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`model card ${cardPath}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const card = parsed.data;
  if (card.input.mean.length !== card.input.shape[1] || card.input.std.length !== card.input.shape[1]) {
    throw new Error(`model card ${cardPath}: input.mean and input.std need one value per input channel (${card.input.shape[1]})`);
  }
  let classList: ImageNetClass[];
  if (typeof card.classes === 'string') {
    const classesPath = path.resolve(path.dirname(cardPath), card.classes);
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(classesPath, 'utf8'));
    } catch {
      throw new Error(`model card ${cardPath}: cannot read its class list ${classesPath}`);
    }
    const list = z.array(ClassSchema).safeParse(raw);
    if (!list.success) throw new Error(`class list ${classesPath}: expected [{index, wnid, name}, …]`);
    classList = list.data;
  } else classList = card.classes;
  classList = [...classList].sort((a, b) => a.index - b.index);
  if (classList.some((c, i) => c.index !== i)) throw new Error(`model card ${cardPath}: class indices must run 0..${classList.length - 1} without gaps`);
  return { ...card, classList, cardPath };
}
