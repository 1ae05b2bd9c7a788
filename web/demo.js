// The browser demo: loads an export of tools/export_weights.py (demo.json, generator*.onnx,
// tags.json) and generates faces with onnxruntime-web (WebAssembly, files served from
// node_modules, no network beyond this server).
//
// URL parameters: export=<folder URL> (default "export/"), model=f32|f16 (default: the export's
// default_model), threads=N (default: onnxruntime's, half the cores up to 4 when the page is
// cross-origin isolated, else 1).
// A conditional export (demo.json has "conditional": {"tags": [...]}) gets one control per tag, in
// [0, 1], that sets that tag's entry of the model's second input y.
// Test hook: window.dcganDemo (see the object at the end).
import * as ort from './node_modules/onnxruntime-web/dist/ort.wasm.min.mjs';
import { compose, sampleZ, toRGBA } from './zspace.js';

// An ONNX model of one Identity node (opset 11), 70 bytes.
const WARMUP_ONNX = 'CAY6PAoQCgFhEgFiIghJZGVudGl0eRIGd2FybXVwWg8KAWESCgoICAESBAoCCAFiDwoBYhIKCggIARIECgIIAUIECgAQCw==';

const params = new URLSearchParams(location.search);
const exportUrl = new URL(params.get('export') || 'export/', location.href);
const $ = (id) => document.getElementById(id);
const canvas = $('face');
const ctx = canvas.getContext('2d');

const state = {
  manifest: null, session: null, tags: [], vectors: [], z0: null, z: null,
  loadMs: null, lastMs: null, queue: Promise.resolve(), marks: {}, drawn: 0, conditional: [],
};

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

async function load() {
  const dist = new URL('./node_modules/onnxruntime-web/dist/', location.href).href;
  ort.env.wasm.wasmPaths = dist;
  // onnxruntime's default: half the cores (at most 4) when cross-origin isolated, else 1. On a
  // small machine that leaves a core for the page and the browser, which is faster than using both.
  if (params.get('threads')) ort.env.wasm.numThreads = Number(params.get('threads'));
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
  state.session = await ort.InferenceSession.create(new Uint8Array(bytes), {
    executionProviders: ['wasm'], graphOptimizationLevel: 'all',
  });
  state.manifest = manifest;
  document.getElementById('face-size').textContent = `${manifest.image_size}\u00d7${manifest.image_size}`;
  document.getElementById('z-dim').textContent = String(manifest.z_dim);
  state.tags = tagDoc.tags.map((t) => t.name);
  state.vectors = tagDoc.tags.map((t) => Float64Array.from(t.v));
  buildSliders(tagDoc.tags);
  state.conditional = (manifest.conditional && manifest.conditional.tags) || [];
  buildTagControls(state.conditional);
  state.model = model.file;
  state.marks.session = performance.now();
}

function buildSliders(tags) {
  const box = $('sliders');
  $('no-tags').hidden = tags.length > 0;
  tags.forEach((tag, i) => {
    const label = document.createElement('label');
    label.className = 'slider';
    label.title = `${tag.name} (${tag.count} faces)`;
    const name = document.createElement('span');
    name.textContent = tag.name;
    const input = document.createElement('input');
    Object.assign(input, { type: 'range', min: '-1', max: '1', step: '0.01', value: '0', id: `tag-${i}` });
    input.dataset.tag = tag.name;
    const out = document.createElement('output');
    out.textContent = '0.00';
    input.addEventListener('input', () => { out.textContent = Number(input.value).toFixed(2); });
    label.append(name, input, out);
    box.append(label);
  });
}

function buildTagControls(names) {
  if (!names.length) return;
  $('no-tags').hidden = true;
  const box = $('sliders');
  names.forEach((name, i) => {
    const label = document.createElement('label');
    label.className = 'slider conditional';
    label.title = `ask the model for ${name} (0: not asked, 1: asked)`;
    const span = document.createElement('span');
    span.textContent = name;
    const input = document.createElement('input');
    Object.assign(input, { type: 'range', min: '0', max: '1', step: '0.01', value: '0', id: `cond-${i}` });
    input.dataset.tag = name;
    const out = document.createElement('output');
    out.textContent = '0.00';
    input.addEventListener('input', () => { out.textContent = Number(input.value).toFixed(2); });
    label.append(span, input, out);
    box.append(label);
  });
}

function tagInputs() { return Array.from(document.querySelectorAll('#sliders input[id^="cond-"]')); }
function tagWeights() { return tagInputs().map((el) => Number(el.value)); }

function sliderInputs() { return Array.from(document.querySelectorAll('#sliders input[id^="tag-"]')); }
function sliderValues() { return sliderInputs().map((el) => Number(el.value)); }
function strength() { return Number($('strength').value); }

