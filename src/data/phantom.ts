// Procedural abdominal-CT phantom: the kit's embedded default dataset, so every lesson runs without downloads.
//
// Each case is a contrast CT-like abdomen in HU with the 8 organs nnFormer reports on Synapse/BTCV, drawn from
// smooth random shapes, poses, sizes and contrast phases, then blurred (partial volume), bias-corrupted and noised.
// Intensities of the organs overlap across cases (and the two kidneys share one distribution), so telling organs
// apart takes shape and position, not a threshold: see the "needs learning" test.
//
// Orientation: the volume's affine is diagonal and positive, read as NIfTI RAS+. So increasing W (i) goes toward
// the patient's RIGHT (the liver sits at high W, stomach and spleen at low W), increasing H (j) goes ANTERIOR
// (the spine is at low H) and increasing D (k) goes SUPERIOR (liver dome at high D, kidney lower poles at low D).
// To display an axial slice the radiological way (patient right on screen left, anterior up), draw row h at
// screen row H-1-h and column w at screen column W-1-w.
//
// Scale: the anatomy always fills PHANTOM_FOV_MM (192 mm cranio-caudal, 384 x 384 mm in-plane, a BTCV-sized field of
// view), whatever the grid; a bigger `shape` gives the same body at finer resolution. The default 64^3 grid is then
// [3, 6, 6] mm: Synapse's 3 mm slices with the in-plane resolution reduced 8x so it trains on a CPU.
//
// Determinism: case `index` of `seed` draws everything from makeRng(seedFrom("phantom", seed, index)), in a fixed
// order that does not depend on the grid, and uses only + - * /, %, sqrt, floor, sin, cos, exp, log (V8's fdlibm ports,
// identical across machines). No Math.pow, no Math.random.
import { Vec3, addGaussianNoise, axisRotation, matMul3 } from "../runtime/math";
import { Volume, diagonalAffine, numVoxels } from "./volume";
import { Rng, makeRng, seedFrom, uniform, normal } from "../runtime/random";

/** One output class: `value` in the label map, and the BTCV label it corresponds to. */
export interface PhantomLabel {
  value: number;
  name: string;
  /** The original BTCV/Synapse label value (BTCV has 13 organs; nnFormer evaluates these 8). */
  btcvValue: number;
}

/** Classes of the label map, consecutive 0..8 for a compact model output; `btcvValue` maps back to BTCV. */
export const PHANTOM_LABELS: readonly PhantomLabel[] = [
  { value: 0, name: "background", btcvValue: 0 },
  { value: 1, name: "spleen", btcvValue: 1 },
  { value: 2, name: "right kidney", btcvValue: 2 },
  { value: 3, name: "left kidney", btcvValue: 3 },
  { value: 4, name: "gallbladder", btcvValue: 4 },
  { value: 5, name: "liver", btcvValue: 6 },
  { value: 6, name: "stomach", btcvValue: 7 },
  { value: 7, name: "aorta", btcvValue: 8 },
  { value: 8, name: "pancreas", btcvValue: 11 },
];

/** Number of label classes including background (9). */
export const PHANTOM_NUM_CLASSES = PHANTOM_LABELS.length;

/** Tissue codes of the `tissue` map (teaching only: every non-organ tissue is label 0). Index = code. */
export const PHANTOM_TISSUES: readonly string[] = [
  "air", // 0
  "subcutaneous fat", // 1
  "muscle", // 2
  "cancellous bone", // 3
  "cortical bone", // 4
  "intervertebral disc", // 5
  "spinal canal", // 6
  "visceral fat", // 7
  "bowel", // 8
  "gas", // 9 bowel or stomach gas
  "lung", // 10
  "vein", // 11 inferior vena cava
  "organ parenchyma", // 12
  "renal medulla", // 13
  "stomach wall", // 14
  "stomach content", // 15
  "hepatic vessel", // 16
  "bile", // 17
  "arterial blood", // 18
];
const T = {
  air: 0,
  scFat: 1,
  muscle: 2,
  cancellous: 3,
  cortical: 4,
  disc: 5,
  canal: 6,
  visceralFat: 7,
  bowel: 8,
  gas: 9,
  lung: 10,
  vein: 11,
  parenchyma: 12,
  medulla: 13,
  stomachWall: 14,
  stomachContent: 15,
  hepaticVessel: 16,
  bile: 17,
  blood: 18,
} as const;

/** Field of view the anatomy always fills, mm, [D, H, W]. */
export const PHANTOM_FOV_MM: Vec3 = [192, 384, 384];

export interface PhantomConfig {
  /** Grid [D, H, W] in voxels, each an integer >= 16. The anatomy scales with it (see PHANTOM_FOV_MM). */
  shape: Vec3;
  /** Voxel size in mm [D, H, W], recorded in the volume. If you set `shape` but not this, it is PHANTOM_FOV_MM / shape. */
  spacing: Vec3;
  /** Std of the additive Gaussian noise, HU (clinical abdominal CT: about 10-25). */
  noiseStd: number;
  /** Partial-volume blur: Gaussian sigma in voxels, applied to the rendered image before noise (0 = none). */
  blurSigma: number;
  /** Smooth multiplicative bias on attenuation (HU + 1000): 0.03 means up to +/-3 %, about +/-30 HU in soft tissue. */
  biasStrength: number;
  /** Peak amplitude of the smooth random displacement field that deforms body and organs, mm (0 = none). */
  deformMm: number;
}

/** Defaults: 64^3 voxels at [3, 6, 6] mm, 15 HU noise, 0.6-voxel blur, 3 % bias, 8 mm deformation. */
export const PHANTOM_DEFAULT: PhantomConfig = {
  shape: [64, 64, 64],
  spacing: [3, 6, 6],
  noiseStd: 15,
  blurSigma: 0.6,
  biasStrength: 0.03,
  deformMm: 8,
};

