/**
 * Local delivery: everything between the node and its local modules.
 *
 * It owns the API clients' subscriptions (NOTIFY), their outstanding
 * NOTIFICATION message IDs, the {@link AnnounceQueue} of local ANNOUNCEs, the
 * fair {@link ValidationQueue} in front of local validation, and the
 * {@link ValidationTracker} that turns VALIDATION answers into verdicts.
 *
 * - A local ANNOUNCE becomes an item (fresh nonce, content-bound ID) and is
 *   spread at once: the announcing module vouches for its own item. Other
 *   local subscribers of its type are notified (never the announcer); their
 *   answers are recorded but do not gate spreading.
 * - An item from a peer with no local subscriber goes no further. Otherwise it
 *   waits its turn in the validation queue, then every subscriber of its type
 *   is notified and the verdict follows the rule of {@link ValidationTracker}.
 * - A NOTIFICATION that does not fit a slow client's send queue is dropped for
 *   that client, which then does not count as notified.
 *
 * Pure state: sending is delegated to {@link LocalDeliveryActions}.
 *
 * @module
 */

import type { AnnounceMessage } from "../codec/api_messages.ts";
import type { Logger } from "../log.ts";
import { AnnounceQueue } from "../protocol/announce_queue.ts";
import { type GossipItem, itemIdHex, newItem } from "../protocol/item.ts";
import type { PeerKey } from "../protocol/item_store.ts";
import { NotificationIds } from "../protocol/notification_ids.ts";
import type { Scheduler } from "../protocol/scheduler.ts";
import type { DeliveryOutcome } from "../protocol/spreading.ts";
import { Subscriptions } from "../protocol/subscriptions.ts";
import {
  type QueuedValidation,
  ValidationQueue,
  type ValidationQueueOptions,
} from "../protocol/validation_queue.ts";
import { ValidationTracker, type Verdict } from "../protocol/validation_tracker.ts";

/** Identifies an API client connection (unique for the node's lifetime). */
export type ClientId = number;

/** What local delivery asks the node to do. */
export interface LocalDeliveryActions {
  /** Sends a NOTIFICATION; false when it was dropped (the client's queue is full). */
  sendNotification(client: ClientId, messageId: number, item: GossipItem): boolean;
  /** Closes a client that broke the API protocol. */
  closeClient(client: ClientId, reason: string): void;
  /** Spreads an item a local module announced; false when it could not be stored. */
  originate(item: GossipItem): boolean;
  /** The verdict on a peer's item. */
  verdict(id: bigint, verdict: Verdict): void;
  /** A peer's item was dropped before validation for lack of room. */
  dropped(id: bigint): void;
  /** A peer sent more than its share while the validation queue was full. */
  overShare(peer: PeerKey): void;
}

/** Limits of {@link LocalDelivery}. */
export interface LocalDeliveryOptions {
  /** Wait for VALIDATION answers (`validation_timeout_ms`). */
  readonly validationTimeoutMs: number;
  /** Local announcements waiting before new ones are dropped. */
  readonly maxAnnounceQueue: number;
  /** Unanswered NOTIFICATION IDs kept per client. */
  readonly maxOutstandingNotifications: number;
  /** Validation timeouts in a row after which a client is no longer waited for. */
  readonly muteAfterTimeouts: number;
  /** Limits of the validation queue. */
  readonly validationQueue: ValidationQueueOptions;
}

/** Counters of {@link LocalDelivery}. */
export interface LocalDeliveryStats {
  /** Items announced by local modules. */
  announced: number;
  /** Announcements dropped because the queue was full. */
  announceDropped: number;
  /** NOTIFICATIONs queued to local modules. */
  notificationsSent: number;
  /** NOTIFICATIONs dropped because a module's queue was full. */
  notificationsDropped: number;
  /** Verdicts by outcome on peers' items. */
  verdicts: Record<Verdict, number>;
}

