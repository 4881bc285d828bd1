import { describe, expect, it } from 'vitest';
import { citationNumbers, renderInline, renderMarkdown } from '../src/lib/markdown';

const cites = (...n: number[]) => ({ citations: new Set(n) });

/** Parses the output as the browser would and lists every element and attribute in it. */
function dom(html: string): HTMLElement {
  const d = document.createElement('div');
  d.innerHTML = html;
  return d;
}
const ALLOWED_TAGS = new Set(['P', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'UL', 'OL', 'LI', 'BLOCKQUOTE', 'PRE', 'CODE', 'STRONG', 'EM', 'HR', 'BR', 'BUTTON', 'SPAN']);
const ALLOWED_ATTRS = new Set(['class', 'type', 'data-cite', 'title', 'start']);

function assertSafe(html: string) {
  for (const el of dom(html).querySelectorAll('*')) {
    expect(ALLOWED_TAGS.has(el.tagName), `tag ${el.tagName} in ${html}`).toBe(true);
    for (const a of el.attributes) {
      expect(ALLOWED_ATTRS.has(a.name), `attribute ${a.name} in ${html}`).toBe(true);
      expect(a.value.toLowerCase()).not.toContain('javascript:');
    }
  }
}

describe('safe markdown', () => {
  it('renders the basics', () => {
    const html = renderMarkdown('# Title\n\nSome **bold** and *it* and `x<y`.\n\n- one\n- two\n\n1. a\n2. b');
    const d = dom(html);
    expect(d.querySelector('h1')?.textContent).toBe('Title');
    expect(d.querySelector('strong')?.textContent).toBe('bold');
    expect(d.querySelector('em')?.textContent).toBe('it');
    expect(d.querySelector('code')?.textContent).toBe('x<y');
    expect(d.querySelectorAll('ul > li')).toHaveLength(2);
    expect(d.querySelectorAll('ol > li')).toHaveLength(2);
    assertSafe(html);
  });

  it('never emits an image, whatever the syntax', () => {
    const inputs = [
      '![logo](https://evil.example/track.png)',
      '![](data:image/png;base64,AAAA)',
      '<img src=x onerror=alert(1)>',
      '<IMG SRC="javascript:alert(1)">',
      '![a][ref]\n\n[ref]: https://evil.example/x.png',
      '<svg><image href="https://evil.example/x"/></svg>',
      '<picture><source srcset="https://e.example/a.png"></picture>',
    ];
    for (const s of inputs) {
      const html = renderMarkdown(s);
      const d = dom(html);
      expect(d.querySelector('img, svg, image, picture, source'), s).toBeNull();
      assertSafe(html);
    }
    expect(dom(renderMarkdown('![the logo](x.png)')).textContent).toContain('the logo');
  });

  it('shows raw HTML as text, never as elements', () => {
    const inputs = [
      '<script>alert(1)</script>',
      '<b>bold</b> <iframe src="https://x.example"></iframe>',
      'a <a href="javascript:alert(1)">click</a>',
      '<div onclick="alert(1)">x</div>',
      '<style>body{display:none}</style>',
      '**<b onmouseover=alert(1)>x</b>**',
      '`code` <form action=x><input></form>',
      '&lt;script&gt;alert(1)&lt;/script&gt;',
      '```\n<script>alert(1)</script>\n```',
      '> <object data=x></object>',
      '- <embed src=x>',
      '\\<script>alert(1)\\</script>',
    ];
    for (const s of inputs) {
      const html = renderMarkdown(s);
      assertSafe(html);
      expect(dom(html).querySelector('script, iframe, a, div, style, form, input, object, embed, b')).toBeNull();
    }
    // The text is still there for the reader.
    expect(dom(renderMarkdown('<b>bold</b>')).textContent).toBe('<b>bold</b>');
    // The engine's &lt; comes out as one "<", not "&lt;".
    expect(dom(renderMarkdown('a &lt;b&gt; c')).textContent).toBe('a <b> c');
  });

  it('never makes a followable link, whatever the scheme', () => {
    const inputs = [
      '[click](javascript:alert(1))',
      '[click](JaVaScRiPt:alert(1))',
      '[click]( javascript:alert(1) )',
      '[x](data:text/html,<script>alert(1)</script>)',
      '[site](https://example.com)',
      '<https://example.com>',
      '<javascript:alert(1)>',
      '[a](vbscript:msgbox)',
    ];
    for (const s of inputs) {
      const html = renderMarkdown(s);
      assertSafe(html);
      expect(dom(html).querySelector('a, [href], [src]'), s).toBeNull();
    }
    const d = dom(renderMarkdown('[site](https://example.com)'));
    expect(d.textContent).toBe('site (https://example.com)');
  });

  it('cannot be fooled by placeholder characters in the input', () => {
    const html = renderMarkdown('`a` \u00000\u0000 <img src=x>');
    assertSafe(html);
    expect(dom(html).querySelector('img')).toBeNull();
  });
});

describe('citations', () => {
  it('parses [1][2] and [1, 3] in order, without repeats', () => {
    expect(citationNumbers('Revenue rose [1][2], costs fell [1, 3]. See [2].')).toEqual([1, 2, 3]);
    expect(citationNumbers('a link [x](y) and [12]')).toEqual([12]);
    expect(citationNumbers('no cites here [a]')).toEqual([]);
  });

  it('turns known numbers into buttons that carry only the number', () => {
    const d = dom(renderInline('Revenue was $5 [1][2] and [3].', cites(1, 2, 3)));
    const buttons = [...d.querySelectorAll('button.cite')] as HTMLButtonElement[];
    expect(buttons.map((b) => b.dataset.cite)).toEqual(['1', '2', '3']);
    expect(buttons.every((b) => b.type === 'button')).toBe(true);
  });

  it('splits [1, 2] into two buttons', () => {
    const d = dom(renderInline('x [1, 2]', cites(1, 2)));
    expect([...d.querySelectorAll('button.cite')].map((b) => b.textContent)).toEqual(['1', '2']);
  });

  it('leaves unknown numbers and code as text', () => {
    const d = dom(renderInline('see [7] and `[1]`', cites(1)));
    expect(d.querySelectorAll('button')).toHaveLength(0);
    expect(d.textContent).toBe('see [7] and [1]');
  });

  it('does not treat a link label as a citation', () => {
    const d = dom(renderInline('[1](javascript:alert(1))', cites(1)));
    expect(d.querySelector('button')).toBeNull();
    expect(d.querySelector('a')).toBeNull();
  });
});

describe('deep quotes', () => {
  it('renders thousands of nested > without overflowing the stack, capped in depth', () => {
    const html = renderMarkdown('>'.repeat(5000) + ' deep');
    expect(html).toContain('deep');
    expect((html.match(/<blockquote>/g) ?? []).length).toBeLessThanOrEqual(8);
  });
});
