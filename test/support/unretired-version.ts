import { DataSource } from 'typeorm';

/**
 * Leaves a version out of the next unlearning pass's retirement, as a service from before retirement (or an
 * operator with database rights) would: marked as if retired and logged already, so the pass neither logs nor
 * deletes it. `serveAgain` then puts it back in service, unretired, with no VERSION_RETIRED in the log.
 */
export async function keepOutOfRetirement(dataSource: DataSource, modelId: string, version: number): Promise<void> {
  await dataSource.query(
    `UPDATE model_versions SET retired_at = now(), retired_by = '{00000000-0000-4000-8000-000000000000}', retire_logged_after = 0,
            retire_ledger_index = ledger_index, onnx_deleted_at = now() WHERE model_id = $1 AND version = $2`,
    [modelId, version],
  );
}

export async function serveAgain(dataSource: DataSource, modelId: string, version: number): Promise<void> {
  await dataSource.query(
    `UPDATE model_versions SET retired_at = NULL, retired_by = '{}', retire_logged_after = NULL, retire_ledger_index = NULL, onnx_deleted_at = NULL
      WHERE model_id = $1 AND version = $2`,
    [modelId, version],
  );
}
