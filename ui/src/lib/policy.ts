// Which settings the administrator's policy locks, and why (from PolicyCheck).
import type { PolicyCheck } from './types';

export interface Lock {
  /** The locked key as the policy names it (`chat.provider`, or a whole table like `budget`). */
  key: string;
  reason: string;
}

/** Locks from the policy's `locked.*` rules. */
export function locks(p: PolicyCheck | null): Lock[] {
  if (!p) return [];
  return p.policy.rules
    .filter((r) => r.rule.startsWith('locked.'))
    .map((r) => ({ key: r.rule.slice('locked.'.length), reason: `${r.text} (policy ${p.policy.source})` }));
}

/** The lock on a settings key: itself or a table containing it. */
export function lockFor(all: Lock[], key: string): Lock | null {
  return all.find((l) => key === l.key || key.startsWith(l.key + '.')) ?? null;
}
