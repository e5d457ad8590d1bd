// CRC-32C (Castagnoli), the checksum of Kafka record batches, table-driven 16 bytes at a time.
// It covers every produced byte, so its speed bounds publishing. The same loop in TypeScript
// is about five times faster than a byte-at-a-time one (kafkajs's); as a tiny WebAssembly
// function (assembled below, no build step) it is about twice faster again, bytes copied in
// included, so large chunks go there and the TypeScript loop is the fallback.

const POLYNOMIAL = 0x82f63b78 // CRC-32C, reversed
const SLICES = 16

/** TABLE[k * 256 + b]: the CRC of byte b followed by k zero bytes. */
const TABLE = (() => {
  const table = new Int32Array(256 * SLICES)
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ POLYNOMIAL : crc >>> 1
    table[byte] = crc
  }
  for (let k = 1; k < SLICES; k++) {
    for (let byte = 0; byte < 256; byte++) {
      const previous = table[(k - 1) * 256 + byte]!
      table[k * 256 + byte] = (previous >>> 8) ^ table[previous & 0xff]!
    }
  }
  return table
})()

/** CRC-32C of bytes, as an unsigned 32-bit integer. */
export const crc32c = (bytes: Uint8Array): number => crc32cFinish(crc32cUpdate(CRC32C_START, bytes))

/** Running state before any byte: feed chunks with crc32cUpdate, then crc32cFinish. */
export const CRC32C_START = -1

export const crc32cFinish = (state: number): number => (state ^ -1) >>> 0

/** Folds bytes into a running CRC-32C state (from CRC32C_START or a previous update). */
export function crc32cUpdate(state: number, bytes: Uint8Array): number {
  if (bytes.length < WASM_MIN_BYTES) return crc32cUpdateJs(state, bytes)
  const wasm = (wasmCrc ??= instantiateWasm())
  if (!wasm) return crc32cUpdateJs(state, bytes)
  let crc = state
  for (let offset = 0; offset < bytes.length; offset += WASM_BLOCK_BYTES) {
    const block = bytes.subarray(offset, Math.min(bytes.length, offset + WASM_BLOCK_BYTES))
    wasm.memory.set(block, WASM_DATA)
    crc = wasm.update(crc, WASM_DATA, block.length)
  }
  return crc
}

/** The TypeScript loop: the fallback, and the faster choice for short chunks (no copy). */
export function crc32cUpdateJs(state: number, bytes: Uint8Array): number {
  const T = TABLE
  const length = bytes.length
  const end = length - (length & 15)
  let crc = state
  let i = 0
  for (; i < end; i += 16) {
    const a = crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))
    crc =
      T[3840 + (a & 0xff)]! ^
      T[3584 + ((a >>> 8) & 0xff)]! ^
      T[3328 + ((a >>> 16) & 0xff)]! ^
      T[3072 + (a >>> 24)]! ^
      T[2816 + bytes[i + 4]!]! ^
      T[2560 + bytes[i + 5]!]! ^
      T[2304 + bytes[i + 6]!]! ^
      T[2048 + bytes[i + 7]!]! ^
      T[1792 + bytes[i + 8]!]! ^
      T[1536 + bytes[i + 9]!]! ^
      T[1280 + bytes[i + 10]!]! ^
      T[1024 + bytes[i + 11]!]! ^
      T[768 + bytes[i + 12]!]! ^
      T[512 + bytes[i + 13]!]! ^
      T[256 + bytes[i + 14]!]! ^
      T[bytes[i + 15]!]!
  }
  for (; i < length; i++) crc = T[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8)
  return crc
}

// --- WebAssembly ------------------------------------------------------------------------------

/** Chunks shorter than this stay in TypeScript: copying them in costs more than it saves. */
const WASM_MIN_BYTES = 512
/** Memory layout: the table at 0 (16 KiB), then one block of data; two 64 KiB pages in all. */
const WASM_DATA = 256 * SLICES * 4
const WASM_BLOCK_BYTES = 2 * 65536 - WASM_DATA

interface WasmCrc {
  readonly memory: Uint8Array
  update(state: number, pointer: number, length: number): number
}

/** undefined: not tried yet; false: unavailable here. */
let wasmCrc: WasmCrc | false | undefined

/** Which loop checksums long chunks here (for tests and diagnostics). */
export const crc32cImplementation = (): 'webassembly' | 'typescript' => ((wasmCrc ??= instantiateWasm()) ? 'webassembly' : 'typescript')

