import { Logger } from '@nestjs/common';
import { runProcess } from './process-lifecycle';

/** runProcess with process.exit recorded instead of taken, its signal listeners removed afterwards. */
async function withRunProcess(body: (exits: number[]) => Promise<void>): Promise<void> {
  const before = { SIGINT: process.listeners('SIGINT'), SIGTERM: process.listeners('SIGTERM') };
  const exits: number[] = [];
  const exit = jest.spyOn(process, 'exit').mockImplementation(((code?: number) => {
    exits.push(code ?? 0);
  }) as never);
  try {
    await body(exits);
  } finally {
    exit.mockRestore();
    for (const signal of ['SIGINT', 'SIGTERM'] as const)
      for (const listener of process.listeners(signal)) if (!before[signal].includes(listener)) process.removeListener(signal, listener);
  }
}

const quiet = new Logger('test');
jest.spyOn(quiet, 'log').mockImplementation(() => undefined);
jest.spyOn(quiet, 'warn').mockImplementation(() => undefined);
jest.spyOn(quiet, 'error').mockImplementation(() => undefined);

describe('runProcess', () => {
  it('keeps a SIGINT that arrives while the process is still starting: once started, it stops every part in reverse and exits 0', async () => {
    await withRunProcess(async (exits) => {
      const stopped: string[] = [];
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let started!: () => void;
      const listening = new Promise<void>((resolve) => (started = resolve));
      const running = runProcess(quiet, async (onStop) => {
        onStop(async () => void stopped.push('database'));
        onStop(async () => void stopped.push('http'));
        started(); // answering on its port, say, with its worker still to start
        await gate;
        onStop(async () => void stopped.push('worker'));
      });
      await listening;
      // What Ctrl-C sends; without a listener of runProcess's yet, Node's default would have ended the process
      // (but the embedded PostgreSQL's own listener is there in the service, so nothing happened at all).
      process.emit('SIGINT', 'SIGINT');
      expect(exits).toEqual([]);
      release();
      await running;
      expect(stopped).toEqual(['worker', 'http', 'database']);
      expect(exits).toEqual([0]);
    });
  });

  it('stops and exits 0 on a SIGTERM after the start, once', async () => {
    await withRunProcess(async (exits) => {
      const stopped: string[] = [];
      await runProcess(quiet, async (onStop) => onStop(async () => void stopped.push('database')));
      expect(exits).toEqual([]);
      process.emit('SIGTERM', 'SIGTERM');
      process.emit('SIGINT', 'SIGINT');
      await new Promise((resolve) => setImmediate(resolve));
      expect(stopped).toEqual(['database']);
      expect(exits).toEqual([0]);
    });
  });

  it('stops what started and exits 1 when the start fails with no signal', async () => {
    await withRunProcess(async (exits) => {
      const stopped: string[] = [];
      await runProcess(quiet, async (onStop) => {
        onStop(async () => void stopped.push('database'));
        throw new Error('no chain');
      });
      expect(stopped).toEqual(['database']);
      expect(exits).toEqual([1]);
    });
  });
});
