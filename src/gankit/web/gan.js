// gan.js: gankit's small sampling library for the browser, on onnxruntime-web (wasm, one thread).
//
//   import * as gan from "./gan.js";
//   const model = await gan.load(".");                  // reads generator.json and generator.onnx
//   const z = gan.latents(16, model.zDim, 7, 0.8);       // seed 7, truncation 0.8
//   const y = gan.oneHot([3], model.numClasses, 16);     // class 3 (conditional models only)
//   const out = await model.sample(z, y);                // {data: Float32Array, dims: [16, C, H, W]}
//   ctx.putImageData(gan.toImageData(out, 0), 0, 0);     // the first image
//
// Latents are N(0, 1) draws from a seeded generator of this file's own (mulberry32 and Box-Muller):
// the same seed gives the same latents in every browser, but not the same as gankit's Python seeds.
// Images come out in [-1, 1], NCHW; 2D generators give points [B, 2].
import * as ort from "./ort.wasm.bundle.min.mjs";

ort.env.wasm.numThreads = 1; // one thread: no cross-origin isolation needed
// the bundle holds the wasm glue; the binary sits beside this file
ort.env.wasm.wasmPaths = { wasm: new URL("./ort-wasm-simd-threaded.wasm", import.meta.url).href };

/** Load an export folder (a URL ending in the folder, e.g. "." or "models/digits/"). */
export async function load(url = ".") {
  const base = url.endsWith("/") ? url : url + "/";
  const res = await fetch(base + "generator.json");
  if (!res.ok) throw new Error(`gan.js: ${base}generator.json: HTTP ${res.status}`);
  const meta = await res.json();
  if (meta.format !== "gankit-generator" || !meta.onnx) {
    throw new Error(`gan.js: ${base}generator.json is not a gankit export with an ONNX graph`);
  }
  const opts = { executionProviders: ["wasm"] };
  const session = await ort.InferenceSession.create(base + meta.onnx.file, opts);
  let w = null; // a generator whose latent space is w (StyleGAN2): its mapping and synthesis halves
  if (meta.onnx_w) {
    w = { mapping: await ort.InferenceSession.create(base + meta.onnx_w.mapping.file, opts),
          synthesis: await ort.InferenceSession.create(base + meta.onnx_w.synthesis.file, opts) };
  }
  return new Model(meta, session, w);
}

export class Model {
  constructor(meta, session, w = null) {
    this.meta = meta;
    this.session = session;
    this.w = w;
    // where edits and projections live: "w" (mapping network's output, StyleGAN2) or "z"
    this.space = w ? "w" : "z";
    this.latentDim = w ? meta.onnx_w.synthesis.inputs.ws[2] : meta.z_dim;
    this.numWs = w ? meta.onnx_w.synthesis.inputs.ws[1] : 1;
    this.zDim = meta.z_dim;
    this.numClasses = meta.num_classes;
    this.classNames = meta.class_names || [];
    this.kind = meta.kind; // "image" or "points"
    this.shape = meta.output.shape; // [C, H, W] or [2]
    this.truncatesW = "psi" in meta.onnx.inputs; // truncation in W (StyleGAN2): psi is an input, z stays unscaled
  }

