// What the crash trials check below the API, as the service itself reads it: every acknowledged sample that
// was not forgotten opens from the sample vault (sealed payloads, the key store in DATA_DIR) to exactly what
// was uploaded, and a forgotten one no longer opens; then the erasure scan: once the service has stopped,
// no file under DATA_DIR and nothing the service printed holds a forgotten sample's externalId or a wholly
// forgotten subject's subjectId, while the same scan finds the dataset's id there (a positive control: it
// reads the table and WAL files the identifiers would be in).
import { Ledger, SampleVault } from '@lethe/ledger';
import { openServiceKeyStore } from '../../apps/api/src/config/key-store';
import { connectToServiceDatabase } from '../../apps/cli/src/database';
import { Needle, scanText, scanTree } from '../../test/support/scan';

/** A sample as uploaded and acknowledged. */
export interface UploadedSample {
  externalId: string;
  subjectId: string;
  features: number[];
  label: number;
  commitment: string;
}

/** Opens the dataset's samples through the vault of the running service's DATA_DIR and compares them with what was acknowledged. */
export async function checkThroughVault(
  dataDir: string,
  env: Record<string, string>,
  datasetId: string,
  acknowledged: Iterable<UploadedSample>,
  acknowledgedForgotten: ReadonlySet<string>,
): Promise<{ failures: string[]; opened: number; forgotten: Set<string> }> {
  const failures: string[] = [];
  const keyStore = await openServiceKeyStore(dataDir, env);
  const { dataSource, close } = await connectToServiceDatabase({ dataDir });
  try {
    const vault = new SampleVault(dataSource, new Ledger(dataSource), keyStore);
    // Forgotten: the samples of every completed forget request, those the client saw acknowledged and those
    // it did not (a request cut off by the kill may have been stored, and then completed after the restart).
    const completed: { commitment: string }[] = await dataSource.query(
      `SELECT s.commitment FROM forget_request_samples s JOIN forget_requests r ON r.id = s.request_id WHERE r.dataset_id = $1 AND r.state = 'completed'`,
      [datasetId],
    );
    const forgotten = new Set([...acknowledgedForgotten, ...completed.map((c) => c.commitment)]);
    const opened = new Map((await vault.readSamples({ datasetId }, { committedOnly: true })).map((s) => [s.commitment, s]));
    let checked = 0;
    for (const s of acknowledged) {
      const o = opened.get(s.commitment);
      if (forgotten.has(s.commitment)) {
        if (o) failures.push(`sample ${s.externalId} was forgotten (its request completed) yet still opens from the vault`);
        continue;
      }
      checked++;
      if (!o) failures.push(`acknowledged sample ${s.externalId} (commitment ${s.commitment}) does not open from the vault`);
      else if (o.externalId !== s.externalId || (o.subjectId ?? '') !== s.subjectId || o.label !== s.label || [...o.features].join() !== s.features.join())
        failures.push(`acknowledged sample ${s.externalId} opens to other data: ${JSON.stringify({ ...o, salt: undefined, features: [...o.features] }).slice(0, 300)}`);
    }
    return { failures, opened: checked, forgotten };
  } finally {
    await close();
  }
}

/** The erasure scan of a stopped service's DATA_DIR and output for the forgotten identifiers; the control must be found. */
export async function erasureScan(dataDir: string, output: string, forgottenTexts: readonly string[], control: string): Promise<{ failures: string[]; needles: number }> {
  const needles: Needle[] = [...new Set(forgottenTexts)].map((t) => ({ name: `forgotten ${JSON.stringify(t)}`, bytes: Buffer.from(t, 'utf8') }));
  const controlNeedle: Needle = { name: `control ${control}`, bytes: Buffer.from(control, 'utf8') };
  const hits = [...(await scanTree(dataDir, [...needles, controlNeedle])), ...scanText('the service output', output, needles)];
  const failures = hits.filter((h) => h.needle !== controlNeedle.name).map((h) => `erasure scan: ${h.needle} in ${h.file} at ${h.offset}`);
  if (!hits.some((h) => h.needle === controlNeedle.name)) failures.push(`erasure scan: the control (the dataset id ${control}) was not found under ${dataDir}: the scan reads nothing`);
  return { failures: failures.slice(0, 20), needles: needles.length };
}
