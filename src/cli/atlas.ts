#!/usr/bin/env node
// `atlas`: inspect, differentiate and attack ONNX image classifiers from the command line.
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { ProviderChoice } from '../compute/runtime/execution-provider.ts';
import { debug, PROVIDER_NAMES } from '../config.ts';
import { analyseFolders, type AnalyseCliOptions } from './commands/analyse.ts';
import { attack } from './commands/attack.ts';
import { compute, type ComputeOptions } from './commands/compute.ts';
import { featurevis, type FeaturevisOptions } from './commands/featurevis.ts';
import { fetchCommand, type FetchCliOptions } from './commands/fetch.ts';
import { grad } from './commands/grad.ts';
import { inspect } from './commands/inspect.ts';
import { patch, type PatchCliOptions } from './commands/patch.ts';
import { providers } from './commands/providers.ts';
import { workerCommand, type WorkerCliOptions } from './commands/worker.ts';
import { parseInteger, parseNumber } from './parse.ts';
import { budgetProblems } from '../compute/attacks/attack-params.ts';

type ComputeFlags = Omit<ComputeOptions, 'spec' | 'kinds'>;

// Read at run time rather than imported, so the one number is package.json's whichever way atlas is started.
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('atlas')
  .description('Adversarial Atlas: inspect, differentiate and attack ONNX image classifiers (pixels in [0,1])')
  .version(version, '-V, --version', 'print the version of Adversarial Atlas')
  .showHelpAfterError();

// No default here: without the flag, ATLAS_EP decides, then cpu (src/config.ts).
const epOption = () => new Option('--ep <provider>', 'onnxruntime execution provider (default: ATLAS_EP, else cpu); auto times the model on each one that starts and picks the fastest')
  .choices(PROVIDER_NAMES);
const specArgument = 'experiment spec (YAML; default: ATLAS_SPEC, else content/article.experiments.yaml)';
const dataOption = () => new Option('--data <dir>', 'data directory the spec\'s paths are relative to (default: ATLAS_DATA, else data/)');
const cacheOption = () => new Option('--cache <dir>', 'compute cache (default: ATLAS_CACHE, else .cache/atlas/)');

program.command('inspect')
  .description('list the layers a user may analyse: name, op, output shape')
  .argument('<model>', 'ONNX model with its model card (<model>.json) beside it')
  .option('--json', 'print JSON instead of a table')
  .addOption(epOption())
  .action(async (model: string, o: { json?: boolean; ep?: ProviderChoice }) => inspect(model, o));

program.command('grad')
  .description('gradient of an objective with respect to the input pixels, as .npy')
  .requiredOption('--model <model>', 'ONNX model with its card beside it')
  .requiredOption('--input <files...>', 'one .npy [N,C,H,W] in [0,1], or image files')
  .requiredOption('--objective <spec>', 'ce:<labels> | logit:<k> | margin:<k> | channel:<layer>:<c> | neuron:<layer>:<c>:<y>:<x>, joined by + with optional w* weights')
  .requiredOption('--out <file.npy>', 'where to write the gradient (float32); its folder is created')
  .option('--force', 'overwrite --out if it exists (never an input)')
  .addOption(epOption())
  .action(async (o: { model: string; input: string[]; objective: string; out: string; force?: boolean; ep?: ProviderChoice }) => grad(o));