/** One forward pass: z Float32Array(D) -> Float32Array(3 * S * S), the raw generator output. */
async function generate(z) {
  const t0 = performance.now();
  const feeds = { z: new ort.Tensor('float32', Float32Array.from(z), [1, z.length]) };
  if (state.conditional.length) {
    const y = Float32Array.from(tagWeights());
    feeds.y = new ort.Tensor('float32', y, [1, y.length]);
  }
  const result = await state.session.run(feeds);
  state.lastMs = performance.now() - t0;
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

// Runs are queued: onnxruntime allows one run per session at a time.
function enqueue(task) {
  const next = state.queue.then(task);
  state.queue = next.catch(() => {});
  return next;
}

function draw() {
  return enqueue(async () => {
    state.z = compose(state.z0, strength(), sliderValues(), state.vectors);
    paint(await generate(state.z));
    state.drawn += 1;
    if (state.loadMs !== null) showTimes();
  });
}

function showTimes() {
  setStatus(`${state.model}: loaded in ${(state.loadMs / 1000).toFixed(2)} s, ` +
            `${state.lastMs.toFixed(1)} ms per face (${ort.env.wasm.numThreads} thread(s))`, 'ready');
}

function shuffle() {
  state.z0 = sampleZ(state.manifest.z_dim);
  return draw();
}

function reset() {
  for (const el of sliderInputs().concat(tagInputs())) {
    el.value = '0';
    el.dispatchEvent(new Event('input'));
  }
  return draw();
}

function save() {
  const a = document.createElement('a');
  a.download = 'face.png';
  a.href = canvas.toDataURL('image/png');
  a.click();
}

function wire() {
  $('draw').addEventListener('click', () => draw().catch(fail));
  $('shuffle').addEventListener('click', () => shuffle().catch(fail));
  $('reset').addEventListener('click', () => reset().catch(fail));
  $('save').addEventListener('click', save);
  $('strength').addEventListener('input', (e) => {
    e.target.nextElementSibling.textContent = Number(e.target.value).toFixed(2);
  });
  for (const id of ['draw', 'shuffle', 'reset', 'save']) $(id).disabled = false;
}

function fail(err) {
  console.error(err);
  setStatus(`error: ${err.message || err}`, 'error');
  throw err;
}

async function main() {
  state.marks.start = performance.now();
  await load();
  wire();
  const first = state.manifest.first_z;
  if (Array.isArray(first) && first.length === state.manifest.z_dim) {
    state.z0 = Float32Array.from(first);  // the model's chosen first face; Shuffle draws random ones
    await draw();
  } else {
    await shuffle();
  }
  state.loadMs = performance.now();
  showTimes();
}

// The test and benchmark hook. Values cross as plain arrays; z0 is stored as float32, so pass
// float32 values to set it exactly.
window.dcganDemo = {
  ready: main().catch(fail),
  /** Milliseconds from navigation start until the first face was on the canvas. */
  get loadMs() { return state.loadMs; },
  /** Milliseconds of the last forward pass (session.run only). */
  get lastMs() { return state.lastMs; },
  /** Milliseconds from navigation start: start (script ran), wasm (WebAssembly compiled), weights
   *  (downloaded), fetched (both), session (ready); loadMs adds the first face. */
  get marks() { return { ...state.marks }; },
  /** Faces drawn on the canvas so far (tests wait for it to grow after a click). */
  get drawn() { return state.drawn; },
  get threads() { return ort.env.wasm.numThreads; },
  get model() { return state.model; },
  get tags() { return state.tags.slice(); },
  getZ0: () => Array.from(state.z0),
  setZ0(values) {
    if (values.length !== state.manifest.z_dim) throw new Error(`z0: expected ${state.manifest.z_dim} numbers`);
    state.z0 = Float32Array.from(values);
  },
  getZ: () => Array.from(state.z),
  setStrength(v) { $('strength').value = String(v); },
  setSliders(values) {
    sliderInputs().forEach((el, i) => { el.value = String(values[i]); el.dispatchEvent(new Event('input')); });
  },
  sliderValues,
  /** A conditional export's tag names (y's order) and the controls' values; [] otherwise. */
  get conditionalTags() { return state.conditional.slice(); },
  tagWeights,
  setTagWeights(values) {
    tagInputs().forEach((el, i) => { el.value = String(values[i]); el.dispatchEvent(new Event('input')); });
  },
  draw, shuffle, reset,
  /** The canvas as RGBA bytes, row-major (S * S * 4). */
  pixels: () => Array.from(ctx.getImageData(0, 0, canvas.width, canvas.height).data),
  compose: (z0, s, sliders, vectors) => Array.from(compose(z0, s, sliders, vectors)),
  generate: async (z) => Array.from(await enqueue(() => generate(Float32Array.from(z)))),
  /** Mean milliseconds per face over n forward passes from random z (after one warm-up). */
  async bench(n) {
    return enqueue(async () => {
      await generate(sampleZ(state.manifest.z_dim));
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await generate(sampleZ(state.manifest.z_dim));
      return (performance.now() - t0) / n;
    });
  },
};
