// The service's memory as the service itself sees it, read from outside through the V8 inspector (the Chrome
// DevTools protocol over a WebSocket): the suite starts the service with `--inspect=127.0.0.1:0` (a port the
// kernel picks, printed on the service's stderr), and asks it for process.memoryUsage(), a full garbage
// collection and heap snapshots. Nothing of this is in the service: it is a test-only path of the suite's own
// throwaway service. An inspector runs any code in its process, and its loopback port answers any local process
// (its /json/list names the URL) while the run lasts: never start a deployed service with it.
import { createWriteStream } from 'node:fs';
import WebSocket from 'ws';

/** What process.memoryUsage() says, in MB. */
export interface MemoryUsage {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** The Node flag that opens the inspector on a loopback port the kernel picks. */
export const INSPECT_FLAG = '--inspect=127.0.0.1:0';

/** The inspector's WebSocket URL in what the process printed ("Debugger listening on ws://…"), or undefined before it printed it. */
export function inspectorUrl(output: string): string | undefined {
  return /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+)/.exec(output)?.[1];
}

/** One DevTools-protocol session with a process's inspector. */
export class InspectorSession {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, (params: any) => void>();

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const message = JSON.parse(String(data));
      if (message.id !== undefined) {
        const waiter = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error) waiter?.reject(new Error(`inspector: ${message.error.message}`));
        else waiter?.resolve(message.result);
      } else this.listeners.get(message.method)?.(message.params);
    });
    socket.on('close', () => {
      for (const waiter of this.pending.values()) waiter.reject(new Error('inspector: the connection closed'));
      this.pending.clear();
    });
  }

  static connect(url: string): Promise<InspectorSession> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
      socket.once('open', () => resolve(new InspectorSession(socket)));
      socket.once('error', reject);
    });
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<any> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ id, method, params }), (error) => error && reject(error));
    });
  }

  /** process.memoryUsage() of the inspected process, in MB. */
  async memory(): Promise<MemoryUsage> {
    const { result, exceptionDetails } = await this.send('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
    if (exceptionDetails) throw new Error(`inspector: process.memoryUsage() threw ${JSON.stringify(exceptionDetails).slice(0, 300)}`);
    const bytes = JSON.parse(result.value) as Record<keyof MemoryUsage, number>;
    const mb = (n: number) => n / 1024 / 1024;
    return { rss: mb(bytes.rss), heapTotal: mb(bytes.heapTotal), heapUsed: mb(bytes.heapUsed), external: mb(bytes.external), arrayBuffers: mb(bytes.arrayBuffers) };
  }

  /** A full garbage collection (V8's, as the DevTools' "collect garbage" button does). */
  async collectGarbage(): Promise<void> {
    await this.send('HeapProfiler.collectGarbage');
  }

  /** Writes a heap snapshot of the process to `file` (it holds whatever the heap holds: keep it private and delete it). */
  async writeHeapSnapshot(file: string): Promise<void> {
    const out = createWriteStream(file, { mode: 0o600 });
    this.listeners.set('HeapProfiler.addHeapSnapshotChunk', ({ chunk }) => out.write(chunk));
    try {
      await this.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    } finally {
      this.listeners.delete('HeapProfiler.addHeapSnapshotChunk');
      await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
    }
  }

  close(): void {
    this.socket.close();
  }
}
