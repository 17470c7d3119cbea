/**
 * A Gossip API test client that encodes and decodes bytes by hand, independently
 * of lib/codec, so black-box tests check the node against the spec's layouts.
 */

import { Inbox } from "./inbox.ts";
import { readFrames } from "./read_frames.ts";

/** A message received from the node, decoded by this client. */
export interface ReceivedMessage {
  size: number;
  type: number;
  /** NOTIFICATION message ID. */
  messageId: number;
  /** NOTIFICATION data type. */
  dataType: number;
  /** NOTIFICATION data. */
  data: Uint8Array;
  /** The whole message as received. */
  raw: Uint8Array;
}

/** Builds `size u16 | type u16 | body` by hand. */
export function rawMessage(type: number, body: Uint8Array, size = 4 + body.length): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  out[0] = (size >> 8) & 0xff;
  out[1] = size & 0xff;
  out[2] = (type >> 8) & 0xff;
  out[3] = type & 0xff;
  out.set(body, 4);
  return out;
}

/** ANNOUNCE bytes. */
export function announceBytes(ttl: number, dataType: number, data: Uint8Array): Uint8Array {
  return rawMessage(500, new Uint8Array([ttl, 0, dataType >> 8, dataType & 0xff, ...data]));
}

/** NOTIFY bytes. */
export function notifyBytes(dataType: number): Uint8Array {
  return rawMessage(501, new Uint8Array([0, 0, dataType >> 8, dataType & 0xff]));
}

/** VALIDATION bytes. */
export function validationBytes(messageId: number, valid: boolean): Uint8Array {
  return rawMessage(503, new Uint8Array([messageId >> 8, messageId & 0xff, 0, valid ? 1 : 0]));
}

/** A connected test client. */
export class TestApiClient {
  private readonly inbox = new Inbox<ReceivedMessage>();
  private handler: ((message: ReceivedMessage) => void) | undefined;
  private readonly pendingWrites = new Set<Promise<void>>();
  private readonly readLoop: Promise<void>;

  private closing = false;

  private constructor(readonly conn: Deno.TcpConn) {
    this.readLoop = this.read();
  }

  /** Connects to `port` on 127.0.0.1 (or `hostname`). */
  static async connect(port: number, hostname = "127.0.0.1"): Promise<TestApiClient> {
    const conn = await Deno.connect({ hostname, port });
    return new TestApiClient(conn);
  }

  /** True once the node closed the connection. */
  get closedByPeer(): boolean {
    return this.inbox.isEnded;
  }

  /** Writes raw bytes. */
  async send(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
  }

  /** Sends NOTIFY for `dataType`. */
  notify(dataType: number): Promise<void> {
    return this.send(notifyBytes(dataType));
  }

  /** Sends ANNOUNCE. */
  announce(dataType: number, data: Uint8Array, ttl = 0): Promise<void> {
    return this.send(announceBytes(ttl, dataType, data));
  }

  /** Sends VALIDATION. */
  validate(messageId: number, valid: boolean): Promise<void> {
    return this.send(validationBytes(messageId, valid));
  }

  /** Waits for the next message; throws after `timeoutMs` or if the node closed first. */
  next(timeoutMs = 5000): Promise<ReceivedMessage> {
    return this.inbox.next(timeoutMs, "message");
  }

  /** Resolves true if the node closes the connection within `timeoutMs`. */
  waitClosed(timeoutMs = 5000): Promise<boolean> {
    return this.inbox.waitEnded(timeoutMs);
  }

  /**
   * Collects messages for up to `timeoutMs`; resolves early once `count` arrived.
   * Used to show that nothing (more) arrives.
   */
  async collect(count: number, timeoutMs: number): Promise<ReceivedMessage[]> {
    await this.inbox.waitForCount(count, timeoutMs);
    return this.inbox.takeAll();
  }

  /**
   * Handles every NOTIFICATION from now on instead of queueing it: records it in
   * `log` and answers VALIDATION with `verdict(message)`.
   */
  autoValidate(log: ReceivedMessage[], verdict: (message: ReceivedMessage) => boolean): void {
    this.handler = (message) => {
      log.push(message);
      if (message.type === 502) {
        const write = this.send(validationBytes(message.messageId, verdict(message)))
          .catch(() => {})
          .finally(() => this.pendingWrites.delete(write));
        this.pendingWrites.add(write);
      }
    };
    for (const message of this.inbox.takeAll()) this.handler(message);
  }

  /**
   * Like {@link autoValidate}, but a module that needs `delayMs` per item: it
   * handles NOTIFICATIONs one after another, each answered `delayMs` after the
   * previous answer.
   */
  slowValidate(
    log: ReceivedMessage[],
    delayMs: number,
    verdict: (message: ReceivedMessage) => boolean,
  ): void {
    let chain = Promise.resolve();
    this.handler = (message) => {
      log.push(message);
      if (message.type !== 502 || this.closing) return;
      const write = chain = chain
        .then(() =>
          this.closing ? undefined : new Promise<void>((resolve) => setTimeout(resolve, delayMs))
        )
        .then(() =>
          this.closing ? undefined : this.send(validationBytes(message.messageId, verdict(message)))
        )
        .catch(() => {})
        .finally(() => this.pendingWrites.delete(write));
      this.pendingWrites.add(write);
    };
    for (const message of this.inbox.takeAll()) this.handler(message);
  }

  /** Messages received but not yet taken. */
  get queued(): number {
    return this.inbox.length;
  }

  /** Closes the connection and waits for the read loop and automatic answers. */
  async close(): Promise<void> {
    this.closing = true;
    while (this.pendingWrites.size > 0) await Promise.all(this.pendingWrites);
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    await this.readLoop;
  }

  private async read(): Promise<void> {
    await readFrames(this.conn, (buffered) => {
      if (buffered.length < 2) return undefined;
      const size = (buffered[0] << 8) | buffered[1];
      if (size < 4) throw new Error(`node sent size ${size}`);
      return size;
    }, (raw) => {
      const size = raw.length;
      const message = {
        size,
        type: (raw[2] << 8) | raw[3],
        messageId: size >= 8 ? (raw[4] << 8) | raw[5] : -1,
        dataType: size >= 8 ? (raw[6] << 8) | raw[7] : -1,
        data: raw.slice(8),
        raw,
      };
      if (this.handler) this.handler(message);
      else this.inbox.push(message);
    });
    this.inbox.end();
  }
}