program.command('attack')
  .description('PGD (L∞ or L2) attack; writes clean, adversarial and perturbation PNGs and results.json')
  .requiredOption('--model <model>', 'ONNX model with its card beside it')
  .option('--images <paths...>', 'image files or directories (labels from WordNet ids in file names, or --labels)')
  .option('--input <x.npy>', 'pixels [N,C,H,W] in [0,1] as .npy')
  .option('--labels <classes>', 'comma-separated true classes (index, WordNet id or name), one per image or one for all')
  .option('--eps <eps>', 'perturbation budget in pixel units: L∞ in [0,1], L2 in [0,50]', '4/255')
  .option('--alpha <alpha>', 'step size', '1/255')
  .option('--steps <n>', 'PGD steps (1 with --alpha = --eps is FGSM)', '10')
  .addOption(new Option('--norm <norm>', 'threat model').choices(['linf', 'l2']).default('linf'))
  .option('--target <class>', 'targeted attack towards this class (index, WordNet id or name)')
  .option('--random-start', 'start from a random point in the eps-ball')
  .option('--seed <n>', 'seed of the random start', '0')
  .option('--early-stop', 'stop a batch once every image in it has flipped (off by default, so runs are comparable)')
  .option('--batch <n>', "images per batch, or 'auto' to fit the provider's free memory", 'auto')
  .requiredOption('--out <dir>', 'output folder: new, empty, or (with --force) an earlier output of atlas attack; written atomically')
  .option('--force', 'replace an earlier output of atlas attack at --out (never other files)')
  .addOption(epOption())
  .action(async (o: Record<string, string | string[] | boolean | undefined>) => {
    const norm = o.norm as 'linf' | 'l2';
    const eps = parseNumber(String(o.eps), '--eps');
    const alpha = parseNumber(String(o.alpha), '--alpha');
    const steps = parseInteger(String(o.steps), '--steps');
    const [problem] = budgetProblems({ norm, eps, alpha, steps });
    if (problem) throw new Error(`atlas attack --${problem.field}: ${problem.message}`);
    await attack({
      model: String(o.model),
      images: o.images as string[] | undefined,
      input: o.input as string | undefined,
      labels: o.labels as string | undefined,
      target: o.target as string | undefined,
      out: String(o.out),
      force: !!o.force,
      ep: o.ep as ProviderChoice | undefined,
      attack: {
        norm,
        eps,
        alpha,
        steps,
        randomStart: !!o.randomStart,
        seed: parseInteger(String(o.seed), '--seed'),
        earlyStop: !!o.earlyStop,
        batch: o.batch === 'auto' ? 'auto' : parseInteger(String(o.batch), '--batch', 1),
      },
    });
  });

program.command('providers')
  .description('which execution providers start here; with a model, each one timed on it (batch 1), its gradient checked against the CPU, and the ops it leaves to the CPU')
  .argument('[model]', 'ONNX model with its card beside it')
  .action(async (model?: string) => providers(model));

program.command('fetch')
  .description("download the data manifest's files that the data directory lacks (all, a spec's, or the given paths): from ATLAS_MIRROR, else their public URLs; resumed after an interruption, sha256-checked before they are moved into place; files there are checked by size")
  .argument('[paths...]', 'data-directory files or folders (default: every file of the manifest, or the spec\'s)')
  .option('--spec <file>', 'fetch only what this experiment spec reads (its models, cards, classes and image folders)')
  .addOption(dataOption())
  .option('--mirror <url-or-dir>', 'where to download from instead of public URLs: a base URL or a folder laid out like the data directory (default: ATLAS_MIRROR)')
  .option('--jobs <n>', 'downloads at a time', '4')
  .option('--verify', 'also check the sha256 of files already there')
  .option('--dry-run', 'list what would be fetched, fetch nothing')
  .option('--manifest <file>', 'another data manifest (default: src/data-dir/data-manifest.json)')
  .action(async (paths: string[], o: FetchCliOptions) => fetchCommand(paths, o));

program.command('compute')
  .description('run the compute steps of an experiment spec that are not cached (what `npm run build` does first)')
  .argument('[spec]', specArgument)
  .option('--dry-run', 'list the steps that would run, and why, without running them')
  .option('--force <steps...>', 'recompute these step ids even when cached (`all` for every step)')
  .addOption(epOption())
  .addOption(dataOption())
  .addOption(cacheOption())
  .option('--queue <url>', 'shard feature visualization, attacks and activation recording over `atlas worker` processes through this Redis server (redis://host:port; default: ATLAS_QUEUE, else compute here)')
  .option('--shard-size <kind=n...>', 'with --queue: units per shard, e.g. featurevis=16 (neurons, rounded up to whole render batches; default one batch) attack=64 (images; default 16) activations=512 (images, rounded up to whole analysis batches; default 256)')
  .action(async (spec: string | undefined, o: ComputeFlags) => compute({ spec, ...o }));

