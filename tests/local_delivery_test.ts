/**
 * Unit tests of lib/core/local_delivery.ts with a recording actions object
 * and the fake scheduler: announcements, notifications, validation answers
 * and verdicts, the validation queue, muting and dropped notifications.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import type { AnnounceMessage } from "../lib/codec/api_messages.ts";
import {
  type ClientId,
  LocalDelivery,
  type LocalDeliveryActions,
  type LocalDeliveryOptions,
} from "../lib/core/local_delivery.ts";
import { Logger, type LogLevel } from "../lib/log.ts";
import { computeItemId, type GossipItem, newItem } from "../lib/protocol/item.ts";
import type { PeerKey } from "../lib/protocol/item_store.ts";
import type { Verdict } from "../lib/protocol/validation_tracker.ts";
import { FakeScheduler } from "./support/fake_scheduler.ts";
import { advanceStep } from "./support/arbitraries.ts";

interface Notified {
  readonly client: ClientId;
  readonly messageId: number;
  readonly id: bigint;
}

/** Records every request of LocalDelivery. */
class Recorder implements LocalDeliveryActions {
  readonly notifications: Notified[] = [];
  readonly closed: { client: ClientId; reason: string }[] = [];
  readonly originated: GossipItem[] = [];
  readonly verdicts: string[] = [];
  readonly droppedIds: bigint[] = [];
  readonly overShares: PeerKey[] = [];
  /** Clients whose send queue is full. */
  readonly full = new Set<ClientId>();
  /** Whether the store refuses local items. */
  storeFull = false;

  sendNotification(client: ClientId, messageId: number, item: GossipItem): boolean {
    if (this.full.has(client)) return false;
    this.notifications.push({ client, messageId, id: item.id });
    return true;
  }

  closeClient(client: ClientId, reason: string): void {
    this.closed.push({ client, reason });
  }

  originate(item: GossipItem): boolean {
    if (this.storeFull) return false;
    this.originated.push(item);
    return true;
  }

  verdict(id: bigint, verdict: Verdict): void {
    this.verdicts.push(`${id}:${verdict}`);
  }

  dropped(id: bigint): void {
    this.droppedIds.push(id);
  }

  overShare(peer: PeerKey): void {
    this.overShares.push(peer);
  }

  /** The message ID `client` was given for item `id`. */
  messageId(client: ClientId, id: bigint): number {
    const found = this.notifications.find((n) => n.client === client && n.id === id);
    assert.ok(found, `client ${client} was not notified of ${id}`);
    return found.messageId;
  }

  /** Clients notified of `id`. */
  notifiedOf(id: bigint): ClientId[] {
    return this.notifications.filter((n) => n.id === id).map((n) => n.client);
  }
}

const OPTIONS: LocalDeliveryOptions = {
  validationTimeoutMs: 1_000,
  maxAnnounceQueue: 100,
  maxOutstandingNotifications: 64,
  muteAfterTimeouts: 3,
  validationQueue: {
    maxInFlight: 10,
    maxInFlightBytes: 1_000_000,
    maxQueuedBytes: 1_000_000,
    maxQueuedPerPeer: 100,
  },
};

function setup(options: Partial<LocalDeliveryOptions> = {}, level: LogLevel = "warn") {
  const clock = new FakeScheduler();
  const actions = new Recorder();
  const lines: string[] = [];
  const log = new Logger(level, "local", (_level, line) => lines.push(line));
  const local = new LocalDelivery({ ...OPTIONS, ...options }, clock, actions, log);
  return { clock, actions, lines, local };
}

function announce(dataType = 7, ttl = 3, data = new Uint8Array([1, 2, 3])): AnnounceMessage {
  return { kind: "announce", ttl, reserved: 0, dataType, data };
}

/** A peer's item of type `dataType`, told apart by `n`. */
function peerItem(n: number, dataType = 7, size = 3): GossipItem {
  return newItem(0, dataType, new Uint8Array(size).fill(n & 0xff), BigInt(n));
}

