import { describe, expect, it } from 'vitest';
import { anchorLabel, fileName, formatMoney, nanosToDollars } from '../src/lib/format';
import { costReportCsv, csvField, CSV_HEADER } from '../src/lib/csv';
import { gaugeLevel, gaugeView, usedShare } from '../src/lib/gauge';
import { pageOf, visibleRange } from '../src/lib/virtual';
import { lockFor, locks } from '../src/lib/policy';
import type { CostLine, CostReport, PolicyCheck } from '../src/lib/types';

const A = (o: Partial<{ page: number; line_start: number; line_end: number; heading: string[] }>) => ({
  page: o.page ?? null,
  line_start: o.line_start ?? null,
  line_end: o.line_end ?? null,
  heading: o.heading ?? [],
});

describe('anchors', () => {
  it('reads like the engine labels', () => {
    expect(anchorLabel(A({ page: 4 }))).toBe('p. 4');
    expect(anchorLabel(A({ line_start: 3, line_end: 5 }))).toBe('lines 3-5');
    expect(anchorLabel(A({ line_start: 7, line_end: 7 }))).toBe('line 7');
    expect(anchorLabel(A({ line_start: 7 }))).toBe('line 7');
    expect(anchorLabel(A({ page: 4, line_start: 3, line_end: 9 }))).toBe('p. 4, lines 3-9');
    expect(anchorLabel(A({ heading: ['Guide', 'Install'] }))).toBe('§ Install');
    expect(anchorLabel(A({ page: 2, heading: ['Guide'] }))).toBe('p. 2');
    expect(anchorLabel(A({}))).toBe('');
  });
  it('names files on either separator', () => {
    expect(fileName('/a/b/2023 Q1 MSFT.pdf')).toBe('2023 Q1 MSFT.pdf');
    expect(fileName('C:\\docs\\x.txt')).toBe('x.txt');
  });
});

describe('money', () => {
  it('is exact in nanodollars', () => {
    expect(nanosToDollars(0)).toBe('0.000000000');
    expect(nanosToDollars(1)).toBe('0.000000001');
    expect(nanosToDollars(1_234_567_891)).toBe('1.234567891');
    expect(nanosToDollars(-5)).toBe('-0.000000005');
    expect(nanosToDollars(1_500_000_000, 2)).toBe('1.50');
  });
  it('formats for people', () => {
    expect(formatMoney(null)).toBe('unknown');
    expect(formatMoney(0)).toBe('$0.00');
    expect(formatMoney(2_500_000_000)).toBe('$2.50');
    expect(formatMoney(1_234_000)).toBe('$0.0012');
    expect(formatMoney(5)).toBe('$0.000000');
    expect(formatMoney(1500)).toBe('$0.000001');
  });
});

const line = (key: string, cost: number, calls = 1): CostLine => ({
  key,
  calls,
  input_tokens: 100,
  cached_tokens: 0,
  output_tokens: 10,
  estimated_calls: 0,
  cost,
  unpriced_calls: 0,
  cache_hits: 0,
  saved: 0,
  failed: 0,
  cancelled: 0,
  refused: 0,
});

describe('cost CSV', () => {
  const report: CostReport = {
    group_by: 'model',
    from_ms: 0,
    to_ms: 1,
    lines: [line('openai / gpt-4o-mini', 1_234_567), line('local, "tiny"', 0, 3)],
    total: line('total', 1_234_567, 4),
  };
  it('has the engine columns, a row per line and the total', () => {
    const rows = costReportCsv(report).trimEnd().split('\n');
    expect(rows[0]).toBe(CSV_HEADER);
    expect(rows).toHaveLength(4);
    expect(rows[1]).toBe('openai / gpt-4o-mini,1,100,0,10,0,0.001234567,0,0,0.000000000,0,0,0');
    expect(rows[2].startsWith('"local, ""tiny""",3,')).toBe(true);
    expect(rows[3].startsWith('total,4,')).toBe(true);
  });
  it('quotes and neutralises formulas', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvField('@cmd')).toBe("'@cmd");
    expect(csvField('line\nbreak')).toBe('"line\nbreak"');
  });
});

describe('budget gauges', () => {
  it('computes the share from nanodollars', () => {
    expect(usedShare(500_000_000, 1_000_000_000)).toBe(0.5);
    expect(usedShare(0, 0)).toBe(0);
    expect(usedShare(1, 0)).toBe(Infinity);
  });
  it('levels at warn and at the cap', () => {
    expect(gaugeLevel(0.79, 0.8)).toBe('ok');
    expect(gaugeLevel(0.8, 0.8)).toBe('warn');
    expect(gaugeLevel(1, 0.8)).toBe('over');
  });
  it('clamps the bar but not the figure', () => {
    const v = gaugeView({ provider: 'claude', window: 'daily', limit: 1_000_000_000, spent: 1_500_000_000, used: 1.5 }, 0.8);
    expect(v.fill).toBe(1);
    expect(v.used).toBe(1.5);
    expect(v.level).toBe('over');
    expect(v.title).toBe('claude · daily');
    expect(v.detail).toBe('$1.50 of $1.00 (150%)');
    const w = gaugeView({ provider: null, window: 'monthly', limit: 20_000_000_000, spent: 17_000_000_000, used: 0.85 }, 0.8);
    expect(w).toMatchObject({ level: 'warn', fill: 0.85, title: 'All providers · monthly' });
  });
});

describe('windowing and paging', () => {
  it('renders only what is in view', () => {
    const r = visibleRange(1000, 300, 50, 10_000, 2);
    expect(r.start).toBe(18);
    expect(r.end).toBe(20 + 7 + 2);
    expect(r.padTop).toBe(18 * 50);
    expect(r.padTop + (r.end - r.start) * 50 + r.padBottom).toBe(10_000 * 50);
    expect(visibleRange(0, 300, 50, 0)).toEqual({ start: 0, end: 0, padTop: 0, padBottom: 0 });
    const end = visibleRange(10_000 * 50, 300, 50, 10_000, 2);
    expect(end.end).toBe(10_000);
  });
  it('pages and clamps', () => {
    const items = Array.from({ length: 25 }, (_, i) => i);
    expect(pageOf(items, 0, 10).rows).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(pageOf(items, 2, 10)).toEqual({ rows: [20, 21, 22, 23, 24], page: 2, pages: 3 });
    expect(pageOf(items, 9, 10).page).toBe(2);
    expect(pageOf([], 0, 10)).toEqual({ rows: [], page: 0, pages: 1 });
  });
});

describe('policy locks', () => {
  const p: PolicyCheck = {
    policy: {
      source: '/etc/cairn/policy.toml',
      broken: null,
      rules: [
        { rule: 'providers.allowed', text: 'only local' },
        { rule: 'locked.chat.provider', text: 'the setting chat.provider is kept at "local"' },
        { rule: 'locked.budget', text: 'the setting budget is kept at {...}' },
      ],
    },
    providers: [],
    local_only: [],
    overridden: [],
    defects: [],
  };
  it('finds a lock on the key or its table, with the reason', () => {
    const all = locks(p);
    expect(all).toHaveLength(2);
    expect(lockFor(all, 'chat.provider')?.reason).toContain('kept at "local"');
    expect(lockFor(all, 'chat.provider')?.reason).toContain('/etc/cairn/policy.toml');
    expect(lockFor(all, 'budget.daily_usd')?.key).toBe('budget');
    expect(lockFor(all, 'chat.fallback')).toBeNull();
    expect(lockFor(all, 'chat.providers')).toBeNull();
    expect(locks(null)).toEqual([]);
  });
});
