import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';

const fake = vi.hoisted(() => {
  const state = { inApp: true };
  const never = () => new Promise(() => {});
  return {
    state,
    inTauri: () => state.inApp,
    onStatus: vi.fn(async () => () => {}),
    conversations: vi.fn(async () => []),
    status: vi.fn(never),
    costs: vi.fn(never),
    budgetStatus: vi.fn(never),
    settings: vi.fn(never),
    policy: vi.fn(never),
    keyStatus: vi.fn(never),
    reviews: vi.fn(async () => []),
    rankers: vi.fn(async () => []),
    errorText: (e: unknown) => String((e as { message?: string })?.message ?? e),
    toAppError: (e: unknown) => e as { code: string; message: string },
  };
});
vi.mock('../src/lib/api', () => fake);

import App from '../src/App.svelte';

afterEach(() => {
  cleanup();
  fake.state.inApp = true;
  localStorage.clear();
});

describe('App shell', () => {
  it('Ctrl+K (or Cmd+K) brings back the Ask screen and focuses the question', async () => {
    render(App);
    await fireEvent.click(screen.getByRole('button', { name: /Review/ }));
    expect(screen.queryByLabelText('Question')).toBeNull();
    await fireEvent.keyDown(window, { key: 'k', ctrlKey: true });
    await waitFor(() => expect(document.activeElement?.id).toBe('question'));
    (document.activeElement as HTMLElement).blur();
    await fireEvent.keyDown(window, { key: 'K', metaKey: true });
    await waitFor(() => expect(document.activeElement?.id).toBe('question'));
  });

  it('shows the run-inside-the-app banner outside Tauri, and not inside', async () => {
    render(App);
    expect(screen.queryByText(/Run inside the Cairn app/)).toBeNull();
    cleanup();
    fake.state.inApp = false;
    render(App);
    expect(screen.getByRole('alert')).toHaveTextContent('Run inside the Cairn app');
  });

  it('toggles between light and dark and remembers the choice', async () => {
    render(App);
    const toggle = screen.getByRole('button', { name: /Theme/ });
    expect(document.documentElement.dataset.theme).toBe('light'); // jsdom has no dark preference
    await fireEvent.click(toggle);
    expect(document.documentElement.dataset.theme).toBe('dark');
    expect(localStorage.getItem('cairn.theme')).toBe('dark');
    await fireEvent.click(toggle);
    expect(document.documentElement.dataset.theme).toBe('light');
  });
});
