// Budget gauge maths: how full a cap is and what colour to show.
import type { BudgetGauge } from './types';
import { formatMoney } from './format';

export type GaugeLevel = 'ok' | 'warn' | 'over';

export interface GaugeView {
  /** spent / limit, not clamped (1.5 = 150%). */
  used: number;
  /** For the bar: 0..1. */
  fill: number;
  level: GaugeLevel;
  title: string;
  detail: string;
}

/** Share of a cap used, from the exact nanodollar amounts (a zero cap with spending is full). */
export function usedShare(spent: number, limit: number): number {
  if (limit <= 0) return spent > 0 ? Infinity : 0;
  return Math.max(0, spent) / limit;
}

export function gaugeLevel(used: number, warnAt: number): GaugeLevel {
  if (used >= 1) return 'over';
  if (used >= warnAt) return 'warn';
  return 'ok';
}

export function gaugeView(g: BudgetGauge, warnAt: number): GaugeView {
  const used = usedShare(g.spent, g.limit);
  const fill = Number.isFinite(used) ? Math.min(1, used) : 1;
  const who = g.provider ?? 'All providers';
  const pct = Number.isFinite(used) ? `${Math.round(used * 100)}%` : '100%+';
  return {
    used,
    fill,
    level: gaugeLevel(used, warnAt),
    title: `${who} · ${g.window}`,
    detail: `${formatMoney(g.spent)} of ${formatMoney(g.limit)} (${pct})`,
  };
}
