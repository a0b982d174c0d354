import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  assertFiniteTensors,
  findNonFinite,
  parseSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  serializeSafetensors,
  writeSafetensors,
  type TensorToWrite,
} from "../../src/io/safetensors";

/** A file built by hand: header object + raw data bytes. */
function handMade(header: unknown, data: Uint8Array, headerLen?: number): Uint8Array {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header), "utf8");
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe("io/safetensors", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "safetensors-test-"));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("round-trips F32, I64, I32 and metadata through a file, 8-byte aligned", () => {
    const tensors = new Map<string, TensorToWrite>([
      ["w", { dtype: "F32", shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, 1e-8, -7]) }],
      ["idx", { dtype: "I64", shape: [3], data: new Int32Array([0, 114, -5]) }],
      ["n", { dtype: "I32", shape: [], data: new Int32Array([42]) }],
    ]);
    const file = path.join(dir, "a.safetensors");
    writeSafetensors(file, tensors, { format: "pt", note: "hi" });
    const bytes = fs.readFileSync(file);
    assert.equal(Number(bytes.readBigUInt64LE(0)) % 8, 0);
    const r = readSafetensors(file);
    assert.deepEqual(r.metadata, { format: "pt", note: "hi" });
    assert.deepEqual([...r.tensors.keys()], ["w", "idx", "n"]);
    assert.deepEqual(Array.from(r.tensors.get("w")!.data), Array.from(tensors.get("w")!.data));
    assert.deepEqual(r.tensors.get("w")!.shape, [2, 3]);
    assert.equal(r.tensors.get("idx")!.dtype, "I64");
    assert.deepEqual(Array.from(r.tensors.get("idx")!.data), [0, 114, -5]);
    assert.deepEqual(Array.from(r.tensors.get("n")!.data), [42]);
  });

  it("reads a Node Buffer (fs.readFileSync) the same as the file: every tensor, not the file's first bytes", () => {
    const tensors = new Map<string, TensorToWrite>([
      ["a", { dtype: "F32", shape: [3], data: new Float32Array([1, 2, 3]) }],
      ["b", { dtype: "F32", shape: [2], data: new Float32Array([-4.5, 6.25]) }],
    ]);
    const file = path.join(dir, "buffer.safetensors");
    writeSafetensors(file, tensors, { format: "pt" });
    const fromBuffer = parseSafetensors(fs.readFileSync(file)); // a Buffer: its slice() is a view, not a copy
    for (const [name, t] of tensors)
      assert.deepEqual(Array.from(fromBuffer.tensors.get(name)!.data), Array.from(t.data));
  });

  it("reads F16, BF16 and F64 as float32", () => {
    const data = new Uint8Array(2 * 3 + 2 * 2 + 8 * 2);
    const dv = new DataView(data.buffer);
    [0x3c00, 0xc000, 0x3555].forEach((h, i) => dv.setUint16(2 * i, h, true)); // 1, -2, ≈0.33325
    [0x3f80, 0xc0a0].forEach((h, i) => dv.setUint16(6 + 2 * i, h, true)); // 1, -5
    [0.1, -3].forEach((v, i) => dv.setFloat64(10 + 8 * i, v, true));
    const r = parseSafetensors(
      handMade(
        {
          h: { dtype: "F16", shape: [3], data_offsets: [0, 6] },
          b: { dtype: "BF16", shape: [2], data_offsets: [6, 10] },
          d: { dtype: "F64", shape: [2], data_offsets: [10, 26] },
        },
        data,
      ),
    );
    const h = Array.from(r.tensors.get("h")!.data);
    assert.deepEqual(h.slice(0, 2), [1, -2]);
    assert.ok(Math.abs(h[2] - 0.33325) < 1e-4);
    assert.deepEqual(Array.from(r.tensors.get("b")!.data), [1, -5]);
    assert.deepEqual(Array.from(r.tensors.get("d")!.data), [Math.fround(0.1), -3]);
  });

  it("rejects damaged files with the file and tensor named", () => {
    const good = serializeSafetensors(
      new Map([["w", { dtype: "F32", shape: [4], data: new Float32Array(4) } as TensorToWrite]]),
    );
    assert.throws(
      () => parseSafetensors(good.subarray(0, 5), "x.safetensors"),
      /x\.safetensors: truncated safetensors file \(5 bytes/,
    );
    assert.throws(
      () => parseSafetensors(handMade({}, new Uint8Array(0), 999), "x.safetensors"),
      /x\.safetensors: header length 999 runs past the end/,
    );
    assert.throws(
      () => parseSafetensors(handMade("{not json", new Uint8Array(0)), "x.safetensors"),
      /x\.safetensors: bad header JSON/,
    );
    assert.throws(
      () =>
        parseSafetensors(
          handMade({ z: { dtype: "C64", shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)),
          "x.safetensors",
        ),
      /x\.safetensors: tensor 'z': unsupported dtype "C64"/,
    );
    assert.throws(
      () => parseSafetensors(good.subarray(0, good.length - 4), "x.safetensors"),
      /x\.safetensors: tensor 'w': data_offsets \[0, 16\] out of range: the data section has 12 bytes \(file truncated\?\)/,
    );
    assert.throws(
      () =>
        parseSafetensors(
          handMade({ w: { dtype: "F32", shape: [3], data_offsets: [0, 16] } }, new Uint8Array(16)),
          "x.safetensors",
        ),
      /tensor 'w': data_offsets span 16 bytes but shape \[3\] of F32 needs 12/,
    );
    assert.throws(
      () =>
        parseSafetensors(
          handMade({ w: { dtype: "F32", shape: [1], data_offsets: [8, 4] } }, new Uint8Array(16)),
          "x.safetensors",
        ),
      /tensor 'w': data_offsets \[8,4\] must be two integers/,
    );
    assert.throws(() => readSafetensors(path.join(dir, "nope.safetensors")), /cannot read .*nope\.safetensors/);
  });

  it("assertFiniteTensors names the file, the tensor, the flat index, the element and the count", () => {
    const good = new Map<string, TensorToWrite>([
      ["a", { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) }],
      ["i", { dtype: "I32", shape: [1], data: new Int32Array([3]) }],
    ]);
    const bad = new Float32Array(12).fill(0.5);
    bad[7] = NaN;
    bad[9] = -Infinity;
    const file = path.join(dir, "nan.safetensors");
    writeSafetensors(file, new Map([...good, ["param/enc.w", { dtype: "F32", shape: [3, 4], data: bad }]]));
    const read = readSafetensors(file);
    assert.deepEqual(findNonFinite(good), undefined);
    assertFiniteTensors(good, "good");
    assert.throws(
      () => assertFiniteTensors(read.tensors, file),
      /nan\.safetensors: tensor 'param\/enc\.w' holds 2 non-finite values; the first, NaN, is at flat index 7 \(element \[1, 3\] of \[3,4\]\); the weights are unusable/,
    );
    assert.throws(
      () => assertFiniteTensors([["b", { shape: [1], data: [Infinity] }]], "x", "use best.safetensors"),
      /^Error: x: tensor 'b' holds 1 non-finite value; the first, Infinity, is at flat index 0; use best\.safetensors$/,
    );
  });

  it("readSafetensorsHeader reads entries and metadata only, and refuses a truncated file", () => {
    const file = path.join(dir, "h.safetensors");
    const data = new Float32Array(1000).fill(2);
    writeSafetensors(file, new Map([["w", { dtype: "F32", shape: [10, 100], data }]]), { kind: "test" });
    const h = readSafetensorsHeader(file);
    assert.deepEqual(h.metadata, { kind: "test" });
    assert.deepEqual(h.tensors.get("w"), { dtype: "F32", shape: [10, 100], dataOffsets: [0, 4000] });
    const cut = path.join(dir, "h-cut.safetensors");
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 1));
    assert.throws(
      () => readSafetensorsHeader(cut),
      new RegExp(
        `h-cut\\.safetensors is truncated: its header describes ${bytes.length} bytes but the file has only ${bytes.length - 1}`,
      ),
    );
    fs.writeFileSync(cut, bytes.subarray(0, 20));
    assert.throws(
      () => readSafetensorsHeader(cut),
      /h-cut\.safetensors: header length \d+ runs past the end of the file \(20 bytes\)/,
    );
    fs.writeFileSync(cut, handMade({ w: { dtype: "Q4", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)));
    assert.throws(() => readSafetensorsHeader(cut), /h-cut\.safetensors: tensor 'w': unsupported dtype "Q4"/);
    fs.writeFileSync(cut, handMade("{oops", new Uint8Array(0)));
    assert.throws(() => readSafetensorsHeader(cut), /h-cut\.safetensors: bad header JSON/);
  });
});