program.command('worker')
  .description('compute shards of `atlas compute --queue` jobs from a Redis server until stopped; needs the same models and photos (data directory layout) as the coordinator, checked by sha256 before each step')
  .option('--queue <url>', 'the Redis server (redis://host:port; default: ATLAS_QUEUE)')
  .addOption(dataOption())
  .addOption(epOption())
  .option('--concurrency <n>', 'shards at once in this process, sharing one loaded model (onnxruntime runs on the main thread, so they take turns at it; start more workers for parallel work)', (v) => parseInteger(v, '--concurrency', 1), 1)
  .option('--lock-duration <ms>', 'how long a shard of a worker that died waits before another worker takes it over; must exceed the longest single onnxruntime run of a shard', (v) => parseInteger(v, '--lock-duration', 1000), 30000)
  .action(async (o: WorkerCliOptions) => workerCommand(o));

program.command('featurevis')
  .description('render images that maximise neurons (Lucent defaults: 128 px Fourier image, decorrelated colour, standard transforms, Adam 0.05, 512 steps)')
  .requiredOption('--model <model>', 'ONNX model with its card beside it')
  .requiredOption('--neuron <neurons...>', '<layer>:<channel> (spatial mean) or <layer>:<channel>:<y>:<x>; several render in one batch')
  .option('--size <px>', 'side of the rendered image', '128')
  .option('--steps <n>', 'optimisation steps', '512')
  .option('--seed <n>', 'seed of the initial image and of the transforms', '0')
  .addOption(new Option('--param <kind>', 'image parameterization').choices(['fft', 'pixel']).default('fft'))
  .option('--no-decorrelate', 'optimise RGB directly instead of decorrelated colour')
  .option('--copies <n>', 'images per neuron (in the same batch)', '1')
  .option('--diversity <w>', "weight of Lucent's diversity term between copies of a neuron (Lucent's notebooks: 100)", '0')
  .requiredOption('--out <dir>', 'output folder: new, empty, or (with --force) an earlier output of atlas featurevis; written atomically')
  .option('--force', 'replace an earlier output of atlas featurevis at --out (never other files)')
  .addOption(epOption())
  .action(async (o: FeaturevisOptions & { ep?: ProviderChoice }) => featurevis(o));

const collect = (value: string, previous: string[] = []) => [...previous, value];
type AnalyseFlags = ComputeFlags & Partial<Omit<AnalyseCliOptions, 'ep' | 'model'>> & { model?: string };
const SPEC_FORM = ['dryRun', 'force', 'data', 'cache'] as const;
const FOLDER_FORM = ['reference', 'layer', 'clean', 'adversarial', 'eps', 'seed', 'fdr', 'minEffect', 'top', 'batch', 'out'] as const;
const flagName = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

