// The browser demo: loads an export of tools/export_weights.py (demo.json, generator*.onnx,
// tags.json) and generates faces with onnxruntime-web (files served from node_modules, no network
// beyond this server).
//
// Backends, best first: WebGPU (onnxruntime's WebGPU execution provider) where the browser gives an
// adapter; WebAssembly with threads where the page is cross-origin isolated (the server sends
// COOP/COEP, so SharedArrayBuffer exists); single-threaded WebAssembly otherwise. The status line
// names the one in use and what was missing.
//
// URL parameters: export=<folder URL> (default "export/"), model=f32|f16 (default: the export's
// default_model), backend=webgpu|wasm (default: the best available), threads=N (default: every
// core, up to 4, when cross-origin isolated, else 1).
// URL hash: the current face (see share.js); the page keeps it up to date and opens on it.
// A conditional export (demo.json has "conditional": {"tags": [...]}) gets one control per tag, in
// [0, 1], that sets that tag's entry of the model's second input y.
// An export with an inversion encoder (demo.json has "encoder") gets "bring your own face": an image
// file (button or drop on the face) is cut to its middle square and resized to the model's size in
// the browser, the encoder (fetched on first use) turns it into z0, and the sliders move it.
// Test hook: window.dcganDemo (see the object at the end).
import { compose, lerp, perturb, sampleZ, toRGBA } from './zspace.js';
import { FaceError, fromHash, fromJSON, toHash, toJSON } from './share.js';

const DIST = './node_modules/onnxruntime-web/dist/';
// An ONNX model of one Identity node (opset 11), 70 bytes.
const WARMUP_ONNX = 'CAY6PAoQCgFhEgFiIghJZGVudGl0eRIGd2FybXVwWg8KAWESCgoICAESBAoCCAFiDwoBYhIKCggIARIECgIIAUIECgAQCw==';
const GRID = 10;  // the grid is GRID x GRID faces
const PERTURB = 0.2;  // perturb moves each number of z0 by up to this much
const MORPH_FRAMES = 24;  // frames from one kept face to the next
const MAX_FAVOURITES = 12;

const params = new URLSearchParams(location.search);
const exportUrl = new URL(params.get('export') || 'export/', location.href);
const $ = (id) => document.getElementById(id);
const canvas = $('face');
const ctx = canvas.getContext('2d');
const gridCanvas = $('grid');
const gridCtx = gridCanvas.getContext('2d');

let ort = null;  // the onnxruntime-web module the backend needs, imported in load()

const state = {
  manifest: null, session: null, tags: [], vectors: [], z0: null, z: null, conditional: [],
  backend: null, lost: '', loadMs: null, lastMs: null, gridMs: null, queue: Promise.resolve(),
  marks: {}, drawn: 0, gridDrawn: 0, requested: 0, pending: null, mode: 'face', gridZ0: null,
  favourites: [], morphing: null, note: '', encoder: null, ownPixels: null, encodeMs: null,
};
const MIN_FACE = 24;  // px a side: smaller is no face to redraw (the command line's limit too)

function setStatus(text, kind) {
  $('status').textContent = text;
  if (kind) document.body.dataset.state = kind;
}

