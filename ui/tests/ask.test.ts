import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import type { Answer } from '../src/lib/types';

// The whole IPC module is replaced: the Ask screen only ever talks to these.
const fake = vi.hoisted(() => ({
  ask: vi.fn(),
  cancelAsk: vi.fn(async () => null),
  conversations: vi.fn(async () => []),
  turns: vi.fn(async () => []),
  feedback: vi.fn(async () => ({ feedback_id: 1, event_id: 42, signal: 'up', path: null, retrained: null })),
  flagAnswer: vi.fn(),
  openCitation: vi.fn(async () => null),
  rankers: vi.fn(async () => []),
  errorText: (e: unknown) => String((e as { message?: string })?.message ?? e),
  toAppError: (e: unknown) => e as { code: string; message: string },
  inTauri: () => true,
}));
vi.mock('../src/lib/api', () => fake);

import Ask from '../src/screens/Ask.svelte';

function answer(over: Partial<Answer>): Answer {
  return {
    question: 'What was revenue?',
    question_id: 1,
    event_id: 42,
    ranker_version: 1,
    conversation_id: 7,
    text: '',
    mode: { kind: 'generated', provider: 'local', model: 'SmolLM2' },
    sources: [
      {
        number: 1,
        chunk_id: 'c1',
        path: '/docs/2023 Q1 MSFT.pdf',
        anchor: { page: 4, line_start: null, line_end: null, heading: [] },
        snippet: 'Total revenue 52,747',
      },
      {
        number: 2,
        chunk_id: 'c2',
        path: '/docs/notes.md',
        anchor: { page: null, line_start: 3, line_end: 5, heading: [] },
        snippet: 'Revenue grew',
      },
    ],
    considered: [],
    invalid_citations: [],
    prompt_version: 'answer.v2',
    prompt_hash: 'x',
    prompt_tokens: 100,
    completion_tokens: 20,
    cached_tokens: 0,
    tokens_estimated: false,
    cost: 1_234_000,
    cache_hit: false,
    saved: null,
    truncated: false,
    cancelled: false,
    interrupted: null,
    warnings: [],
    latency_ms: 1200,
    confidence: {
      score: 0.9,
      retrieval: 0.9,
      support: 1,
      reasons: ['best passage similarity 0.63'],
      signals: { top_cosine: 0.63, cosine_margin: 0.1, agree: true, coverage: 1, coverage_all: 1, terms: 2 },
    },
    needs_review: false,
    review_id: null,
    ...over,
  };
}

/** An ask the test drives: tokens pushed by hand, then resolved. */
function controlledAsk() {
  let onToken: (t: string) => void = () => {};
  let resolve: (a: Answer) => void = () => {};
  fake.ask.mockImplementation((_q: string, _c: unknown, _p: unknown, cb: (t: string) => void) => {
    onToken = cb;
    return new Promise<Answer>((r) => (resolve = r));
  });
  return { token: (t: string) => onToken(t), finish: (a: Answer) => resolve(a) };
}

async function askQuestion(text: string) {
  const box = screen.getByLabelText('Question');
  await fireEvent.input(box, { target: { value: text } });
  await fireEvent.keyDown(box, { key: 'Enter' });
}

beforeEach(() => vi.clearAllMocks());
afterEach(() => cleanup());

