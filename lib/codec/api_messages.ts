/**
 * Byte-exact codec for the Gossip API (message types 500-503).
 *
 * Every message is `size u16 | type u16 | body`, big-endian, where `size`
 * counts the whole message including the 4-byte header. These functions turn a
 * complete frame into a typed message and back; they perform no I/O.
 *
 * @module
 */

import { DecodeError } from "../errors.ts";
import type { FrameFormat } from "./frame_decoder.ts";

/** Numeric message types of the Gossip API. */
export const ApiMessageType = {
  /** Module -> gossip: spread an item. */
  Announce: 500,
  /** Module -> gossip: subscribe to a data type. */
  Notify: 501,
  /** Gossip -> module: an item of a subscribed type. */
  Notification: 502,
  /** Module -> gossip: verdict on a notification. */
  Validation: 503,
} as const;

/** Size of the `size | type` header. */
export const API_HEADER_BYTES = 4;
/** Largest API message (the size field is 16 bits). */
export const API_MAX_MESSAGE_BYTES = 0xffff;
/** Largest data payload of an ANNOUNCE or NOTIFICATION. */
export const API_MAX_DATA_BYTES = API_MAX_MESSAGE_BYTES - 8;

/** Framing of the API stream: `size u16` counting the whole message. */
export const API_FRAME_FORMAT: FrameFormat = {
  lengthBytes: 2,
  lengthIncludesHeader: true,
  minFrameBytes: API_HEADER_BYTES,
  maxFrameBytes: API_MAX_MESSAGE_BYTES,
};

/** GOSSIP ANNOUNCE: `| size | 500 | TTL u8 | reserved u8 | data type u16 | data |`. */
export interface AnnounceMessage {
  /** Discriminant: a ANNOUNCE. */
  readonly kind: "announce";
  /** Hops the item should travel; 0 means unlimited. */
  readonly ttl: number;
  /** Reserved byte, carried as received. */
  readonly reserved: number;
  /** Application data type. */
  readonly dataType: number;
  /** Item payload (at least one byte). */
  readonly data: Uint8Array;
}

/** GOSSIP NOTIFY: `| 8 | 501 | reserved u16 | data type u16 |`. */
export interface NotifyMessage {
  /** Discriminant: a NOTIFY. */
  readonly kind: "notify";
  /** Reserved field, carried as received. */
  readonly reserved: number;
  /** Data type to subscribe to. */
  readonly dataType: number;
}

/** GOSSIP NOTIFICATION: `| size | 502 | message ID u16 | data type u16 | data |`. */
export interface NotificationMessage {
  /** Discriminant: a NOTIFICATION. */
  readonly kind: "notification";
  /** Random ID the module echoes in its VALIDATION. */
  readonly messageId: number;
  /** Application data type. */
  readonly dataType: number;
  /** Item payload. */
  readonly data: Uint8Array;
}

/** GOSSIP VALIDATION: `| 8 | 503 | message ID u16 | reserved 15 bits | V 1 bit |`. */
export interface ValidationMessage {
  /** Discriminant: a VALIDATION. */
  readonly kind: "validation";
  /** The NOTIFICATION's message ID. */
  readonly messageId: number;
  /** The V bit: true = well-formed, propagate. */
  readonly valid: boolean;
  /** The 15 reserved bits (shifted down), carried as received. */
  readonly reserved: number;
}

/** Any Gossip API message. */
export type ApiMessage =
  | AnnounceMessage
  | NotifyMessage
  | NotificationMessage
  | ValidationMessage;

/**
 * Decodes one complete API message. `frame` must start at the size field;
 * its length must equal the size field. Throws {@link DecodeError} for every
 * ill-formed case of the spec: size below the header or not matching the
 * bytes, NOTIFY or VALIDATION not exactly 8 bytes, ANNOUNCE or NOTIFICATION
 * without data, and unknown types.
 */
