// Docker's multiplexed stream format (logs and exec of a container without a
// TTY): frames of an 8-byte header [stream, 0, 0, 0, size as uint32 BE]
// followed by `size` bytes; stream 1 is stdout, 2 is stderr. Frames can be
// split across chunks and chunks can hold several frames.

export interface Frame {
  stream: number
  payload: Buffer
}

export class FrameDecoder {
  #buf: Buffer = Buffer.alloc(0)

  /** Feed a chunk; returns the frames it completed, in order. */
  push(chunk: Buffer): Frame[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk
    const frames: Frame[] = []
    while (this.#buf.length >= 8) {
      const size = this.#buf.readUInt32BE(4)
      if (this.#buf.length < 8 + size) break
      frames.push({ stream: this.#buf[0]!, payload: this.#buf.subarray(8, 8 + size) })
      this.#buf = this.#buf.subarray(8 + size)
    }
    return frames
  }

  /** Bytes of an incomplete frame still waiting for the rest. */
  get pending(): number {
    return this.#buf.length
  }
}

/** One frame in Docker's format (for tests). */
export function encodeFrame(stream: number, payload: Buffer | string): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload)
  const header = Buffer.alloc(8)
  header[0] = stream
  header.writeUInt32BE(body.length, 4)
  return Buffer.concat([header, body])
}