describe('Ask screen', () => {
  it('streams tokens as plain text, then replaces them with the rendered answer', async () => {
    const ctl = controlledAsk();
    render(Ask);
    await askQuestion('What was revenue?');
    expect(fake.ask).toHaveBeenCalledWith('What was revenue?', null, null, expect.any(Function), false);

    ctl.token('Revenue was **52,747** ');
    ctl.token('<img src=x onerror=alert(1)>[1]');
    const streaming = await screen.findByTestId('streaming');
    await waitFor(() => expect(streaming.textContent).toBe('Revenue was **52,747** <img src=x onerror=alert(1)>[1]'));
    // Plain text while streaming: no markup is interpreted.
    expect(streaming.querySelector('img, strong, button')).toBeNull();

    ctl.finish(answer({ text: 'Revenue was **52,747** million [1][2].' }));
    const rendered = await screen.findByTestId('answer');
    expect(screen.queryByTestId('streaming')).toBeNull();
    expect(rendered.querySelector('strong')?.textContent).toBe('52,747');
    expect(rendered.textContent).not.toContain('**');
    expect(screen.getByTestId('confidence').textContent).toContain('90%');
    expect(screen.getByText(/cost \$0\.0012/)).toBeInTheDocument();

    // Citation [2] opens its file at its line, recording which answer and source.
    const cite = rendered.querySelector('button.cite[data-cite="2"]') as HTMLButtonElement;
    expect(cite).not.toBeNull();
    await fireEvent.click(cite);
    expect(fake.openCitation).toHaveBeenCalledWith('/docs/notes.md', null, 3, 42, 2);
    // The opener cannot jump to the line, so the UI says where to look.
    expect(await screen.findByRole('status')).toHaveTextContent('Opened notes.md — source [2] is at lines 3-5');

    // Sources panel: both sources with their places.
    const sources = screen.getAllByTestId('source');
    expect(sources).toHaveLength(2);
    expect(sources[0].textContent).toContain('p. 4');
    expect(sources[1].textContent).toContain('lines 3-5');
  });

  it('explains an abstention instead of rendering an answer', async () => {
    const ctl = controlledAsk();
    render(Ask);
    await askQuestion('What is the airspeed of an unladen swallow?');
    ctl.finish(
      answer({
        text: 'Not enough evidence in your files to answer this.',
        mode: { kind: 'abstained', reason: 'confidence 0.01 is below the threshold 0.43: best passage similarity 0.16' },
        confidence: {
          score: 0.01,
          retrieval: 0.01,
          support: null,
          reasons: ["0% of the question's words in one of the top passages"],
          signals: { top_cosine: 0.16, cosine_margin: 0.03, agree: false, coverage: 0, coverage_all: 0, terms: 3 },
        },
      }),
    );
    const box = await screen.findByTestId('abstention');
    expect(box.textContent).toContain('Cairn did not answer');
    expect(box.textContent).toContain('below the threshold 0.43');
    expect(box.textContent).toContain("0% of the question's words");
    expect(screen.queryByTestId('answer')).toBeNull();
    expect(screen.getByTestId('confidence').className).toContain('danger');
  });

  it('Esc cancels a streaming answer; feedback goes to the answer and its sources', async () => {
    const ctl = controlledAsk();
    render(Ask);
    await askQuestion('q');
    ctl.token('partial');
    await fireEvent.keyDown(window, { key: 'Escape' });
    expect(fake.cancelAsk).toHaveBeenCalledTimes(1);
    ctl.finish(answer({ text: 'partial', cancelled: true }));
    await screen.findByText(/Stopped/);
    // Esc after the answer is done does nothing more.
    await fireEvent.keyDown(window, { key: 'Escape' });
    expect(fake.cancelAsk).toHaveBeenCalledTimes(1);

    await fireEvent.click(screen.getByTitle('Good answer'));
    expect(fake.feedback).toHaveBeenCalledWith(42, 'up', null);
    await fireEvent.click(screen.getAllByTitle('This source did not help')[1]);
    expect(fake.feedback).toHaveBeenCalledWith(42, 'not_useful', 2);
  });

  it('takes feedback on the passages given to the model when the answer cites none', async () => {
    const ctl = controlledAsk();
    render(Ask);
    await askQuestion('q');
    const given = answer({}).sources;
    ctl.finish(answer({ text: 'An answer without citations.', sources: [], considered: given }));
    await screen.findByText('An answer without citations.');
    // Nothing cited: the panel lists what the model was given, under the same numbers.
    expect(screen.getAllByTestId('source')).toHaveLength(2);
    await fireEvent.click(screen.getAllByTitle('This source helped')[0]);
    expect(fake.feedback).toHaveBeenCalledWith(42, 'useful', 1);
  });

  it('shows the error of a failed ask and keeps the question', async () => {
    fake.ask.mockRejectedValueOnce({ code: 'model_missing', message: 'model or runtime missing' });
    render(Ask);
    await askQuestion('q?');
    expect(await screen.findByRole('alert')).toHaveTextContent('model or runtime missing');
    expect(screen.getByText('q?')).toBeInTheDocument();
  });

  it('continues the conversation the first answer started', async () => {
    const ctl = controlledAsk();
    render(Ask);
    await askQuestion('first');
    ctl.finish(answer({ text: 'one', conversation_id: 7 }));
    await screen.findByTestId('answer');
    const ctl2 = controlledAsk();
    await askQuestion('and then?');
    expect(fake.ask).toHaveBeenLastCalledWith('and then?', 7, null, expect.any(Function), false);
    ctl2.finish(answer({ text: 'two' }));
  });
});

describe('Ask screen, policy confirmation', () => {
  it('offers to send again with confirmation when the policy asks for it', async () => {
    fake.ask.mockRejectedValueOnce({ code: 'confirmation_required', message: 'policy asks to confirm remote chat' });
    render(Ask);
    await askQuestion('to the cloud?');
    const again = await screen.findByText('Send anyway');
    fake.ask.mockResolvedValueOnce(answer({ text: 'done [1]' }));
    await fireEvent.click(again);
    expect(fake.ask).toHaveBeenLastCalledWith('to the cloud?', null, null, expect.any(Function), true);
    expect(await screen.findByTestId('answer')).toHaveTextContent('done');
    expect(screen.queryByText('Send anyway')).toBeNull();
  });
});