// ---- announcements --------------------------------------------------------------------

Deno.test("an ANNOUNCE becomes an item after the current event, with a fresh content-bound ID", () => {
  const { clock, actions, local } = setup();
  local.clientOpened(1);
  const message = announce(42, 5, new Uint8Array([9, 8]));
  local.announce(1, message);
  assert.equal(actions.originated.length, 0, "not inside the event");
  assert.equal(local.announceQueueLength, 1);
  clock.advance(0);
  assert.equal(actions.originated.length, 1);
  const [item] = actions.originated;
  assert.equal(item.ttl, 5);
  assert.equal(item.dataType, 42);
  assert.deepEqual(item.data, new Uint8Array([9, 8]));
  assert.equal(item.id, computeItemId(item.nonce, 5, 42, item.data));
  assert.equal(local.stats.announced, 1);
  assert.equal(local.announceQueueLength, 0);
  // The same content announced again is another item.
  local.announce(1, message);
  clock.advance(0);
  assert.notEqual(actions.originated[1].id, item.id);
});

Deno.test("the announcements of one event are drained in one batch, in order", () => {
  const { clock, actions, local } = setup();
  local.clientOpened(1);
  for (let n = 1; n <= 5; n++) local.announce(1, announce(n));
  assert.equal(clock.pendingCount, 1, "one deferred drain");
  clock.advance(0);
  assert.deepEqual(actions.originated.map((item) => item.dataType), [1, 2, 3, 4, 5]);
  assert.equal(clock.pendingCount, 0);
  local.announce(1, announce(6));
  assert.equal(clock.pendingCount, 1, "the next event schedules again");
  clock.advance(0);
  assert.equal(actions.originated.length, 6);
});

Deno.test("a full announce queue drops and counts, warning once per thousand", () => {
  const { clock, actions, lines, local } = setup({ maxAnnounceQueue: 2 });
  local.clientOpened(1);
  for (let n = 0; n < 3; n++) local.announce(1, announce());
  assert.equal(local.stats.announceDropped, 1);
  assert.equal(local.announceQueueLength, 2);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /WARN .*announce queue full.* dropped=1/);
  for (let n = 0; n < 999; n++) local.announce(1, announce());
  assert.equal(local.stats.announceDropped, 1_000);
  assert.equal(lines.length, 1, "not once per drop");
  local.announce(1, announce());
  assert.equal(lines.length, 2);
  assert.match(lines[1], /dropped=1001/);
  clock.advance(0);
  assert.equal(actions.originated.length, 2, "the queued ones still go out");
  assert.equal(local.stats.announced, 2);
});

Deno.test("a local announcement the store refuses is dropped with a warning", () => {
  const { clock, actions, lines, local } = setup();
  local.clientOpened(1);
  local.clientOpened(2);
  local.subscribe(2, 7);
  actions.storeFull = true;
  local.announce(1, announce(7));
  clock.advance(0);
  assert.equal(local.stats.announced, 0);
  assert.deepEqual(actions.notifications, [], "nobody hears of it");
  assert.equal(lines.length, 1);
  assert.match(lines[0], /no room to store a local announcement/);
});

Deno.test("a local item is notified to other subscribers of its type, never to the announcer", () => {
  const { clock, actions, local } = setup();
  for (const client of [1, 2, 3, 4]) local.clientOpened(client);
  local.subscribe(1, 7); // the announcer subscribed to the type too
  local.subscribe(2, 7);
  local.subscribe(3, 7);
  local.subscribe(4, 8); // another type
  local.announce(1, announce(7));
  clock.advance(0);
  const [item] = actions.originated;
  assert.deepEqual(actions.notifiedOf(item.id).sort(), [2, 3]);
  assert.equal(local.stats.notificationsSent, 2);
  assert.equal(local.sizes.localItemsAwaitingAnswers, 1);
  // Their answers are recorded but decide nothing: no verdict for a local item.
  local.validation(2, actions.messageId(2, item.id), false);
  local.validation(3, actions.messageId(3, item.id), true);
  assert.deepEqual(actions.verdicts, []);
  assert.deepEqual(actions.closed, []);
  assert.equal(local.sizes.localItemsAwaitingAnswers, 0);
  assert.deepEqual(local.stats.verdicts, { valid: 0, invalid: 0, unanswered: 0 });
});

