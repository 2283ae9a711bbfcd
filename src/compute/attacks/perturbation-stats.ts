// Size of a perturbation per image, in [0,1] pixel units (the units eps is given in).

export function linfPerImage(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number[] {
  const per = a.length / n;
  return Array.from({ length: n }, (_, i) => {
    let m = 0;
    for (let k = i * per; k < (i + 1) * per; k++) m = Math.max(m, Math.abs(a[k] - b[k]));
    return m;
  });
}

export function l2PerImage(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number[] {
  const per = a.length / n;
  return Array.from({ length: n }, (_, i) => {
    let s = 0;
    for (let k = i * per; k < (i + 1) * per; k++) s += (a[k] - b[k]) ** 2;
    return Math.sqrt(s);
  });
}
