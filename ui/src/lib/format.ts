// Formatting shared by the screens: anchors, money, files, times.
import type { Anchor, Money } from './types';

/** Same words as the engine's `Anchor::label`: `p. 4`, `lines 3-5`, `p. 4, lines 3-9`, `line 7`, `§ Install`. */
export function anchorLabel(a: Anchor | null | undefined): string {
  if (!a) return '';
  const parts: string[] = [];
  if (a.page != null) parts.push(`p. ${a.page}`);
  if (a.line_start != null) {
    if (a.line_end != null && a.line_end !== a.line_start) parts.push(`lines ${a.line_start}-${a.line_end}`);
    else parts.push(`line ${a.line_start}`);
  }
  if (!parts.length && a.heading && a.heading.length) parts.push(`§ ${a.heading[a.heading.length - 1]}`);
  return parts.join(', ');
}

/** The last path component (either separator, for Windows paths). */
export function fileName(path: string): string {
  const parts = path.split(/[\\/]/).filter(Boolean);
  return parts.length ? parts[parts.length - 1] : path;
}

/** Exact dollars from nanodollars, `decimals` after the point (truncated toward zero, never rounded up). */
export function nanosToDollars(nanos: number, decimals = 9): string {
  const neg = nanos < 0;
  const abs = BigInt(Math.abs(Math.trunc(nanos)));
  const whole = abs / 1_000_000_000n;
  const frac = (abs % 1_000_000_000n).toString().padStart(9, '0').slice(0, decimals);
  return `${neg ? '-' : ''}${whole}${decimals > 0 ? '.' + frac : ''}`;
}

/** A cost for people: `$0.00` for zero, more digits for tiny amounts, `unknown` for null. */
export function formatMoney(nanos: Money | null | undefined): string {
  if (nanos == null) return 'unknown';
  if (nanos === 0) return '$0.00';
  const abs = Math.abs(nanos);
  const digits = abs >= 10_000_000 ? 2 : abs >= 10_000 ? 4 : 6;
  const s = nanosToDollars(nanos, digits);
  return s.startsWith('-') ? `-$${s.slice(1)}` : `$${s}`;
}

export function nanosToNumber(nanos: Money): number {
  return nanos / 1e9;
}

export function percent(x: number | null | undefined, digits = 0): string {
  if (x == null || !Number.isFinite(x)) return '–';
  return `${(x * 100).toFixed(digits)}%`;
}

export function formatTime(ms: number): string {
  return new Date(ms).toLocaleString();
}

export function plural(n: number, one: string, many = one + 's'): string {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}