Deno.test("a local item nobody else subscribed to waits for nothing", () => {
  const { clock, actions, local } = setup();
  local.clientOpened(1);
  local.subscribe(1, 7);
  local.announce(1, announce(7));
  local.announce(1, announce(9));
  clock.advance(0);
  assert.equal(actions.originated.length, 2, "spread even without a subscriber");
  assert.deepEqual(actions.notifications, []);
  assert.equal(local.pendingValidations, 0);
  assert.equal(local.sizes.localItemsAwaitingAnswers, 0);
  assert.equal(clock.pendingCount, 0);
});

Deno.test("unanswered notifications of a local item time out without a verdict", () => {
  const { clock, actions, local } = setup();
  local.clientOpened(1);
  local.clientOpened(2);
  local.subscribe(2, 7);
  local.announce(1, announce(7));
  clock.advance(0);
  assert.equal(local.pendingValidations, 1);
  clock.advance(1_000);
  assert.equal(local.pendingValidations, 0);
  assert.deepEqual(actions.verdicts, []);
  assert.equal(local.sizes.localItemsAwaitingAnswers, 0);
});

// ---- items from peers -----------------------------------------------------------------

Deno.test("a peer's item goes only to subscribers of its type", () => {
  const { actions, local } = setup();
  local.clientOpened(1);
  local.clientOpened(2);
  local.subscribe(1, 7);
  local.subscribe(2, 8);
  assert.equal(local.isSubscribed(7), true);
  assert.equal(local.isSubscribed(9), false);
  assert.equal(local.deliver(peerItem(1, 9), "p"), "unsubscribed");
  assert.deepEqual(actions.notifications, []);
  const x = peerItem(2, 7);
  assert.equal(local.deliver(x, "p"), "validating");
  assert.deepEqual(actions.notifiedOf(x.id), [1]);
  assert.equal(local.pendingValidations, 1);
});

Deno.test("verdicts: one valid answer and no invalid one is valid; one invalid decides at once", () => {
  const { actions, local } = setup();
  for (const client of [1, 2]) {
    local.clientOpened(client);
    local.subscribe(client, 7);
  }
  const good = peerItem(1);
  local.deliver(good, "p");
  local.validation(1, actions.messageId(1, good.id), true);
  assert.deepEqual(actions.verdicts, [], "waits for the other subscriber");
  local.validation(2, actions.messageId(2, good.id), true);
  assert.deepEqual(actions.verdicts, [`${good.id}:valid`]);

  const bad = peerItem(2);
  local.deliver(bad, "p");
  local.validation(2, actions.messageId(2, bad.id), false);
  assert.deepEqual(actions.verdicts.at(-1), `${bad.id}:invalid`);
  // The late answer of the other subscriber is accepted without consequence.
  local.validation(1, actions.messageId(1, bad.id), true);
  assert.equal(actions.verdicts.length, 2);
  assert.deepEqual(actions.closed, []);
  assert.deepEqual(local.stats.verdicts, { valid: 1, invalid: 1, unanswered: 0 });
});

Deno.test("no answer within the timeout: unanswered", () => {
  const { clock, actions, local } = setup({ validationTimeoutMs: 500 });
  local.clientOpened(1);
  local.subscribe(1, 7);
  const x = peerItem(1);
  local.deliver(x, "p");
  clock.advance(499);
  assert.deepEqual(actions.verdicts, []);
  clock.advance(1);
  assert.deepEqual(actions.verdicts, [`${x.id}:unanswered`]);
  assert.equal(local.validationsTimedOut, 1);
  // The ID stays valid: a late answer does not close the client.
  local.validation(1, actions.messageId(1, x.id), true);
  assert.deepEqual(actions.closed, []);
});

