// Comparing a received chunk's bytes with known ones, for the checks every record goes through (the
// channel's event name, the record reader's thread identity): no dependencies, so that whatever reads
// the channel loads nothing more for them.

/**
 * Fixed bytes (at least 4) compared with those of a chunk four at a time: unaligned big-endian words
 * read through a DataView, the last word ending with the pattern (overlapping the one before it when
 * the length is not a multiple of 4). Cheaper than a byte loop, and than a native call, on the few
 * dozen bytes every record is checked against.
 */
export class BytePattern {
  readonly length: number;
  private readonly words: Uint32Array;

  constructor(readonly bytes: Buffer) {
    if (bytes.length < 4) throw new Error('a byte pattern needs at least 4 bytes');
    this.length = bytes.length;
    this.words = new Uint32Array(Math.ceil(bytes.length / 4));
    for (let i = 0; i < this.words.length - 1; i++) this.words[i] = bytes.readUInt32BE(4 * i);
    this.words[this.words.length - 1] = bytes.readUInt32BE(bytes.length - 4);
  }

  /** Whether `view` holds the pattern at `at` (the caller knows it fits). */
  isAt(view: DataView, at: number): boolean {
    const words = this.words;
    const last = words.length - 1;
    for (let i = 0; i < last; i++) if (view.getUint32(at + 4 * i) !== words[i]) return false;
    return view.getUint32(at + this.length - 4) === words[last];
  }
}

/** A DataView of the chunk asked about last: records of one chunk share it. */
export class ChunkView {
  private chunk: Buffer | undefined;
  private view: DataView | undefined;

  of(chunk: Buffer): DataView {
    if (chunk !== this.chunk) {
      this.view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      this.chunk = chunk;
    }
    return this.view!;
  }
}