async function fetchJSON(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

function pickModel(manifest) {
  const want = params.get('model');
  const byDtype = { f32: 'float32', f16: 'float16' };
  if (!want) return manifest.models[manifest.default_model];
  const entry = Object.values(manifest.models).find((m) => m.file === want || m.dtype === byDtype[want]);
  if (!entry) throw new Error(`model=${want}: this export has ${Object.keys(manifest.models).join(', ')}`);
  return entry;
}

/** Whether a WebGPU adapter runs on the CPU (a fallback adapter, such as SwiftShader). */
function isSoftware(adapter) {
  const info = adapter.info || {};
  return Boolean(adapter.isFallbackAdapter || info.isFallbackAdapter ||
                 /swiftshader/i.test(`${info.vendor} ${info.architecture} ${info.description}`));
}

/** Which backend to try first, and why the better ones are out: {webgpu: bool, threads: n, lost}. */
async function chooseBackend() {
  const want = params.get('backend');
  if (want && want !== 'webgpu' && want !== 'wasm') throw new Error(`backend=${want}: use webgpu or wasm`);
  const lost = [];
  let webgpu = false;
  if (want !== 'wasm') {
    if (!navigator.gpu) lost.push('no WebGPU in this browser');
    else {
      try {
        const adapter = await navigator.gpu.requestAdapter();
        if (!adapter) lost.push('WebGPU has no adapter here');
        else if (isSoftware(adapter) && want !== 'webgpu') {
          // Measured: SwiftShader's WebGPU draws a face in about 2 s, WebAssembly in about 40 ms.
          lost.push('WebGPU skipped: its only adapter is a software one, slower than WebAssembly ' +
                    '(backend=webgpu uses it anyway)');
        } else webgpu = true;
      } catch (e) { lost.push(`WebGPU failed (${e.message})`); }
    }
  }
  const cores = navigator.hardwareConcurrency || 1;
  let threads = self.crossOriginIsolated ? Math.min(4, cores) : 1;
  if (!self.crossOriginIsolated) {
    lost.push('no threads: the page is not cross-origin isolated (serve it with the headers ' +
              'Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)');
  }
  if (params.get('threads')) {
    threads = Number(params.get('threads'));
    if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
      throw new Error(`threads=${params.get('threads')}: give a whole number of threads, 1 to 64`);
    }
  }
  return { webgpu, threads, lost };
}

async function load() {
  const choice = await chooseBackend();
  // The WebGPU build is larger (it carries the WebGPU kernels too): fetch it only where it can run.
  ort = await import(DIST + (choice.webgpu ? 'ort.webgpu.min.mjs' : 'ort.wasm.min.mjs'));
  ort.env.wasm.wasmPaths = new URL(DIST, location.href).href;
  ort.env.wasm.numThreads = choice.threads;
  // WebAssembly runs in a worker, so the page keeps answering (sliders move, events arrive) while
  // a face or a grid is computed; WebGPU runs asynchronously by itself.
  ort.env.wasm.proxy = !choice.webgpu;
  // Compiling onnxruntime's WebAssembly takes most of the load time; a one-node session starts
  // it at once, while the weights download.
  const warmup = ort.InferenceSession.create(Uint8Array.from(atob(WARMUP_ONNX), (c) => c.charCodeAt(0)))
    .then(() => { state.marks.wasm = performance.now(); });
  const manifest = await fetchJSON(new URL('demo.json', exportUrl));
  const model = pickModel(manifest);
  const [bytes, tagDoc] = await Promise.all([
    fetch(new URL(model.file, exportUrl)).then((r) => {
      if (!r.ok) throw new Error(`${model.file}: HTTP ${r.status}`);
      return r.arrayBuffer();
    }).then((b) => { state.marks.weights = performance.now(); return b; }),
    fetchJSON(new URL(manifest.tags, exportUrl)),
    warmup,
  ]);
  state.marks.fetched = performance.now();
  const options = { graphOptimizationLevel: 'all' };
  state.backend = null;
  if (choice.webgpu) {
    try {
      state.session = await ort.InferenceSession.create(new Uint8Array(bytes), { ...options, executionProviders: ['webgpu'] });
      state.backend = 'WebGPU';
    } catch (e) {
      choice.lost.push(`WebGPU failed (${e.message})`);
    }
  }
  if (!state.backend) {
    state.session = await ort.InferenceSession.create(new Uint8Array(bytes), { ...options, executionProviders: ['wasm'] });
    const n = ort.env.wasm.numThreads;
    state.backend = `WebAssembly, ${n} thread${n === 1 ? '' : 's'}`;
  }
  state.lost = choice.lost.join('; ');
  state.manifest = manifest;
  $('face-size').textContent = `${manifest.image_size}\u00d7${manifest.image_size}`;
  $('z-dim').textContent = String(manifest.z_dim);
  state.tags = tagDoc.tags.map((t) => t.name);
  state.vectors = tagDoc.tags.map((t) => Float64Array.from(t.v));
  buildSliders(tagDoc.tags);
  state.conditional = (manifest.conditional && manifest.conditional.tags) || [];
  buildTagControls(state.conditional);
  state.model = model.file;
  $('own-face').hidden = !manifest.encoder;
  state.marks.session = performance.now();
}

