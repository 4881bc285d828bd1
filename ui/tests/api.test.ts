// The IPC wrappers against Tauri's own IPC mock: command names, argument names (camelCase, as
// docs/app-api.md says) and the channel protocol the shell streams tokens through.
import { afterEach, describe, expect, it } from 'vitest';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import * as api from '../src/lib/api';

afterEach(() => clearMocks());

function send(channel: unknown, index: number, message: unknown) {
  const id = (channel as { id: number }).id;
  (window as unknown as { __TAURI_INTERNALS__: { runCallback: (id: number, d: unknown) => void } }).__TAURI_INTERNALS__.runCallback(
    id,
    { index, message },
  );
}

describe('api.ts over the Tauri IPC', () => {
  it('outside the app, rejects with no_app instead of throwing from invoke', async () => {
    expect(api.inTauri()).toBe(false);
    await expect(api.status()).rejects.toMatchObject({ code: 'no_app' });
    await expect(api.ask('q', null, null, () => {})).rejects.toMatchObject({ code: 'no_app' });
  });

  it('streams ask tokens through a channel, in order, then returns the answer', async () => {
    const seen: { cmd: string; args: Record<string, unknown> }[] = [];
    mockIPC(async (cmd, args) => {
      const a = args as Record<string, unknown>;
      seen.push({ cmd, args: a });
      // Out of order on purpose: the channel reorders by index.
      send(a.onToken, 1, 'world');
      send(a.onToken, 0, 'hello ');
      return { text: 'hello world' };
    });
    const tokens: string[] = [];
    const answer = await api.ask('why?', 3, 'claude', (t) => tokens.push(t), true);
    expect(tokens.join('')).toBe('hello world');
    expect(answer).toEqual({ text: 'hello world' });
    expect(seen[0].cmd).toBe('ask');
    expect(seen[0].args).toMatchObject({ question: 'why?', conversation: 3, provider: 'claude', confirmed: true });
  });

  it('uses the contract names for commands and arguments', async () => {
    const seen: [string, unknown][] = [];
    mockIPC((cmd, args) => {
      seen.push([cmd, args]);
      return null;
    });
    await api.costs('provider', 7);
    await api.feedback(5, 'not_useful', 2);
    await api.openCitation('/a.pdf', 4, null, 5, 2);
    await api.setLocalOnly('/d', true);
    await api.resolveReview(9, 'wrong', 'bad cite');
    await api.keySet('claude', 'k');
    expect(seen).toEqual([
      ['costs', { groupBy: 'provider', days: 7 }],
      ['feedback', { event: 5, signal: 'not_useful', source: 2, comment: null }],
      ['open_citation', { path: '/a.pdf', page: 4, line: null, event: 5, source: 2 }],
      ['set_local_only', { path: '/d', on: true }],
      ['resolve_review', { id: 9, verdict: 'wrong', note: 'bad cite' }],
      ['key_set', { name: 'claude', key: 'k' }],
    ]);
  });

  it('passes on the shell errors as {code, message}', async () => {
    mockIPC(() => {
      throw { code: 'policy_denied', message: 'policy rule locked.chat.provider' };
    });
    await expect(api.saveSettings({} as never)).rejects.toEqual({ code: 'policy_denied', message: 'policy rule locked.chat.provider' });
    expect(api.errorText({ code: 'busy', message: 'index in use' })).toBe('index in use (busy)');
  });

  it('delivers reindex progress events', async () => {
    mockIPC((_cmd, args) => {
      const ch = (args as Record<string, unknown>).onProgress;
      send(ch, 0, { event: 'planned', to_check: 2, unchanged: 0, deleted: 0 });
      send(ch, 1, { event: 'file_indexed', path: '/d/a', chunks: 3 });
      return { indexed: 1 };
    });
    const events: string[] = [];
    await api.reindex((e) => events.push(e.event));
    expect(events).toEqual(['planned', 'file_indexed']);
  });
});
