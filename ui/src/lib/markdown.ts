// A small, deliberately limited Markdown renderer for answers.
//
// Safety rules (tested in tests/markdown.test.ts):
// - every character of the input reaches the output escaped: the only tags in the output are
//   the ones this file writes, from a fixed list (p, h1-h6, ul, ol, li, blockquote, pre, code,
//   strong, em, hr, br, button.cite, span.*)
// - no <img>, ever: `![alt](src)` becomes the alt text, marked as an image left out
// - no <a href>, ever: `[label](url)` becomes the label followed by the target as plain text,
//   so no scheme (javascript:, data:, https:) can be followed from an answer
// - citations `[n]` (also `[1][2]` and `[1, 2]`) become buttons carrying only the number, and
//   only for numbers that are real sources
//
// The engine writes `&lt;` for `<` it neutralised; the few entities it may use are decoded
// first and then escaped again like any other text.

export interface RenderOptions {
  /** Numbers that may become citation buttons; others stay as text. Empty set: none. */
  citations?: ReadonlySet<number>;
  /** How deep blockquotes already are (internal: deeper ones render as plain quoted text). */
  depth?: number;
}

/** Blockquotes nest at most this deep; a text of thousands of `>` must not overflow the stack. */
const MAX_QUOTE_DEPTH = 8;

const ENTITIES: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&amp;': '&', '&quot;': '"', '&#39;': "'" };

export function decodeEntities(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|#39);/g, (m) => ENTITIES[m] ?? m);
}

export function escapeHtml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** The citation numbers in `text`, in order of first appearance, without repeats. */
export function citationNumbers(text: string): number[] {
  const seen: number[] = [];
  for (const m of text.matchAll(CITE_RE)) {
    for (const n of m[1].split(/\s*,\s*/).map(Number)) {
      if (Number.isInteger(n) && n > 0 && !seen.includes(n)) seen.push(n);
    }
  }
  return seen;
}

const CITE_RE = /\[(\d{1,4}(?:\s*,\s*\d{1,4})*)\](?!\()/g;

// Placeholders keep already-rendered pieces out of later passes: \u0000<index>\u0000.
// NUL never survives into the input (stripped first), so the user cannot forge one.
class Stash {
  parts: string[] = [];
  put(html: string): string {
    this.parts.push(html);
    return `\u0000${this.parts.length - 1}\u0000`;
  }
  restore(s: string): string {
    // Parts may hold placeholders of earlier parts (a code span inside a link label).
    for (let round = 0; round < 4 && s.includes('\u0000'); round++) {
      s = s.replace(/\u0000(\d+)\u0000/g, (_, i) => this.parts[Number(i)] ?? '');
    }
    return s.replace(/\u0000/g, '');
  }
}

/** Inline Markdown of one block's text to safe HTML. */
export function renderInline(raw: string, opts: RenderOptions = {}): string {
  const stash = new Stash();
  let s = decodeEntities(raw.replace(/\u0000/g, ''));

  // Backslash escapes: the character is literal.
  s = s.replace(/\\([\\`*_{}[\]()#+\-.!<>|~])/g, (_, c: string) => stash.put(escapeHtml(c)));
  // Code spans: verbatim.
  s = s.replace(/(`+)([\s\S]*?[^`])\1(?!`)/g, (_, _t, code: string) => stash.put(`<code>${escapeHtml(code.trim())}</code>`));
  // Images: never shown, only their description.
  s = s.replace(/!\[([^\]]*)\]\(([^)]*)\)/g, (_, alt: string) =>
    stash.put(`<span class="md-img">${escapeHtml(alt ? `[image left out: ${alt}]` : '[image left out]')}</span>`),
  );
  // Reference-style images ![alt][ref]: same.
  s = s.replace(/!\[([^\]]*)\]\[[^\]]*\]/g, (_, alt: string) =>
    stash.put(`<span class="md-img">${escapeHtml(alt ? `[image left out: ${alt}]` : '[image left out]')}</span>`),
  );
  // Links: the label, then the target as inert text.
  s = s.replace(/\[([^\]]+)\]\(([^)]*)\)/g, (_, label: string, target: string) => {
    const t = target.trim();
    const label_html = escapeHtml(label);
    return stash.put(t ? `${label_html} <span class="md-url">(${escapeHtml(t)})</span>` : label_html);
  });

  // Everything left is text: escape it, then add emphasis and citations on the escaped text.
  s = escapeHtml(s);
  s = s.replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, '<strong>$1</strong>');
  s = s.replace(/__(?=\S)([\s\S]*?\S)__/g, '<strong>$1</strong>');
  s = s.replace(/(^|[^*\w])\*(?=\S)([^*]*?\S)\*(?!\*)/g, '$1<em>$2</em>');
  s = s.replace(/(^|[^_\w])_(?=\S)([^_]*?\S)_(?![_\w])/g, '$1<em>$2</em>');

  const allowed = opts.citations ?? new Set<number>();
  s = s.replace(CITE_RE, (whole, list: string) => {
    const nums = list.split(/\s*,\s*/).map(Number);
    if (!nums.every((n) => allowed.has(n))) return whole;
    return nums
      .map((n) => `<button type="button" class="cite" data-cite="${n}" title="Open source ${n}">${n}</button>`)
      .join('');
  });
  return stash.restore(s);
}