const pct = (p) => `${Math.round(p * 100)}%`;

/** What a tag slider does, in words: its measured effect where the export carries it. */
function describeTag(tag) {
  const what = `${tag.name}: adds the direction from generated faces without ${tag.name} to those with it ` +
               `(${tag.count} of the labelled faces had it)`;
  const e = tag.effect;
  if (!e || typeof e.base !== 'number' || !e.shifted) return `${what}; its effect was not measured.`;
  const steps = Object.entries(e.shifted).sort((a, b) => Number(a[0]) - Number(b[0]))
    .map(([s, p]) => `${pct(p)} at +${s}`).join(', ');
  return `${what}. Measured: the tag classifier finds ${tag.name} on ${pct(e.base)} of faces at 0, ${steps}.`;
}

function addSlider(box, { cls, id, name, title, min }) {
  const label = document.createElement('label');
  label.className = cls;
  label.title = title;
  const span = document.createElement('span');
  span.textContent = name;
  const input = document.createElement('input');
  Object.assign(input, { type: 'range', min, max: '1', step: '0.01', value: '0', id });
  input.dataset.tag = name;
  const out = document.createElement('output');
  out.textContent = '0.00';
  input.addEventListener('input', () => { out.textContent = Number(input.value).toFixed(2); requestDraw(); });
  label.append(span, input, out);
  box.append(label);
}

function buildSliders(tags) {
  $('no-tags').hidden = tags.length > 0;
  $('tags-help').hidden = tags.length === 0;
  tags.forEach((tag, i) => addSlider($('sliders'), {
    cls: 'slider', id: `tag-${i}`, name: tag.name, title: describeTag(tag), min: '-1' }));
}

function buildTagControls(names) {
  if (!names.length) return;
  $('no-tags').hidden = true;
  $('tags-help').hidden = false;
  $('tags-help').textContent = 'This model was trained with tags: each control asks it for one (0: not asked, 1: asked).';
  names.forEach((name, i) => addSlider($('sliders'), {
    cls: 'slider conditional', id: `cond-${i}`, name, min: '0',
    title: `ask the model for ${name} (0: not asked, 1: asked)` }));
}

function tagInputs() { return Array.from(document.querySelectorAll('#sliders input[id^="cond-"]')); }
function tagWeights() { return tagInputs().map((el) => Number(el.value)); }
function sliderInputs() { return Array.from(document.querySelectorAll('#sliders input[id^="tag-"]')); }
function sliderValues() { return sliderInputs().map((el) => Number(el.value)); }
function strength() { return Number($('strength').value); }

/** Set a control without the live redraw a user's move makes (the caller draws). */
function setInput(el, value) {
  el.value = String(value);
  el.nextElementSibling.textContent = Number(el.value).toFixed(2);
}

/** The controls as a face (share.js's form): z0, strength, non-zero sliders by tag name. */
function currentFace() {
  const named = (inputs) => Object.fromEntries(inputs.filter((el) => Number(el.value) !== 0)
    .map((el) => [el.dataset.tag, Number(el.value)]));
  return { z0: state.z0, strength: strength(), sliders: named(sliderInputs()), y: named(tagInputs()) };
}

/** Set z0 and every control from a face (tags it does not name go to 0). */
function applyFace(face) {
  state.z0 = Float32Array.from(face.z0);
  setInput($('strength'), face.strength);
  for (const el of sliderInputs()) setInput(el, face.sliders[el.dataset.tag] || 0);
  for (const el of tagInputs()) setInput(el, face.y[el.dataset.tag] || 0);
}

function modelShape() {
  return { zDim: state.manifest.z_dim, tags: state.tags, conditional: state.conditional };
}