  /** Run the generator: z Float32Array [B * zDim]; y Float32Array [B * numClasses] (class weights) or null;
   * psi: the truncation of a generator that truncates in W (the others take z already scaled: see latents). */
  async sample(z, y = null, psi = 1) {
    const batch = z.length / this.zDim;
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`gan.js: z has ${z.length} values, not a multiple of ${this.zDim}`);
    const feeds = { z: new ort.Tensor("float32", z, [batch, this.zDim]) };
    if (this.numClasses) {
      if (!y || y.length !== batch * this.numClasses) throw new Error(`gan.js: y must hold ${batch} x ${this.numClasses} class weights`);
      feeds.y = new ort.Tensor("float32", y, [batch, this.numClasses]);
    }
    if (this.truncatesW) feeds.psi = new ort.Tensor("float32", Float32Array.of(psi), [1]);
    const out = await this.session.run(feeds);
    const t = out[this.meta.onnx.output.name];
    return { data: t.data, dims: t.dims };
  }

  /** The directions stored in the export for `method` ("sefa", "ganspace"): {vectors: [Float32Array], std, values}, or null. */
  directions(method = "sefa") {
    const d = (this.meta.directions || {})[method];
    return d ? { method, space: d.space, vectors: d.vectors.map((v) => Float32Array.from(v)), std: d.std, values: d.values } : null;
  }

  /** The latents in this model's space of z (and y, psi) as sample() would use them: z itself, or w from the mapping network. */
  async latentOf(z, y = null, psi = 1) {
    if (!this.w) return Float32Array.from(z);
    const batch = z.length / this.zDim;
    const feeds = { z: new ort.Tensor("float32", z, [batch, this.zDim]), psi: new ort.Tensor("float32", Float32Array.of(psi), [1]) };
    if (this.numClasses) feeds.y = new ort.Tensor("float32", y, [batch, this.numClasses]);
    return (await this.w.mapping.run(feeds)).w.data;
  }

  /** The images of latents in this model's space [B * latentDim] (y: class weights, for a conditional z model). */
  async render(latent, y = null) {
    if (!this.w) return this.sample(latent, y, 1);
    const batch = latent.length / this.latentDim, ws = new Float32Array(batch * this.numWs * this.latentDim);
    for (let b = 0; b < batch; b++) {
      for (let l = 0; l < this.numWs; l++) ws.set(latent.subarray(b * this.latentDim, (b + 1) * this.latentDim), (b * this.numWs + l) * this.latentDim);
    }
    const out = await this.w.synthesis.run({ ws: new ort.Tensor("float32", ws, [batch, this.numWs, this.latentDim]) });
    return { data: out.images.data, dims: out.images.dims };
  }
}

/** `latent` [dim] moved along directions: amounts[k] standard deviations of the prior along direction k. */
export function edit(latent, dirs, amounts) {
  const out = Float32Array.from(latent);
  amounts.forEach((a, k) => {
    if (!a) return;
    const v = dirs.vectors[k], s = a * dirs.std[k];
    for (let i = 0; i < out.length; i++) out[i] += s * v[i];
  });
  return out;
}

/** A seeded stream of uniform numbers in (0, 1): mulberry32. */
export function uniform(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
}

/** n standard normal draws from `seed` (Box-Muller). */
export function randn(n, seed) {
  const u = uniform(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u()));
    const th = 2 * Math.PI * u();
    out[i] = r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = r * Math.sin(th);
  }
  return out;
}

/** `batch` latents of `zDim` from `seed`, scaled by `truncation` (psi < 1: less variety, cleaner samples). */
export function latents(batch, zDim, seed, truncation = 1) {
  const z = randn(batch * zDim, seed);
  for (let i = 0; i < z.length; i++) z[i] *= truncation;
  return z;
}

/** Class weights [batch * k]: `labels` (one per row, or one for all) as one-hot rows. */
export function oneHot(labels, k, batch = labels.length) {
  const y = new Float32Array(batch * k);
  for (let i = 0; i < batch; i++) y[i * k + labels[i % labels.length]] = 1;
  return y;
}

/** Class weights [batch * k] blending class a into class b: (1 - t) * a + t * b on every row. */
export function blend(a, b, t, k, batch) {
  const y = new Float32Array(batch * k);
  for (let i = 0; i < batch; i++) {
    y[i * k + a] += 1 - t;
    y[i * k + b] += t;
  }
  return y;
}

/** Spherical interpolation between latent vectors a and b (Float32Array), t in [0, 1]. */
export function slerp(a, b, t) {
  let na = 0, nb = 0, dot = 0;
  for (let i = 0; i < a.length; i++) { na += a[i] * a[i]; nb += b[i] * b[i]; dot += a[i] * b[i]; }
  na = Math.sqrt(na); nb = Math.sqrt(nb);
  const omega = Math.acos(Math.min(1, Math.max(-1, dot / (na * nb))));
  const so = Math.sin(omega);
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    out[i] = so < 1e-6 ? (1 - t) * a[i] + t * b[i] : (Math.sin((1 - t) * omega) / so) * a[i] + (Math.sin(t * omega) / so) * b[i];
  }
  return out;
}