export function decodeApiMessage(frame: Uint8Array): ApiMessage {
  if (frame.length < API_HEADER_BYTES) {
    throw new DecodeError(`message of ${frame.length} bytes is shorter than the header`);
  }
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const size = view.getUint16(0);
  if (size !== frame.length) {
    throw new DecodeError(`size field ${size} does not match message length ${frame.length}`);
  }
  const type = view.getUint16(2);
  switch (type) {
    case ApiMessageType.Announce:
      requireDataMessage(size, "ANNOUNCE");
      return {
        kind: "announce",
        ttl: view.getUint8(4),
        reserved: view.getUint8(5),
        dataType: view.getUint16(6),
        data: frame.subarray(8),
      };
    case ApiMessageType.Notify:
      requireExactSize(size, "NOTIFY");
      return { kind: "notify", reserved: view.getUint16(4), dataType: view.getUint16(6) };
    case ApiMessageType.Notification:
      requireDataMessage(size, "NOTIFICATION");
      return {
        kind: "notification",
        messageId: view.getUint16(4),
        dataType: view.getUint16(6),
        data: frame.subarray(8),
      };
    case ApiMessageType.Validation: {
      requireExactSize(size, "VALIDATION");
      const flags = view.getUint16(6);
      return {
        kind: "validation",
        messageId: view.getUint16(4),
        valid: (flags & 1) === 1,
        reserved: flags >>> 1,
      };
    }
    default:
      throw new DecodeError(`unknown message type ${type}`);
  }
}

function requireExactSize(size: number, name: string): void {
  if (size !== 8) throw new DecodeError(`${name} must be exactly 8 bytes, got ${size}`);
}

function requireDataMessage(size: number, name: string): void {
  if (size <= 8) throw new DecodeError(`${name} must carry data (size > 8), got ${size}`);
}

/** Encodes an API message into a new buffer. Throws RangeError for out-of-range fields. */
export function encodeApiMessage(message: ApiMessage): Uint8Array {
  switch (message.kind) {
    case "announce": {
      const out = dataMessage(ApiMessageType.Announce, message.data);
      out[4] = checkRange(message.ttl, 0xff, "ttl");
      out[5] = checkRange(message.reserved, 0xff, "reserved");
      writeU16(out, 6, message.dataType, "dataType");
      return out;
    }
    case "notification": {
      const out = dataMessage(ApiMessageType.Notification, message.data);
      writeU16(out, 4, message.messageId, "messageId");
      writeU16(out, 6, message.dataType, "dataType");
      return out;
    }
    case "notify": {
      const out = header(8, ApiMessageType.Notify);
      writeU16(out, 4, message.reserved, "reserved");
      writeU16(out, 6, message.dataType, "dataType");
      return out;
    }
    case "validation": {
      const out = header(8, ApiMessageType.Validation);
      writeU16(out, 4, message.messageId, "messageId");
      const flags = (checkRange(message.reserved, 0x7fff, "reserved") << 1) |
        (message.valid ? 1 : 0);
      writeU16(out, 6, flags, "flags");
      return out;
    }
  }
}

function dataMessage(type: number, data: Uint8Array): Uint8Array {
  if (data.length === 0 || data.length > API_MAX_DATA_BYTES) {
    throw new RangeError(`data must be 1..${API_MAX_DATA_BYTES} bytes, got ${data.length}`);
  }
  const out = header(8 + data.length, type);
  out.set(data, 8);
  return out;
}

function header(size: number, type: number): Uint8Array {
  const out = new Uint8Array(size);
  out[0] = size >>> 8;
  out[1] = size & 0xff;
  out[2] = type >>> 8;
  out[3] = type & 0xff;
  return out;
}

function writeU16(out: Uint8Array, offset: number, value: number, name: string): void {
  checkRange(value, 0xffff, name);
  out[offset] = value >>> 8;
  out[offset + 1] = value & 0xff;
}

function checkRange(value: number, max: number, name: string): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer in 0..${max}, got ${value}`);
  }
  return value;
}
