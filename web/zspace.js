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
 * @param {Float32Array} x (N, 3, H, W) flattened, channel-major (the ONNX output)
 * @param {number} size H = W
 * @param {Uint8ClampedArray} rgba the image to fill (alpha 255), `width` pixels a row
 * @param {object} [at] face `index` of the batch (default 0) goes to column `left`, row `top`
 *   (defaults 0) of an image `width` pixels wide (default size)
 */
export function toRGBA(x, size, rgba, { index = 0, left = 0, top = 0, width = size } = {}) {
  const plane = size * size;
  const base = index * 3 * plane;
  for (let p = 0; p < plane; p++) {
    const o = ((top + Math.floor(p / size)) * width + left + (p % size)) * 4;
    for (let c = 0; c < 3; c++) {
      const v = Math.min(1, Math.max(-1, x[base + c * plane + p]));
      rgba[o + c] = Math.min(255, Math.max(0, rint(Math.fround(Math.fround(v * 128) + 128))));
    }
    rgba[o + 3] = 255;
  }
  return rgba;
}

/**
 * A neighbour of z0, as tools/variations.py: clip(z0 + amount * u, -1, 1), u uniform in [-1, 1].
 * @returns {Float32Array}
 */
export function perturb(z0, amount, random = Math.random) {
  const out = new Float32Array(z0.length);
  for (let j = 0; j < z0.length; j++) out[j] = Math.min(1, Math.max(-1, z0[j] + amount * (random() * 2 - 1)));
  return out;
}

/** (1 - t) * a + t * b, element by element (a morph frame between two composed z). */
export function lerp(a, b, t) {
  const out = new Float32Array(a.length);
  for (let j = 0; j < a.length; j++) out[j] = (1 - t) * a[j] + t * b[j];
  return out;
}
