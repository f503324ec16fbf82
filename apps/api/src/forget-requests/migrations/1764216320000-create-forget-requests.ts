import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Forget requests and the sample commitments each one names. A request is stored, then its
 * FORGET_REQUESTED entry appended, then the row points at the entry, all before the client is answered;
 * a row without ledger_index is not acknowledged (ForgetRequestService.recoverUnlogged finishes it).
 * The state machine (received -> unlearning -> completed | failed; failed -> unlearning to retry) is
 * enforced by a trigger, so no code path can skip a step.
 */
export class CreateForgetRequests1764216320000 implements MigrationInterface {
  name = 'CreateForgetRequests1764216320000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE forget_requests (
        id uuid PRIMARY KEY,
        dataset_id uuid NOT NULL REFERENCES datasets (id),
        reason text NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 1000),
        state text NOT NULL DEFAULT 'received' CHECK (state IN ('received', 'unlearning', 'completed', 'failed')),
        ledger_index bigint UNIQUE,
        leaf_hash text CHECK (leaf_hash ~ '^[0-9a-f]{64}$'),
        error text,
        created_by uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((ledger_index IS NULL) = (leaf_hash IS NULL))
      )`);
    await q.query(`CREATE INDEX forget_requests_dataset ON forget_requests (dataset_id, created_at)`);
    await q.query(`CREATE INDEX forget_requests_unlogged ON forget_requests (created_at) WHERE ledger_index IS NULL`);
    await q.query(`
      CREATE TABLE forget_request_samples (
        request_id uuid NOT NULL REFERENCES forget_requests (id),
        commitment text NOT NULL CHECK (commitment ~ '^[0-9a-f]{64}$'),
        -- order in the FORGET_REQUESTED entry's commitments
        position integer NOT NULL CHECK (position >= 0),
        PRIMARY KEY (request_id, commitment)
      )`);
    await q.query(`CREATE INDEX forget_request_samples_commitment ON forget_request_samples (commitment)`);
    await q.query(`
      CREATE FUNCTION forget_request_check_state() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.state IS DISTINCT FROM OLD.state AND NOT (
             (OLD.state = 'received' AND NEW.state IN ('unlearning', 'failed'))
          OR (OLD.state = 'unlearning' AND NEW.state IN ('completed', 'failed'))
          OR (OLD.state = 'failed' AND NEW.state = 'unlearning')) THEN
          RAISE EXCEPTION 'forget request %: state % cannot become %', OLD.id, OLD.state, NEW.state;
        END IF;
        IF OLD.ledger_index IS NOT NULL AND NEW.ledger_index IS DISTINCT FROM OLD.ledger_index THEN
          RAISE EXCEPTION 'forget request %: its ledger entry cannot change', OLD.id;
        END IF;
        RETURN NEW;
      END $$`);
    await q.query(`
      CREATE TRIGGER forget_requests_state BEFORE UPDATE ON forget_requests
      FOR EACH ROW EXECUTE FUNCTION forget_request_check_state()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE forget_request_samples, forget_requests`);
    await q.query(`DROP FUNCTION forget_request_check_state()`);
  }
}