Deno.test("setValidationTimeout applies to validations begun afterwards", () => {
  const { clock, actions, local } = setup({ validationTimeoutMs: 1_000 });
  local.clientOpened(1);
  local.subscribe(1, 7);
  local.deliver(peerItem(1), "p");
  local.setValidationTimeout(100);
  const later = peerItem(2);
  local.deliver(later, "p");
  clock.advance(100);
  assert.deepEqual(actions.verdicts, [`${later.id}:unanswered`]);
});

Deno.test("a VALIDATION with an unknown message ID closes the client", () => {
  const { actions, local } = setup();
  local.clientOpened(1);
  local.subscribe(1, 7);
  const x = peerItem(1);
  local.deliver(x, "p");
  const used = actions.messageId(1, x.id);
  const unknown = (used + 1) & 0xffff;
  local.validation(1, unknown, true);
  assert.equal(actions.closed.length, 1);
  assert.equal(actions.closed[0].client, 1);
  assert.match(actions.closed[0].reason, new RegExp(`unknown message ID ${unknown}`));
  // An ID answered once is unknown afterwards.
  local.validation(1, used, true);
  local.validation(1, used, true);
  assert.equal(actions.closed.length, 2);
  // Messages of a client that is gone are ignored.
  local.validation(99, 1, true);
  assert.equal(actions.closed.length, 2);
});

Deno.test("beyond maxOutstandingNotifications the oldest ID is forgotten", () => {
  const { actions, local } = setup({ maxOutstandingNotifications: 2 });
  local.clientOpened(1);
  local.subscribe(1, 7);
  const items = [1, 2, 3].map((n) => peerItem(n));
  for (const x of items) local.deliver(x, "p");
  assert.equal(local.sizes.outstandingNotificationIds, 2);
  local.validation(1, actions.messageId(1, items[2].id), true);
  assert.deepEqual(actions.closed, []);
  local.validation(1, actions.messageId(1, items[0].id), true);
  assert.equal(actions.closed.length, 1, "the forgotten ID is unknown");
});

// ---- the validation queue -------------------------------------------------------------

Deno.test("items beyond the in-flight limit wait and are notified when a slot frees", () => {
  const { actions, local } = setup({
    validationQueue: { ...OPTIONS.validationQueue, maxInFlight: 1 },
  });
  local.clientOpened(1);
  local.subscribe(1, 7);
  const [first, second] = [peerItem(1), peerItem(2)];
  assert.equal(local.deliver(first, "p"), "validating");
  assert.equal(local.deliver(second, "q"), "validating");
  assert.deepEqual(actions.notifiedOf(second.id), [], "waiting for a slot");
  assert.equal(local.queuedValidations, 1);
  assert.equal(local.sizes.validationQueuePeers, 1);
  local.validation(1, actions.messageId(1, first.id), true);
  assert.deepEqual(actions.notifiedOf(second.id), [1]);
  assert.equal(local.queuedValidations, 0);
});

Deno.test("a peer beyond its share is refused (overloaded); the hog's newest item is evicted", () => {
  const { actions, local } = setup({
    validationQueue: {
      maxInFlight: 1,
      maxInFlightBytes: 1e6,
      maxQueuedBytes: 30,
      maxQueuedPerPeer: 100,
    },
  });
  local.clientOpened(1);
  local.subscribe(1, 7);
  local.deliver(peerItem(1, 7, 10), "hog"); // runs
  local.deliver(peerItem(2, 7, 10), "hog");
  const newest = peerItem(3, 7, 10);
  local.deliver(newest, "hog");
  local.deliver(peerItem(4, 7, 10), "small"); // 30 bytes waiting
  assert.equal(local.deliver(peerItem(5, 7, 10), "hog"), "overloaded");
  assert.deepEqual(actions.overShares, ["hog"]);
  assert.equal(local.deliver(peerItem(6, 7, 5), "other"), "validating");
  assert.deepEqual(actions.droppedIds, [newest.id], "evicted to make room, reported as dropped");
});