/** The part of the WebAssembly API used here (the project's type libraries do not declare it). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object) => { readonly exports: Record<string, unknown> }
}

function instantiateWasm(): WasmCrc | false {
  try {
    const api = (globalThis as { WebAssembly?: WebAssemblyApi }).WebAssembly
    if (!api) return false
    const instance = new api.Instance(new api.Module(assembleCrcModule()))
    const memory = new Uint8Array((instance.exports.memory as { buffer: ArrayBuffer }).buffer)
    new Int32Array(memory.buffer, 0, TABLE.length).set(TABLE)
    const update = instance.exports.update as (state: number, pointer: number, length: number) => number
    const wasm: WasmCrc = { memory, update }
    // Trust it only once it agrees with the TypeScript loop.
    const probe = new Uint8Array(WASM_MIN_BYTES + 37)
    for (let i = 0; i < probe.length; i++) probe[i] = (i * 2654435761) >>> 13
    memory.set(probe, WASM_DATA)
    if (update(CRC32C_START, WASM_DATA, probe.length) !== crc32cUpdateJs(CRC32C_START, probe)) return false
    return wasm
  } catch {
    return false
  }
}

/**
 * The module: memory (exported, 2 pages) and update(state, pointer, length) -> state, the
 * slicing-by-16 loop over 16-byte steps with the tables at address 0, then byte by byte.
 */
function assembleCrcModule(): Uint8Array {
  const op = { get: 0x20, set: 0x21, const: 0x41, add: 0x6a, and: 0x71, xor: 0x73, shl: 0x74, shrU: 0x76, geU: 0x4f }
  const code: number[] = []
  const emit = (...bytes: number[]): void => void code.push(...bytes)
  const constant = (value: number): void => emit(op.const, ...signedLeb(value))
  /** i32.load, 4-byte aligned, at the address on the stack plus offset. */
  const load = (offset: number): void => emit(0x28, 2, ...unsignedLeb(offset))
  const loopUntil = (pointer: number, limit: number, body: () => void): void => {
    emit(0x02, 0x40, 0x03, 0x40) // block, loop
    emit(op.get, pointer, op.get, limit, op.geU, 0x0d, 1) // br_if out of the block
    body()
    emit(0x0c, 0, 0x0b, 0x0b) // br to the loop; end loop; end block
  }
  // Parameters 0-2, then locals 3-8.
  const [crc, pointer, length, end16, stop, a, b, c, d] = [0, 1, 2, 3, 4, 5, 6, 7, 8] as const
  emit(op.get, pointer, op.get, length, op.add, op.set, stop)
  emit(op.get, pointer, op.get, length)
  constant(-16)
  emit(op.and, op.add, op.set, end16)
  loopUntil(pointer, end16, () => {
    emit(op.get, crc, op.get, pointer)
    load(0)
    emit(op.xor, op.set, a)
    for (const [word, offset] of [[b, 4], [c, 8], [d, 12]] as const) {
      emit(op.get, pointer)
      load(offset)
      emit(op.set, word)
    }
    // Byte j of the step (little-endian in the words) goes through table 15 - j.
    for (let j = 0; j < 16; j++) {
      const shift = 8 * (j & 3)
      emit(op.get, [a, b, c, d][j >> 2]!)
      if (shift > 0) {
        constant(shift)
        emit(op.shrU)
      }
      if (shift < 24) {
        constant(255)
        emit(op.and)
      }
      constant(2)
      emit(op.shl)
      load((15 - j) * 1024)
      if (j > 0) emit(op.xor)
    }
    emit(op.set, crc, op.get, pointer)
    constant(16)
    emit(op.add, op.set, pointer)
  })
  loopUntil(pointer, stop, () => {
    emit(op.get, crc, op.get, pointer, 0x2d, 0, 0, op.xor) // i32.load8_u
    constant(255)
    emit(op.and)
    constant(2)
    emit(op.shl)
    load(0)
    emit(op.get, crc)
    constant(8)
    emit(op.shrU, op.xor, op.set, crc, op.get, pointer)
    constant(1)
    emit(op.add, op.set, pointer)
  })
  emit(op.get, crc, 0x0b)
  const body = [1, 6, 0x7f, ...code] // one group of six i32 locals
  const section = (id: number, bytes: number[]): number[] => [id, ...unsignedLeb(bytes.length), ...bytes]
  const name = (text: string): number[] => [text.length, ...Array.from(text, (ch) => ch.charCodeAt(0))]
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
    ...section(1, [1, 0x60, 3, 0x7f, 0x7f, 0x7f, 1, 0x7f]), // type: (i32, i32, i32) -> i32
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(5, [1, 0, 2]), // memory: 2 pages, no maximum
    ...section(7, [2, ...name('memory'), 2, 0, ...name('update'), 0, 0]),
    ...section(10, [1, ...unsignedLeb(body.length), ...body]),
  ])
}

function unsignedLeb(value: number): number[] {
  const out: number[] = []
  do {
    const byte = value & 0x7f
    value >>>= 7
    out.push(value === 0 ? byte : byte | 0x80)
  } while (value !== 0)
  return out
}

function signedLeb(value: number): number[] {
  const out: number[] = []
  for (;;) {
    const byte = value & 0x7f
    value >>= 7
    const done = (value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0)
    out.push(done ? byte : byte | 0x80)
    if (done) return out
  }
}
