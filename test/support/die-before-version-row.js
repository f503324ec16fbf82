// Preloaded (NODE_OPTIONS=--require) into a worker process a test means to lose between a training's ledger
// entries and its version row: when DIE_BEFORE_VERSION_ROW is set, the first time this process sends PostgreSQL
// the INSERT of a model_versions row (ModelStore.save, right after the training's MODEL_PUBLISHED is durable),
// the process kills itself with SIGKILL before the query leaves it. The crash trials hit this window by chance;
// here it is hit every time. Only the worker's own node process is touched (not npm, nor other processes).
if (process.env.DIE_BEFORE_VERSION_ROW && /apps[\\/]api[\\/]src[\\/]worker\.ts$/.test(process.argv[1] ?? '')) {
  const { writeSync } = require('node:fs');
  const { Client } = require('pg');
  const original = Client.prototype.query;
  Client.prototype.query = function query(config, ...args) {
    const text = typeof config === 'string' ? config : config?.text;
    if (typeof text === 'string' && /\bINSERT INTO model_versions\b/.test(text)) {
      writeSync(2, `die-before-version-row: a model_versions row is about to be written; SIGKILL\n`);
      process.kill(process.pid, 'SIGKILL');
      return new Promise(() => undefined); // never settles: the process is gone
    }
    return original.call(this, config, ...args);
  };
}