Deno.test("a subscriber whose queue is full is skipped and does not count as notified", () => {
  const { actions, lines, local } = setup();
  local.clientOpened(1);
  local.clientOpened(2);
  local.subscribe(1, 7);
  local.subscribe(2, 7);
  actions.full.add(1);
  const x = peerItem(1);
  local.deliver(x, "p");
  assert.deepEqual(actions.notifiedOf(x.id), [2]);
  assert.equal(local.stats.notificationsDropped, 1);
  assert.equal(local.stats.notificationsSent, 1);
  assert.match(lines[0], /subscriber too slow, dropping notifications.* client=1/);
  local.validation(2, actions.messageId(2, x.id), true);
  assert.deepEqual(actions.verdicts, [`${x.id}:valid`], "decided without waiting for 1");
  // The dropped notification's ID was released: nothing outstanding for 1.
  assert.equal(local.sizes.outstandingNotificationIds, 0);
});

Deno.test("with every notification dropped the verdict is unanswered at once", () => {
  const { actions, local } = setup();
  local.clientOpened(1);
  local.subscribe(1, 7);
  actions.full.add(1);
  const x = peerItem(1);
  assert.equal(local.deliver(x, "p"), "validating");
  assert.deepEqual(actions.verdicts, [`${x.id}:unanswered`], "before deliver returned");
  assert.equal(local.pendingValidations, 0);
});

Deno.test("a long validation queue drains without deep recursion when verdicts are immediate", () => {
  const { clock, actions, local } = setup({
    maxOutstandingNotifications: 16_384,
    validationQueue: {
      maxInFlight: 128,
      maxInFlightBytes: 8 << 20,
      maxQueuedBytes: 32 << 20,
      maxQueuedPerPeer: 1_024,
    },
  });
  local.clientOpened(1);
  local.subscribe(1, 7);
  const count = 5_000;
  for (let n = 0; n < count; n++) local.deliver(peerItem(n), `p${n % 64}`);
  assert.equal(local.queuedValidations, count - 128);
  actions.full.add(1); // from now on every notification is dropped
  clock.advance(1_000); // the 128 in flight time out; the rest is decided at once
  assert.equal(actions.verdicts.length, count);
  assert.equal(local.queuedValidations, 0);
  assert.equal(local.pendingValidations, 0);
});

// ---- muting ---------------------------------------------------------------------------

Deno.test("a module that lets validations time out is muted, with one warning", () => {
  const { clock, actions, lines, local } = setup({ muteAfterTimeouts: 2 });
  local.clientOpened(1);
  local.clientOpened(2);
  local.subscribe(1, 7);
  local.subscribe(2, 7);
  for (const n of [1, 2]) {
    const x = peerItem(n);
    local.deliver(x, "p");
    local.validation(2, actions.messageId(2, x.id), true); // 2 answers, 1 never does
    clock.advance(1_000);
  }
  const warnings = lines.filter((line) => line.includes("no longer waiting"));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /WARN .*client=1 after=2/);
  // From now on 1 is notified but not waited for.
  const x = peerItem(3);
  local.deliver(x, "p");
  assert.deepEqual(actions.notifiedOf(x.id).sort(), [1, 2]);
  local.validation(2, actions.messageId(2, x.id), true);
  assert.equal(actions.verdicts.at(-1), `${x.id}:valid`, "decided without the timeout");
  // Its answers still count while the verdict is open; an answer un-mutes it.
  const y = peerItem(4);
  local.deliver(y, "p");
  local.validation(1, actions.messageId(1, y.id), false);
  assert.equal(actions.verdicts.at(-1), `${y.id}:invalid`);
});

// ---- clients --------------------------------------------------------------------------

