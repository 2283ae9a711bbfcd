// What an image parameterization is (after Lucent's `optvis/param`): trainable numbers, the image they make, and the
// exact adjoint that carries a gradient on the image back to them. Nothing else knows how an image is represented.

export interface ImageParam {
  /** the trainable values, updated in place by the optimizer */
  params: Float32Array;
  /** [B,C,H,W] of the image */
  dims: [number, number, number, number];
  /** the image for the current params, [B,C,H,W] */
  image(params: Float32Array): Float32Array;
  /** d(loss)/d(params) given d(loss)/d(image) (linear in g, evaluated at the params of the last image() call) */
  backward(gImage: Float32Array): Float32Array;
}
