/**
 * gossip: a peer-to-peer gossip daemon for VoidPhone-style P2P stacks.
 *
 * The public library surface: start nodes in-process, load configuration and
 * host keys, and encode or decode Gossip API messages.
 *
 * @module
 */

export { GossipNode } from "./node.ts";
export type {
  GossipNodeOptions,
  NodeStats,
  ReconfigurableOptions,
  SecurityOptions,
} from "./node.ts";
export { DEFAULT_SECURITY_OPTIONS } from "./node.ts";
export { CONFIG_KEYS, gossipOptions, loadConfig, parseConfig } from "./config.ts";
export type * from "./config.ts";
export { formatSocketAddress, parseSocketAddress } from "./address.ts";
export type { SocketAddress } from "./address.ts";
export { generateHostKeyPem, loadHostKey, parseHostKeyPem, writeHostKeyFile } from "./hostkey.ts";
export type { HostKey, HostKeyOptions } from "./hostkey.ts";
export {
  API_FRAME_FORMAT,
  ApiMessageType,
  decodeApiMessage,
  encodeApiMessage,
} from "./codec/api_messages.ts";
export type {
  AnnounceMessage,
  ApiMessage,
  NotificationMessage,
  NotifyMessage,
  ValidationMessage,
} from "./codec/api_messages.ts";
export { FrameDecoder } from "./codec/frame_decoder.ts";
export type { FrameFormat } from "./codec/frame_decoder.ts";
export type { RandomSource } from "./protocol/random.ts";
export type { ProofOfWork } from "./protocol/proof_of_work.ts";
export type { Scheduler, TimerHandle } from "./protocol/scheduler.ts";
export type { SpreadingOptions, SpreadingStats } from "./protocol/spreading.ts";
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
} from "./transport/metrics.ts";
export type {
  DropReason,
  HandshakeFailureReason,
  NodeMetrics,
  PeerStatus,
  StatusSnapshot,
} from "./transport/metrics.ts";