Deno.test("a closing client takes its subscriptions and pending answers with it", () => {
  const { actions, local } = setup();
  local.clientOpened(1);
  local.clientOpened(2);
  local.subscribe(1, 7);
  local.subscribe(2, 7);
  assert.equal(local.clientCount, 2);
  const x = peerItem(1);
  local.deliver(x, "p");
  local.validation(2, actions.messageId(2, x.id), true);
  local.clientClosed(1);
  assert.deepEqual(actions.verdicts, [`${x.id}:valid`], "no longer waits for 1");
  assert.equal(local.clientCount, 1);
  local.clientClosed(2);
  assert.equal(local.isSubscribed(7), false);
  assert.equal(local.deliver(peerItem(2), "p"), "unsubscribed");
  local.clientClosed(2); // twice: ignored
  local.subscribe(2, 7); // a closed client cannot subscribe
  assert.equal(local.isSubscribed(7), false);
});

Deno.test("the only waited-for subscriber closing decides unanswered", () => {
  const { actions, local } = setup();
  local.clientOpened(1);
  local.subscribe(1, 7);
  const x = peerItem(1);
  local.deliver(x, "p");
  local.clientClosed(1);
  assert.deepEqual(actions.verdicts, [`${x.id}:unanswered`]);
});

Deno.test("NOTIFY is logged at debug level", () => {
  const { lines, local } = setup({}, "debug");
  local.clientOpened(5);
  local.subscribe(5, 1234);
  assert.ok(lines.some((line) => /DEBUG .*subscribe.* client=5 type=1234/.test(line)));
});

// ---- shutdown -------------------------------------------------------------------------

Deno.test("close stops timers and decides nothing afterwards", () => {
  const { clock, actions, local } = setup({
    validationQueue: { ...OPTIONS.validationQueue, maxInFlight: 1 },
  });
  local.clientOpened(1);
  local.subscribe(1, 7);
  const x = peerItem(1);
  local.deliver(x, "p");
  local.deliver(peerItem(2), "p");
  local.announce(1, announce());
  local.close();
  assert.equal(local.pendingValidations, 0);
  assert.equal(local.queuedValidations, 0);
  assert.equal(local.announceQueueLength, 0);
  clock.advance(10_000);
  assert.deepEqual(actions.verdicts, []);
  assert.deepEqual(actions.originated, [], "queued announcements are discarded");
  assert.equal(clock.pendingCount, 0);
  local.validation(1, actions.messageId(1, x.id), true);
  assert.deepEqual(actions.verdicts, []);
});

Deno.test("closing while announcements are drained stops the drain", () => {
  /** Stops the node while the first item is being spread. */
  class Closing extends Recorder {
    local: LocalDelivery | undefined;
    override originate(item: GossipItem): boolean {
      super.originate(item);
      this.local?.close();
      return true;
    }
  }
  const clock = new FakeScheduler();
  const actions = new Closing();
  const local = new LocalDelivery(OPTIONS, clock, actions, new Logger("silent"));
  actions.local = local;
  local.clientOpened(1);
  local.announce(1, announce());
  local.announce(1, announce());
  clock.advance(0);
  assert.equal(actions.originated.length, 1);
});

Deno.test("sizes reports every table", () => {
  const { actions, local } = setup({
    validationQueue: { ...OPTIONS.validationQueue, maxInFlight: 1 },
  });
  local.clientOpened(1);
  local.subscribe(1, 7);
  local.deliver(peerItem(1), "p");
  local.deliver(peerItem(2), "q");
  local.announce(1, announce());
  assert.deepEqual(local.sizes, {
    apiClients: 1,
    outstandingNotificationIds: 1,
    pendingValidations: 1,
    queuedValidations: 1,
    validationQueuePeers: 1,
    announceQueue: 1,
    localItemsAwaitingAnswers: 0,
  });
  assert.equal(actions.notifications.length, 1);
  local.close();
});

// ---- property: every item a verdict or a drop, every subscriber notified once ----------

