// The page's z-space arithmetic: the same formulas as chainer_dcgan.zspace.compose and
// chainer_dcgan.images.to_image, written so the page and Python agree bit for bit.

/** Uniform z0 in [-1, 1]: Float32Array(zDim). `random` returns [0, 1) like Math.random. */
export function sampleZ(zDim, random = Math.random) {
  const z = new Float32Array(zDim);
  for (let j = 0; j < zDim; j++) z[j] = random() * 2 - 1;
  return z;
}

/**
 * The demo's formula z = clip(strength * z0 + sum_i sliders[i] * vectors[i], -1, 1).
 *
 * As in Python: every sum in float64 (JS numbers), tags added in order i = 0, 1, ..., one
 * rounding to float32 at the end (Float32Array stores with round-to-nearest-even, as NumPy's
 * astype does).
 *
 * @param {ArrayLike<number>} z0 length D, usually float32 in [-1, 1]
 * @param {number} strength the noise-strength slider
 * @param {ArrayLike<number>} sliders K values in [-1, 1]
 * @param {ArrayLike<ArrayLike<number>>} vectors K tag vectors of length D
 * @returns {Float32Array} length D, in [-1, 1]
 */
export function compose(z0, strength, sliders, vectors) {
  const d = z0.length;
  const out = new Float32Array(d);
  for (let j = 0; j < d; j++) {
    let z = strength * z0[j];
    for (let i = 0; i < sliders.length; i++) z = z + sliders[i] * vectors[i][j];
    out[j] = Math.min(1, Math.max(-1, z));
  }
  return out;
}

// NumPy's rint: round half to even.
function rint(v) {
  const r = Math.round(v);
  return (r - v === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

/**
 * Generator output -> RGBA pixels, as chainer_dcgan.images.to_image: pixel =
 * rint(clip(x, -1, 1) * 128 + 128) with float32 arithmetic (Math.fround), clipped to [0, 255].
 *
 * @param {Float32Array} x (3, H, W) flattened, channel-major (the ONNX output for one face)
 * @param {number} size H = W
 * @param {Uint8ClampedArray} rgba (H * W * 4) to fill; alpha 255
 */
export function toRGBA(x, size, rgba) {
  const plane = size * size;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.min(1, Math.max(-1, x[c * plane + p]));
      rgba[p * 4 + c] = Math.min(255, Math.max(0, rint(Math.fround(Math.fround(v * 128) + 128))));
    }
    rgba[p * 4 + 3] = 255;
  }
  return rgba;
}
