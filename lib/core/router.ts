/**
 * The router: where an authenticated peer message goes, and how item IDs are
 * batched on the way out.
 *
 * Every message first takes one token from its sender's message budget (a
 * flood bans the sender). Membership messages go to the
 * {@link ConnectionManager}; items, IHAVE and IWANT to {@link Spreading}. IDs
 * to advertise or ask for are collected per peer while one event is handled
 * and sent as one IHAVE and one IWANT per peer (split at the message limit)
 * afterwards.
 *
 * @module
 */

import {
  MAX_ITEM_IDS,
  PEER_MESSAGE_NAMES,
  type PeerMessage,
  PeerMessageType,
} from "../codec/peer_messages.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { PeerKey } from "../protocol/item_store.ts";
import type { Scheduler } from "../protocol/scheduler.ts";
import type { Spreading } from "../protocol/spreading.ts";
import type { ConnectionManager } from "./connection_manager.ts";
import type { Offence, PeerGuard } from "./peer_guard.ts";

/**
 * What a delivery session may send: one granted here (inbound) only brings
 * items and may ping; one granted to this node (outbound) only pings, answers
 * pings and refers it elsewhere at its end (PUSH).
 */
const HEARD_FROM_DELIVERY: Readonly<Record<"inbound" | "outbound", readonly number[]>> = {
  inbound: [PeerMessageType.Item, PeerMessageType.Ping],
  outbound: [PeerMessageType.Ping, PeerMessageType.Pong, PeerMessageType.Push],
};

/** What the router needs from the node. */
export interface RouterActions {
  /** Queues `message` to `peer`. */
  send(peer: PeerKey, message: PeerMessage): void;
  /** Records an offence (may ban the peer). */
  penalize(peer: PeerKey, offence: Offence): void;
  /** Bans `peer` at once and closes its session. */
  ban(peer: PeerKey, reason: string): void;
  /** Closes `peer`'s session for a protocol violation. */
  violation(peer: PeerKey, reason: string): void;
  /** `peer` answered a PING (the nonce says which; an unknown one is ignored). */
  pong(peer: PeerKey, nonce: bigint): void;
}

/** Dispatch and batching of one node's peer messages. */
export class Router {
  private readonly haves = new Map<PeerKey, bigint[]>();
  private readonly wants = new Map<PeerKey, bigint[]>();
  private flushScheduled = false;
  /** Messages dispatched, by type name ("Item", "IHave", ...). */
  readonly received: Record<string, number> = {};

  /** Creates a router over the node's parts. */
  constructor(
    private readonly guard: PeerGuard,
    private readonly connections: ConnectionManager,
    private readonly spreading: Spreading,
    private readonly scheduler: Scheduler,
    private readonly actions: RouterActions,
    private readonly log: Logger = silentLogger,
  ) {}

  /** Sizes of the batching tables, for the status endpoint. */
  get sizes(): Record<string, number> {
    return { pendingHavePeers: this.haves.size, pendingWantPeers: this.wants.size };
  }

  /** Handles one message from an accepted session of `peer`. */
  dispatch(peer: PeerKey, message: PeerMessage): void {
    if (!this.connections.isConnected(peer)) return; // closed or banned meanwhile
    const now = this.scheduler.now();
    if (!this.guard.takeMessage(peer, now)) {
      this.actions.ban(peer, "message flood");
      return;
    }
    const name = PEER_MESSAGE_NAMES[message.type] ?? String(message.type);
    this.received[name] = (this.received[name] ?? 0) + 1;
    const session = this.connections.session(peer);
    // What else a delivery session sends is read and ignored, so that
    // claiming one wins an attacker no IWANT to wait for, no item served and
    // no say in this node's views.
    if (
      session?.delivery && message.type in PEER_MESSAGE_NAMES &&
      !HEARD_FROM_DELIVERY[session.direction].includes(message.type)
    ) return;
    switch (message.type) {
      case PeerMessageType.Ping:
        this.actions.send(peer, { type: PeerMessageType.Pong, nonce: message.nonce });
        return;
      case PeerMessageType.Pong:
        this.actions.pong(peer, message.nonce);
        return;
      case PeerMessageType.PullRequest:
        this.connections.answerPull(peer, message.max, now);
        return;
      case PeerMessageType.Peers:
      case PeerMessageType.Push: {
        const kind = message.type === PeerMessageType.Peers ? "peers" : "push";
        if (this.connections.receiveOffer(peer, kind, message.peers, now) === "unsolicited") {
          this.actions.penalize(peer, "unsolicited-offer");
        }
        return;
      }
      case PeerMessageType.Item:
        this.spreading.receiveItem(peer, {
          id: message.id,
          nonce: message.nonce,
          ttl: message.ttl,
          dataType: message.dataType,
          data: message.data,
        }, message.hops);
        return;
      case PeerMessageType.IHave:
        this.spreading.receiveHave(peer, message.ids);
        return;
      case PeerMessageType.IWant:
        this.spreading.receiveWant(peer, message.ids);
        return;
      case PeerMessageType.Delivery:
        if (!this.connections.deliveryGranted(peer, now)) {
          this.actions.violation(peer, "DELIVERY not asked for");
        }
        return;
      default:
        this.actions.violation(peer, `unexpected message type ${message.type} after handshake`);
    }
  }

  /** Queues `id` for the next IHAVE to `peer`. */
  queueHave(peer: PeerKey, id: bigint): void {
    this.queue(this.haves, peer, id);
  }

  /** Queues `id` for the next IWANT to `peer`. */
  queueWant(peer: PeerKey, id: bigint): void {
    this.queue(this.wants, peer, id);
    if (this.log.enabled("debug")) {
      this.log.debug("item pulled", {
        item: id.toString(16).padStart(16, "0"),
        from: peer.slice(0, 8),
      });
    }
  }

  /** Drops what was queued for `peer` (it disconnected). */
  forget(peer: PeerKey): void {
    this.haves.delete(peer);
    this.wants.delete(peer);
  }

  /** Sends the batched IWANT and IHAVE messages. */
  flush(): void {
    this.flushScheduled = false;
    this.flushQueue(this.wants, PeerMessageType.IWant);
    this.flushQueue(this.haves, PeerMessageType.IHave);
  }

  private queue(table: Map<PeerKey, bigint[]>, peer: PeerKey, id: bigint): void {
    let ids = table.get(peer);
    if (!ids) table.set(peer, ids = []);
    ids.push(id);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.scheduler.defer(() => this.flush());
    }
  }

  private flushQueue(
    table: Map<PeerKey, bigint[]>,
    type: typeof PeerMessageType.IHave | typeof PeerMessageType.IWant,
  ): void {
    // Each batch leaves the table before it is sent: a send may queue more IDs
    // (waiting IHAVEs go along with any message) in a new batch, which this
    // loop reaches later (a Map iterates over entries added meanwhile).
    for (const [peer, ids] of table) {
      table.delete(peer);
      if (!this.connections.isConnected(peer)) continue;
      for (let i = 0; i < ids.length; i += MAX_ITEM_IDS) {
        this.actions.send(peer, { type, ids: ids.slice(i, i + MAX_ITEM_IDS) });
      }
    }
  }
}