/** One forward pass: zs is n faces' z, concatenated (Float32Array(n * D)) -> Float32Array(n * 3 * S * S). */
async function generate(zs, n = 1) {
  const t0 = performance.now();
  const feeds = { z: new ort.Tensor('float32', Float32Array.from(zs), [n, state.manifest.z_dim]) };
  if (state.conditional.length) {
    const one = tagWeights();
    const y = new Float32Array(n * one.length);
    for (let i = 0; i < n; i++) y.set(one, i * one.length);
    feeds.y = new ort.Tensor('float32', y, [n, one.length]);
  }
  const result = await state.session.run(feeds);
  const ms = performance.now() - t0;
  if (n === 1) state.lastMs = ms; else state.gridMs = ms;
  return result.x.data;
}

function paint(x) {
  const size = state.manifest.image_size;
  if (canvas.width !== size) {  // the page is laid out for 96 px; larger models draw at their size
    canvas.width = size;
    canvas.height = size;
  }
  const img = ctx.createImageData(size, size);
  toRGBA(x, size, img.data);
  ctx.putImageData(img, 0, 0);
}

function paintGrid(x) {
  const size = state.manifest.image_size;
  const width = size * GRID;
  if (gridCanvas.width !== width) {
    gridCanvas.width = width;
    gridCanvas.height = width;
  }
  const img = gridCtx.createImageData(width, width);
  for (let i = 0; i < GRID * GRID; i++) {
    toRGBA(x, size, img.data, { index: i, left: (i % GRID) * size, top: Math.floor(i / GRID) * size, width });
  }
  gridCtx.putImageData(img, 0, 0);
}

// Runs are queued: onnxruntime allows one run per session at a time.
function enqueue(task) {
  const next = state.queue.then(task);
  state.queue = next.catch(() => {});
  return next;
}

/** Draw the current view (the face, or the grid) from the controls as they are when the run starts. */
async function drawNow() {
  state.z = compose(state.z0, strength(), sliderValues(), state.vectors);
  if (state.mode === 'grid') {
    const d = state.manifest.z_dim;
    const zs = new Float32Array(GRID * GRID * d);
    for (let i = 0; i < GRID * GRID; i++) {
      zs.set(compose(state.gridZ0.subarray(i * d, (i + 1) * d), strength(), sliderValues(), state.vectors), i * d);
    }
    paintGrid(await generate(zs, GRID * GRID));
    state.gridDrawn += 1;
  } else {
    paint(await generate(state.z));
    state.drawn += 1;
  }
  updateHash();
  if (state.loadMs !== null) showTimes();
}

function draw() { return enqueue(drawNow); }

// Browsers refuse history updates beyond about 100 in 10 s, and a drag draws faster than that: the
// hash follows the face at most every HASH_MS, and always ends on the last one.
const HASH_MS = 250;
let hashTimer = null;
let hashAt = -Infinity;
function updateHash() {
  if (hashTimer !== null) return;
  const wait = hashAt + HASH_MS - performance.now();
  const write = () => {
    hashTimer = null;
    hashAt = performance.now();
    history.replaceState(null, '', '#' + toHash(currentFace()));
  };
  if (wait <= 0) write(); else hashTimer = setTimeout(write, wait);
}

/**
 * The live redraw: a control moved. At most one draw waits behind the one running, and it reads the
 * controls when it starts, so a fast drag never queues up stale faces.
 */
function requestDraw() {
  state.requested += 1;
  if (!state.pending) {
    state.pending = enqueue(() => { state.pending = null; return drawNow(); }).catch(report);
  }
  return state.pending;
}

function showTimes() {
  const parts = [`${state.model} on ${state.backend}: loaded in ${(state.loadMs / 1000).toFixed(2)} s`];
  if (state.lastMs !== null) parts.push(`${state.lastMs.toFixed(1)} ms per face`);
  if (state.gridMs !== null) parts.push(`${state.gridMs.toFixed(0)} ms per ${GRID * GRID}-face grid`);
  let text = parts.join(', ');
  if (state.lost) text += ` (${state.lost})`;
  if (state.note) text += `. ${state.note}`;
  setStatus(text, 'ready');
}

