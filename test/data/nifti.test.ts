import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import {
  checkChannels,
  checkSameGrid,
  orientationCodes,
  readNifti,
  readNiftiHeader,
  writeNifti,
} from "../../src/data/nifti";
import { Affine, Volume, VoxelArray, diagonalAffine, numVoxels } from "../../src/data/volume";
import type { Vec3 } from "../../src/runtime/math";

const TEMPLATES = "/usr/share/mricron/templates";
const PY = "/usr/bin/python3";

/** A real template file; fails (never skips) when mricron-data is missing. */
function template(name: string): string {
  const p = path.join(TEMPLATES, name);
  assert.ok(fs.existsSync(p), `${p} is missing: mricron-data is not installed; run \`bash scripts/setup.sh\``);
  return p;
}

const hasNibabel = spawnSync(PY, ["-c", "import nibabel"]).status === 0;

/** Runs a Python snippet with nibabel and numpy imported; returns its stdout parsed as JSON. */
function py(code: string): any {
  const r = spawnSync(PY, ["-c", "import json, sys\nimport numpy as np\nimport nibabel as nib\n" + code], { encoding: "utf8" });
  assert.equal(r.status, 0, `python failed:\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

let tmp: string;
before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), "nifti-test-")); });
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const tmpFile = (name: string) => path.join(tmp, name);

/** A small volume whose values depend on position, with an oblique-free LAS-ish affine and odd spacing. */
function makeVolume<T extends VoxelArray>(data: T, shape: Vec3, channels = 1, source = "test volume"): Volume<T> {
  const spacing: Vec3 = [2.5, 1.25, 0.75];
  const affine: Affine = [[-0.75, 0, 0, 30.5], [0, 1.25, 0, -12], [0, 0, 2.5, 7.25], [0, 0, 0, 1]];
  return { data, shape, channels, spacing, affine, source };
}

function ramp<T extends VoxelArray>(Ctor: new (n: number) => T, n: number, f: (v: number) => number): T {
  const a = new Ctor(n);
  for (let v = 0; v < n; v++) a[v] = f(v);
  return a;
}

/** Rewrites header fields of an uncompressed little-endian .nii in place. */
function patchHeader(file: string, edit: (view: DataView, bytes: Buffer) => void): void {
  const bytes = fs.readFileSync(file);
  edit(new DataView(bytes.buffer, bytes.byteOffset, bytes.length), bytes);
  fs.writeFileSync(file, bytes);
}

async function rejects(p: Promise<unknown>, ...patterns: RegExp[]): Promise<string> {
  try {
    await p;
  } catch (e) {
    const msg = (e as Error).message;
    for (const re of patterns) assert.match(msg, re);
    return msg;
  }
  assert.fail(`expected an error matching ${patterns.join(" ")}`);
}

function assertAffineClose(a: Affine, b: Affine, tol = 1e-5): void {
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) {
    assert.ok(Math.abs(a[r][c] - b[r][c]) <= tol, `affine[${r}][${c}]: ${a[r][c]} vs ${b[r][c]}\n${JSON.stringify(a)}\n${JSON.stringify(b)}`);
  }
}

describe("data/nifti: round trips", () => {
  it("uint8 labels through .nii.gz are bit-exact, with affine and spacing", async () => {
    const shape: Vec3 = [5, 6, 7];
    const vol = makeVolume(ramp(Uint8Array, numVoxels(shape), (v) => (v * 7) % 5), shape);
    const f = tmpFile("labels.nii.gz");
    writeNifti(f, vol);
    assert.equal(fs.readFileSync(f)[0], 0x1f); // really gzipped
    const back = await readNifti(f, { as: "label" });
    assert.ok(back.data instanceof Uint8Array);
    assert.deepEqual(back.data, vol.data);
    assert.deepEqual(back.shape, shape);
    assert.deepEqual(back.spacing, vol.spacing);
    assert.deepEqual(back.affine, vol.affine);
    assert.equal(back.channels, 1);
    assert.equal(back.orientation, "LAS");
    assert.equal(back.header.affineFrom, "sform");
    assert.equal(back.header.datatypeName, "uint8");
  });

  it("float32 images through .nii are bit-exact, including -0, denormals and extremes", async () => {
    const shape: Vec3 = [3, 4, 5];
    const data = ramp(Float32Array, numVoxels(shape), (v) => Math.sin(v) * 1e3);
    data[0] = -0; data[1] = 1e-42; data[2] = 3.4e38; data[3] = -3.4e38;
    const f = tmpFile("image.nii");
    writeNifti(f, makeVolume(data, shape));
    assert.equal(fs.statSync(f).size, 352 + data.length * 4);
    const back = await readNifti(f);
    assert.ok(back.data instanceof Float32Array);
    assert.deepEqual(new Uint8Array(back.data.buffer, back.data.byteOffset, back.data.byteLength), new Uint8Array(data.buffer));
  });

  it("multichannel volumes keep channels fastest and write dim[4] = channels", async () => {
    const shape: Vec3 = [2, 3, 4];
    const data = ramp(Float32Array, numVoxels(shape) * 3, (v) => v);
    const f = tmpFile("multi.nii.gz");
    writeNifti(f, makeVolume(data, shape, 3));
    const raw = zlib.gunzipSync(fs.readFileSync(f));
    const view = new DataView(raw.buffer, raw.byteOffset);
    assert.deepEqual([0, 1, 2, 3, 4].map((a) => view.getInt16(40 + 2 * a, true)), [4, 4, 3, 2, 3]);
    // on disk the first volume is channel 0: values 0, 3, 6, ...
    assert.deepEqual([0, 1, 2].map((v) => view.getFloat32(352 + 4 * v, true)), [0, 3, 6]);
    const back = await readNifti(f);
    assert.equal(back.channels, 3);
    assert.deepEqual(back.shape, shape);
    assert.deepEqual(back.data, data);
  });

  it("every integer and float datatype reads back as image and label", async () => {
    const shape: Vec3 = [2, 2, 3];
    const cases: [new (n: number) => VoxelArray, string, (v: number) => number, string][] = [
      [Uint8Array, "uint8", (v) => v * 20, "Uint8Array"],
      [Int8Array, "int8", (v) => v * 10 - 60, "Int32Array"],
      [Int16Array, "int16", (v) => v * 3000 - 15000, "Int32Array"],
      [Uint16Array, "uint16", (v) => v * 5000, "Uint16Array"],
      [Int32Array, "int32", (v) => v * 100000 - 7, "Int32Array"],
      [Uint32Array, "uint32", (v) => v * 1000, "Uint16Array"],
      [Float32Array, "float32", (v) => v * 2, "Uint8Array"],
      [Float64Array, "float64", (v) => v * 300, "Uint16Array"],
    ];
    for (const [Ctor, name, f, labelType] of cases) {
      const data = ramp(Ctor, numVoxels(shape), f);
      const file = tmpFile(`dt-${name}.nii`);
      writeNifti(file, makeVolume(data, shape));
      const img = await readNifti(file);
      assert.equal(img.header.datatypeName, name);
      assert.deepEqual(Array.from(img.data), Array.from(data), name);
      const lab = await readNifti(file, { as: "label" });
      assert.equal(lab.data.constructor.name, labelType, name);
      assert.deepEqual(Array.from(lab.data), Array.from(data), name);
    }
  });

  it("applies scl_slope/scl_inter, and slope 0 means no scaling", async () => {
    const shape: Vec3 = [1, 2, 3];
    const f = tmpFile("scaled.nii");
    writeNifti(f, makeVolume(Int16Array.from([0, 1, 2, 3, 4, -5]), shape));
    patchHeader(f, (v) => { v.setFloat32(112, 0.5, true); v.setFloat32(116, 10, true); });
    const img = await readNifti(f);
    assert.deepEqual(Array.from(img.data), [10, 10.5, 11, 11.5, 12, 7.5]);
    assert.equal(img.header.sclSlope, 0.5);
    await rejects(readNifti(f, { as: "label" }), /not a label map/, /10\.5/, /\[d=0, h=0, w=1\]/, /scaled\.nii/);
    patchHeader(f, (v) => { v.setFloat32(112, 2, true); v.setFloat32(116, -1, true); });
    const lab = await readNifti(f, { as: "label" });
    assert.deepEqual(Array.from(lab.data), [-1, 1, 3, 5, 7, -11]);
    assert.ok(lab.data instanceof Int32Array);
    patchHeader(f, (v) => { v.setFloat32(112, 0, true); v.setFloat32(116, 10, true); });
    assert.deepEqual(Array.from((await readNifti(f)).data), [0, 1, 2, 3, 4, -5]);
  });

  it("affine: sform first (even when qform_code is higher), then qform, then the pixdim diagonal", async () => {
    const shape: Vec3 = [2, 3, 4];
    const vol = makeVolume(new Float32Array(numVoxels(shape)), shape);
    const f = tmpFile("forms.nii");
    writeNifti(f, vol);
    // qform written by us encodes the same LAS affine: with the sform switched off we get it back from the quaternion
    patchHeader(f, (v) => v.setInt16(254, 0, true));
    let h = await readNiftiHeader(f);
    assert.equal(h.header.affineFrom, "qform");
    assertAffineClose(h.affine, vol.affine);
    // sform_code 1 < qform_code 2: nifti-reader-js would take the qform; the spec (and we) take the sform
    patchHeader(f, (v) => { v.setInt16(254, 1, true); v.setFloat32(280 + 12, 99, true); });
    h = await readNiftiHeader(f);
    assert.equal(h.header.affineFrom, "sform");
    assert.equal(h.affine[0][3], 99);
    patchHeader(f, (v) => { v.setInt16(252, 0, true); v.setInt16(254, 0, true); });
    h = await readNiftiHeader(f);
    assert.equal(h.header.affineFrom, "pixdim");
    assert.deepEqual(h.affine, diagonalAffine(vol.spacing));
    assert.equal(h.orientation, "RAS");
  });

  it("orientationCodes names the voxel axes in world space", () => {
    assert.equal(orientationCodes(diagonalAffine([1, 1, 1])), "RAS");
    assert.equal(orientationCodes([[-2, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]]), "LAS");
    assert.equal(orientationCodes([[-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]), "LPS");
    assert.equal(orientationCodes([[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]]), "PIR");
    // oblique: 30 degrees about z still reads as the nearest axes
    const c = Math.cos(Math.PI / 6), s = Math.sin(Math.PI / 6);
    assert.equal(orientationCodes([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]), "RAS");
  });
});

describe("data/nifti: nibabel cross-check", function () {
  before(function () {
    if (!hasNibabel) {
      // scripts/setup.sh (run by npm test) installs python3-nibabel, so its absence is a setup failure, not a skip
      throw new Error(`nibabel is not importable by ${PY}; run \`bash scripts/setup.sh\` (installs python3-nibabel)`);
    }
  });

  it("nibabel loads what we write: shape, dtype, affine, qform, values", () => {
    const shape: Vec3 = [3, 4, 5];
    const label = makeVolume(ramp(Uint8Array, numVoxels(shape), (v) => (v * 11) % 7), shape);
    const image = makeVolume(ramp(Float32Array, numVoxels(shape) * 2, (v) => Math.cos(v) * 100), shape, 2);
    const fl = tmpFile("nib-label.nii.gz"), fi = tmpFile("nib-image.nii");
    writeNifti(fl, label);
    writeNifti(fi, image);
    const out = py(`
res = []
for f in ${JSON.stringify([fl, fi])}:
    img = nib.load(f)
    a = np.asanyarray(img.dataobj)
    if a.ndim == 4:
        a = a.transpose(3, 0, 1, 2)  # [c, i, j, k]: Fortran order below then gives ours, channels fastest
    res.append(dict(shape=list(img.shape), dtype=str(a.dtype), affine=img.affine.tolist(),
                    qform=img.get_qform().tolist(), codes=[int(img.header['qform_code']), int(img.header['sform_code'])],
                    axcodes=''.join(nib.aff2axcodes(img.affine)), values=a.ravel(order='F').astype(float).tolist()))
print(json.dumps(res))`);
    const [l, i] = out;
    assert.deepEqual(l.shape, [5, 4, 3]); // nibabel is [i, j, k]
    assert.equal(l.dtype, "uint8");
    assert.deepEqual(l.codes, [2, 2]);
    assertAffineClose(l.affine, label.affine);
    assertAffineClose(l.qform, label.affine);
    assert.equal(l.axcodes, orientationCodes(label.affine));
    assert.deepEqual(l.values, Array.from(label.data));
    assert.deepEqual(i.shape, [5, 4, 3, 2]);
    assert.equal(i.dtype, "float32");
    assert.deepEqual(i.values, Array.from(image.data));
  });

  it("our qform matches the affine for rotations and flips (nibabel get_qform), and is off for shear", async () => {
    const c = Math.cos(0.4), s = Math.sin(0.4);
    const affines: Affine[] = [
      [[c * 0.9, -s * 1.1, 0, -10], [s * 0.9, c * 1.1, 0, 20], [0, 0, -2, 5], [0, 0, 0, 1]], // oblique, k flipped
      [[-1, 0, 0, 1], [0, -1, 0, 2], [0, 0, 1, 3], [0, 0, 0, 1]], // LPS: 180 degrees about z
      [[1, 0, 0, 0], [0, -1.5, 0, 0], [0, 0, -1.5, 0], [0, 0, 0, 1]], // 180 degrees about x
      [[0, 0, 3, 0], [-1, 0, 0, 0], [0, -2, 0, 0], [0, 0, 0, 1]], // PIR: axes permuted
      [[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], // sheared: no qform
    ];
    const files = affines.map((affine, n) => {
      const norm = (col: number) => Math.hypot(affine[0][col], affine[1][col], affine[2][col]);
      const f = tmpFile(`qform-${n}.nii`);
      writeNifti(f, { data: new Uint8Array(8), shape: [2, 2, 2], channels: 1, spacing: [norm(2), norm(1), norm(0)], affine, source: `affine ${n}` });
      return f;
    });
    const out = py(`print(json.dumps([dict(q=nib.load(f).get_qform().tolist(), code=int(nib.load(f).header['qform_code']))
                  for f in ${JSON.stringify(files)}]))`);
    for (let n = 0; n < affines.length; n++) {
      if (n < 4) {
        assert.equal(out[n].code, 2, `affine ${n}`);
        assertAffineClose(out[n].q, affines[n], 1e-5);
        // and our own reader agrees when only the qform is left
        patchHeader(files[n], (v) => v.setInt16(254, 0, true));
        assertAffineClose((await readNiftiHeader(files[n])).affine, affines[n], 1e-5);
      } else {
        assert.equal(out[n].code, 0, "a sheared affine has no qform");
      }
    }
  });

  it("we read what nibabel writes: int16 with scl_slope 2, scl_inter 1, qform-only oblique affine, both endians", async () => {
    for (const endian of ["<", ">"]) {
      const f = tmpFile(`from-nib-${endian === "<" ? "le" : "be"}.nii.gz`);
      const ref = py(`
import gzip
raw = (np.arange(4 * 3 * 2).reshape(4, 3, 2) * 37 % 200 - 50).astype('${endian}i2')  # nibabel shape is [i, j, k]
t = np.deg2rad(30)
rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]]) @ np.diag([1.0, 1.0, -1.0])
aff = np.eye(4); aff[:3, :3] = rot @ np.diag([0.9, 1.1, 2.0]); aff[:3, 3] = [-10, 20, 5]
hdr = nib.Nifti1Header(endianness='${endian}')
hdr.set_data_dtype(np.int16); hdr.set_data_shape(raw.shape)
hdr.set_qform(aff, code=1); hdr.set_sform(None, code=0)
hdr.set_slope_inter(2.0, 1.0)
hdr['vox_offset'] = 352
# nib.save would recompute scaling for an in-memory array, so write header + raw bytes ourselves
with gzip.open(${JSON.stringify(f)}, 'wb') as fo:
    hdr.write_to(fo); fo.write(b'\\0' * (352 - fo.tell())); fo.write(raw.tobytes(order='F'))
img = nib.load(${JSON.stringify(f)})
assert (img.dataobj.slope, img.dataobj.inter) == (2.0, 1.0)  # nibabel moves scaling from header to dataobj on load
print(json.dumps(dict(affine=img.affine.tolist(), axcodes=''.join(nib.aff2axcodes(img.affine)),
                      values=img.get_fdata().ravel(order='F').tolist(), codes=[int(hdr['qform_code']), int(hdr['sform_code'])])))`);
      assert.deepEqual(ref.codes, [1, 0]);
      const vol = await readNifti(f);
      assert.equal(vol.header.littleEndian, endian === "<");
      assert.equal(vol.header.affineFrom, "qform");
      assert.equal(vol.header.datatypeName, "int16");
      assert.deepEqual(vol.shape, [2, 3, 4]);
      assertAffineClose(vol.affine, ref.affine, 1e-5);
      assert.equal(vol.orientation, ref.axcodes);
      assert.deepEqual(Array.from(vol.data), ref.values);
      assert.ok(Math.abs(vol.spacing[0] - 2) < 1e-6 && Math.abs(vol.spacing[2] - 0.9) < 1e-6);
      const lab = await readNifti(f, { as: "label" });
      assert.deepEqual(Array.from(lab.data), ref.values); // 2 * int + 1 is whole
    }
  });

  it("agrees with nibabel on the affine and orientation of a real LAS atlas", async () => {
    const f = template("AICHAmc.nii.gz");
    const ref = py(`img = nib.load(${JSON.stringify(f)}); print(json.dumps(dict(affine=img.affine.tolist(), ax=''.join(nib.aff2axcodes(img.affine)))))`);
    const h = await readNiftiHeader(f);
    assertAffineClose(h.affine, ref.affine, 1e-4);
    assert.equal(h.orientation, ref.ax);
  });
});