interface PendingItem extends QueuedValidation {
  readonly item: GossipItem;
}

interface ClientState {
  readonly notificationIds: NotificationIds<bigint>;
}

/** The local side of one node. */
export class LocalDelivery {
  private readonly clients = new Map<ClientId, ClientState>();
  private readonly subscriptions = new Subscriptions<ClientId>();
  private readonly announcements: AnnounceQueue<{ client: ClientId; message: AnnounceMessage }>;
  private readonly queue: ValidationQueue<PendingItem>;
  private readonly tracker: ValidationTracker<bigint>;
  /** Items of local origin whose other subscribers' answers are only recorded. */
  private readonly localItems = new Set<bigint>();
  private drainScheduled = false;
  private closed = false;
  /** Counters. */
  readonly stats: LocalDeliveryStats = {
    announced: 0,
    announceDropped: 0,
    notificationsSent: 0,
    notificationsDropped: 0,
    verdicts: { valid: 0, invalid: 0, unanswered: 0 },
  };

  /** Creates the local side. */
  constructor(
    private readonly options: LocalDeliveryOptions,
    private readonly scheduler: Scheduler,
    private readonly actions: LocalDeliveryActions,
    private readonly log: Logger,
  ) {
    this.announcements = new AnnounceQueue(options.maxAnnounceQueue);
    this.tracker = new ValidationTracker<bigint>({
      timeoutMs: options.validationTimeoutMs,
      muteAfterTimeouts: options.muteAfterTimeouts,
      scheduler,
      onDecision: (id, outcome) => this.decided(id, outcome.verdict),
      onMuted: (client) =>
        this.log.warn("module lets validations time out; no longer waiting for it", {
          client,
          after: options.muteAfterTimeouts,
        }),
    });
    this.queue = new ValidationQueue<PendingItem>(options.validationQueue, {
      start: (entry) => this.startValidation(entry.item),
      evicted: (entry) => this.actions.dropped(entry.id),
      overShare: (peer) => this.actions.overShare(peer),
    });
  }

  /** Connected API clients. */
  get clientCount(): number {
    return this.clients.size;
  }

  /** Items awaiting a verdict (notified). */
  get pendingValidations(): number {
    return this.tracker.size;
  }

  /** Items waiting for a validation slot. */
  get queuedValidations(): number {
    return this.queue.waiting;
  }

  /** Validations decided by the timeout. */
  get validationsTimedOut(): number {
    return this.tracker.timedOut;
  }

  /** Local announcements waiting to become items. */
  get announceQueueLength(): number {
    return this.announcements.length;
  }

  /** Sizes of the tables, for the status endpoint. */
  get sizes(): Record<string, number> {
    let outstanding = 0;
    for (const client of this.clients.values()) outstanding += client.notificationIds.size;
    return {
      apiClients: this.clients.size,
      outstandingNotificationIds: outstanding,
      pendingValidations: this.tracker.size,
      queuedValidations: this.queue.waiting,
      validationQueuePeers: this.queue.peersWaiting,
      announceQueue: this.announcements.length,
      localItemsAwaitingAnswers: this.localItems.size,
    };
  }

  /** True when some client subscribed to `dataType`. */
  isSubscribed(dataType: number): boolean {
    return this.subscriptions.has(dataType);
  }

  /** Changes the validation timeout for validations begun from now on. */
  setValidationTimeout(timeoutMs: number): void {
    this.tracker.setTimeout(timeoutMs);
  }

  /** A client connected. */
  clientOpened(client: ClientId): void {
    this.clients.set(client, {
      notificationIds: new NotificationIds(this.options.maxOutstandingNotifications),
    });
  }

  /** A client's connection ended: its subscriptions and pending answers go. */
  clientClosed(client: ClientId): void {
    if (!this.clients.delete(client)) return;
    this.subscriptions.remove(client);
    this.tracker.removeSubscriber(client);
  }