function note(text) {
  state.note = text;
  if (state.loadMs !== null) showTimes();
}

function shuffle() {
  if (state.mode === 'grid') state.gridZ0 = sampleZ(GRID * GRID * state.manifest.z_dim);
  else state.z0 = sampleZ(state.manifest.z_dim);
  return draw();
}

function reset() {
  for (const el of sliderInputs().concat(tagInputs())) setInput(el, 0);
  return draw();
}

function perturbFace() {
  setMode('face');
  state.z0 = perturb(state.z0, PERTURB);
  return draw();
}

function setMode(mode) {
  state.mode = mode;
  document.body.dataset.mode = mode;
  canvas.hidden = mode !== 'face';
  gridCanvas.hidden = mode !== 'grid';
  $('grid-mode').setAttribute('aria-pressed', String(mode === 'grid'));
  if (mode === 'grid' && !state.gridZ0) {
    // The current face is the grid's first; the other 99 are new.
    state.gridZ0 = sampleZ(GRID * GRID * state.manifest.z_dim);
    state.gridZ0.set(state.z0, 0);
  }
}

function toggleGrid() {
  setMode(state.mode === 'grid' ? 'face' : 'grid');
  return draw();
}

/** Make face i of the grid the current face, and show it. */
function pickFromGrid(i) {
  const d = state.manifest.z_dim;
  state.z0 = state.gridZ0.slice(i * d, (i + 1) * d);
  setMode('face');
  return draw();
}

function gridClick(event) {
  const box = gridCanvas.getBoundingClientRect();
  const col = Math.min(GRID - 1, Math.floor((event.clientX - box.left) / box.width * GRID));
  const row = Math.min(GRID - 1, Math.floor((event.clientY - box.top) / box.height * GRID));
  return pickFromGrid(row * GRID + col);
}

function download(name, href) {
  const a = document.createElement('a');
  a.download = name;
  a.href = href;
  a.click();
}

/** The face canvas as PNG: at its size, or 4x with nearest (sharp) or smooth upscaling. */
function saveImage() {
  const how = $('save-size').value;
  if (how === '1') return download('face.png', canvas.toDataURL('image/png'));
  const big = document.createElement('canvas');
  big.width = canvas.width * 4;
  big.height = canvas.height * 4;
  const c = big.getContext('2d');
  const smooth = how === '4-smooth';
  c.imageSmoothingEnabled = smooth;
  if (smooth) c.imageSmoothingQuality = 'high';
  c.drawImage(canvas, 0, 0, big.width, big.height);
  return download(`face-4x-${smooth ? 'smooth' : 'sharp'}.png`, big.toDataURL('image/png'));
}

function exportFace() {
  const text = toJSON(currentFace(), { model: state.model });
  download('face.json', URL.createObjectURL(new Blob([text], { type: 'application/json' })));
}

/** Open a face file; a bad one leaves the face as it was and says what is wrong with it. */
async function importFace(file) {
  let face;
  try {
    face = fromJSON(await file.text(), modelShape());
  } catch (e) {
    if (!(e instanceof FaceError)) throw e;
    setStatus(`error: ${file.name}: ${e.message}`, 'error');
    return false;
  }
  applyFace(face);
  setMode('face');
  state.note = `opened ${file.name}`;
  await draw();
  return true;
}

/** The encoder's session, made on first use (its weights are fetched then, not at load). */
async function encoderSession() {
  if (!state.encoder) {
    const entry = state.manifest.encoder;
    state.encoder = fetch(new URL(entry.file, exportUrl)).then((r) => {
      if (!r.ok) throw new Error(`${entry.file}: HTTP ${r.status}`);
      return r.arrayBuffer();
    }).then((b) => ort.InferenceSession.create(new Uint8Array(b), { graphOptimizationLevel: 'all', executionProviders: ['wasm'] }));
    state.encoder.catch(() => { state.encoder = null; });
  }
  return state.encoder;
}

