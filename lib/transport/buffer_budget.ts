/**
 * One memory budget for the partial frames of many connections.
 *
 * Every connection's {@link FrameDecoder} charges its reassembly buffer to an
 * account of the budget. When a connection asks for more than the budget has
 * left, the connection holding the most is closed to make room, until the
 * request fits, or the requester itself holds the most, in which case it is
 * refused (and closed by its owner). Dribbling a frame over many connections
 * therefore costs the node at most `limitBytes`, and the peers that hold the
 * most lose their connections first.
 *
 * @module
 */

import type { ReassemblyAccount } from "../codec/frame_decoder.ts";

/** Default limit of {@link sharedBufferBudget}: 32 MiB. */
export const DEFAULT_BUFFER_BUDGET_BYTES = 32 * 1024 * 1024;

/** One connection's share of a {@link BufferBudget}. */
export class BudgetAccount implements ReassemblyAccount {
  /** Bytes this account holds. */
  held = 0;
  /** @internal */
  constructor(private readonly budget: BufferBudget, readonly evict: () => void) {}

  /** Asks for `bytes` more; may close other connections to make room. */
  reserve(bytes: number): boolean {
    return this.budget.reserve(this, bytes);
  }

  /** Gives `bytes` back. */
  release(bytes: number): void {
    this.budget.release(this, bytes);
  }

  /** Releases everything and leaves the budget. */
  close(): void {
    this.budget.close(this);
  }
}

/** A byte budget shared by many connections' reassembly buffers. */
export class BufferBudget {
  /** Bytes currently held by all accounts. */
  used = 0;
  /** Largest `used` seen. */
  peak = 0;
  /** Connections closed to make room for others. */
  evictions = 0;
  /** Requests refused (the requester held the most). */
  refusals = 0;
  private readonly accounts = new Set<BudgetAccount>();

  /** Creates a budget of `limitBytes`. */
  constructor(readonly limitBytes: number = DEFAULT_BUFFER_BUDGET_BYTES) {}

  /** Opens an account; `evict` must close its connection and call {@link BudgetAccount.close}. */
  open(evict: () => void): BudgetAccount {
    const account = new BudgetAccount(this, evict);
    this.accounts.add(account);
    return account;
  }

  /** Number of open accounts. */
  get accountCount(): number {
    return this.accounts.size;
  }

  /** @internal */
  reserve(account: BudgetAccount, bytes: number): boolean {
    while (this.used + bytes > this.limitBytes) {
      let largest: BudgetAccount | undefined;
      for (const other of this.accounts) {
        if (other !== account && (largest === undefined || other.held > largest.held)) {
          largest = other;
        }
      }
      if (largest === undefined || largest.held <= account.held + bytes) {
        this.refusals++;
        return false;
      }
      this.evictions++;
      const before = this.used;
      largest.evict();
      // An owner that did not release must not make this loop spin.
      if (this.used >= before) this.close(largest);
    }
    account.held += bytes;
    this.used += bytes;
    if (this.used > this.peak) this.peak = this.used;
    return true;
  }

  /** @internal */
  release(account: BudgetAccount, bytes: number): void {
    const amount = Math.min(bytes, account.held);
    account.held -= amount;
    this.used -= amount;
  }

  /** @internal */
  close(account: BudgetAccount): void {
    this.used -= account.held;
    account.held = 0;
    this.accounts.delete(account);
  }
}

/**
 * The process-wide budget used by connections that are not given their own:
 * all nodes of a process share it.
 */
export const sharedBufferBudget: BufferBudget = new BufferBudget();
