// The site's base path with a trailing slash (Astro's BASE_URL has one only when `base` was written with one), so
// `${BASE}_atlas/x.png` works at the root and under a sub-path alike, at build time and in client scripts.
export const BASE = import.meta.env.BASE_URL.endsWith('/') ? import.meta.env.BASE_URL : `${import.meta.env.BASE_URL}/`;
