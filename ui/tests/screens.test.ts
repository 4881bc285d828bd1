import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import type { IndexEvent, IndexReport, Status } from '../src/lib/types';

const fake = vi.hoisted(() => ({
  status: vi.fn(),
  reindex: vi.fn(),
  pickFolder: vi.fn(),
  addFolder: vi.fn(),
  removeFolder: vi.fn(),
  setLocalOnly: vi.fn(async () => null),
  onStatus: vi.fn(async () => () => {}),
  settings: vi.fn(),
  saveSettings: vi.fn(async () => null),
  policy: vi.fn(),
  keyStatus: vi.fn(),
  keySet: vi.fn(),
  keyRemove: vi.fn(),
  testProviders: vi.fn(),
  errorText: (e: unknown) => String((e as { message?: string })?.message ?? e),
  toAppError: (e: unknown) => e as { code: string; message: string },
  inTauri: () => true,
}));
vi.mock('../src/lib/api', () => fake);

import Library from '../src/screens/Library.svelte';
import Settings from '../src/screens/Settings.svelte';

const folder = '/data/docs';
function status(problems = 0): Status {
  return {
    data_dir: '/d',
    embedder: 'all-MiniLM-L6-v2-int8/384',
    reembedding_into: null,
    folders: [
      { path: folder, files: 20, indexed: 18, failed: 1, skipped: 1, pending: 0, chunks: 4540, ignore_files: [], readable: true, local_only: null },
    ],
    problems: Array.from({ length: problems }, (_, i) => ({
      path: `${folder}/bad-${i}.pdf`,
      status: i % 2 ? ('skipped' as const) : ('failed' as const),
      reason: `reason ${i}`,
    })),
    default_excludes: [],
    user_excludes: [],
    queued_changes: 0,
  };
}

beforeEach(() => vi.clearAllMocks());
afterEach(() => cleanup());

describe('Library screen', () => {
  it('shows counts, a progress bar from the re-index channel, and windows a long error list', async () => {
    fake.status.mockResolvedValue(status(5000));
    let push: (e: IndexEvent) => void = () => {};
    let done: (r: IndexReport) => void = () => {};
    fake.reindex.mockImplementation((cb: (e: IndexEvent) => void) => {
      push = cb;
      return new Promise((r) => (done = r));
    });
    render(Library);
    expect(await screen.findByText('4,540 passages')).toBeInTheDocument();
    expect(screen.getByText('1 failed')).toBeInTheDocument();

    // 5,000 problem files: only a window of rows is in the DOM.
    expect(screen.getByText('Files with problems (5000)')).toBeInTheDocument();
    const rows = screen.getAllByRole('listitem');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length).toBeLessThan(40);
    expect(screen.getByText('reason 0')).toBeInTheDocument();

    await fireEvent.click(screen.getByText('Re-index'));
    push({ event: 'scanning', folder });
    push({ event: 'planned', to_check: 4, unchanged: 16, deleted: 0 });
    push({ event: 'file_indexed', path: `${folder}/a.pdf`, chunks: 10 });
    push({ event: 'file_failed', path: `${folder}/b.pdf`, reason: 'encrypted' });
    const bar = await screen.findByRole('progressbar');
    await waitFor(() => expect(bar.getAttribute('aria-valuenow')).toBe('2'));
    expect(bar.getAttribute('aria-valuemax')).toBe('4');
    expect(screen.getByText('2 / 4 files')).toBeInTheDocument();

    done({
      files_seen: 20, indexed: 3, unchanged: 16, failed: 1, skipped: 0, deleted: 0, chunks_written: 30,
      chunks_embedded: 30, chunks_reused: 0, orphans_removed: 0, retry: [], ignored: 0, unreadable_folders: [],
      switched_embedder: null, seconds: 2.5,
    });
    expect(await screen.findByText(/Last pass: 3 indexed/)).toBeInTheDocument();
    expect(screen.queryByRole('progressbar')).toBeNull();
  });

  it('filters problems by kind', async () => {
    fake.status.mockResolvedValue(status(4));
    render(Library);
    await screen.findByText('reason 1');
    await fireEvent.change(screen.getByLabelText('Which problems'), { target: { value: 'skipped' } });
    await waitFor(() => expect(screen.queryByText('reason 0')).toBeNull());
    expect(screen.getByText('reason 1')).toBeInTheDocument();
    expect(screen.getByText('2 shown')).toBeInTheDocument();
  });

  it('adds a folder typed by hand, without the native picker', async () => {
    fake.status.mockResolvedValue(status(0));
    fake.addFolder.mockResolvedValue({ path: '/home/me/notes' });
    render(Library);
    await screen.findByText('4,540 passages');
    const field = screen.getByLabelText('or type a folder path') as HTMLInputElement;
    const add = screen.getByRole('button', { name: 'Add' });
    expect(add).toBeDisabled();
    await fireEvent.input(field, { target: { value: '  /home/me/notes ' } });
    expect(add).not.toBeDisabled();
    await fireEvent.click(add);
    await waitFor(() => expect(fake.addFolder).toHaveBeenCalledWith('/home/me/notes'));
    expect(fake.pickFolder).not.toHaveBeenCalled();
    expect(await screen.findByText(/Added \/home\/me\/notes/)).toBeInTheDocument();
    expect(field.value).toBe('');
  });

  it('keeps a typed path that the shell refuses, and shows why', async () => {
    fake.status.mockResolvedValue(status(0));
    fake.addFolder.mockRejectedValue({ code: 'not_found', message: 'no such folder: /nope' });
    render(Library);
    await screen.findByText('4,540 passages');
    const field = screen.getByLabelText('or type a folder path') as HTMLInputElement;
    await fireEvent.input(field, { target: { value: '/nope' } });
    await fireEvent.submit(field.closest('form')!);
    expect(await screen.findByRole('alert')).toHaveTextContent('no such folder: /nope');
    expect(field.value).toBe('/nope');
  });
});