// One command, two forms: with --model it analyses folders (commands/analyse.ts); without, it runs a spec's analysis
// steps. Flags of the other form are refused rather than ignored, so a mixed call says which form it reached.
program.command('analyse')
  .alias('analyze')
  .description('with --model: polysemanticity (and, given --clean/--adversarial, fragility against a control) of every channel of the layers, from image folders, written to --out; without: run only the neuron analyses of a spec (activations, fragility, polysemanticity) and the attacks they need')
  .argument('[spec]', `${specArgument}; spec form only`)
  .option('--model <model>', 'ONNX model with its card beside it: selects the folder form')
  .option('--reference <dir>', 'folder form: ImageNet-style reference images with labels.json ([{file, index}]); σ and polysemanticity are measured over them')
  .option('--layer <name>', 'folder form: a layer to analyse (repeat for more; `atlas inspect` lists them)', collect)
  .option('--clean <dir>', 'folder form: attacked images before the attack (`atlas attack` output works as is)')
  .option('--adversarial <dir>', 'folder form: the same images after the attack, paired with --clean by name once .clean/.adversarial is stripped')
  .option('--eps <eps>', "folder form: L∞ radius of every pair's random control (default: each pair's own L∞ distance, on the 8-bit grid)")
  .option('--seed <n>', 'folder form: seed of the controls, bootstrap, sign flips and label shuffles', '0')
  .option('--fdr <q>', 'folder form: Benjamini–Hochberg level for fragile and polysemantic', '0.05')
  .option('--min-effect <sigma>', 'folder form: smallest effect (natural σ) that counts as fragile', '0.5')
  .option('--top <n>', 'folder form: strong images per channel (default: 1 % of the reference set, 10 to 50)')
  .option('--batch <n>', 'folder form: images per forward pass', '16')
  .option('--out <dir>', 'folder form: where polysemantic.json and fragility.json go (other files there are left alone)')
  .option('--dry-run', 'spec form: list the steps that would run, and why, without running them')
  .option('--force <steps...>', 'spec form: recompute these step ids even when cached (`all` for every step)')
  .addOption(epOption())
  .addOption(dataOption())
  .addOption(cacheOption())
  .action(async (spec: string | undefined, o: AnalyseFlags, command: Command) => {
    const given = (k: string) => command.getOptionValueSource(k) === 'cli';
    if (o.model !== undefined) {
      const mixed = [...(spec === undefined ? [] : ['a spec argument']), ...SPEC_FORM.filter(given).map(flagName)];
      if (mixed.length) throw new Error(`atlas analyse --model analyses folders; ${mixed.join(', ')} belong${mixed.length === 1 ? 's' : ''} to the spec form (atlas analyse [spec])`);
      return analyseFolders(o as AnalyseCliOptions);
    }
    const stray = FOLDER_FORM.filter(given).map(flagName);
    if (stray.length) throw new Error(`${stray.join(', ')} need${stray.length === 1 ? 's' : ''} --model (the folder form of atlas analyse)`);
    return compute({ spec, dryRun: o.dryRun, force: o.force, ep: o.ep, data: o.data, cache: o.cache, kinds: ['activations', 'neurons', 'polysemantic'] });
  });

program.command('patch')
  .description('activation patching of one layer: restore the clean activations of k channels in the adversarial run (recovery of the clean class) and inject the adversarial ones into the clean run (drop), for the top k of a ranking, k random channels and the k most active ones; writes patching.json and prints a table')
  .requiredOption('--model <model>', 'ONNX model with its card beside it')
  .requiredOption('--clean <dir>', 'attacked images before the attack (`atlas attack` output works as is; its results.json gives each clean class and target)')
  .requiredOption('--adversarial <dir>', 'the same images after the attack, paired with --clean by name once .clean/.adversarial is stripped')
  .requiredOption('--layer <name>', 'the layer to patch, [N,C,H,W] or [N,C] (`atlas inspect` lists them)')
  .option('--ranking <file.json>', 'channel order, most important first: {"channels": [...]} or the fragility.json of `atlas analyse` (ordered by fragility effect); default: mean |spatial-mean(adv) − spatial-mean(clean)| over the given pairs, which favours the ranking since it is measured on the images it is tested on')
  .option('--k <list>', 'comma-separated set sizes in [0, C]; C (the whole layer) is always added (default: 1,2,4,… and C)')
  .option('--draws <n>', 'random sets per image and k', '5')
  .option('--seed <n>', 'seed of the random sets and the bootstrap', '0')
  .option('--target <class>', 'target of a targeted attack, for every image (default: from results.json, if any)')
  .option('--min-gap <p>', 'an image counts in recovery/drop only if the attack lowered its clean-class probability by at least this much', '0.05')
  .option('--batch <n>', 'images per run', '16')
  .requiredOption('--out <dir>', 'where patching.json goes (other files there are left alone)')
  .addOption(epOption())
  .action(async (o: PatchCliOptions) => patch(o));

let showStack = false;
try {
  // Read first, so that a bad ATLAS_DEBUG is itself reported like any other error.
  showStack = debug();
  await program.parseAsync(process.argv);
} catch (err) {
  // One line for the user; the stack only when asked for.
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`atlas: error: ${message.split('\n')[0]}\n`);
  if (showStack && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exitCode = 1;
}
