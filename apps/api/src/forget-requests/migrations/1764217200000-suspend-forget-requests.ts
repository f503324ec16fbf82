import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Reversible forgetting. A request of mode 'suspend' is unlearned like any other, but its samples' sealed data and
 * keys are kept: unlearning -> suspended (until `deadline`, grace_days after), then suspended -> restoring ->
 * restored (learned again), or suspended -> completed (the keys destroyed: asked for, or the grace period ended).
 * A restore that cannot be done goes back to suspended. The entries of each step are kept beside the request.
 */
/** The states a forget request may be in, before this migration and after. */
const STATES_BEFORE = ['received', 'unlearning', 'completed', 'failed'];
const STATES = [...STATES_BEFORE, 'suspended', 'restoring', 'restored'];

/** The state changes forget_request_check_state() lets through, before this migration and after. */
const MOVES_BEFORE = [
  `(OLD.state = 'received' AND NEW.state IN ('unlearning', 'failed'))`,
  `(OLD.state = 'unlearning' AND NEW.state IN ('completed', 'failed'))`,
  `(OLD.state = 'failed' AND NEW.state = 'unlearning')`,
];
const MOVES = [
  ...MOVES_BEFORE.slice(0, 2),
  `(OLD.state = 'unlearning' AND NEW.state = 'suspended' AND OLD.mode = 'suspend')`,
  `(OLD.state = 'suspended' AND NEW.state IN ('restoring', 'completed'))`,
  `(OLD.state = 'restoring' AND NEW.state IN ('restored', 'suspended'))`,
  ...MOVES_BEFORE.slice(2),
];

export class SuspendForgetRequests1764217200000 implements MigrationInterface {
  name = 'SuspendForgetRequests1764217200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE forget_requests
        ADD COLUMN mode text NOT NULL DEFAULT 'forget' CHECK (mode IN ('forget', 'suspend')),
        ADD COLUMN grace_days double precision CHECK (grace_days > 0 AND grace_days <= 90),
        ADD COLUMN deadline timestamptz,
        ADD COLUMN suspend_ledger_index bigint,
        ADD COLUMN restore_ledger_index bigint,
        ADD COLUMN shred_ledger_index bigint,
        ADD COLUMN shred_cause text CHECK (shred_cause IN ('requested', 'grace-expired')),
        ADD CHECK ((mode = 'suspend') = (grace_days IS NOT NULL))`);
    await setStates(q, STATES);
    await q.query(`CREATE INDEX forget_requests_suspended ON forget_requests (deadline) WHERE state = 'suspended'`);
    await q.query(checkStateFunction(MOVES));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(checkStateFunction(MOVES_BEFORE));
    await q.query(`DROP INDEX forget_requests_suspended`);
    await setStates(q, STATES_BEFORE);
    await q.query(`
      ALTER TABLE forget_requests DROP COLUMN mode, DROP COLUMN grace_days, DROP COLUMN deadline,
        DROP COLUMN suspend_ledger_index, DROP COLUMN restore_ledger_index, DROP COLUMN shred_ledger_index, DROP COLUMN shred_cause`);
  }
}

/** Replaces the CHECK of forget_requests.state with one allowing `states`. */
async function setStates(q: QueryRunner, states: string[]): Promise<void> {
  await q.query(`ALTER TABLE forget_requests DROP CONSTRAINT forget_requests_state_check`);
  await q.query(`
      ALTER TABLE forget_requests ADD CONSTRAINT forget_requests_state_check
        CHECK (state IN (${states.map((s) => `'${s}'`).join(', ')}))`);
}

/** The trigger function that refuses any state change but `moves`, and any change of a logged request's entry. */
function checkStateFunction(moves: string[]): string {
  return `
      CREATE OR REPLACE FUNCTION forget_request_check_state() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.state IS DISTINCT FROM OLD.state AND NOT (
             ${moves.join('\n          OR ')}) THEN
          RAISE EXCEPTION 'forget request %: state % cannot become %', OLD.id, OLD.state, NEW.state;
        END IF;
        IF OLD.ledger_index IS NOT NULL AND NEW.ledger_index IS DISTINCT FROM OLD.ledger_index THEN
          RAISE EXCEPTION 'forget request %: its ledger entry cannot change', OLD.id;
        END IF;
        RETURN NEW;
      END $$`;
}