describe('Settings screen', () => {
  beforeEach(() => {
    fake.settings.mockResolvedValue({
      chat: { provider: 'local' },
      embeddings: { provider: 'local' },
      answer: { max_sources: 6, max_answer_tokens: 384, temperature: 0, cache: true, history_share: 0.25, min_confidence: 0.43 },
      local: {},
      budget: { warn_at: 0.8 },
      learning: { retrain_every: 20, retrain_hours: 24, golden_tolerance: 0 },
      privacy: { local_only_sources: 'local' },
      providers: [{ name: 'claude', kind: 'anthropic', model: 'claude-sonnet-4-5' }],
    });
    fake.policy.mockResolvedValue({
      policy: {
        source: '/etc/cairn/policy.toml',
        broken: null,
        rules: [{ rule: 'locked.chat.provider', text: 'the setting chat.provider is kept at "local"' }],
      },
      providers: [],
      local_only: [],
      overridden: [],
      defects: [],
    });
    fake.keyStatus.mockResolvedValue({ keyring: null, keyring_error: null, keys: [] });
  });

  it('shows a policy-locked setting disabled, with the reason', async () => {
    render(Settings);
    const select = (await screen.findByLabelText('Chat provider')) as HTMLSelectElement;
    expect(select.disabled).toBe(true);
    expect(screen.getByTestId('lock').textContent).toContain('kept at "local"');
    expect(screen.getByTestId('lock').textContent).toContain('/etc/cairn/policy.toml');
    expect((screen.getByLabelText('Embeddings provider') as HTMLSelectElement).disabled).toBe(false);
  });

  it('takes an API key in a password field, sends it once and never shows it', async () => {
    fake.keySet.mockResolvedValue({ provider: 'claude', keyring: { id: 'kernel' }, changed: true, configured: true, host: 'api.anthropic.com' });
    render(Settings);
    const field = (await screen.findByLabelText('API key for claude')) as HTMLInputElement;
    expect(field.type).toBe('password');
    await fireEvent.input(field, { target: { value: 'sk-secret-123' } });
    await fireEvent.click(screen.getByText('Store key'));
    expect(fake.keySet).toHaveBeenCalledWith('claude', 'sk-secret-123');
    await screen.findByText(/Stored in the kernel keyring for api.anthropic.com/);
    expect(field.value).toBe('');
    expect(document.body.innerHTML).not.toContain('sk-secret-123');
  });

  it('saves without the fields the user cleared', async () => {
    render(Settings);
    const temp = (await screen.findByLabelText('Temperature')) as HTMLInputElement;
    await fireEvent.input(temp, { target: { value: '' } });
    await fireEvent.click(screen.getByText('Save settings'));
    await waitFor(() => expect(fake.saveSettings).toHaveBeenCalled());
    const sent = (fake.saveSettings.mock.calls as unknown[][])[0][0] as { answer: Record<string, unknown> };
    expect('temperature' in sent.answer).toBe(false);
    expect(sent.answer.max_sources).toBe(6);
  });
});

describe('Library screen, removing a folder', () => {
  it('asks once more before removing, and Keep leaves it', async () => {
    fake.status.mockResolvedValue(status(0));
    fake.removeFolder.mockResolvedValue(20);
    render(Library);
    await fireEvent.click(await screen.findByText('Remove…'));
    await fireEvent.click(screen.getByText('Keep'));
    expect(fake.removeFolder).not.toHaveBeenCalled();
    await fireEvent.click(screen.getByText('Remove…'));
    expect(screen.getByText(/4,540 passages leave the index/)).toBeInTheDocument();
    await fireEvent.click(screen.getByRole('button', { name: 'Remove' }));
    expect(fake.removeFolder).toHaveBeenCalledWith(folder);
    expect(await screen.findByText(/20 files dropped/)).toBeInTheDocument();
  });
});