/** An image file as the model's input: its middle square resized to S x S, RGBA bytes (S * S * 4). */
async function facePixels(file) {
  let bitmap;
  try {
    // Embedded colour profiles are ignored, as the command line's reader (PIL) ignores them.
    bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (e) {
    throw new FaceError('not an image this browser can read');
  }
  const { width, height } = bitmap;
  if (Math.min(width, height) < MIN_FACE) {
    throw new FaceError(`${width}x${height} pixels is too small for a face (at least ${MIN_FACE} a side)`);
  }
  const size = state.manifest.image_size;
  const side = Math.min(width, height);
  const c = document.createElement('canvas');
  c.width = size;
  c.height = size;
  const g = c.getContext('2d', { willReadFrequently: true });
  g.fillStyle = '#ffffff';  // transparent parts on white, as the command line composites them
  g.fillRect(0, 0, size, size);
  g.imageSmoothingEnabled = true;
  g.imageSmoothingQuality = 'high';
  g.drawImage(bitmap, Math.floor((width - side) / 2), Math.floor((height - side) / 2), side, side, 0, 0, size, size);
  bitmap.close();
  return { rgba: g.getImageData(0, 0, size, size).data, cropped: width !== height, width, height };
}

/** z from the encoder for RGBA bytes: x = (pixel - 128) / 128, channels first. */
async function encode(rgba) {
  const size = state.manifest.image_size;
  const plane = size * size;
  const x = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let ch = 0; ch < 3; ch++) x[ch * plane + i] = (rgba[4 * i + ch] - 128) / 128;
  }
  const session = await encoderSession();
  const result = await enqueue(async () => {
    const t0 = performance.now();
    const out = await session.run({ x: new ort.Tensor('float32', x, [1, 3, size, size]) });
    state.encodeMs = performance.now() - t0;
    return out;
  });
  return Float32Array.from(result.z.data, (v) => Math.min(1, Math.max(-1, v)));
}

/** Bring your own face: the image's z (from the encoder) becomes z0 at noise strength 1. */
async function ownFace(file) {
  let face;
  try {
    face = await facePixels(file);
  } catch (e) {
    if (!(e instanceof FaceError)) throw e;
    setStatus(`error: ${file.name}: ${e.message}`, 'error');
    return false;
  }
  stopMorph();
  state.ownPixels = face.rgba;
  state.z0 = await encode(face.rgba);
  setInput($('strength'), 1);
  setMode('face');
  state.note = `your face from ${file.name}${face.cropped ? ` (its middle square of ${face.width}x${face.height})` : ''}: ` +
    'the encoder\'s z, no refinement (tools/invert.py refines it further)';
  await draw();
  return true;
}

/** A dropped file: a face file (.json) opens as one, anything else as your own face. */
function dropFile(file) {
  if (/\.json$/i.test(file.name) || file.type === 'application/json') return importFace(file);
  if (!state.manifest.encoder) {
    setStatus(`error: ${file.name}: this export has no encoder (export with tools/export_weights.py --encoder)`, 'error');
    return Promise.resolve(false);
  }
  return ownFace(file);
}

function applyHash() {
  let face;
  try {
    face = fromHash(location.hash, modelShape());
  } catch (e) {
    if (!(e instanceof FaceError)) throw e;
    state.note = `the link's face was not read (${e.message}); showing another`;
    return false;
  }
  if (!face) return false;
  applyFace(face);
  return true;
}

function keep() {
  const face = currentFace();
  const entry = { face: { ...face, z0: Float32Array.from(face.z0) }, z: Float32Array.from(state.z) };
  if (state.favourites.length >= MAX_FAVOURITES) {
    state.favourites.shift();
    $('favourites').firstElementChild.remove();
  }
  state.favourites.push(entry);
  const button = document.createElement('button');
  button.title = 'make this the current face';
  const thumb = document.createElement('canvas');
  thumb.width = canvas.width;
  thumb.height = canvas.height;
  thumb.getContext('2d').drawImage(canvas, 0, 0);
  button.append(thumb);
  button.addEventListener('click', () => {
    stopMorph();
    applyFace(entry.face);
    setMode('face');
    draw().catch(report);
  });
  $('favourites').append(button);
}

