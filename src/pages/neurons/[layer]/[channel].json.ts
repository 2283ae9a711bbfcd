// One JSON file per analysed neuron (`neurons/<layer>/<channel>.json`), fetched by the explorer only when a reader
// asks for that neuron, so the page's first load carries none of them.
import type { APIRoute, GetStaticPaths } from 'astro';
import { cardSource } from '../../../components/neuron/card-data.ts';

export const getStaticPaths = (async () => {
  const source = await cardSource();
  return source.layers.flatMap((layer) => Array.from({ length: source.channels[layer] }, (_, c) => ({ params: { layer, channel: String(c) } })));
}) satisfies GetStaticPaths;

export const GET: APIRoute = async ({ params }) => {
  const card = (await cardSource()).card(params.layer!, Number(params.channel));
  return new Response(JSON.stringify(card), { headers: { 'content-type': 'application/json' } });
};