/** Block-level Markdown to safe HTML. */
export function renderMarkdown(text: string, opts: RenderOptions = {}): string {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const out: string[] = [];
  let i = 0;
  let para: string[] = [];

  const flush = () => {
    if (para.length) {
      out.push(`<p>${para.map((l) => renderInline(l, opts)).join('<br>')}</p>`);
      para = [];
    }
  };

  while (i < lines.length) {
    const line = lines[i];
    const fence = /^\s*(```|~~~)/.exec(line);
    if (fence) {
      flush();
      const code: string[] = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) code.push(lines[i++]);
      i++; // closing fence (or end)
      out.push(`<pre><code>${escapeHtml(decodeEntities(code.join('\n')))}</code></pre>`);
      continue;
    }
    if (!line.trim()) {
      flush();
      i++;
      continue;
    }
    const heading = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      flush();
      const level = heading[1].length;
      out.push(`<h${level}>${renderInline(heading[2], opts)}</h${level}>`);
      i++;
      continue;
    }
    if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) {
      flush();
      out.push('<hr>');
      i++;
      continue;
    }
    if (/^\s{0,3}>/.test(line)) {
      flush();
      const quoted: string[] = [];
      while (i < lines.length && /^\s{0,3}>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s{0,3}>\s?/, ''));
      const depth = (opts.depth ?? 0) + 1;
      const inner =
        depth >= MAX_QUOTE_DEPTH
          ? `<p>${renderInline(quoted.join(' '), opts)}</p>`
          : renderMarkdown(quoted.join('\n'), { ...opts, depth });
      out.push(`<blockquote>${inner}</blockquote>`);
      continue;
    }
    const bullet = /^\s*[-*+]\s+/;
    const numbered = /^\s*(\d{1,9})[.)]\s+/;
    if (bullet.test(line) || numbered.test(line)) {
      flush();
      const ordered = !bullet.test(line);
      const re = ordered ? numbered : bullet;
      const items: string[] = [];
      const start = ordered ? Number(numbered.exec(line)![1]) : 1;
      while (i < lines.length && (re.test(lines[i]) || (items.length && /^\s{2,}\S/.test(lines[i])))) {
        if (re.test(lines[i])) items.push(lines[i].replace(re, ''));
        else items[items.length - 1] += ' ' + lines[i].trim();
        i++;
      }
      const lis = items.map((t) => `<li>${renderInline(t, opts)}</li>`).join('');
      out.push(ordered ? `<ol${start !== 1 ? ` start="${start}"` : ''}>${lis}</ol>` : `<ul>${lis}</ul>`);
      continue;
    }
    para.push(line.trim());
    i++;
  }
  flush();
  return out.join('\n');
}