function stopMorph() {
  if (state.morphing) state.morphing.stop = true;
}

/** Animate through the kept faces in order (and back to the first), MORPH_FRAMES frames a step. */
async function morph() {
  if (state.morphing) { stopMorph(); return; }
  if (state.favourites.length < 2) { note('keep two faces or more (keep \u2665) to morph between them'); return; }
  setMode('face');
  const run = { stop: false };
  state.morphing = run;
  $('morph').setAttribute('aria-pressed', 'true');
  const stops = state.favourites.concat([state.favourites[0]]);
  try {
    for (let k = 0; k + 1 < stops.length && !run.stop; k++) {
      for (let f = 1; f <= MORPH_FRAMES && !run.stop; f++) {
        const z = lerp(stops[k].z, stops[k + 1].z, f / MORPH_FRAMES);
        await enqueue(async () => {
          state.z = z;
          paint(await generate(z));
          state.drawn += 1;
        });
        await new Promise((r) => requestAnimationFrame(r));
      }
    }
  } finally {
    state.morphing = null;
    $('morph').setAttribute('aria-pressed', 'false');
  }
  if (!run.stop) {  // the animation ends on the first kept face, which becomes the current one
    applyFace(state.favourites[0].face);
    await draw();
  }
}

function wire() {
  const on = (id, fn) => $(id).addEventListener('click', (e) => {
    state.note = '';  // a note (a file opened, a link not read) lasts until the next button
    Promise.resolve(fn(e)).catch(report);
  });
  on('shuffle', () => { stopMorph(); return shuffle(); });
  on('reset', () => { stopMorph(); return reset(); });
  on('perturb', () => { stopMorph(); return perturbFace(); });
  on('grid-mode', () => { stopMorph(); return toggleGrid(); });
  on('keep', keep);
  on('morph', morph);
  on('save', saveImage);
  on('export', exportFace);
  on('import', () => $('import-file').click());
  $('import-file').addEventListener('change', (e) => {
    const file = e.target.files[0];
    e.target.value = '';
    if (file) importFace(file).catch(report);
  });
  on('own-face', () => $('own-file').click());
  $('own-file').addEventListener('change', (e) => {
    const file = e.target.files[0];
    e.target.value = '';
    if (file) ownFace(file).catch(report);
  });
  const view = document.querySelector('.view');
  view.addEventListener('dragover', (e) => { e.preventDefault(); view.classList.add('dropping'); });
  view.addEventListener('dragleave', () => view.classList.remove('dropping'));
  view.addEventListener('drop', (e) => {
    e.preventDefault();
    view.classList.remove('dropping');
    const file = e.dataTransfer && e.dataTransfer.files[0];
    state.note = '';
    if (file) dropFile(file).catch(report);
  });
  gridCanvas.addEventListener('click', (e) => { gridClick(e).catch(report); });
  $('strength').addEventListener('input', (e) => {
    e.target.nextElementSibling.textContent = Number(e.target.value).toFixed(2);
    requestDraw();
  });
  window.addEventListener('hashchange', () => {
    if (location.hash.slice(1) === toHash(currentFace())) return;  // our own replaceState
    if (applyHash()) draw().catch(report);
  });
  for (const el of document.querySelectorAll('button, select')) el.disabled = false;
}

function report(err) {
  console.error(err);
  setStatus(`error: ${err.message || err}`, 'error');
}

function fail(err) {
  report(err);
  throw err;
}

async function main() {
  state.marks.start = performance.now();
  await load();
  wire();
  if (!applyHash()) {
    const first = state.manifest.first_z;
    if (Array.isArray(first) && first.length === state.manifest.z_dim) {
      state.z0 = Float32Array.from(first);  // the model's chosen first face; shuffle draws random ones
    } else {
      state.z0 = sampleZ(state.manifest.z_dim);
    }
  }
  await draw();
  state.loadMs = performance.now();
  showTimes();
}

