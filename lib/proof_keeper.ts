/**
 * Keeps this node's identity proof-of-work current: solved for today at start
 * (unless a proof for today was given), renewed in the background, in slices
 * that keep the node serving, when the day changes.
 *
 * @module
 */

import type { Logger } from "./log.ts";
import {
  powEpoch,
  type ProofOfWork,
  solveProofOfWork,
  solveProofOfWorkInSlices,
} from "./protocol/proof_of_work.ts";

/** The current proof-of-work of one identity, renewed daily. */
export class ProofKeeper {
  private proof: ProofOfWork;
  private renewal: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private timer: ReturnType<typeof setInterval> | undefined;

  /** Solves today's proof now (or takes `given` if it is for today). */
  constructor(
    private readonly identity: Uint8Array,
    private readonly difficulty: number,
    private readonly wallClock: () => number,
    private readonly log: Logger,
    given?: ProofOfWork,
  ) {
    const epoch = powEpoch(wallClock());
    this.proof = given?.epoch === epoch
      ? given
      : { epoch, nonce: solveProofOfWork(identity, epoch, difficulty) };
  }

  /** The proof to present in HELLO. */
  get current(): ProofOfWork {
    return this.proof;
  }

  /** Checks for a new day every `intervalMs`. */
  start(intervalMs: number): void {
    this.timer = setInterval(() => this.renew(), intervalMs);
  }

  /** Stops checking and abandons a renewal in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.abort.abort();
    await this.renewal;
  }

  private renew(): void {
    const epoch = powEpoch(this.wallClock());
    if (this.renewal || this.proof.epoch === epoch || this.difficulty <= 0) return;
    this.renewal = solveProofOfWorkInSlices(this.identity, epoch, this.difficulty, {
      signal: this.abort.signal,
    }).then((nonce) => {
      this.proof = { epoch, nonce };
      this.log.info("renewed proof-of-work", { epoch });
    }, (error) => {
      if (!this.abort.signal.aborted) {
        this.log.warn("proof-of-work renewal failed", { error: String(error) });
      }
    }).finally(() => this.renewal = undefined);
  }
}
