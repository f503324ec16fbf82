// Preloaded (NODE_OPTIONS=--require) into a process a test asks which heap growing factor V8 gives it: on
// SIGUSR2, one full garbage collection traced with --trace-gc-verbose (V8 prints each new old-generation limit
// with its factor), then `gc-on-signal: collected` on stdout. V8 prints through C's buffered stdout, so its lines
// may come out only when the process ends; tracing is on only during this collection, so every HeapController
// line the process prints is this collection's. Only the worker's own node process is touched.
if (/apps[\\/]api[\\/]src[\\/]worker\.ts$/.test(process.argv[1] ?? '')) {
  const v8 = require('node:v8');
  const { writeSync } = require('node:fs');
  v8.setFlagsFromString('--expose-gc');
  const gc = require('node:vm').runInNewContext('gc');
  process.on('SIGUSR2', () => {
    v8.setFlagsFromString('--trace-gc-verbose');
    gc();
    v8.setFlagsFromString('--no-trace-gc-verbose');
    writeSync(1, 'gc-on-signal: collected\n');
  });
}