// The test and benchmark hook. Values cross as plain arrays; z0 is stored as float32, so pass
// float32 values to set it exactly.
window.dcganDemo = {
  ready: main().catch(fail),
  /** Milliseconds from navigation start until the first face was on the canvas. */
  get loadMs() { return state.loadMs; },
  /** Milliseconds of the last forward pass of one face, and of one grid (session.run only). */
  get lastMs() { return state.lastMs; },
  get gridMs() { return state.gridMs; },
  /** Milliseconds from navigation start: start (script ran), wasm (WebAssembly compiled), weights
   *  (downloaded), fetched (both), session (ready); loadMs adds the first face. */
  get marks() { return { ...state.marks }; },
  /** Faces drawn on the canvas so far, grids drawn, and live redraws asked for (slider moves). */
  get drawn() { return state.drawn; },
  get gridDrawn() { return state.gridDrawn; },
  get requested() { return state.requested; },
  /** The backend in words ("WebGPU", "WebAssembly, 2 threads") and what better one was missing. */
  get backend() { return state.backend; },
  get lost() { return state.lost; },
  get threads() { return ort.env.wasm.numThreads; },
  get isolated() { return self.crossOriginIsolated; },
  get model() { return state.model; },
  get tags() { return state.tags.slice(); },
  get mode() { return state.mode; },
  get favourites() { return state.favourites.length; },
  get morphing() { return state.morphing !== null; },
  /** Whether the export has an inversion encoder, and the RGBA bytes last fed to it (S * S * 4). */
  get hasEncoder() { return Boolean(state.manifest && state.manifest.encoder); },
  ownPixels: () => (state.ownPixels ? Array.from(state.ownPixels) : null),
  /** Milliseconds of the encoder's last run (session.run only; the first upload also fetches it). */
  get encodeMs() { return state.encodeMs; },
  /** Resolves when every queued run (live redraws included) has finished. */
  idle: () => state.queue,
  /** Holds the run queue: runs asked for from now wait until the returned function is called. */
  hold() {
    let release;
    const gate = new Promise((resolve) => { release = resolve; });
    enqueue(() => gate);
    return release;
  },
  getZ0: () => Array.from(state.z0),
  setZ0(values) {
    if (values.length !== state.manifest.z_dim) throw new Error(`z0: expected ${state.manifest.z_dim} numbers`);
    state.z0 = Float32Array.from(values);
  },
  getZ: () => Array.from(state.z),
  getGridZ0: () => (state.gridZ0 ? Array.from(state.gridZ0) : null),
  setGridZ0(values) {
    if (values.length !== GRID * GRID * state.manifest.z_dim) throw new Error('grid z0: wrong length');
    state.gridZ0 = Float32Array.from(values);
  },
  setMode,
  setStrength(v) { setInput($('strength'), v); },
  setSliders(values) { sliderInputs().forEach((el, i) => setInput(el, values[i])); },
  sliderValues,
  /** A conditional export's tag names (y's order) and the controls' values; [] otherwise. */
  get conditionalTags() { return state.conditional.slice(); },
  tagWeights,
  setTagWeights(values) { tagInputs().forEach((el, i) => setInput(el, values[i])); },
  draw, shuffle, reset, requestDraw,
  hash: () => toHash(currentFace()),
  /** The canvas as RGBA bytes, row-major (S * S * 4); grid: the grid canvas (10 S * 10 S * 4). */
  pixels: () => Array.from(ctx.getImageData(0, 0, canvas.width, canvas.height).data),
  gridPixels: () => Array.from(gridCtx.getImageData(0, 0, gridCanvas.width, gridCanvas.height).data),
  compose: (z0, s, sliders, vectors) => Array.from(compose(z0, s, sliders, vectors)),
  generate: async (z) => Array.from(await enqueue(() => generate(Float32Array.from(z)))),
  /** Mean milliseconds per run of n faces (batch) over `runs` runs from random z, after one warm-up. */
  async bench(runs, n = 1) {
    return enqueue(async () => {
      const d = state.manifest.z_dim;
      await generate(sampleZ(n * d), n);
      const t0 = performance.now();
      for (let i = 0; i < runs; i++) await generate(sampleZ(n * d), n);
      return (performance.now() - t0) / runs;
    });
  },
};
