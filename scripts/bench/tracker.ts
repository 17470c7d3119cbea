/**
 * Benchmark payloads and per-item delivery bookkeeping.
 *
 * A payload is `magic "GBEN" | run tag u32 | phase u8 | 3 zero bytes |
 * sequence u32 | filler`, so an arriving NOTIFICATION names its item without
 * any lookup by content.
 *
 * @module
 */

/** Bytes of the payload header. */
export const PAYLOAD_HEADER_BYTES = 16;
const MAGIC = [0x47, 0x42, 0x45, 0x4e]; // "GBEN"

/** Measurement phases, written into the payload. */
export const Phase = { Latency: 1, Throughput: 2, Warmup: 3 } as const;
/** A measurement phase. */
export type Phase = typeof Phase[keyof typeof Phase];

/** Builds the payload of item `seq` of `phase`, `size` bytes long. */
export function encodePayload(tag: number, phase: Phase, seq: number, size: number): Uint8Array {
  const out = new Uint8Array(Math.max(size, PAYLOAD_HEADER_BYTES));
  out.set(MAGIC, 0);
  const view = new DataView(out.buffer);
  view.setUint32(4, tag);
  out[8] = phase;
  view.setUint32(12, seq);
  for (let i = PAYLOAD_HEADER_BYTES; i < out.length; i++) out[i] = (seq + i) & 0xff;
  return out;
}

/** The phase and sequence number of a payload of run `tag`, or undefined for others. */
export function decodePayload(
  tag: number,
  data: Uint8Array,
): { phase: number; seq: number } | undefined {
  if (data.length < PAYLOAD_HEADER_BYTES) return undefined;
  for (let i = 0; i < MAGIC.length; i++) if (data[i] !== MAGIC[i]) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (view.getUint32(4) !== tag) return undefined;
  return { phase: data[8], seq: view.getUint32(12) };
}

/** Delivery record of one item. */
export interface ItemRecord {
  /** Sequence number within its phase. */
  readonly seq: number;
  /** Index of the origin node. */
  readonly origin: number;
  /** performance.now() when the ANNOUNCE was handed to the origin's socket. */
  sentAt: number;
  /** Per node: arrival time (performance.now()), NaN until it arrives. */
  readonly arrivals: Float64Array;
  /** Nodes other than the origin that received it. */
  delivered: number;
  /** performance.now() of the delivery that completed it, NaN until then. */
  completedAt: number;
}

/** Collects arrivals of one run's items, per phase. */
export class DeliveryTracker {
  private readonly phases = new Map<number, Map<number, ItemRecord>>();
  /** Deliveries that the same module had already received (should stay 0). */
  moduleDuplicates = 0;
  /** Notifications that were not items of this run and phase. */
  foreign = 0;
  /** Called whenever an item reaches every node but its origin. */
  onComplete: ((record: ItemRecord) => void) | undefined;

  /** Creates a tracker for `nodes` nodes and the run identified by `tag`. */
  constructor(readonly nodes: number, readonly tag: number) {}

  /** Registers item `seq` of `phase`, about to be announced at `origin`. */
  add(phase: Phase, seq: number, origin: number): ItemRecord {
    let items = this.phases.get(phase);
    if (!items) this.phases.set(phase, items = new Map());
    const record: ItemRecord = {
      seq,
      origin,
      sentAt: NaN,
      arrivals: new Float64Array(this.nodes).fill(NaN),
      delivered: 0,
      completedAt: NaN,
    };
    items.set(seq, record);
    return record;
  }

  /** The records of `phase`, in sequence order. */
  records(phase: Phase): ItemRecord[] {
    return [...(this.phases.get(phase)?.values() ?? [])].sort((a, b) => a.seq - b.seq);
  }

  /** Records a NOTIFICATION that arrived at `node` at time `at`. */
  readonly handle = (node: number, data: Uint8Array, at: number): void => {
    const id = decodePayload(this.tag, data);
    const record = id && this.phases.get(id.phase)?.get(id.seq);
    if (!record || node === record.origin) {
      this.foreign++;
      return;
    }
    if (!Number.isNaN(record.arrivals[node])) {
      this.moduleDuplicates++;
      return;
    }
    record.arrivals[node] = at;
    record.delivered++;
    if (record.delivered === this.nodes - 1) {
      record.completedAt = at;
      this.onComplete?.(record);
    }
  };
}