  /** NOTIFY: `client` wants items of `dataType`. */
  subscribe(client: ClientId, dataType: number): void {
    if (!this.clients.has(client)) return;
    this.subscriptions.add(client, dataType);
    this.log.debug("subscribe", { client, type: dataType });
  }

  /** ANNOUNCE: queued, and turned into an item after the current event. */
  announce(client: ClientId, message: AnnounceMessage): void {
    if (!this.announcements.push({ client, message })) {
      this.stats.announceDropped = this.announcements.dropped;
      if (this.announcements.dropped % 1000 === 1) {
        this.log.warn("announce queue full, dropping", { dropped: this.announcements.dropped });
      }
      return;
    }
    if (!this.drainScheduled) {
      this.drainScheduled = true;
      this.scheduler.defer(() => this.drainAnnouncements());
    }
  }

  /** VALIDATION from `client`; an unknown message ID closes the client (ill-formed). */
  validation(client: ClientId, messageId: number, valid: boolean): void {
    const state = this.clients.get(client);
    if (!state) return;
    const id = state.notificationIds.resolve(messageId);
    if (id === undefined) {
      this.actions.closeClient(client, `VALIDATION for unknown message ID ${messageId}`);
      return;
    }
    this.tracker.answer(id, client, valid);
  }

  /** Hands a peer's new item to validation (see the module documentation). */
  deliver(item: GossipItem, from: PeerKey): DeliveryOutcome {
    if (!this.subscriptions.has(item.dataType)) return "unsubscribed";
    const outcome = this.queue.offer({ id: item.id, bytes: item.data.length, peer: from, item });
    return outcome === "refused" ? "overloaded" : "validating";
  }

  /** Stops timers; nothing is decided afterwards. */
  close(): void {
    this.closed = true;
    this.tracker.clear();
    this.queue.clear();
    this.announcements.takeAll();
  }

  private drainAnnouncements(): void {
    this.drainScheduled = false;
    for (const { client, message } of this.announcements.takeAll()) {
      if (this.closed) return;
      const item = newItem(message.ttl, message.dataType, message.data);
      if (!this.actions.originate(item)) {
        this.log.warn("no room to store a local announcement; dropped", {
          item: itemIdHex(item.id),
        });
        continue;
      }
      this.stats.announced++;
      this.log.debug("item announced", {
        item: itemIdHex(item.id),
        type: item.dataType,
        bytes: item.data.length,
        ttl: item.ttl,
        client,
      });
      // Other local subscribers hear of it; their answers do not gate spreading.
      const notified = this.notify(item, client);
      if (notified.length > 0) {
        this.localItems.add(item.id);
        this.tracker.begin(item.id, notified);
      }
    }
  }

  private startValidation(item: GossipItem): void {
    this.tracker.begin(item.id, this.notify(item));
  }

  private decided(id: bigint, verdict: Verdict): void {
    if (this.localItems.delete(id)) return;
    this.queue.finished(id);
    this.stats.verdicts[verdict]++;
    if (!this.closed) this.actions.verdict(id, verdict);
  }

  /** Sends NOTIFICATIONs to subscribers of the item's type; returns who got one. */
  private notify(item: GossipItem, except?: ClientId): ClientId[] {
    const notified: ClientId[] = [];
    for (const client of this.subscriptions.subscribers(item.dataType)) {
      if (client === except) continue;
      const state = this.clients.get(client);
      if (!state) continue;
      const messageId = state.notificationIds.allocate(item.id);
      if (this.actions.sendNotification(client, messageId, item)) {
        this.stats.notificationsSent++;
        notified.push(client);
      } else {
        state.notificationIds.resolve(messageId);
        this.stats.notificationsDropped++;
        if (this.stats.notificationsDropped % 1000 === 1) {
          this.log.warn("subscriber too slow, dropping notifications", {
            client,
            dropped: this.stats.notificationsDropped,
          });
        }
      }
    }
    return notified;
  }
}
