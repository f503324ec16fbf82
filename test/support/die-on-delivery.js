// Preloaded (NODE_OPTIONS=--require) into a worker process a test means to lose at a precise moment: the first
// time pg-boss hands this process a message of the queue DIE_ON_DELIVERY_OF, the process kills itself with
// SIGKILL, before its handler runs. pg-boss has then marked the message active (delivered), and the worker has
// not taken it (its row is as the sender left it): a worker that died between the two, which a test of a real
// SIGKILL can otherwise catch only by chance. The message's id is written to stderr first (synchronously).
// Only the worker's own node process is touched (not npm, nor other processes the environment reaches).
const queue = process.env.DIE_ON_DELIVERY_OF;
if (queue && /apps[\\/]api[\\/]src[\\/]worker\.ts$/.test(process.argv[1] ?? '')) {
  const { writeSync } = require('node:fs');
  const Manager = require('pg-boss/src/manager');
  const original = Manager.prototype.work;
  // Named `work`: pg-boss promotes its managers' functions onto the PgBoss instance by their names.
  Manager.prototype.work = function work(name, ...args) {
    if (name === queue) {
      const at = args.findIndex((a) => typeof a === 'function');
      args[at] = (jobs) => {
        writeSync(2, `die-on-delivery: ${queue} message(s) ${jobs.map((j) => j.id).join(', ')} delivered; SIGKILL\n`);
        process.kill(process.pid, 'SIGKILL');
        return new Promise(() => undefined); // never settles: the process is gone
      };
    }
    return original.call(this, name, ...args);
  };
}
