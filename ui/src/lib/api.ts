// Every call from the UI to the Tauri shell goes through this module (docs/app-api.md), so
// tests can replace it wholesale (vi.mock('$lib/api')). Outside the Cairn app there is no
// IPC: `inTauri()` is false, every call rejects with code `no_app`, and the shell shows a
// banner instead of crashing.

import { invoke, Channel } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import type {
  Answer,
  AppError,
  BudgetStatus,
  ConversationRow,
  CostReport,
  FeedbackReceipt,
  FolderRow,
  GroupBy,
  Hit,
  IndexEvent,
  IndexReport,
  KeyChange,
  KeyReport,
  PolicyCheck,
  ProviderCheck,
  RankerInfo,
  Resolution,
  Review,
  ReviewStatus,
  Settings,
  Signal,
  Status,
  StatusEvent,
  TurnRow,
  Verdict,
} from './types';

export const STATUS_EVENT = 'cairn://status';

/** True inside the Tauri webview, where `invoke` works. */
export function inTauri(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window;
}

/** Turns whatever a command rejected with into `{code, message}`. */
export function toAppError(e: unknown): AppError {
  if (e && typeof e === 'object' && 'code' in e && 'message' in e) {
    const o = e as { code: unknown; message: unknown };
    return { code: String(o.code), message: String(o.message) };
  }
  if (e instanceof Error) return { code: 'internal', message: e.message };
  return { code: 'internal', message: String(e) };
}

export function errorText(e: unknown): string {
  const a = toAppError(e);
  return a.code === 'internal' ? a.message : `${a.message} (${a.code})`;
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  if (!inTauri()) {
    throw { code: 'no_app', message: 'Run inside the Cairn app: the engine is not reachable from a plain browser.' };
  }
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw toAppError(e);
  }
}

// ---- library ----
export const status = () => call<Status>('status');
export const addFolder = (path: string) => call<FolderRow>('add_folder', { path });
export const removeFolder = (path: string) => call<number>('remove_folder', { path });
export const setLocalOnly = (path: string, on: boolean) => call<null>('set_local_only', { path, on });

export function reindex(onProgress: (e: IndexEvent) => void): Promise<IndexReport> {
  if (!inTauri()) return call<IndexReport>('reindex');
  const ch = new Channel<IndexEvent>();
  ch.onmessage = onProgress;
  return call<IndexReport>('reindex', { onProgress: ch });
}

/** Folder picker from the dialog plugin; null when the user cancels. */
export async function pickFolder(): Promise<string | null> {
  if (!inTauri()) throw { code: 'no_app', message: 'Run inside the Cairn app to pick a folder.' };
  const { open } = await import('@tauri-apps/plugin-dialog');
  const r = await open({ directory: true, multiple: false, title: 'Add a folder to Cairn' });
  return typeof r === 'string' ? r : null;
}

// ---- asking ----
export const search = (query: string, limit: number) => call<Hit[]>('search', { query, limit });

export function ask(
  question: string,
  conversation: number | null,
  provider: string | null,
  onToken: (t: string) => void,
  confirmed = false,
): Promise<Answer> {
  if (!inTauri()) return call<Answer>('ask');
  const ch = new Channel<string>();
  ch.onmessage = onToken;
  return call<Answer>('ask', { question, conversation, provider, onToken: ch, confirmed });
}

export const cancelAsk = () => call<null>('cancel_ask');

export const feedback = (event: number, signal: Signal, source: number | null, comment: string | null = null) =>
  call<FeedbackReceipt>('feedback', { event, signal, source, comment });

export const openCitation = (
  path: string,
  page: number | null,
  line: number | null,
  event: number | null = null,
  source: number | null = null,
) => call<null>('open_citation', { path, page, line, event, source });

export const conversations = (limit = 100) => call<ConversationRow[]>('conversations', { limit });

/** A conversation's turns. Also accepts the engine's `(ConversationRow, Vec<TurnRow>)` pair
 * (`Engine::conversation`), serialised as a two-element array, should the shell pass it through. */
export async function turns(id: number): Promise<TurnRow[]> {
  const r = await call<TurnRow[] | [ConversationRow, TurnRow[]]>('turns', { id });
  if (Array.isArray(r) && r.length === 2 && !Array.isArray(r[0]) && Array.isArray(r[1])) return r[1] as TurnRow[];
  return r as TurnRow[];
}

// ---- costs ----
export const costs = (groupBy: GroupBy, days: number) => call<CostReport>('costs', { groupBy, days });
export const budgetStatus = () => call<BudgetStatus>('budget_status');

// ---- settings ----
export const settings = () => call<Settings>('settings');
export const saveSettings = (s: Settings) => call<null>('save_settings', { settings: s });
export const policy = () => call<PolicyCheck>('policy');
export const testProviders = (name: string | null) => call<ProviderCheck[]>('test_providers', { name });
export const keyStatus = () => call<KeyReport>('key_status');
export const keySet = (name: string, key: string) => call<KeyChange>('key_set', { name, key });
export const keyRemove = (name: string) => call<KeyChange>('key_remove', { name });

// ---- review and learning ----
export const reviews = (status: ReviewStatus | null) => call<Review[]>('reviews', { status });
export const resolveReview = (id: number, verdict: Verdict, note: string | null) =>
  call<Resolution>('resolve_review', { id, verdict, note });
export const flagAnswer = (event: number, note: string | null) => call<Review>('flag_answer', { event, note });
export const rankers = () => call<RankerInfo[]>('rankers');
export const promoteRanker = (version: number) => call<boolean>('promote_ranker', { version });
export const rollbackRanker = () => call<number>('rollback_ranker');

// ---- app-wide events ----
export async function onStatus(handler: (e: StatusEvent) => void): Promise<UnlistenFn> {
  if (!inTauri()) return () => {};
  return listen<StatusEvent>(STATUS_EVENT, (ev) => handler(ev.payload));
}
