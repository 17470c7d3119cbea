/**
 * Unit tests of TcpListener over real loopback sockets: the connection limit
 * (read at each accept), refusals and their log lines, and closing.
 */

import assert from "node:assert/strict";
import { Logger, type LogLevel } from "../lib/log.ts";
import { TcpListener } from "../lib/transport/listener.ts";

/** A listener whose owner keeps every accepted connection until the test releases it. */
class Owner {
  readonly listener: TcpListener;
  readonly owned = new Set<Deno.TcpConn>();
  readonly lines: { level: LogLevel; line: string }[] = [];
  /** Connections handed over so far. */
  accepted = 0;
  /** Times the limit was read. */
  limitReads = 0;
  private waiters: { count: number; resolve: () => void }[] = [];

  constructor(public limit: number) {
    this.listener = new TcpListener({
      address: { hostname: "127.0.0.1", port: 0 },
      maxConnections: () => {
        this.limitReads++;
        return this.limit;
      },
      log: new Logger("debug", "test", (level, line) => this.lines.push({ level, line })),
      onConnection: (conn) => {
        this.owned.add(conn);
        this.accepted++;
        this.waiters = this.waiters.filter((waiter) => {
          if (this.accepted < waiter.count) return true;
          waiter.resolve();
          return false;
        });
      },
      openConnections: () => this.owned.size,
    });
  }

  get port(): number {
    return this.listener.addr.port;
  }

  /** Resolves once `count` connections have been handed over in all. */
  acceptedCount(count: number): Promise<void> {
    if (this.accepted >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  /** Closes every owned connection. */
  release(): void {
    for (const conn of this.owned) conn.close();
    this.owned.clear();
  }
}

/** Resolves true when the other end closed `conn` (EOF or reset) without sending anything. */
async function closedByPeer(conn: Deno.Conn): Promise<boolean> {
  try {
    return await conn.read(new Uint8Array(16)) === null;
  } catch (error) {
    return error instanceof Deno.errors.ConnectionReset;
  }
}

function connect(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

/** Connects and expects the listener to hand the connection over. */
async function connectAccepted(owner: Owner): Promise<Deno.TcpConn> {
  const before = owner.accepted;
  const conn = await connect(owner.port);
  await owner.acceptedCount(before + 1);
  return conn;
}

/** Connects and expects the listener to close the connection right after accept. */
async function connectRefused(owner: Owner): Promise<void> {
  const refused = owner.listener.refused;
  const accepted = owner.accepted;
  const conn = await connect(owner.port);
  try {
    assert.equal(await closedByPeer(conn), true, "closed by the listener");
  } finally {
    conn.close();
  }
  assert.equal(owner.listener.refused, refused + 1);
  assert.equal(owner.accepted, accepted, "not handed over");
}

Deno.test("connections beyond maxConnections are closed right after accept and counted", async () => {
  const owner = new Owner(2);
  owner.listener.listen();
  const clients = [await connectAccepted(owner), await connectAccepted(owner)];
  await connectRefused(owner);
  await connectRefused(owner);
  assert.equal(owner.listener.refused, 2);
  assert.equal(owner.owned.size, 2);
  // One warning for the first refusal, not one per refusal.
  assert.equal(owner.lines.length, 1, JSON.stringify(owner.lines));
  assert.equal(owner.lines[0].level, "warn");
  assert.match(owner.lines[0].line, /connection limit reached, refusing limit=2 refused=1/);
  // The accepted ones are untouched: they still talk.
  const [first] = [...owner.owned];
  await clients[0].write(new Uint8Array([42]));
  const got = new Uint8Array(1);
  assert.equal(await first.read(got), 1);
  assert.equal(got[0], 42);
  owner.release();
  for (const client of clients) client.close();
  await owner.listener.close();
});

Deno.test("the limit is read at each accept: raising and lowering it takes effect at once", async () => {
  const owner = new Owner(1);
  owner.listener.listen();
  const clients = [await connectAccepted(owner)];
  await connectRefused(owner);
  owner.limit = 3;
  clients.push(await connectAccepted(owner), await connectAccepted(owner));
  await connectRefused(owner);
  owner.limit = 1;
  await connectRefused(owner);
  // Connections the owner closes free their slots.
  owner.release();
  clients.push(await connectAccepted(owner));
  await connectRefused(owner);
  owner.limit = 0;
  owner.release();
  await connectRefused(owner);
  assert.equal(owner.listener.refused, 5);
  assert.equal(owner.accepted, 4);
  assert.equal(owner.limitReads, 9, "read once per accepted connection");
  for (const client of clients) client.close();
  await owner.listener.close();
});

Deno.test("a flood of refusals logs one line per thousand", async () => {
  const owner = new Owner(0);
  owner.listener.listen();
  for (let batch = 0; batch < 40; batch++) {
    await Promise.all(Array.from({ length: 25 }, async () => {
      const conn = await connect(owner.port);
      await closedByPeer(conn);
      conn.close();
    }));
  }
  assert.equal(owner.listener.refused, 1000);
  assert.deepEqual(owner.lines.map((line) => line.line.replace(/^\S+ /, "")), [
    "WARN  [test] connection limit reached, refusing limit=0 refused=1",
    "WARN  [test] connection limit reached, refusing limit=0 refused=1000",
  ]);
  await owner.listener.close();
});

Deno.test("close() stops accepting and resolves; connections already owned stay open", async () => {
  const owner = new Owner(10);
  const addr = owner.listener.listen();
  assert.equal(addr.hostname, "127.0.0.1");
  assert.notEqual(addr.port, 0);
  assert.equal(owner.listener.addr.port, addr.port);
  const client = await connectAccepted(owner);
  await owner.listener.close();
  await assert.rejects(connect(addr.port), Deno.errors.ConnectionRefused);
  assert.equal(owner.accepted, 1);
  // Closing the listener is not closing the connections it handed over.
  const [server] = [...owner.owned];
  await server.write(new Uint8Array([7]));
  const got = new Uint8Array(1);
  assert.equal(await client.read(got), 1);
  await owner.listener.close(); // twice is fine
  assert.equal(owner.lines.length, 0, "a normal close logs nothing");
  owner.release();
  client.close();
});

Deno.test("close() of a listener that never listened resolves; addr throws", async () => {
  const owner = new Owner(1);
  assert.throws(() => owner.listener.addr, /not bound/);
  await owner.listener.close();
});

Deno.test("a connection accepted while the listener is closing is closed", async () => {
  // Hold the accepted connection between the socket's accept and the accept
  // loop, so that close() starts in between: a wrapper of Deno.listen gates it.
  const realListen = Deno.listen;
  let reached!: () => void;
  const accepted = new Promise<void>((resolve) => reached = resolve);
  let open!: () => void;
  const gate = new Promise<void>((resolve) => open = resolve);
  const gatedListen = (options: Deno.TcpListenOptions): Deno.TcpListener => {
    const inner = realListen(options);
    return new Proxy(inner, {
      get(target, property) {
        if (property === "accept") {
          return async () => {
            const conn = await target.accept();
            reached();
            await gate;
            return conn;
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  };
  Reflect.set(Deno, "listen", gatedListen);
  let owner: Owner;
  try {
    owner = new Owner(10);
    owner.listener.listen();
  } finally {
    Reflect.set(Deno, "listen", realListen);
  }
  const client = await connect(owner.port);
  await accepted;
  const closing = owner.listener.close();
  open();
  await closing;
  assert.equal(owner.accepted, 0, "never handed over");
  assert.equal(owner.listener.refused, 0, "not a refusal");
  assert.equal(await closedByPeer(client), true, "closed by the listener");
  client.close();
});