type LocalOp =
  | { kind: "open"; client: number }
  | { kind: "close"; client: number }
  | { kind: "subscribe"; client: number; dataType: number }
  | { kind: "deliver"; n: number; peer: number }
  | { kind: "answer"; client: number; pick: number; valid: boolean }
  | { kind: "bogus"; client: number; messageId: number }
  | { kind: "announce"; client: number; dataType: number }
  | { kind: "full"; client: number }
  | { kind: "advance"; ms: number };

const clientNumber = fc.integer({ min: 1, max: 4 });
const typeNumber = fc.integer({ min: 1, max: 3 });
const localOp: fc.Arbitrary<LocalOp> = fc.oneof(
  fc.record({ kind: fc.constant("open" as const), client: clientNumber }),
  fc.record({ kind: fc.constant("close" as const), client: clientNumber }),
  fc.record({
    kind: fc.constant("subscribe" as const),
    client: clientNumber,
    dataType: typeNumber,
  }),
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("deliver" as const),
      n: fc.integer({ min: 0, max: 11 }),
      peer: fc.integer({ min: 0, max: 2 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("answer" as const),
      client: clientNumber,
      pick: fc.nat(),
      valid: fc.boolean(),
    }),
  },
  fc.record({
    kind: fc.constant("bogus" as const),
    client: clientNumber,
    messageId: fc.integer({ min: 0, max: 0xffff }),
  }),
  fc.record({ kind: fc.constant("announce" as const), client: clientNumber, dataType: typeNumber }),
  fc.record({ kind: fc.constant("full" as const), client: clientNumber }),
  advanceStep(400),
);

