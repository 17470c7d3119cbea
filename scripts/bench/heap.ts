/**
 * V8 heap snapshots of a running daemon through its inspector (`deno run
 * --inspect=127.0.0.1:PORT`), and a summary of a snapshot by constructor so
 * that two snapshots can be compared from a script. The `.heapsnapshot`
 * files also open in Chrome DevTools (Memory panel, Load; "Comparison" view).
 *
 * ```sh
 * deno run --allow-read scripts/bench/heap.ts first.heapsnapshot last.heapsnapshot
 * ```
 *
 * @module
 */

/** A message from the inspector: a reply (`id`) or an event (`method`). */
interface InspectorMessage {
  id?: number;
  method?: string;
  params?: { chunk?: string };
  error?: { message: string };
}

/**
 * Sends `commands` (numbered from 1) to the inspector at 127.0.0.1:`port` and
 * resolves on the reply to the last one; every other message goes to
 * `onEvent`. Rejects on an error reply, a lost connection or after `timeoutMs`.
 */
async function inspect(
  port: number,
  what: string,
  timeoutMs: number,
  commands: readonly { method: string; params?: Record<string, unknown> }[],
  onEvent: (message: InspectorMessage) => void = () => {},
): Promise<void> {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`, {
    signal: AbortSignal.timeout(5000),
  })).json() as { webSocketDebuggerUrl?: string }[];
  const url = targets.find((t) => t.webSocketDebuggerUrl)?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target at 127.0.0.1:${port}`);
  const ws = new WebSocket(url);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out`)), timeoutMs);
      ws.onerror = () => reject(new Error("inspector connection failed"));
      ws.onclose = () => reject(new Error("inspector connection closed"));
      ws.onopen = () => {
        for (const [i, command] of commands.entries()) {
          ws.send(JSON.stringify({ id: i + 1, ...command }));
        }
      };
      ws.onmessage = (event) => {
        const message = JSON.parse(String(event.data)) as InspectorMessage;
        if (message.id !== commands.length) onEvent(message);
        else if (message.error) reject(new Error(message.error.message));
        else resolve();
      };
    });
  } finally {
    clearTimeout(timer);
    ws.onclose = null;
    ws.onerror = null;
    ws.close();
  }
}

/**
 * Takes a heap snapshot of the isolate behind the inspector at
 * 127.0.0.1:`port` (after a full GC, so only live objects remain) and writes
 * it to `path`. Returns the snapshot's size in bytes.
 */
export async function takeHeapSnapshot(
  port: number,
  path: string,
  timeoutMs = 120_000,
): Promise<number> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  let bytes = 0;
  let writes = Promise.resolve();
  try {
    await inspect(port, "heap snapshot", timeoutMs, [
      { method: "HeapProfiler.enable" },
      { method: "HeapProfiler.collectGarbage" },
      {
        method: "HeapProfiler.takeHeapSnapshot",
        params: { reportProgress: false, captureNumericValue: false },
      },
    ], (message) => {
      if (message.method !== "HeapProfiler.addHeapSnapshotChunk") return;
      const chunk = encoder.encode(message.params?.chunk ?? "");
      bytes += chunk.length;
      writes = writes.then(async () => {
        let off = 0;
        while (off < chunk.length) off += await file.write(chunk.subarray(off));
      });
    });
    await writes;
  } finally {
    file.close();
  }
  return bytes;
}

/**
 * Runs a full garbage collection in the isolate behind the inspector at
 * 127.0.0.1:`port` and resolves when it is done, so that a following
 * `Deno.memoryUsage()` reports live objects rather than garbage.
 */
export async function collectGarbage(port: number, timeoutMs = 30_000): Promise<void> {
  await inspect(port, "garbage collection", timeoutMs, [{ method: "HeapProfiler.collectGarbage" }]);
}

/** Objects of one kind in a snapshot. */
export interface HeapClass {
  /** Node type and constructor (or "(strings)", "(code)", ...). */
  readonly key: string;
  /** Objects. */
  count: number;
  /** Sum of their own sizes in bytes (not what they retain). */
  selfBytes: number;
}

interface HeapSnapshotFile {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Groups the objects of a `.heapsnapshot` by type and constructor name. */
export function summariseHeapSnapshot(text: string): Map<string, HeapClass> {
  const snapshot = JSON.parse(text) as HeapSnapshotFile;
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const out = new Map<string, HeapClass>();
  const nodes = snapshot.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]] ?? "?";
    let key: string;
    if (type === "string" || type === "concatenated string" || type === "sliced string") {
      key = "(strings)";
    } else if (type === "object" || type === "closure" || type === "native") {
      const name = snapshot.strings[nodes[i + nameAt]].replace(/ @\d+$/, "");
      key = `${type === "object" ? "" : `${type} `}${name}`;
    } else {
      key = `(${type})`;
    }
    let entry = out.get(key);
    if (!entry) out.set(key, entry = { key, count: 0, selfBytes: 0 });
    entry.count++;
    entry.selfBytes += nodes[i + sizeAt];
  }
  return out;
}

/** Growth of one kind of object between two snapshots. */
export interface HeapGrowth {
  /** Type and constructor. */
  readonly key: string;
  /** Objects in the first and last snapshot. */
  readonly count: [number, number];
  /** Self bytes in the first and last snapshot. */
  readonly selfBytes: [number, number];
}

/** The kinds of object whose self size or count changed most from `a` to `b`. */
export function heapGrowth(
  a: Map<string, HeapClass>,
  b: Map<string, HeapClass>,
  top = 25,
): HeapGrowth[] {
  const keys = new Set([...a.keys(), ...b.keys()]);
  const rows: HeapGrowth[] = [...keys].map((key) => ({
    key,
    count: [a.get(key)?.count ?? 0, b.get(key)?.count ?? 0],
    selfBytes: [a.get(key)?.selfBytes ?? 0, b.get(key)?.selfBytes ?? 0],
  }));
  return rows.sort((x, y) =>
    Math.abs(y.selfBytes[1] - y.selfBytes[0]) - Math.abs(x.selfBytes[1] - x.selfBytes[0])
  ).slice(0, top);
}

/** Renders {@link heapGrowth} rows as text lines. */
export function formatHeapGrowth(rows: readonly HeapGrowth[]): string[] {
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  return rows.map((r) =>
    `  ${r.key.slice(0, 50).padEnd(52)}${String(r.count[0]).padStart(9)} -> ` +
    `${String(r.count[1]).padEnd(9)}${kib(r.selfBytes[0]).padStart(11)} -> ` +
    `${kib(r.selfBytes[1]).padEnd(11)} (${r.selfBytes[1] >= r.selfBytes[0] ? "+" : ""}${
      kib(r.selfBytes[1] - r.selfBytes[0])
    })`
  );
}

if (import.meta.main) {
  const [first, last] = Deno.args;
  if (!first || !last) {
    console.log("deno run --allow-read scripts/bench/heap.ts FIRST.heapsnapshot LAST.heapsnapshot");
    Deno.exit(2);
  }
  const a = summariseHeapSnapshot(await Deno.readTextFile(first));
  const b = summariseHeapSnapshot(await Deno.readTextFile(last));
  console.log(`Largest changes of self size by kind of object (count first -> last, size):`);
  for (const line of formatHeapGrowth(heapGrowth(a, b, 40))) console.log(line);
}
