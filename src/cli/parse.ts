// Command-line values to typed options, validated once at the boundary so the compute layer never re-checks them.
import {
  channel, crossEntropy, logit, margin, neuron, scale, sum, type Objective,
} from '../compute/autodiff/objectives.ts';
import type { ImageNetClass } from '../compute/model/model-card.ts';
import { findClass } from '../compute/model/classes.ts';
import { parseFraction } from '../compute/numbers.ts';

/** "4/255", "0.0157", "1e-3" → number; a one-line error naming the option otherwise. */
export function parseNumber(text: string, option: string): number {
  const v = parseFraction(text);
  if (!Number.isFinite(v)) throw new Error(`${option} must be a number such as 4/255 or 0.0157, got '${text}'`);
  return v;
}

export function parseInteger(text: string, option: string, min = 0): number {
  const v = parseNumber(text, option);
  if (!Number.isInteger(v) || v < min) throw new Error(`${option} must be an integer ≥ ${min}, got '${text}'`);
  return v;
}

/** A class given as its index, its WordNet id or its name (case-insensitive). */
export function parseClass(text: string, classes: readonly ImageNetClass[], option: string): number {
  try {
    return findClass(text, classes);
  } catch (err) {
    throw new Error(`${option}: ${(err as Error).message}`);
  }
}

export function parseClassList(text: string, classes: readonly ImageNetClass[], option: string): number[] {
  return text.split(',').map((s) => parseClass(s, classes, option));
}

export interface ParsedObjective {
  objective: Objective;
  /** labels given inline with `ce:356,867` */
  labels?: number[];
}

/**
 * Objective syntax: terms joined by '+', each optionally weighted `w*term`:
 *   ce[:<labels>]   logit:<k>   margin:<k>   channel:<layer>:<c>   neuron:<layer>:<c>:<y>:<x>
 * e.g. `ce:356,867`, `channel:layer3.2.conv3:471`, `ce:356+-0.1*channel:layer4.2:7`.
 */
export function parseObjective(text: string, classes: readonly ImageNetClass[]): ParsedObjective {
  let labels: number[] | undefined;
  const terms = text.split('+').map((raw) => raw.trim()).filter(Boolean);
  if (terms.length === 0) throw new Error(`--objective is empty`);
  const parts: Objective[] = terms.map((raw) => {
    const m = /^(?:([+-]?[\d.e-]+(?:\/[\d.]+)?)\s*\*\s*)?(.*)$/i.exec(raw)!;
    const weight = m[1] ? parseNumber(m[1], '--objective weight') : 1;
    const [kind, ...args] = m[2].split(':');
    const int = (s: string | undefined, what: string) => {
      if (s === undefined) throw new Error(`--objective '${raw}': missing ${what}`);
      return parseInteger(s, `--objective '${raw}' ${what}`);
    };
    let o: Objective;
    switch (kind) {
      case 'ce':
        if (args[0]) {
          const given = parseClassList(args.join(':'), classes, '--objective ce');
          if (labels && labels.join() !== given.join()) throw new Error('--objective: all ce terms must use the same labels');
          labels = given;
        }
        o = crossEntropy();
        break;
      case 'logit':
      case 'margin': {
        if (args.length !== 1) throw new Error(`--objective '${raw}': expected ${kind}:<class>`);
        const k = parseClass(args[0], classes, `--objective ${kind}`);
        o = kind === 'logit' ? logit(k) : margin(k);
        break;
      }
      case 'channel':
        if (args.length !== 2) throw new Error(`--objective '${raw}': expected channel:<layer>:<c>`);
        o = channel(args[0], int(args[1], 'channel'));
        break;
      case 'neuron':
        if (args.length !== 4) throw new Error(`--objective '${raw}': expected neuron:<layer>:<c>:<y>:<x>`);
        o = neuron(args[0], int(args[1], 'channel'), int(args[2], 'y'), int(args[3], 'x'));
        break;
      default:
        throw new Error(`--objective: unknown term '${kind}' (use ce, logit, margin, channel or neuron)`);
    }
    return weight === 1 ? o : scale(o, weight);
  });
  return { objective: sum(...parts), labels };
}