Deno.test("property: each delivered item gets one verdict or drop, each subscriber one NOTIFICATION, verdicts follow the answers", () => {
  fc.assert(
    fc.property(fc.array(localOp, { maxLength: 120, size: "max" }), (ops) => {
      const clock = new FakeScheduler();
      const open = new Set<ClientId>();
      const subscribed = new Map<ClientId, Set<number>>();
      const full = new Set<ClientId>();
      // Per item being validated: who was notified, and the answers so far.
      const pending = new Map<
        bigint,
        { notified: Set<ClientId>; answered: Set<ClientId>; valid: number; invalid: number }
      >();
      // Outstanding NOTIFICATIONs per client: message ID -> item ID.
      const outstanding = new Map<ClientId, Map<number, bigint>>();
      const localIds = new Map<bigint, ClientId>(); // local items -> announcer
      const announcers: ClientId[] = []; // ANNOUNCEs waiting, at most 3
      let expectClose: ClientId | undefined;
      const items = Array.from({ length: 12 }, (_, n) => peerItem(n, 1 + (n % 3)));
      const actions: LocalDeliveryActions = {
        sendNotification: (client, messageId, item) => {
          assert.ok(open.has(client), "only open clients are notified");
          assert.ok(subscribed.get(client)?.has(item.dataType), "only subscribers of the type");
          assert.notEqual(localIds.get(item.id), client, "never the announcer");
          const entry = pending.get(item.id);
          if (entry) {
            assert.ok(!entry.notified.has(client), "one NOTIFICATION per subscriber and item");
          }
          const ids = outstanding.get(client) ?? new Map<number, bigint>();
          outstanding.set(client, ids);
          assert.ok(!ids.has(messageId), "a message ID is not reused while outstanding");
          // The ID was allocated: beyond 3 outstanding the oldest is forgotten.
          if (ids.size >= 3) ids.delete(ids.keys().next().value!);
          if (full.has(client)) return false;
          entry?.notified.add(client);
          ids.set(messageId, item.id);
          return true;
        },
        closeClient: (client) => {
          assert.equal(client, expectClose, "closed only for an unknown message ID");
        },
        originate: (item) => {
          assert.ok(!pending.has(item.id));
          const announcer = announcers.shift();
          assert.ok(announcer !== undefined, "only announced items are originated");
          localIds.set(item.id, announcer);
          return true;
        },
        verdict: (id, verdict) => {
          const entry = pending.get(id);
          assert.ok(entry, "a verdict only on an item being validated, once");
          pending.delete(id);
          if (verdict === "invalid") {
            assert.ok(entry.invalid > 0, "invalid needs an invalid answer");
          }
          if (verdict === "valid") {
            assert.ok(
              entry.valid > 0 && entry.invalid === 0,
              "valid needs a valid answer, no invalid",
            );
          }
          if (verdict === "unanswered") assert.equal(entry.valid + entry.invalid, 0);
        },
        dropped: (id) => {
          assert.ok(pending.delete(id), "a drop only of an item being validated, once");
        },
        overShare: () => {},
      };
      const local = new LocalDelivery(
        {
          validationTimeoutMs: 300,
          maxAnnounceQueue: 3,
          maxOutstandingNotifications: 3,
          muteAfterTimeouts: 2,
          validationQueue: {
            maxInFlight: 2,
            maxInFlightBytes: 1_000,
            maxQueuedBytes: 9,
            maxQueuedPerPeer: 2,
          },
        },
        clock,
        actions,
        new Logger("error", "local", () => {}),
      );
      const answer = (client: ClientId, messageId: number, valid: boolean) => {
        const ids = outstanding.get(client);
        const id = ids?.get(messageId);
        ids?.delete(messageId);
        const entry = id === undefined ? undefined : pending.get(id);
        // A subscriber's first answer on the item counts (a stale NOTIFICATION of
        // the same item, from an earlier validation of it, names the same content).
        if (entry?.notified.has(client) && !entry.answered.has(client)) {
          entry.answered.add(client);
          if (valid) entry.valid++;
          else entry.invalid++;
        }
        expectClose = id === undefined && open.has(client) ? client : undefined;
        local.validation(client, messageId, valid);
        expectClose = undefined;
      };
      for (const op of ops) {
        switch (op.kind) {
          case "open":
            if (open.has(op.client)) break;
            open.add(op.client);
            local.clientOpened(op.client);
            break;
          case "close":
            if (!open.delete(op.client)) break;
            subscribed.delete(op.client);
            outstanding.delete(op.client);
            local.clientClosed(op.client);
            break;
          case "subscribe":
            if (!open.has(op.client)) break;
            if (!subscribed.has(op.client)) subscribed.set(op.client, new Set());
            subscribed.get(op.client)!.add(op.dataType);
            local.subscribe(op.client, op.dataType);
            break;
          case "deliver": {
            const item = items[op.n];
            if (pending.has(item.id)) break; // spreading hands over a new item once
            pending.set(item.id, {
              notified: new Set(),
              answered: new Set(),
              valid: 0,
              invalid: 0,
            });
            const outcome = local.deliver(item, `p${op.peer}`);
            if (outcome === "unsubscribed") {
              assert.ok([...subscribed.values()].every((types) => !types.has(item.dataType)));
            }
            if (outcome !== "validating") pending.delete(item.id);
            break;
          }
          case "answer": {
            const ids = [...(outstanding.get(op.client)?.keys() ?? [])];
            if (ids.length > 0) answer(op.client, ids[op.pick % ids.length], op.valid);
            break;
          }
          case "bogus":
            answer(op.client, op.messageId, false);
            break;
          case "announce":
            if (!open.has(op.client)) break;
            if (announcers.length < 3) announcers.push(op.client);
            local.announce(op.client, announce(op.dataType));
            break;
          case "full":
            if (!full.delete(op.client)) full.add(op.client);
            break;
          case "advance":
            clock.advance(op.ms);
            break;
        }
        clock.advance(0); // deferred announcements
      }
      // Every item handed over is decided or dropped in bounded time.
      for (let i = 0; i < 40 && pending.size > 0; i++) clock.advance(300);
      assert.equal(pending.size, 0, `${pending.size} items never decided`);
      local.close();
      assert.equal(clock.pendingCount, 0);
    }),
    { numRuns: 300 },
  );
});
