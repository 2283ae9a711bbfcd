// A neuron card (the fragile ranking's hover cards) as an HTML string; its title links to the neuron's page in the
// atlas. The histogram is a small hand-drawn SVG: a card is a glance, the page has the full figures.
import { escapeHtml as esc } from '../escape-html.ts';
import type { NeuronCard } from './card-data.ts';
import { neuronPath } from './neuron-url.ts';

const num = (x: number, d = 2) => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(d));

/** Log-density histogram: bar heights are log10(density), empty bins left out (log 0 has no height). */
export function histogramSvg(h: NeuronCard['histogram'], label: string): string {
  const w = 240;
  const ht = 70;
  const bins = h.counts.length;
  const width = h.edges[bins] - h.edges[0] || 1;
  const dens = h.counts.map((c, i) => (c > 0 ? c / h.n / (h.edges[i + 1] - h.edges[i]) : 0));
  const logs = dens.filter((d) => d > 0).map(Math.log10);
  const lo = Math.min(...logs) - 0.5;
  const hi = Math.max(...logs);
  const bars = dens.map((d, i) => {
    if (d <= 0) return '';
    const x = ((h.edges[i] - h.edges[0]) / width) * w;
    const bw = Math.max(1, ((h.edges[i + 1] - h.edges[i]) / width) * w - 0.5);
    const y = ht - ((Math.log10(d) - lo) / (hi - lo || 1)) * ht;
    return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${bw.toFixed(1)}" height="${(ht - y).toFixed(1)}"/>`;
  }).join('');
  return `<svg class="histogram" viewBox="0 0 ${w} ${ht + 14}" width="100%" role="img" aria-label="${esc(label)}">` +
    `<g fill="var(--clean)">${bars}</g><line x1="0" x2="${w}" y1="${ht}" y2="${ht}" stroke="currentColor" stroke-width="0.5"/>` +
    `<text x="0" y="${ht + 12}" font-size="9" fill="currentColor">${num(h.edges[0])}</text>` +
    `<text x="${w}" y="${ht + 12}" font-size="9" fill="currentColor" text-anchor="end">${num(h.edges[bins])}</text></svg>`;
}

export function renderCard(card: NeuronCard, base: string): string {
  const id = `${card.layer}:${card.channel}`;
  const fv = card.featurevis
    ? `<figure class="card-fv"><img src="${base}${card.featurevis.image}" width="128" height="128" alt="Feature visualization of neuron ${esc(id)}: an image optimised to excite it" loading="lazy"/><figcaption>${card.featurevis.ratio.toFixed(1)}× the best photo</figcaption></figure>`
    : '<p class="card-none">No feature visualization rendered for this neuron (the spec lists which are).</p>';
  const patches = card.patches.length
    ? `<div class="card-patches">${card.patches.slice(0, 4).map((p) => `<img src="${base}${p.image}" width="48" height="48" alt="Top-activating patch from a ${esc(p.name)} photo" loading="lazy"/>`).join('')}</div>`
    : '';
  const top = card.top.map((t) => `<li>${esc(t.name)} <span>${num(t.activation)}</span></li>`).join('');
  const attacks = card.attacks.map((a) => `<tr><th scope="row">${esc(a.what)} <small>(n = ${a.n})</small></th><td>${num(a.clean)}</td><td>${num(a.adversarial)}</td><td>${a.score >= 0 ? '+' : ''}${num(a.score, 1)}σ</td></tr>`).join('');
  const label = card.label
    ? ` <span class="tag" title="its WordNet synset: AUROC ${card.label.auroc.toFixed(2)} over n = ${card.label.n} photos; q = ${card.label.q.toPrecision(2)} ≤ ${card.label.fdr} against shuffled labels">detects: ${esc(card.label.name)}</span>`
    : '';
  return `<div class="card-head"><strong><a href="${neuronPath(card.layer, card.channel)}">${esc(id)}</a></strong>${label}${card.polysemantic ? ` <span class="tag" title="strong images in ${esc(card.polysemantic.groups.join(' and '))}; q = ${card.polysemantic.q.toPrecision(2)} ≤ ${card.polysemantic.fdr} against shuffled labels">polysemantic: ${esc(card.polysemantic.groups.slice(0, 2).join(' + '))}</span>` : ''}</div>` +
    `<div class="card-body">${fv}<div class="card-side"><p class="card-label">Fires most for</p><ol class="card-top">${top}</ol>${patches}</div></div>` +
    `<p class="card-label">Activation over n = ${card.histogram.n} photos (log density)</p>${histogramSvg(card.histogram, `Histogram of neuron ${id}'s activation over ${card.histogram.n} photographs, log density`)}` +
    (attacks ? `<table class="card-attacks"><thead><tr><th>attack</th><th>clean</th><th>adv.</th><th>change</th></tr></thead><tbody>${attacks}</tbody></table>` : '');
}
