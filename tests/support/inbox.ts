/** What a test client has received, with bounded waits for more or for the end. */

/** A queue filled by a read loop and read by tests with timeouts. */
export class Inbox<T> {
  private readonly items: T[] = [];
  private waiters: (() => void)[] = [];
  private ended = false;
  /** `performance.now()` when the connection ended. */
  endedAt = 0;

  /** True once the connection ended. */
  get isEnded(): boolean {
    return this.ended;
  }

  /** Items received and not yet taken. */
  get length(): number {
    return this.items.length;
  }

  /** Adds a received item and wakes waiters. */
  push(item: T): void {
    this.items.push(item);
    this.wake();
  }

  /** Marks the connection as ended and wakes waiters. */
  end(): void {
    if (!this.ended) this.endedAt = performance.now();
    this.ended = true;
    this.wake();
  }

  /** Removes and returns every item received so far. */
  takeAll(): T[] {
    return this.items.splice(0, this.items.length);
  }

  /** The next item; throws after `timeoutMs` or when the connection ended first. */
  async next(timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (this.items.length === 0) {
      if (this.ended) throw new Error("connection closed by the node");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms`);
      await this.wait(left);
    }
    return this.items.shift()!;
  }

  /** Resolves true once the connection ended, false after `timeoutMs`. */
  async waitEnded(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.wait(left);
    }
    return true;
  }

  /** Waits until `count` items are queued, the connection ended, or `timeoutMs` passed. */
  async waitForCount(count: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.items.length < count && !this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      await this.wait(left);
    }
  }

  private wait(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.waiters.push(done);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}
