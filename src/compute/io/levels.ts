// The 8-bit grid as float pixels: v/255 for every level v, as float32. A table lookup is what turns a photo's bytes
// into pixels on every pass over the reference set and every saved adversarial image back into floats.
export const LEVELS = Float32Array.from({ length: 256 }, (_, v) => v / 255);
