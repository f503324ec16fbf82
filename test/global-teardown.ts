export default async function globalTeardown(): Promise<void> {
  const db = (globalThis as { __LETHE_TEST_PG__?: { stop(): Promise<void> } }).__LETHE_TEST_PG__;
  if (db) await db.stop();
}