describe("data/nifti: real data (mricron-data)", () => {
  it("ch2.nii.gz: 181x217x181 uint8 at 1 mm, RAS", async () => {
    const ch2 = await readNifti(template("ch2.nii.gz"));
    assert.deepEqual(ch2.shape, [181, 217, 181]);
    assert.deepEqual(ch2.spacing, [1, 1, 1]);
    assert.equal(ch2.header.datatypeName, "uint8");
    assert.equal(ch2.header.affineFrom, "sform");
    assert.ok(ch2.data instanceof Float32Array && ch2.data.length === 181 * 217 * 181);
    assert.deepEqual(ch2.affine[0], [1, 0, 0, -90]);
    assert.equal(ch2.orientation, "RAS");
  });

  it("aal.nii.gz reads as a uint8 label map on the ch2 grid", async () => {
    const ch2 = await readNifti(template("ch2.nii.gz"));
    const aal = await readNifti(template("aal.nii.gz"), { as: "label" });
    assert.ok(aal.data instanceof Uint8Array);
    let max = 0;
    for (const v of aal.data) if (v > max) max = v;
    assert.ok(max > 50, `aal has only ${max} labels?`);
    checkSameGrid(ch2, aal);
  });

  it("inia19-t1-brain.nii.gz: float32 at 0.5 mm, NIfTI 168x206x128 = our [128, 206, 168]", async () => {
    const t1 = await readNifti(template("inia19-t1-brain.nii.gz"));
    assert.equal(t1.header.datatypeName, "float32");
    assert.deepEqual(t1.shape, [128, 206, 168]);
    assert.deepEqual(t1.spacing, [0.5, 0.5, 0.5]);
    const ch2 = await readNiftiHeader(template("ch2.nii.gz"));
    assert.throws(() => checkSameGrid({ ...ch2, data: new Uint8Array(0) }, { ...t1 }),
      /grid mismatch: .*ch2\.nii\.gz has shape \[181,217,181\] but .*inia19-t1-brain\.nii\.gz has \[128,206,168\]/);
  });

  it("AICHAmc.nii.gz is LAS", async () => {
    const h = await readNiftiHeader(template("AICHAmc.nii.gz"));
    assert.match(h.orientation, /^L/);
    assert.equal(h.orientation, "LAS");
    assert.ok(h.affine[0][0] < 0);
  });
});

