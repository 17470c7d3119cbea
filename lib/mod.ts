/**
 * gossip: a peer-to-peer gossip daemon for VoidPhone-style P2P stacks.
 *
 * The public library surface:
 * - run nodes in-process ({@link GossipNode}) from a configuration
 *   ({@link loadConfig}, {@link gossipOptions}) and a host key ({@link loadHostKey});
 * - encode and decode Gossip API messages.
 *
 * The node core without I/O (`lib/core/node_core.ts`) is internal: the tests
 * and the simulator import it by path.
 *
 * @example Start a node
 * ```ts
 * import { GossipNode, gossipOptions, loadHostKey } from "./mod.ts";
 *
 * const node = new GossipNode({
 *   hostKey: await loadHostKey(".gossip/hostkey.pem"),
 *   config: gossipOptions({
 *     apiAddress: { hostname: "127.0.0.1", port: 7001 },
 *     p2pAddress: { hostname: "127.0.0.1", port: 6001 },
 *   }),
 * });
 * await node.start();
 * await node.close();
 * ```
 *
 * @module
 */

export { GossipNode } from "./node.ts";
export type { GossipNodeOptions, NodeStats, ReconfigurableOptions } from "./node.ts";
export type { CoreStats } from "./core/node_core.ts";
export type { GuardStats, SecurityOptions } from "./core/peer_guard.ts";
export type { ConnectionStats } from "./core/connection_manager.ts";
export type { LocalDeliveryStats } from "./core/local_delivery.ts";
export type { SpreadingOptions, SpreadingStats } from "./protocol/spreading.ts";
export type { PullTrackerOptions } from "./protocol/pull_tracker.ts";
export type { ItemStoreOptions } from "./protocol/item_store.ts";
export type { ValidationQueueOptions } from "./protocol/validation_queue.ts";
export type { SilenceWatchOptions } from "./protocol/silence_watch.ts";
export type { Verdict } from "./protocol/validation_tracker.ts";
export { DEFAULT_CORE_TUNING, DEFAULT_SECURITY_OPTIONS } from "./core/tuning.ts";
export type { CoreTuning } from "./core/tuning.ts";
export { gossipOptions, loadConfig, parseConfig } from "./config.ts";
export type { GossipConfig, GossipOptions } from "./config.ts";
export { formatSocketAddress, parseSocketAddress } from "./address.ts";
export type { SocketAddress } from "./address.ts";
export { generateHostKeyPem, loadHostKey, parseHostKeyPem, writeHostKeyFile } from "./hostkey.ts";
export type { HostKey, HostKeyOptions } from "./hostkey.ts";
export { ApiMessageType, decodeApiMessage, encodeApiMessage } from "./codec/api_messages.ts";
export type {
  AnnounceMessage,
  ApiMessage,
  NotificationMessage,
  NotifyMessage,
  ValidationMessage,
} from "./codec/api_messages.ts";
export type { RandomSource } from "./protocol/random.ts";
export type { ProofOfWork } from "./protocol/proof_of_work.ts";
export type { Scheduler, TimerHandle } from "./protocol/scheduler.ts";
export {
  ConfigError,
  DecodeError,
  FileReadError,
  GossipError,
  ListenError,
  ProtocolError,
} from "./errors.ts";
export type { FileReadProblem } from "./errors.ts";
export {
  MAX_CONFIG_BYTES,
  MAX_HOSTKEY_BYTES,
  MAX_PEERS_FILE_BYTES,
  readBoundedTextFile,
} from "./bounded_file.ts";
export { Logger } from "./log.ts";
export type { LogFields, LogFormat, LogLevel, LogSink } from "./log.ts";
export {
  DROP_REASONS,
  HANDSHAKE_FAILURE_REASONS,
  HOP_BUCKETS,
  metricsFromStats,
  PEER_MESSAGE_TYPES,
} from "./transport/metrics.ts";
export type {
  DropReason,
  HandshakeFailureReason,
  NodeMetrics,
  PeerMessageTypeName,
  PeerStatus,
  StatusSnapshot,
} from "./transport/metrics.ts";