/** One generated case: the HU image, its label map (PHANTOM_LABELS) and, for teaching, its tissue map (PHANTOM_TISSUES). */
export interface PhantomCase {
  image: Volume<Float32Array>;
  label: Volume<Uint8Array>;
  tissue: Volume<Uint8Array>;
}

/** Fills in defaults (spacing follows shape unless given) and validates; throws naming the field and the fix. */
export function resolvePhantomConfig(config: Partial<PhantomConfig> = {}): PhantomConfig {
  const shape = config.shape ?? PHANTOM_DEFAULT.shape;
  const spacing =
    config.spacing ??
    (config.shape
      ? (PHANTOM_FOV_MM.map((f, a) => f / (Number.isFinite(shape[a]) && shape[a] > 0 ? shape[a] : 1)) as Vec3)
      : PHANTOM_DEFAULT.spacing);
  const cfg: PhantomConfig = { ...PHANTOM_DEFAULT, ...config, shape, spacing };
  checkPhantomConfig(cfg);
  return { ...cfg, shape: [...cfg.shape] as Vec3, spacing: [...cfg.spacing] as Vec3 };
}

function checkPhantomConfig(c: PhantomConfig): void {
  const axes = ["D", "H", "W"];
  if (!Array.isArray(c.shape) || c.shape.length !== 3)
    throw new Error(`PhantomConfig.shape must be [D, H, W], got ${JSON.stringify(c.shape)}; e.g. shape: [64, 64, 64]`);
  if (!Array.isArray(c.spacing) || c.spacing.length !== 3)
    throw new Error(
      `PhantomConfig.spacing must be [D, H, W] in mm, got ${JSON.stringify(c.spacing)}; e.g. spacing: [3, 6, 6]`,
    );
  for (let a = 0; a < 3; a++) {
    const n = c.shape[a];
    if (!Number.isInteger(n) || n < 16)
      throw new Error(
        `PhantomConfig.shape[${a}] (${axes[a]}) must be an integer >= 16, got ${n}; use at least 16 voxels per axis (default 64)`,
      );
    const s = c.spacing[a];
    if (!Number.isFinite(s) || s <= 0)
      throw new Error(
        `PhantomConfig.spacing[${a}] (${axes[a]}) must be a positive number of mm, got ${s}; e.g. spacing: [3, 6, 6]`,
      );
  }
  const nonNeg: Array<[keyof PhantomConfig, number, string]> = [
    ["noiseStd", 1000, "HU, e.g. 15 (0 for a noise-free image)"],
    ["blurSigma", 10, "voxels, e.g. 0.6 (0 for no blur)"],
    ["biasStrength", 0.5, "a fraction, e.g. 0.03 (0 for no bias field)"],
    ["deformMm", 40, "mm, e.g. 8 (0 for no deformation)"],
  ];
  for (const [key, max, hint] of nonNeg) {
    const v = c[key] as number;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > max)
      throw new Error(`PhantomConfig.${key} must be a number in [0, ${max}], got ${v}; give it in ${hint}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Random smooth fields

/** Value noise in [-1, 1]: random values on a (cells+1)^3 lattice, smoothstep-interpolated onto the grid. */
function valueNoise(rng: Rng, shape: Vec3, cells: Vec3): Float32Array {
  const [cd, ch, cw] = cells;
  const lat = new Float64Array((cd + 1) * (ch + 1) * (cw + 1));
  for (let i = 0; i < lat.length; i++) lat[i] = 2 * rng() - 1;
  const axis = (n: number, c: number) => {
    const i0 = new Int32Array(n);
    const t = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const u = ((i + 0.5) / n) * c;
      const k = Math.min(c - 1, Math.floor(u));
      const f = u - k;
      i0[i] = k;
      t[i] = f * f * (3 - 2 * f);
    }
    return { i0, t };
  };
  const ad = axis(shape[0], cd),
    ah = axis(shape[1], ch),
    aw = axis(shape[2], cw);
  const sH = cw + 1,
    sD = (ch + 1) * (cw + 1);
  const out = new Float32Array(numVoxels(shape));
  const line = new Float64Array(cw + 1); // lattice row interpolated in d and h, then only a lerp along w per voxel
  let i = 0;
  for (let d = 0; d < shape[0]; d++) {
    const kd = ad.i0[d] * sD,
      td = ad.t[d];
    for (let h = 0; h < shape[1]; h++) {
      const kh = kd + ah.i0[h] * sH,
        th = ah.t[h];
      for (let j = 0; j <= cw; j++) {
        const k = kh + j;
        const b0 = lat[k] + (lat[k + sH] - lat[k]) * th;
        const b1 = lat[k + sD] + (lat[k + sD + sH] - lat[k + sD]) * th;
        line[j] = b0 + (b1 - b0) * td;
      }
      for (let w = 0; w < shape[2]; w++, i++) {
        const k = aw.i0[w];
        out[i] = line[k] + (line[k + 1] - line[k]) * aw.t[w];
      }
    }
  }
  return out;
}

/** Per-axis table of sin(2 pi coord / wavelength + phase), for separable smooth fields. */
function sinTable(coords: Float64Array, rng: Rng, minWave: number, maxWave: number): Float64Array {
  const f = (2 * Math.PI) / uniform(rng, minWave, maxWave);
  const ph = uniform(rng, 0, 2 * Math.PI);
  return coords.map((x) => Math.sin(f * x + ph));
}

// ---------------------------------------------------------------------------------------------------------------
// Organ frames: a pose (center, rotation, semi-axes) plus a smooth boundary wobble, all drawn per case

interface Frame {
  c: Vec3;
  /** Rotation, row-major 3x3; its columns are the organ's local axes in world coordinates. */
  r: number[];
  semi: Vec3;
  /** Mirror world x before going local (left-side copy of a right-side organ). */
  mirror: boolean;
  wobAmp: number;
  wobF: Vec3;
  wobP: Vec3;
  /** Bounding radius in mm around c, for the voxel box. */
  bound: number;
}

/** R = Rz(az) * Ry(ay) * Rx(ax), row-major, world axes x, y, z = 0, 1, 2. */
function rotation(ax: number, ay: number, az: number): number[] {
  return matMul3(matMul3(axisRotation(2, az), axisRotation(1, ay)), axisRotation(0, ax));
}

const DEG = Math.PI / 180;

interface Pose {
  /** Global organ shift (breathing, positioning) and body scale, shared by all organs of a case. */
  shift: Vec3;
  scaleX: number;
  scaleY: number;
}

/** Draws one organ frame around its nominal anatomy; always the same number of draws. */
function drawFrame(rng: Rng, pose: Pose, o: OrganAnatomy): Frame {
  const { c, semi, angles } = o;
  const posStd = o.pos ?? 5,
    rotStd = (o.rot ?? 8) * DEG;
  const iso = uniform(rng, 0.85, 1.15);
  const s: Vec3 = [
    semi[0] * iso * uniform(rng, 0.92, 1.08),
    semi[1] * iso * uniform(rng, 0.92, 1.08),
    semi[2] * iso * uniform(rng, 0.92, 1.08),
  ];
  const mx = o.mirror ? -1 : 1;
  const center: Vec3 = [
    mx * c[0] * pose.scaleX + pose.shift[0] + normal(rng, 0, posStd),
    c[1] * pose.scaleY + pose.shift[1] + normal(rng, 0, posStd),
    c[2] + pose.shift[2] + normal(rng, 0, posStd),
  ];
  const r = rotation(
    angles[0] * DEG + normal(rng, 0, rotStd),
    angles[1] * DEG + normal(rng, 0, rotStd),
    angles[2] * DEG + normal(rng, 0, rotStd),
  );
  const wobAmp = uniform(rng, 0.5, 1) * (o.wob ?? 0.18);
  const wobF: Vec3 = [uniform(rng, 1.5, 3.5), uniform(rng, 1.5, 3.5), uniform(rng, 1.5, 3.5)];
  const wobP: Vec3 = [uniform(rng, 0, 6.3), uniform(rng, 0, 6.3), uniform(rng, 0, 6.3)];
  const bound = Math.max(s[0], s[1], s[2]) * (1 + wobAmp) * 1.02;
  return { c: center, r, semi: s, mirror: !!o.mirror, wobAmp, wobF, wobP, bound };
}

/** World mm -> local coordinates in units of the semi-axes, written into `out`. */
function toLocal(f: Frame, x: number, y: number, z: number, out: Float64Array): void {
  const dx = f.mirror ? f.c[0] - x : x - f.c[0],
    dy = y - f.c[1],
    dz = z - f.c[2];
  const r = f.r;
  out[0] = (r[0] * dx + r[3] * dy + r[6] * dz) / f.semi[0];
  out[1] = (r[1] * dx + r[4] * dy + r[7] * dz) / f.semi[1];
  out[2] = (r[2] * dx + r[5] * dy + r[8] * dz) / f.semi[2];
}

/** Squared radius divided by the wobbled boundary: <= 1 inside. */
function wobble(f: Frame, l: Float64Array, q: number): number {
  const s =
    Math.sin(f.wobF[0] * l[0] + f.wobP[0]) +
    Math.sin(f.wobF[1] * l[1] + f.wobP[1]) +
    Math.sin(f.wobF[2] * l[2] + f.wobP[2]);
  const m = 1 + (f.wobAmp * s) / 3;
  return q / (m * m);
}

// ---------------------------------------------------------------------------------------------------------------
// Per-case draws

/** A mean drawn between an unenhanced and a portal-venous value by the case's contrast phase, plus jitter, HU. */
function enhanced(rng: Rng, phase: number, unenhanced: number, venous: number, jitter: number): number {
  return unenhanced + (venous - unenhanced) * phase + normal(rng, 0, jitter);
}

/** Nominal pose of one organ part: mm relative to the body centre (x patient-right, y anterior, z superior). */
interface OrganAnatomy {
  /** Centre, mm. */
  c: Vec3;
  /** Semi-axes, mm. */
  semi: Vec3;
  /** Rotation about x, y, z, degrees. */
  angles: Vec3;
  /** Std of the position jitter, mm (default 5). */
  pos?: number;
  /** Std of the rotation jitter, degrees (default 8). */
  rot?: number;
  /** Mirror of a right-side part (the left kidney). */
  mirror?: boolean;
  /** Boundary wobble amplitude (default 0.18; 0 for the pancreas, whose outline is a tube). */
  wob?: number;
}

/** Organ parts in the order their frames are drawn (the order fixes the random stream: do not reorder). */
const ORGAN_ANATOMY = {
  stomach: { c: [-52, 10, 38], semi: [42, 36, 55], angles: [0, 20, 0] },
  antrum: { c: [-2, 50, -4], semi: [42, 19, 22], angles: [0, 0, -20] },
  liver: { c: [68, 5, 36], semi: [78, 72, 58], angles: [0, 0, 0], rot: 6 },
  leftLobe: { c: [-10, 44, 50], semi: [45, 20, 30], angles: [0, 0, -10] },
  spleen: { c: [-88, -32, 45], semi: [24, 46, 52], angles: [0, 0, 202] },
  pancreas: { c: [-10, 26, 2], semi: [1, 1, 1], angles: [0, 0, 0], rot: 6, wob: 0 },
  rightKidney: { c: [72, -40, -30], semi: [26, 22, 50], angles: [0, -10, 30] },
  leftKidney: { c: [72, -40, -14], semi: [26, 22, 50], angles: [0, -10, 30], mirror: true },
  gallbladder: { c: [42, 42, -14], semi: [14, 14, 34], angles: [35, 0, 0], rot: 10 },
} satisfies Record<string, OrganAnatomy>;
type OrganName = keyof typeof ORGAN_ANATOMY;

/** Everything random about one case except the per-voxel noise; a fixed number of draws, independent of the grid. */
function drawCase(rng: Rng) {
  const phase = uniform(rng, 0.15, 1); // 0 = unenhanced, 1 = portal venous
  const hu = {
    liver: enhanced(rng, phase, 55, 115, 10),
    spleen: enhanced(rng, phase, 48, 122, 10),
    kidney: enhanced(rng, phase, 32, 175, 15), // one draw for both kidneys: only position tells them apart
    medullaDrop: uniform(rng, 0, 45) * phase, // corticomedullary differentiation
    pancreas: enhanced(rng, phase, 42, 100, 10),
    stomachWall: enhanced(rng, phase, 40, 100, 10),
    stomachContent: rng() < 0.2 ? uniform(rng, 150, 300) : uniform(rng, -5, 40), // 1 in 5 has oral contrast
    bile: uniform(rng, -5, 35),
    aorta: enhanced(rng, phase, 42, 175, 25),
    ivc: enhanced(rng, phase, 40, 140, 15),
    vesselDelta: -15 + 55 * phase + normal(rng, 0, 8),
    muscle: uniform(rng, 40, 60),
    bowel: enhanced(rng, phase, 20, 70, 10),
    visceralFat: uniform(rng, -110, -80),
    scFat: uniform(rng, -115, -85),
    cancellous: uniform(rng, 150, 260),
    cortical: uniform(rng, 500, 800),
    disc: uniform(rng, 70, 100),
    canal: uniform(rng, 5, 25),
    lung: uniform(rng, -880, -800),
    gas: uniform(rng, -980, -920),
  };
  const A = 160 * uniform(rng, 0.85, 1.08); // body semi-axes, mm (left-right, anterior-posterior)
  const B = 112 * uniform(rng, 0.85, 1.1);
  const bx = normal(rng, 0, 4),
    by = -5 + normal(rng, 0, 4);
  const body = { A, B, bx, by, fat: uniform(rng, 6, 28), wall: uniform(rng, 6, 12) };
  // organ positions scale with the abdominal cavity (nominal semi-axes 134 x 86 mm inside fat and wall)
  const scaleX = (A - body.fat - body.wall) / 134,
    scaleY = (B - body.fat - body.wall) / 86;
  const pose: Pose = { shift: [bx + normal(rng, 0, 5), by + normal(rng, 0, 5), normal(rng, 0, 10)], scaleX, scaleY };
  const yv = by - 33 * pose.scaleY + normal(rng, 0, 3);
  const spine = { xv: bx, yv, period: uniform(rng, 28, 32), phase: uniform(rng, 0, 30) };
  const aortaR = uniform(rng, 9, 13);
  const aorta = {
    x: bx - 12 + normal(rng, 0, 3),
    y: yv + 20 + aortaR + normal(rng, 0, 2),
    r: aortaR,
    bend: normal(rng, 0, 5),
    tilt: normal(rng, 0, 4),
  };
  const ivc = {
    x: bx + 22 + normal(rng, 0, 3),
    y: yv + 24 + normal(rng, 0, 2),
    a: uniform(rng, 10, 14),
    b: uniform(rng, 7, 10),
  };
  const lungTop = 105 + pose.shift[2] + uniform(rng, -8, 8);
  const organs = {} as Record<OrganName, Frame>;
  for (const [name, a] of Object.entries(ORGAN_ANATOMY) as Array<[OrganName, OrganAnatomy]>)
    organs[name] = drawFrame(rng, pose, a);
  const stomachGasY = organs.stomach.c[1] + organs.stomach.semi[1] * uniform(rng, 0.2, 1.3); // air rises anteriorly (supine)
  const spleenBend = uniform(rng, 0.3, 0.6);
  // Pancreas centreline through tail, body (local origin) and head, mm in its frame; radii grow from tail to head.
  const panc = {
    tail: [-68 + normal(rng, 0, 4), -48 + normal(rng, 0, 4), 12 + normal(rng, 0, 4)],
    head: [42 + normal(rng, 0, 4), -14 + normal(rng, 0, 4), -18 + normal(rng, 0, 4)],
    ryTail: uniform(rng, 6, 9),
    ryHead: uniform(rng, 11, 16),
    rzTail: uniform(rng, 8, 11),
    rzHead: uniform(rng, 15, 21),
  };
  const bowelBias = uniform(rng, -0.2, 0.2),
    gasThreshold = uniform(rng, 0.5, 0.75);
  return {
    phase,
    hu,
    body,
    pose,
    spine,
    aorta,
    ivc,
    lungTop,
    organs,
    stomachGasY,
    spleenBend,
    panc,
    bowelBias,
    gasThreshold,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering

/** Separable Gaussian blur in place, sigma in voxels, edges clamped. Each pass runs along contiguous rows. */
function gaussianBlur(data: Float32Array, shape: Vec3, sigma: number): void {
  if (sigma <= 0) return;
  const rad = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float64Array(2 * rad + 1);
  let sum = 0;
  for (let i = -rad; i <= rad; i++) sum += k[i + rad] = Math.exp((-0.5 * i * i) / (sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  const [D, H, W] = shape;
  const src = new Float32Array(data); // pass input
  // along W: within each row
  const line = new Float64Array(W + 2 * rad);
  for (let r = 0; r < D * H; r++) {
    const o = r * W;
    for (let j = 0; j < W + 2 * rad; j++) line[j] = src[o + Math.min(W - 1, Math.max(0, j - rad))];
    for (let w = 0; w < W; w++) {
      let acc = 0;
      for (let t = 0; t <= 2 * rad; t++) acc += k[t] * line[w + t];
      data[o + w] = acc;
    }
  }
  // along H, then D: whole rows (planes) weighted and summed, so the inner loop is contiguous
  const passes: Array<[number, number, number]> = [
    [D, H, W],
    [1, D, H * W],
  ]; // [outer count, axis length, row length]
  for (const [outer, n, len] of passes) {
    src.set(data);
    for (let a = 0; a < outer; a++) {
      const base = a * n * len;
      for (let i = 0; i < n; i++) {
        const o = base + i * len;
        for (let x = 0; x < len; x++) data[o + x] = 0;
        for (let t = -rad; t <= rad; t++) {
          const j = i + t < 0 ? 0 : i + t >= n ? n - 1 : i + t;
          const kt = k[t + rad],
            s = base + j * len;
          for (let x = 0; x < len; x++) data[o + x] += kt * src[s + x];
        }
      }
    }
  }
}

/** World box [min, max] around spheres (centre, radius mm). */
function sphereBox(...spheres: Array<[Vec3, number]>): [Vec3, Vec3] {
  const min = [0, 1, 2].map((a) => Math.min(...spheres.map(([c, r]) => c[a] - r))) as Vec3;
  const max = [0, 1, 2].map((a) => Math.max(...spheres.map(([c, r]) => c[a] + r))) as Vec3;
  return [min, max];
}

const REGION_AIR = 0,
  REGION_WALL = 1,
  REGION_SOLID = 2,
  REGION_CAVITY = 3;

type CaseDraw = ReturnType<typeof drawCase>;

/** What painters see and write: one case's draws, the warped voxel centres, texture fields and the output maps. */
interface Scene {
  c: CaseDraw;
  hu: CaseDraw["hu"];
  /** Warped voxel centres, mm (x patient-right, y anterior, z superior). */
  X: Float32Array;
  Y: Float32Array;
  Z: Float32Array;
  /** Organ texture (16 mm cells), in [-1, 1]. */
  tex: Float32Array;
  /** Coarse field (38 mm cells): hepatic vessels along its zero set, bowel gas where it is high. */
  vessels: Float32Array;
  /** Calls fn for every cavity voxel whose (unwarped) centre lies in a world box [min, max] (mm), widened by the warp. */
  forBox(box: [Vec3, Vec3], fn: (i: number) => void): void;
  /** Writes voxel i: label (the painter's own unless given), tissue code and HU. */
  put(i: number, tissue: number, value: number, label?: number): void;
  /** Wobbled squared radius of voxel i in frame f (<= 1 inside); its local coordinates go to `out`. */
  q(f: Frame, i: number, out: Float64Array): number;
  /** Scratch buffers for local coordinates. */
  l: Float64Array;
  l2: Float64Array;
}

/** One structure painted into the abdominal cavity. */
interface Painter {
  name: string;
  /** Label written by `put` unless the painter gives another (0 for confounders such as the vena cava). */
  label: number;
  draw(s: Scene): void;
}

/** A kidney: bean = ellipsoid minus a medial hilum notch (renal sinus fat, label 0), medulla inside. */
function kidney(name: string, label: number, part: "rightKidney" | "leftKidney"): Painter {
  return {
    name,
    label,
    draw: ({ c, hu, tex, forBox, put, q, l }) => {
      const f = c.organs[part];
      forBox(sphereBox([f.c, f.bound]), (i) => {
        const v = q(f, i, l);
        if (v > 1) return;
        const nx = (l[0] + 0.95) / 0.5,
          ny = l[1] / 0.55,
          nz = l[2] / 0.42;
        if (nx * nx + ny * ny + nz * nz <= 1) put(i, T.visceralFat, hu.visceralFat + 8 * tex[i], 0);
        else if (v < 0.42) put(i, T.medulla, hu.kidney - hu.medullaDrop + 6 * tex[i]);
        else put(i, T.parenchyma, hu.kidney + 6 * tex[i]);
      });
    },
  };
}

/** Organs and vessels in rising priority: later ones win where they touch (the order also fixes the bytes). */
const PAINTERS: readonly Painter[] = [
  {
    name: "stomach: fundus/body plus antrum; wall, then gas above the air-fluid level, then content",
    label: 6,
    draw: ({ c, hu, Y, tex, forBox, put, q, l, l2 }) => {
      const { stomach, antrum } = c.organs;
      forBox(sphereBox([stomach.c, stomach.bound], [antrum.c, antrum.bound]), (i) => {
        const v = Math.min(q(stomach, i, l), q(antrum, i, l2));
        if (v > 1) return;
        if (v > 0.7) put(i, T.stomachWall, hu.stomachWall + 6 * tex[i]);
        else if (Y[i] > c.stomachGasY) put(i, T.gas, hu.gas);
        else put(i, T.stomachContent, hu.stomachContent + 5 * tex[i]);
      });
    },
  },
  {
    name: "liver: right lobe plus left lobe, with hepatic vessels (labelled liver, as in BTCV)",
    label: 5,
    draw: ({ c, hu, tex, vessels, forBox, put, q, l, l2 }) => {
      const { liver, leftLobe } = c.organs;
      forBox(sphereBox([liver.c, liver.bound], [leftLobe.c, leftLobe.bound]), (i) => {
        const v = Math.min(q(liver, i, l), q(leftLobe, i, l2));
        if (v > 1) return;
        if (v < 0.8 && Math.abs(vessels[i]) < 0.05) put(i, T.hepaticVessel, hu.liver + hu.vesselDelta);
        else put(i, T.parenchyma, hu.liver + 6 * tex[i]);
      });
    },
  },
  {
    name: "spleen: a crescent along the posterolateral wall",
    label: 1,
    draw: ({ c, hu, X, Y, Z, tex, forBox, put, l }) => {
      const f = c.organs.spleen;
      forBox(sphereBox([f.c, f.bound + c.spleenBend * f.semi[0]]), (i) => {
        toLocal(f, X[i], Y[i], Z[i], l);
        l[0] -= c.spleenBend * l[1] * l[1];
        if (wobble(f, l, l[0] * l[0] + l[1] * l[1] + l[2] * l[2]) <= 1) put(i, T.parenchyma, hu.spleen + 6 * tex[i]);
      });
    },
  },
  {
    name: "pancreas: a tube along a quadratic centreline from tail (left) to head (right), thickening toward the head",
    label: 8,
    draw: ({ c, hu, X, Y, Z, tex, forBox, put, l }) => {
      const f = c.organs.pancreas,
        p = c.panc;
      const xt = p.tail[0],
        xh = p.head[0];
      const lagr = (x: number, vt: number, vh: number) =>
        (vt * x * (x - xh)) / (xt * (xt - xh)) + (vh * x * (x - xt)) / (xh * (xh - xt));
      const reach = Math.max(-xt, xh, Math.abs(p.tail[1]), Math.abs(p.head[1])) + 30;
      forBox(sphereBox([f.c, Math.max(f.semi[0], f.semi[1], f.semi[2]) * reach]), (i) => {
        toLocal(f, X[i], Y[i], Z[i], l);
        const x = l[0] < xt ? xt : l[0] > xh ? xh : l[0];
        const t = (x - xt) / (xh - xt);
        const ry = p.ryTail + (p.ryHead - p.ryTail) * t,
          rz = p.rzTail + (p.rzHead - p.rzTail) * t;
        const dy = (l[1] - lagr(x, p.tail[1], p.head[1])) / ry,
          dz = (l[2] - lagr(x, p.tail[2], p.head[2])) / rz,
          dx = (l[0] - x) / ry;
        const lob = 1 + 0.15 * tex[i]; // lobulated outline
        if (dx * dx + dy * dy + dz * dz <= lob * lob) put(i, T.parenchyma, hu.pancreas + 10 * tex[i]);
      });
    },
  },
  kidney("right kidney", 2, "rightKidney"),
  kidney("left kidney", 3, "leftKidney"),
  {
    name: "gallbladder: bile-filled ellipsoid in the liver's fossa",
    label: 4,
    draw: ({ c, hu, tex, forBox, put, q, l }) => {
      const f = c.organs.gallbladder;
      forBox(sphereBox([f.c, f.bound]), (i) => {
        if (q(f, i, l) <= 1) put(i, T.bile, hu.bile + 3 * tex[i]);
      });
    },
  },
  {
    name: "inferior vena cava: a confounder as bright as the aorta in venous phase, curving forward at the top",
    label: 0,
    draw: ({ c, hu, X, Y, Z, tex, forBox, put }) => {
      const v = c.ivc,
        zc = PHANTOM_FOV_MM[0] / 2;
      const box: [Vec3, Vec3] = [
        [v.x - v.a, v.y - v.b, -zc],
        [v.x + v.a, v.y + v.b + 10, zc],
      ];
      forBox(box, (i) => {
        const dx = (X[i] - v.x) / v.a,
          dy = (Y[i] - v.y - 10 * Math.max(0, Z[i] / zc)) / v.b;
        if (dx * dx + dy * dy <= 1) put(i, T.vein, hu.ivc + 4 * tex[i]);
      });
    },
  },
  {
    name: "aorta: a tube along the spine that widens upward, bends sideways and tilts forward",
    label: 7,
    draw: ({ c, hu, X, Y, Z, tex, forBox, put }) => {
      const a = c.aorta,
        zc = PHANTOM_FOV_MM[0] / 2;
      const box: [Vec3, Vec3] = [
        [a.x - 1.1 * a.r - Math.abs(a.bend), a.y - 1.1 * a.r - Math.abs(a.tilt), -zc],
        [a.x + 1.1 * a.r + Math.abs(a.bend), a.y + 1.1 * a.r + Math.abs(a.tilt), zc],
      ];
      forBox(box, (i) => {
        const zn = Z[i] / zc;
        const r = a.r * (1 + 0.08 * zn);
        const dx = X[i] - a.x - a.bend * zn * zn,
          dy = Y[i] - a.y - a.tilt * zn;
        if (dx * dx + dy * dy <= r * r) put(i, T.blood, hu.aorta + 4 * tex[i]);
      });
    },
  },
];

/** Spine and back muscles near the spine at (sx, sy) mm from the vertebral centre and height z: a tissue code, or -1. */
function spineTissue(c: CaseDraw, sx: number, sy: number, z: number): number {
  const s = c.pose.scaleX;
  const asx = Math.abs(sx);
  if (!(asx < 62 * s && sy > -70 && sy < 20)) return -1;
  const { period, phase } = c.spine;
  const iVb = 1 / (22 * 22 * s * s),
    iEr = 1 / (25 * 25 * s * s);
  const zz = (((z - phase) % period) + period) % period;
  const eVb = sx * sx * iVb + (sy * sy) / (18 * 18);
  const cy = sy + 29,
    rCanal = sx * sx + cy * cy;
  const psR = 7 + 10 * (0.5 - z / PHANTOM_FOV_MM[0]);
  const px = asx - 38 * s,
    ex2 = asx - 33 * s;
  if (eVb <= 1) return zz < 6 ? T.disc : eVb > 0.72 ? T.cortical : T.cancellous; // vertebral body, disc
  if (rCanal <= 100) return T.canal;
  if (
    (rCanal <= 225 && sy < -20) ||
    (asx < 4 && sy <= -29 && sy > -62) ||
    (zz > 10 && zz < 18 && Math.abs(sy + 25) < 4 && asx < 42 * s)
  )
    return T.cortical; // arch, spinous and transverse processes
  if (ex2 * ex2 * iEr + ((sy + 45) * (sy + 45)) / (20 * 20) <= 1) return T.muscle; // erector spinae
  if ((px * px) / (1.2 * psR * psR) + (sy * sy) / (psR * psR) <= 1) return T.muscle; // psoas
  return -1;
}

/** HU of a spine-region tissue at texture value t. */
function solidHu(hu: CaseDraw["hu"], tissue: number, t: number): number {
  if (tissue === T.muscle) return hu.muscle + 5 * t;
  if (tissue === T.canal) return hu.canal;
  if (tissue === T.disc) return hu.disc;
  if (tissue === T.cortical) return hu.cortical;
  return hu.cancellous + 30 * t;
}

/**
 * Body outline, subcutaneous fat, spine, abdominal wall (with ribs) and the cavity's filling (lung bases, bowel with
 * gas, mesenteric fat): all label 0. Marks each voxel's region so organs are painted only inside the cavity.
 */
function paintBody(s: Scene, bowel: Float32Array, img: Float32Array, tis: Uint8Array, region: Uint8Array): void {
  const { c, hu, X, Y, Z, tex, vessels } = s;
  const { A, B, bx, by, fat, wall } = c.body;
  const { xv, yv } = c.spine;
  const iA2 = 1 / (A * A),
    iBa2 = 1 / (B * B),
    iBp2 = 1 / (0.81 * B * B);
  const iAf2 = 1 / ((A - fat) * (A - fat)),
    iBfa2 = 1 / ((B - fat) * (B - fat)),
    iBfp2 = 1 / ((0.9 * B - fat) * (0.9 * B - fat));
  for (let i = 0; i < img.length; i++) {
    const x = X[i] - bx,
      y = Y[i] - by,
      z = Z[i];
    const x2 = x * x,
      y2 = y * y;
    if (x2 * iA2 + y2 * (y < 0 ? iBp2 : iBa2) > 1) {
      img[i] = -1000;
      tis[i] = T.air;
      region[i] = REGION_AIR;
      continue;
    }
    const Bs = y < 0 ? 0.9 * B : B; // flatter back
    const Af = A - fat,
      Bf = Bs - fat;
    const eFat = x2 * iAf2 + y2 * (y < 0 ? iBfp2 : iBfa2);
    const solid = spineTissue(c, X[i] - xv, Y[i] - yv, z); // only looked at near the spine
    if (eFat > 1 && !(solid >= 0 && solid !== T.muscle)) {
      img[i] = hu.scFat + 6 * tex[i];
      tis[i] = T.scFat;
      region[i] = REGION_WALL;
      continue;
    }
    if (solid >= 0) {
      tis[i] = solid;
      region[i] = REGION_SOLID;
      img[i] = solidHu(hu, solid, tex[i]);
      continue;
    }
    const Am = Af - wall,
      Bm = Bf - wall;
    const eIn = (x * x) / (Am * Am) + (y * y) / (Bm * Bm);
    if (eIn > 1) {
      // abdominal wall muscle, with rib cross-sections in the upper abdomen
      const rz = z + 0.35 * y;
      const rib = rz > -40 && y < 0.5 * B && ((rz % 28) + 28) % 28 < 7 && eIn < 1.0 + 0.9 * (wall / Am);
      img[i] = rib ? hu.cortical * 0.6 : hu.muscle + 5 * tex[i];
      tis[i] = rib ? T.cortical : T.muscle;
      region[i] = REGION_WALL;
      continue;
    }
    region[i] = REGION_CAVITY;
    const zDome = c.lungTop - 45 * eIn - 30 * eIn * Math.max(0, -y / Bm);
    if (z > zDome) {
      img[i] = hu.lung + 20 * tex[i];
      tis[i] = T.lung;
      continue;
    }
    const b = bowel[i] + 0.5 * tex[i] - 0.35 * (z / 96) + 0.25 * (y / B) + c.bowelBias;
    if (b > 0) {
      const gas = vessels[i] > c.gasThreshold;
      img[i] = gas ? hu.gas : hu.bowel + 12 * tex[i];
      tis[i] = gas ? T.gas : T.bowel;
    } else {
      img[i] = hu.visceralFat + 8 * tex[i];
      tis[i] = T.visceralFat;
    }
  }
}

/** Voxel centres in mm along each axis, origin at the grid centre: [z (D), y (H), x (W)]. */
function gridCoords(shape: Vec3): [Float64Array, Float64Array, Float64Array] {
  return [0, 1, 2].map((a) =>
    Float64Array.from({ length: shape[a] }, (_, k) => ((k + 0.5) / shape[a] - 0.5) * PHANTOM_FOV_MM[a]),
  ) as [Float64Array, Float64Array, Float64Array];
}

/**
 * Warped voxel centres X, Y, Z (mm): per component, the grid plus two separable products of sinusoids (wavelengths
 * 12-40 cm) with amplitudes up to deformMm / 2 each.
 */
function displacedCoords(rng: Rng, shape: Vec3, deformMm: number, grid: Float64Array[]): Float32Array[] {
  const [D, H, W] = shape;
  const [gz, gy, gx] = grid;
  const n = numVoxels(shape);
  const X = new Float32Array(n),
    Y = new Float32Array(n),
    Z = new Float32Array(n);
  const terms = [0, 1, 2].map(() =>
    [0, 1].map(() => ({
      a: deformMm * uniform(rng, 0.25, 0.5),
      tz: sinTable(gz, rng, 120, 400),
      ty: sinTable(gy, rng, 120, 400),
      tx: sinTable(gx, rng, 120, 400),
    })),
  );
  const [[x0, x1], [y0, y1], [z0, z1]] = terms;
  for (let d = 0, i = 0; d < D; d++) {
    for (let h = 0; h < H; h++) {
      const ax0 = x0.a * x0.tz[d] * x0.ty[h],
        ax1 = x1.a * x1.tz[d] * x1.ty[h];
      const ay0 = y0.a * y0.tz[d] * y0.ty[h],
        ay1 = y1.a * y1.tz[d] * y1.ty[h];
      const az0 = z0.a * z0.tz[d] * z0.ty[h],
        az1 = z1.a * z1.tz[d] * z1.ty[h];
      for (let w = 0; w < W; w++, i++) {
        X[i] = gx[w] + ax0 * x0.tx[w] + ax1 * x1.tx[w];
        Y[i] = gy[h] + ay0 * y0.tx[w] + ay1 * y1.tx[w];
        Z[i] = gz[d] + az0 * z0.tx[w] + az1 * z1.tx[w];
      }
    }
  }
  return [X, Y, Z];
}

interface BiasTerm {
  tz: Float64Array;
  ty: Float64Array;
  tx: Float64Array;
}

/** Multiplies attenuation (HU + 1000) by 1 + strength/2 * (sum of two separable sinusoid products), in place. */
function applyBias(img: Float32Array, shape: Vec3, strength: number, terms: BiasTerm[]): void {
  const [D, H, W] = shape;
  const [b0, b1] = terms;
  for (let d = 0, i = 0; d < D; d++)
    for (let h = 0; h < H; h++) {
      const s0 = 0.5 * strength * b0.tz[d] * b0.ty[h],
        s1 = 0.5 * strength * b1.tz[d] * b1.ty[h];
      for (let w = 0; w < W; w++, i++) img[i] = (img[i] + 1000) * (1 + s0 * b0.tx[w] + s1 * b1.tx[w]) - 1000;
    }
}

/** Generates case `index` of `seed`: an abdominal CT-like image (HU), its 0..8 label map and its tissue map. */
export function generatePhantom(seed: number, index: number, config: Partial<PhantomConfig> = {}): PhantomCase {
  if (!Number.isFinite(seed)) throw new Error(`generatePhantom: seed must be a finite number, got ${seed}`);
  if (!Number.isInteger(index) || index < 0)
    throw new Error(`generatePhantom: index must be an integer >= 0, got ${index}`);
  const cfg = resolvePhantomConfig(config);
  const shape = cfg.shape;
  const [D, H, W] = shape;
  const n = numVoxels(shape);
  // The draws come in a fixed order: case, displacement, texture fields, bias, then the per-voxel noise.
  const rng = makeRng(seedFrom("phantom", seed, index));
  const c = drawCase(rng);
  const grid = gridCoords(shape);
  const [X, Y, Z] = displacedCoords(rng, shape, cfg.deformMm, grid);
  // Texture fields (cell counts fixed, so the anatomy is the same at any grid size).
  // `tex` (16 mm cells) is organ texture and the bowel's fine octave; `vessels` (38 mm cells) draws hepatic vessels
  // along its zero set and, where it is high, bowel gas (the two never meet: organs overwrite bowel).
  const bowel = valueNoise(rng, shape, [6, 12, 12]);
  const tex = valueNoise(rng, shape, [12, 24, 24]);
  const vessels = valueNoise(rng, shape, [5, 10, 10]);
  // bias: a sum of two separable products of long sinusoids (wavelengths 40-100 cm), in [-1, 1]
  const biasTerms: BiasTerm[] = [0, 1].map(() => ({
    tz: sinTable(grid[0], rng, 400, 1000),
    ty: sinTable(grid[1], rng, 400, 1000),
    tx: sinTable(grid[2], rng, 400, 1000),
  }));

  const img = new Float32Array(n),
    lab = new Uint8Array(n),
    tis = new Uint8Array(n),
    region = new Uint8Array(n);
  const margin = cfg.deformMm + 1;
  const lo = (v: number, a: number, size: number) =>
    Math.max(0, Math.floor((v / PHANTOM_FOV_MM[a] + 0.5) * size - 0.5));
  const hi = (v: number, a: number, size: number) =>
    Math.min(size - 1, Math.ceil((v / PHANTOM_FOV_MM[a] + 0.5) * size - 0.5));
  let label = 0; // the label of the painter at work
  const scene: Scene = {
    c,
    hu: c.hu,
    X,
    Y,
    Z,
    tex,
    vessels,
    forBox: (box, fn) => {
      const min = box[0].map((v) => v - margin),
        max = box[1].map((v) => v + margin);
      const d0 = lo(min[2], 0, D),
        d1 = hi(max[2], 0, D),
        h0 = lo(min[1], 1, H),
        h1 = hi(max[1], 1, H);
      const w0 = lo(min[0], 2, W),
        w1 = hi(max[0], 2, W);
      for (let d = d0; d <= d1; d++)
        for (let h = h0; h <= h1; h++) {
          const row = (d * H + h) * W;
          for (let w = w0; w <= w1; w++) if (region[row + w] === REGION_CAVITY) fn(row + w);
        }
    },
    put: (i, tissue, value, as = label) => {
      lab[i] = as;
      tis[i] = tissue;
      img[i] = value;
    },
    q: (f, i, out) => {
      toLocal(f, X[i], Y[i], Z[i], out);
      return wobble(f, out, out[0] * out[0] + out[1] * out[1] + out[2] * out[2]);
    },
    l: new Float64Array(3),
    l2: new Float64Array(3),
  };

  // 1) Body, wall, spine and the cavity's filling; 2) organs and vessels, in rising priority, inside the cavity.
  paintBody(scene, bowel, img, tis, region);
  for (const p of PAINTERS) {
    label = p.label;
    p.draw(scene);
  }

  // 3) Acquisition: partial-volume blur, smooth multiplicative bias on attenuation, Gaussian noise.
  gaussianBlur(img, shape, cfg.blurSigma);
  applyBias(img, shape, cfg.biasStrength, biasTerms);
  if (cfg.noiseStd > 0) addGaussianNoise(img, rng, cfg.noiseStd);

  const source = `phantom seed ${seed} case ${index}`;
  const spacing = cfg.spacing;
  const origin: Vec3 = [(-(W - 1) / 2) * spacing[2], (-(H - 1) / 2) * spacing[1], (-(D - 1) / 2) * spacing[0]];
  const affine = diagonalAffine(spacing, origin);
  const meta = () => ({
    shape: [...shape] as Vec3,
    channels: 1,
    spacing: [...spacing] as Vec3,
    affine: affine.map((r) => [...r]),
    source,
  });
  return { image: { data: img, ...meta() }, label: { data: lab, ...meta() }, tissue: { data: tis, ...meta() } };
}

/** Cases 0..count-1 of `seed` (each one as generatePhantom(seed, i, config) would give it). */
export function generatePhantoms(seed: number, count: number, config: Partial<PhantomConfig> = {}): PhantomCase[] {
  if (!Number.isInteger(count) || count < 0)
    throw new Error(`generatePhantoms: count must be an integer >= 0, got ${count}`);
  return Array.from({ length: count }, (_, i) => generatePhantom(seed, i, config));
}
