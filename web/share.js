// A face as text: the URL hash and the face file (JSON) hold z0, the noise strength and the slider
// values, so a link or a file gives back the same pixels. z0 travels as its float32 bytes (the hash)
// or as the numbers those bytes hold (JSON): both are exact.
//
// Hash: #z=<base64url of z0's float32 bytes, little-endian>&n=<strength>&t=<tag>:<value>,...&y=<tag>:<value>,...
// (t: tag-vector sliders, y: a conditional model's tag controls; tags at 0 are left out).
// File: {"format": "chainer-dcgan-face", "version": 1, "z0": [...], "strength": s, "sliders": {...}, "y": {...}}

export const FACE_FORMAT = 'chainer-dcgan-face';
/** Face files larger than this are refused before they are parsed. */
export const MAX_FACE_FILE = 64 * 1024;

/** A face that cannot be read: the message says which part and why. */
export class FaceError extends Error {}

function bytesToBase64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function base64urlToBytes(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new FaceError('z: not base64url');
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  let s;
  try { s = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)); } catch { throw new FaceError('z: not base64url'); }
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/** z0 (float32) -> base64url of its little-endian bytes. */
export function encodeZ(z0) {
  const view = new DataView(new ArrayBuffer(z0.length * 4));
  z0.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return bytesToBase64url(new Uint8Array(view.buffer));
}

/** The inverse of encodeZ; checks the length and that every number is finite and in [-1, 1]. */
export function decodeZ(text, zDim) {
  const bytes = base64urlToBytes(text);
  if (bytes.length !== zDim * 4) throw new FaceError(`z: ${bytes.length / 4} numbers, the model takes ${zDim}`);
  const view = new DataView(bytes.buffer);
  const z = new Float32Array(zDim);
  for (let i = 0; i < zDim; i++) z[i] = view.getFloat32(i * 4, true);
  return checkZ(z, zDim);
}

function checkZ(z, zDim) {
  if (z.length !== zDim) throw new FaceError(`z0: ${z.length} numbers, the model takes ${zDim}`);
  for (const v of z) {
    if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > 1) {
      throw new FaceError('z0: every number must be finite and in [-1, 1]');
    }
  }
  return Float32Array.from(z);
}

function checkValue(what, v, lo, hi) {
  const x = typeof v === 'string' ? Number(v) : v;
  if (typeof x !== 'number' || !Number.isFinite(x) || x < lo || x > hi || (typeof v === 'string' && v.trim() === '')) {
    throw new FaceError(`${what}: ${JSON.stringify(v)} is not a number in [${lo}, ${hi}]`);
  }
  return x;
}

function checkTags(what, entries, names, lo, hi) {
  const out = {};
  for (const [name, v] of entries) {
    if (!names.includes(name)) throw new FaceError(`${what}: this model has no tag ${JSON.stringify(name)}`);
    out[name] = checkValue(`${what} ${name}`, v, lo, hi);
  }
  return out;
}

function tagList(values) {
  return Object.entries(values).filter(([, v]) => v !== 0)
    .map(([name, v]) => `${encodeURIComponent(name)}:${v}`).join(',');
}

function parseTagList(what, text) {
  if (!text) return [];
  return text.split(',').map((item) => {
    const k = item.lastIndexOf(':');
    if (k < 1) throw new FaceError(`${what}: ${JSON.stringify(item)} is not tag:value`);
    let name;
    try { name = decodeURIComponent(item.slice(0, k)); } catch { throw new FaceError(`${what}: bad tag name`); }
    return [name, item.slice(k + 1)];
  });
}

/**
 * A face -> URL hash (without '#').
 * @param {{z0: Float32Array, strength: number, sliders: object, y: object}} face sliders and y map tag
 *   names to values
 */
export function toHash(face) {
  const parts = [`z=${encodeZ(face.z0)}`, `n=${face.strength}`];
  const t = tagList(face.sliders || {});
  const y = tagList(face.y || {});
  if (t) parts.push(`t=${t}`);
  if (y) parts.push(`y=${y}`);
  return parts.join('&');
}

/**
 * URL hash (with or without '#') -> face, checked against the model: {zDim, tags, conditional}.
 * Returns null for an empty hash; throws FaceError for one that is not a face of this model.
 */
export function fromHash(hash, model) {
  const text = hash.replace(/^#/, '');
  if (!text) return null;
  const fields = new URLSearchParams(text);
  if (!fields.has('z')) throw new FaceError('no z');
  return {
    z0: decodeZ(fields.get('z'), model.zDim),
    strength: fields.has('n') ? checkValue('noise strength', fields.get('n'), 0, 1) : 1,
    sliders: checkTags('slider', parseTagList('t', fields.get('t')), model.tags, -1, 1),
    y: checkTags('tag', parseTagList('y', fields.get('y')), model.conditional, 0, 1),
  };
}

/** A face -> the face file's JSON text. */
export function toJSON(face, extra = {}) {
  return JSON.stringify({
    format: FACE_FORMAT, version: 1, ...extra, z0: Array.from(face.z0), strength: face.strength,
    sliders: face.sliders || {}, y: face.y || {},
  }, null, 1) + '\n';
}

/** The face file's text -> face, checked as fromHash checks a hash. */
export function fromJSON(text, model) {
  if (text.length > MAX_FACE_FILE) throw new FaceError(`larger than ${MAX_FACE_FILE / 1024} KB`);
  let doc;
  try { doc = JSON.parse(text); } catch (e) { throw new FaceError(`not JSON (${e.message})`); }
  if (doc === null || typeof doc !== 'object' || doc.format !== FACE_FORMAT) {
    throw new FaceError(`not a face file (its "format" must be "${FACE_FORMAT}")`);
  }
  if (doc.version !== 1) throw new FaceError(`version ${JSON.stringify(doc.version)}: this page reads version 1`);
  if (!Array.isArray(doc.z0)) throw new FaceError('z0: not a list of numbers');
  const obj = (what, v) => {
    if (v === undefined) return [];
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new FaceError(`${what}: not an object`);
    return Object.entries(v);
  };
  return {
    z0: checkZ(doc.z0, model.zDim),
    strength: doc.strength === undefined ? 1 : checkValue('strength', doc.strength, 0, 1),
    sliders: checkTags('sliders', obj('sliders', doc.sliders).map(([k, v]) => [k, checkNumber(v, k)]),
                       model.tags, -1, 1),
    y: checkTags('y', obj('y', doc.y).map(([k, v]) => [k, checkNumber(v, k)]), model.conditional, 0, 1),
  };
}

function checkNumber(v, name) {
  if (typeof v !== 'number') throw new FaceError(`${name}: ${JSON.stringify(v)} is not a number`);
  return v;
}
