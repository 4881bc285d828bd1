// Cost export, done in the UI from the CostReport it already holds.
import type { CostLine, CostReport } from './types';
import { nanosToDollars } from './format';

export const CSV_HEADER =
  'key,calls,input_tokens,cached_tokens,output_tokens,estimated_calls,cost_usd,unpriced_calls,cache_hits,saved_usd,failed,cancelled,refused';

/** One CSV field: quoted when it holds a comma, quote or line break; a leading = + - @ (which
 * spreadsheets would run as a formula) is neutralised with an apostrophe. */
export function csvField(s: string): string {
  let v = s;
  if (/^[=+\-@\t\r]/.test(v)) v = `'${v}`;
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

function row(l: CostLine): string {
  return [
    csvField(l.key),
    l.calls,
    l.input_tokens,
    l.cached_tokens,
    l.output_tokens,
    l.estimated_calls,
    nanosToDollars(l.cost),
    l.unpriced_calls,
    l.cache_hits,
    nanosToDollars(l.saved),
    l.failed,
    l.cancelled,
    l.refused,
  ].join(',');
}

/** The report as CSV, the same columns as `cairn costs --csv`: one row per line, then the total. */
export function costReportCsv(r: CostReport): string {
  return [CSV_HEADER, ...r.lines.map(row), row(r.total)].join('\n') + '\n';
}

/** Offers the CSV as a download (a blob URL: nothing leaves the machine). */
export function downloadCsv(name: string, csv: string): void {
  const url = URL.createObjectURL(new Blob([csv], { type: 'text/csv' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