/** Image `index` of a sample() result as ImageData (values in [-1, 1] to 0..255, as gankit's Python does). */
export function toImageData(out, index) {
  const [, c, h, w] = out.dims;
  const img = new ImageData(w, h);
  const plane = h * w, base = index * c * plane;
  for (let p = 0; p < plane; p++) {
    for (let ch = 0; ch < 3; ch++) {
      const v = out.data[base + (c === 1 ? 0 : ch) * plane + p];
      img.data[p * 4 + ch] = Math.round((Math.min(1, Math.max(-1, v)) + 1) * 127.5);
    }
    img.data[p * 4 + 3] = 255;
  }
  return img;
}

/** Load a translation export (pix2pix, CycleGAN): generator.onnx (A to B) and a CycleGAN's generator_BtoA.onnx. */
export async function loadTranslator(url = ".") {
  const base = url.endsWith("/") ? url : url + "/";
  const res = await fetch(base + "generator.json");
  if (!res.ok) throw new Error(`gan.js: ${base}generator.json: HTTP ${res.status}`);
  const meta = await res.json();
  if (meta.format !== "gankit-generator" || !meta.translation || !meta.onnx) {
    throw new Error(`gan.js: ${base}generator.json is not a gankit translation export with an ONNX graph`);
  }
  const opts = { executionProviders: ["wasm"] };
  const sessions = { AtoB: await ort.InferenceSession.create(base + meta.onnx.file, opts) };
  if (meta.onnx_BtoA) sessions.BtoA = await ort.InferenceSession.create(base + meta.onnx_BtoA.file, opts);
  return new Translator(meta, sessions);
}

export class Translator {
  constructor(meta, sessions) {
    this.meta = meta;
    this.sessions = sessions;
    this.inChannels = meta.translation.input_channels;
    this.outChannels = meta.translation.output_channels;
    this.multiple = meta.translation.multiple;
    this.directions = Object.keys(sessions);
  }

  /** ImageData (RGBA) -> {data, dims [1, C, H, W]} in [-1, 1] at its own size. The image is read as gankit reads files
   * (grey: Pillow's luminance), padded to a multiple of the network's by reflection (edge copies when the image is
   * smaller than the pad) and cropped back, as `gankit translate` does; a CycleGAN's B to A is the reverse direction,
   * whose input has the other domain's channels. */
  async translate(imageData, direction = "AtoB") {
    const session = this.sessions[direction];
    if (!session) throw new Error(`gan.js: this translator has no ${direction} direction`);
    const cin = direction === "AtoB" ? this.inChannels : this.outChannels, cout = direction === "AtoB" ? this.outChannels : this.inChannels;
    const { width: w, height: h } = imageData, m = this.multiple;
    const ph = m * Math.ceil(h / m), pw = m * Math.ceil(w / m);
    const reflect = ph - h < h && pw - w < w;
    const at = (i, n) => (i < n ? i : reflect ? 2 * (n - 1) - i : n - 1);
    const x = new Float32Array(cin * ph * pw), px = imageData.data;
    for (let r = 0; r < ph; r++) {
      for (let c = 0; c < pw; c++) {
        const p = (at(r, h) * w + at(c, w)) * 4;
        if (cin === 1) {
          x[r * pw + c] = lumaOf(px[p], px[p + 1], px[p + 2]) / 127.5 - 1;
        } else {
          for (let ch = 0; ch < 3; ch++) x[ch * ph * pw + r * pw + c] = px[p + ch] / 127.5 - 1;
        }
      }
    }
    const out = await session.run({ image: new ort.Tensor("float32", x, [1, cin, ph, pw]) });
    const y = out.translated.data, data = new Float32Array(cout * h * w);
    for (let ch = 0; ch < cout; ch++) {
      for (let r = 0; r < h; r++) data.set(y.subarray(ch * ph * pw + r * pw, ch * ph * pw + r * pw + w), ch * h * w + r * w);
    }
    return { data, dims: [1, cout, h, w] };
  }
}

/** Pillow's luminance of an RGB pixel ("L" mode: ITU-R 601-2, in its integer arithmetic). */
export function lumaOf(r, g, b) {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/** An RGBA ImageData as the grey image a one-channel network sees. */
export function greyImageData(rgba) {
  const out = new ImageData(rgba.width, rgba.height);
  for (let p = 0; p < rgba.data.length; p += 4) {
    const v = lumaOf(rgba.data[p], rgba.data[p + 1], rgba.data[p + 2]);
    out.data[p] = out.data[p + 1] = out.data[p + 2] = v;
    out.data[p + 3] = 255;
  }
  return out;
}
