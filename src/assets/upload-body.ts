import { PayloadTooLargeError } from '../errors';

/**
 * An upload's bytes as they arrive, read once and never held whole: first the few leading bytes the
 * signature check needs (`peek`), then everything from the start (`chunks`), which a storage write
 * pulls one chunk at a time, so a slow store slows the sender instead of filling memory. Past
 * `maxBytes` reading fails with `payload_too_large` at once, whatever the sender declared.
 */
export class UploadBody {
  private readonly source: AsyncIterator<Uint8Array>;
  /** Chunks read by `peek` that `chunks` has not handed on yet. */
  private readonly pending: Buffer[] = [];
  private received = 0;

  constructor(
    content: AsyncIterable<Uint8Array>,
    private readonly maxBytes: number,
    /** What the body is, for the 413 message. */
    private readonly what = 'an image',
  ) {
    this.source = content[Symbol.asyncIterator]();
  }

  /** Bytes read so far (after `chunks` is drained: the size of the body). */
  get size(): number {
    return this.received;
  }

  /** The first `length` bytes (fewer only when the body is shorter); `chunks` still yields them. */
  async peek(length: number): Promise<Buffer> {
    let buffered = this.pending.reduce((sum, chunk) => sum + chunk.length, 0);
    while (buffered < length) {
      const chunk = await this.pull();
      if (!chunk) break;
      this.pending.push(chunk);
      buffered += chunk.length;
    }
    return Buffer.concat(this.pending).subarray(0, length);
  }

  /** Every byte from the start, in the order received; throws PayloadTooLargeError past the limit. */
  async *chunks(): AsyncGenerator<Buffer> {
    while (this.pending.length > 0) yield this.pending.shift()!;
    for (let chunk = await this.pull(); chunk; chunk = await this.pull()) yield chunk;
  }

  /** Stops reading (the source decides what happens to bytes not read, see the HTTP route). */
  async close(): Promise<void> {
    await this.source.return?.();
  }

  private async pull(): Promise<Buffer | undefined> {
    const next = await this.source.next();
    if (next.done) return undefined;
    this.received += next.value.length;
    if (this.received > this.maxBytes) throw new PayloadTooLargeError(`${this.what} may be at most ${this.maxBytes} bytes`);
    return Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
  }
}
