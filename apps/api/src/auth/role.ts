/**
 * Who may do what. `admin` manages keys (and nothing else); `ml` is an ML team (datasets, samples,
 * forget requests, models); `auditor` reads what an auditor needs (datasets' metadata, forget requests,
 * receipts, models) but never sample data. Routes without a role are public.
 */
export const ROLES = ['admin', 'ml', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

/** The caller, once its key is checked: the key's id (never the key) and role. */
export interface Principal {
  keyId: string;
  role: Role;
  name: string;
}
