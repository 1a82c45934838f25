import { endianness } from "node:os";

/**
 * A NumPy `.npy` v1.0 file holding a C-order float32 matrix, built in one buffer: the header and the
 * data share it, so a large embedding matrix is never copied to be written.
 */
export interface NpyFloat32Matrix {
  rows: number;
  cols: number;
  /** Row-major values; fill it, then write `bytes()`. */
  data: Float32Array;
  bytes(): Uint8Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64;

function header(rows: number, cols: number): Uint8Array {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  // numpy pads with spaces and ends with "\n" so that the data starts on a 64-byte boundary.
  const prefix = MAGIC.length + 2 + 2;
  const total = Math.ceil((prefix + dict.length + 1) / ALIGN) * ALIGN;
  const text = dict.padEnd(total - prefix - 1, " ") + "\n";
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, text.length, true);
  for (let i = 0; i < text.length; i++) out[prefix + i] = text.charCodeAt(i);
  return out;
}

export function npyFloat32Matrix(rows: number, cols: number): NpyFloat32Matrix {
  const head = header(rows, cols);
  const buffer = new ArrayBuffer(head.length + rows * cols * 4);
  new Uint8Array(buffer).set(head, 0);
  const data = new Float32Array(buffer, head.length, rows * cols);
  return {
    rows,
    cols,
    data,
    bytes() {
      const all = new Uint8Array(buffer);
      if (endianness() === "BE") {
        // '<f4' is little-endian on disk whatever the machine.
        const copy = all.slice();
        const view = new DataView(copy.buffer);
        for (let i = 0; i < data.length; i++) view.setFloat32(head.length + i * 4, data[i]!, true);
        return copy;
      }
      return all;
    },
  };
}