describe("data/nifti: bad input", () => {
  const shape: Vec3 = [2, 3, 4];
  function goodFile(name: string, data: VoxelArray = ramp(Float32Array, numVoxels(shape), (v) => v)): string {
    const f = tmpFile(name);
    writeNifti(f, makeVolume(data, shape));
    return f;
  }

  it("missing file", async () => {
    await rejects(readNifti(tmpFile("nope.nii.gz")), /nope\.nii\.gz does not exist/, /check the path/);
  });

  it("truncated file: .nii, gzipped short data, and a cut gzip stream", async () => {
    const f = goodFile("trunc.nii");
    fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 352 + 50));
    await rejects(readNifti(f), /trunc\.nii is truncated/, /needs 448 bytes/, /has only 402/, /re-download/);
    const g = tmpFile("trunc-data.nii.gz");
    fs.writeFileSync(g, zlib.gzipSync(fs.readFileSync(f)));
    await rejects(readNifti(g), /trunc-data\.nii\.gz is truncated/, /decompressed data has only 402/);
    const big = tmpFile("cut.nii.gz");
    writeNifti(big, makeVolume(ramp(Float32Array, 20 * 20 * 20, Math.sin), [20, 20, 20]));
    const gz = fs.readFileSync(big);
    fs.writeFileSync(big, gz.subarray(0, gz.length >> 1));
    await rejects(readNifti(big), /cut\.nii\.gz: the gzip stream ends early/, /truncated/);
  });

  it("not a NIfTI: text, short file, bad magic, NIfTI-2, .hdr/.img pair", async () => {
    const txt = tmpFile("notes.nii");
    fs.writeFileSync(txt, "hello ".repeat(100));
    await rejects(readNifti(txt), /notes\.nii is not a NIfTI-1 file: sizeof_hdr/);
    const short = tmpFile("short.nii");
    fs.writeFileSync(short, Buffer.alloc(100));
    await rejects(readNifti(short), /short\.nii has only 100 bytes/);
    const bad = goodFile("badmagic.nii");
    patchHeader(bad, (_, b) => b.write("abc\0", 344, "latin1"));
    await rejects(readNifti(bad), /badmagic\.nii is not a NIfTI-1 file: magic/);
    patchHeader(bad, (_, b) => b.write("ni1\0", 344, "latin1"));
    await rejects(readNifti(bad), /\.hdr\/\.img pair/);
    patchHeader(bad, (v) => v.setInt32(0, 540, true));
    await rejects(readNifti(bad), /NIfTI-2/);
  });

  it("corrupt gzip", async () => {
    const f = tmpFile("corrupt.nii.gz");
    writeNifti(f, makeVolume(ramp(Float32Array, 20 * 20 * 20, Math.sin), [20, 20, 20]));
    const gz = fs.readFileSync(f);
    for (let o = 20; o < gz.length - 20; o += 7) gz[o] ^= 0x5a;
    fs.writeFileSync(f, gz);
    await rejects(readNifti(f), /corrupt\.nii\.gz/, /gzip/, /re-download/);
    const junk = tmpFile("junk.nii.gz");
    fs.writeFileSync(junk, Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff]));
    await rejects(readNifti(junk), /junk\.nii\.gz: the gzip data is corrupt/);
  });

  it("refuses headers with too many voxels before reading the data", async () => {
    // header-only file claiming 2000^3 float32 (32 GB): the voxel check must fire, not the truncation check
    const f = goodFile("huge.nii");
    patchHeader(f, (v) => [1, 2, 3].forEach((a) => v.setInt16(40 + 2 * a, 2000, true)));
    fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 352));
    await rejects(readNifti(f), /huge\.nii: the header claims 2000x2000x2000 = 8000000000 voxels/, /maxVoxels = 134217728/);
    const g = tmpFile("huge.nii.gz");
    fs.writeFileSync(g, zlib.gzipSync(fs.readFileSync(f)));
    await rejects(readNifti(g), /claims 2000x2000x2000/);
    await rejects(readNifti(goodFile("small.nii"), { maxVoxels: 10 }), /24 voxels, more than maxVoxels = 10/);
  });

  it("NaN/Inf in an image: error with count and first voxel, or kept with allowNonFinite", async () => {
    const data = ramp(Float32Array, numVoxels(shape), (v) => v);
    data[7] = NaN; data[20] = -Infinity;
    const f = goodFile("nan.nii", data);
    await rejects(readNifti(f), /nan\.nii has 2 NaN\/Inf voxels/, /first NaN at \[d=0, h=1, w=3\] \(flat index 7\)/, /allowNonFinite/);
    const kept = await readNifti(f, { allowNonFinite: true });
    assert.ok(Number.isNaN(kept.data[7]) && kept.data[20] === -Infinity);
    await rejects(readNifti(f, { as: "label" }), /not a label map: value NaN at \[d=0, h=1, w=3\]/);
  });

  it("dims <= 0 and a broken dim[0]", async () => {
    const f = goodFile("dims.nii");
    patchHeader(f, (v) => v.setInt16(44, 0, true));
    await rejects(readNifti(f), /dims\.nii: dim\[2\] = 0/, /must be >= 1/);
    patchHeader(f, (v) => { v.setInt16(44, 3, true); v.setInt16(42, -4, true); });
    await rejects(readNifti(f), /dim\[1\] = -4/);
    patchHeader(f, (v) => v.setInt16(40, 9, true));
    await rejects(readNifti(f), /dim\[0\] = 9/);
  });

  it("vox_offset: a fraction must be an integer, a small one points inside the header", async () => {
    const f = goodFile("offset.nii");
    patchHeader(f, (v) => v.setFloat32(108, 352.5, true));
    const msg = await rejects(readNifti(f), /offset\.nii: vox_offset = 352\.5 must be an integer/, /rewrite the file/);
    assert.doesNotMatch(msg, /points inside the header/);
    patchHeader(f, (v) => v.setFloat32(108, 100, true));
    await rejects(readNifti(f), /offset\.nii: vox_offset = 100 points inside the header \(it must be at least 348/);
  });

  it("checkChannels: a 4D image where a 3D one is expected names the file and says a 3D image is expected", async () => {
    const f = tmpFile("four-d.nii.gz");
    writeNifti(f, makeVolume(new Float32Array(numVoxels(shape) * 2), shape, 2));
    const vol = await readNifti(f);
    assert.throws(() => checkChannels(vol, 1, "--image"),
      /--image .*four-d\.nii\.gz is a 4D image \(dims 4x3x2x2: 2 volumes or channels\), but a 3D image is expected here/);
    assert.throws(() => checkChannels(vol, 3, "--image"), /four-d\.nii\.gz has 2 channels .* but the model expects 3/);
    checkChannels(vol, 2);
    checkChannels(await readNifti(goodFile("three-d.nii")));
  });

  it("unsupported datatypes are named", async () => {
    const f = goodFile("rgb.nii");
    patchHeader(f, (v) => v.setInt16(70, 128, true));
    await rejects(readNifti(f), new RegExp(`unsupported datatype 128 \\(RGB24\\)`), /rgb\.nii/);
    patchHeader(f, (v) => v.setInt16(70, 32, true));
    await rejects(readNifti(f), /unsupported datatype 32 \(complex64\)/);
    patchHeader(f, (v) => v.setInt16(70, 3, true));
    await rejects(readNifti(f), /unsupported datatype 3 \(unknown\)/);
  });

  it("non-integer labels name the file and the first bad voxel", async () => {
    const data = ramp(Float32Array, numVoxels(shape), (v) => v % 3);
    data[13] = 1.5;
    const f = goodFile("soft.nii.gz", data);
    await rejects(readNifti(f, { as: "label" }), /soft\.nii\.gz is not a label map: value 1\.5 at \[d=1, h=0, w=1\] \(flat index 13\)/);
  });

  it("checkSameGrid names both sources and the differing values", () => {
    const a = makeVolume(new Float32Array(24), shape, 1, "img.nii.gz");
    const b = makeVolume(new Uint8Array(24), shape, 1, "seg.nii.gz");
    checkSameGrid(a, b);
    b.affine = b.affine.map((row) => [...row]);
    b.affine[1][3] += 0.0005; // within 1e-3 mm
    checkSameGrid(a, b);
    b.affine[1][3] += 0.01;
    assert.throws(() => checkSameGrid(a, b), /affines differ by 0\.01\d* at \[1\]\[3\].*img\.nii\.gz has .*-12\].*seg\.nii\.gz has .*-11\.98/);
    assert.throws(() => checkSameGrid(a, { ...b, shape: [2, 3, 5] }), /img\.nii\.gz has shape \[2,3,4\] but seg\.nii\.gz has \[2,3,5\]/);
  });

  it("writeNifti refuses inconsistent volumes and bad names", () => {
    const good = makeVolume(new Float32Array(24), shape);
    assert.throws(() => writeNifti(tmpFile("x.nii"), { ...good, data: new Float32Array(23) }), /data has 23 values but shape \[2,3,4\] x 1 channels needs 24/);
    assert.throws(() => writeNifti(tmpFile("x.img"), good), /must end in \.nii or \.nii\.gz/);
    assert.throws(() => writeNifti(tmpFile("x.nii"), { ...good, spacing: [0, 1, 1] }), /spacing/);
    assert.throws(() => writeNifti(tmpFile("x.nii"), { ...good, shape: [1, 1, 40000], data: new Float32Array(40000) }), /W = 40000/);
    assert.ok(!fs.existsSync(tmpFile("x.nii")));
  });
});
