// Mirrors of the engine's serde types, as they cross the Tauri IPC boundary (docs/app-api.md).
// Field names are the engine's (snake_case); Option<T> is `T | null`.

/** Nanodollars (10^-9 USD), cairn_ledger::Money is `#[serde(transparent)]` over i64. */
export type Money = number;

export type ErrorCode =
  | 'model_missing'
  | 'provider_unavailable'
  | 'not_indexed'
  | 'invalid_input'
  | 'store'
  | 'database'
  | 'io'
  | 'cancelled'
  | 'busy'
  | 'auth_failed'
  | 'rate_limited'
  | 'timeout'
  | 'stream_cut'
  | 'context_overflow'
  | 'budget_exceeded'
  | 'policy_denied'
  | 'confirmation_required'
  | 'internal';

export interface AppError {
  code: ErrorCode | string;
  message: string;
}

// ---- cairn-core ----
export interface Anchor {
  page: number | null;
  line_start: number | null;
  line_end: number | null;
  heading: string[];
}

export interface Hit {
  chunk_id: string;
  path: string;
  ordinal: number;
  text: string;
  anchor: Anchor;
  score: number;
  vector_rank: number | null;
  vector_score: number | null;
  text_rank: number | null;
  text_score: number | null;
  context?: string;
  features?: number[];
}

export interface Citation {
  number: number;
  chunk_id: string;
  path: string;
  anchor: Anchor;
  snippet: string;
  /** Not in the engine's Citation today; shown by the sources panel when a shell adds them. */
  score?: number;
  features?: number[];
}

// ---- answers ----
export type AnswerMode =
  | { kind: 'generated'; provider: string; model: string }
  | { kind: 'passages'; reason: string }
  | { kind: 'abstained'; reason: string };

export interface RetrievalSignals {
  top_cosine: number;
  cosine_margin: number;
  agree: boolean;
  coverage: number;
  coverage_all: number;
  terms: number;
}

export interface Confidence {
  score: number;
  retrieval: number;
  support: number | null;
  reasons: string[];
  signals: RetrievalSignals;
}

export interface Answer {
  question: string;
  question_id: number | null;
  event_id: number | null;
  ranker_version: number | null;
  conversation_id: number | null;
  text: string;
  mode: AnswerMode;
  sources: Citation[];
  considered: Citation[];
  invalid_citations: number[];
  prompt_version: string;
  prompt_hash: string;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  tokens_estimated: boolean;
  cost: Money | null;
  cache_hit: boolean;
  saved: Money | null;
  truncated: boolean;
  cancelled: boolean;
  interrupted: string | null;
  warnings: string[];
  latency_ms: number;
  confidence: Confidence | null;
  needs_review: boolean;
  review_id: number | null;
}

// ---- status / indexing ----
export type FileStatus = 'pending' | 'indexed' | 'failed' | 'skipped';

export interface FolderStatus {
  path: string;
  files: number;
  indexed: number;
  failed: number;
  skipped: number;
  pending: number;
  chunks: number;
  ignore_files: string[];
  readable: boolean;
  local_only: string | null;
}

export interface ProblemFile {
  path: string;
  status: FileStatus;
  reason: string;
}

export interface Status {
  data_dir: string;
  embedder: string | null;
  reembedding_into: string | null;
  folders: FolderStatus[];
  problems: ProblemFile[];
  default_excludes: string[];
  user_excludes: string[];
  queued_changes: number;
}

/** `add_folder` returns the new folder's row; only `path` is relied on. */
export interface FolderRow {
  id: number;
  path: string;
  local_only: boolean;
}

export type IndexEvent =
  | { event: 'scanning'; folder: string }
  | { event: 'folder_unreadable'; folder: string; reason: string }
  | { event: 'planned'; to_check: number; unchanged: number; deleted: number }
  | { event: 'file_indexed'; path: string; chunks: number }
  | { event: 'file_unchanged'; path: string }
  | { event: 'file_failed'; path: string; reason: string }
  | { event: 'file_skipped'; path: string; reason: string }
  | { event: 'file_changing'; path: string }
  | { event: 'file_deleted'; path: string }
  | { event: 'embedder_switched'; embedder: string }
  | { event: 'embedded'; chunks: number }
  | { event: 'finalizing' };

export interface IndexReport {
  files_seen: number;
  indexed: number;
  unchanged: number;
  failed: number;
  skipped: number;
  deleted: number;
  chunks_written: number;
  chunks_embedded: number;
  chunks_reused: number;
  orphans_removed: number;
  retry: string[];
  ignored: number;
  unreadable_folders: [string, string][];
  switched_embedder: string | null;
  seconds: number;
}

/** App-wide events on `cairn://status`. */
export type StatusEvent =
  | { kind: 'indexing'; folder: string; done: number; total: number }
  | { kind: 'watching'; folders: string[] }
  | { kind: 'synced'; report: IndexReport }
  | { kind: 'budget_warning'; message: string }
  | { kind: 'error'; code: string; message: string }
  | { kind: 'not_watched'; folder: string; reason: string }
  | { kind: 'rescan'; reason: string }
  | { kind: 'watch_stopped' }
  | { kind: 'closing' };

// ---- costs ----
export type GroupBy = 'day' | 'provider' | 'model' | 'folder';

export interface CostLine {
  key: string;
  calls: number;
  input_tokens: number;
  cached_tokens: number;
  output_tokens: number;
  estimated_calls: number;
  cost: Money;
  unpriced_calls: number;
  cache_hits: number;
  saved: Money;
  failed: number;
  cancelled: number;
  refused: number;
}

export interface CostReport {
  group_by: GroupBy;
  from_ms: number;
  to_ms: number;
  lines: CostLine[];
  total: CostLine;
}

export interface BudgetGauge {
  provider: string | null;
  window: 'daily' | 'monthly';
  limit: Money;
  spent: Money;
  used: number;
}

export interface BudgetStatus {
  gauges: BudgetGauge[];
  spent_today: Money;
  spent_this_month: Money;
  warn_at: number;
  fallback: string | null;
}

// ---- feedback / learning ----
export type Signal = 'up' | 'down' | 'useful' | 'not_useful' | 'opened';

export interface FeedbackMetrics {
  [k: string]: number | null;
}

export interface RankerMetrics {
  held_out_events: number;
  held_out_active: FeedbackMetrics | null;
  held_out_candidate: FeedbackMetrics | null;
  golden_active: number | null;
  golden_candidate: number | null;
  compared_with: number | null;
}

export interface LearnReport {
  version: number;
  status: string;
  decision: string;
  train_events: number;
  train_pairs: number;
  train_ms: number;
  skipped_events: number;
  metrics: RankerMetrics;
}

export interface FeedbackReceipt {
  feedback_id: number;
  event_id: number;
  signal: Signal;
  path: string | null;
  retrained: LearnReport | null;
  retrain_error?: string;
}

export interface RankerInfo {
  version: number;
  created_ms: number;
  status: string;
  train_events: number;
  train_pairs: number;
  train_ms: number;
  decision: string;
  metrics: RankerMetrics;
  weights: [string, number][];
}

/** cairn_rank::FEATURE_NAMES, in the order of `Hit.features`. */
export const FEATURE_NAMES = [
  'vector_rr',
  'text_rr',
  'vector_score',
  'vector_gap',
  'text_norm',
  'both',
  'title_match',
  'heading_match',
  'prior',
  'neighbour',
  'recency',
  'position',
  'length',
] as const;

// ---- review ----
export type ReviewStatus = 'open' | 'right' | 'wrong';
export type Verdict = 'right' | 'wrong';

export interface Review {
  id: number;
  created_ms: number;
  event_id: number | null;
  question_id: number | null;
  question: string;
  answer: string;
  mode: string;
  sources: Citation[];
  confidence: number | null;
  reasons: string[];
  flagged_by: string;
  note: string | null;
  status: ReviewStatus;
  reviewer_note: string | null;
  resolved_ms: number | null;
}

export interface Resolution {
  review: Review;
  feedback: FeedbackReceipt[];
  retrained: LearnReport | null;
}

// ---- conversations ----
export interface ConversationRow {
  id: number;
  title: string;
  created_ms: number;
  updated_ms: number;
  turns: number;
}

export interface TurnRow {
  id: number;
  conversation_id: number;
  question_id: number | null;
  question: string;
  answer: string;
  /** The engine's full Answer, serialised as JSON. */
  answer_json: string;
  at_ms: number;
}

// ---- settings, providers, keys, policy ----
export type ProviderKind = 'openai' | 'anthropic';

export interface ProviderSettings {
  name: string;
  kind: ProviderKind;
  base_url?: string;
  model: string;
  embedding_model?: string;
  context_window?: number;
  timeout_secs?: number;
  price?: { input: number; cached_input?: number; output: number };
  remote?: boolean;
}

export interface Settings {
  chat: { provider: string; fallback?: string };
  embeddings: { provider: string };
  answer: {
    max_sources: number;
    max_answer_tokens: number;
    temperature: number;
    prompt_version?: number;
    cache: boolean;
    history_share: number;
    min_confidence: number;
  };
  local: { model?: string; context?: number; threads?: number };
  budget: {
    daily_usd?: number;
    monthly_usd?: number;
    warn_at: number;
    providers?: Record<string, { daily_usd?: number; monthly_usd?: number }>;
  };
  learning: { retrain_every: number; retrain_hours: number; golden_set?: string; golden_tolerance: number };
  privacy: { local_only_sources: 'local' | 'omit' };
  providers?: ProviderSettings[];
  prices?: unknown[];
}

export interface ProviderCheck {
  name: string;
  kind: string;
  model: string;
  base_url: string | null;
  remote: boolean;
  billing: string;
  ok: boolean;
  latency_ms: number | null;
  first_token_ms: number | null;
  usage_reported: boolean | null;
  served_model: string | null;
  error_code: ErrorCode | null;
  error: string | null;
}

export type KeySource = { kind: 'environment'; variable: string } | { kind: 'keyring'; backend: string };

export interface KeyringInfo {
  id: string;
  description: string;
  survives_reboot: boolean;
  passed_over: string[];
}

export interface KeyStatus {
  provider: string;
  configured: boolean;
  source: KeySource | null;
  variable: string;
  in_keyring: boolean | null;
  keyring_host: string | null;
  host: string | null;
  other_host: string | null;
  needs_key: boolean;
}

export interface KeyReport {
  keyring: KeyringInfo | null;
  keyring_error: string | null;
  keys: KeyStatus[];
}

export interface KeyChange {
  provider: string;
  keyring: KeyringInfo;
  changed: boolean;
  configured: boolean;
  host: string | null;
  [k: string]: unknown;
}

export interface RuleSummary {
  rule: string;
  text: string;
}

export interface PolicyCheck {
  policy: { source: string; broken: string | null; rules: RuleSummary[] };
  providers: { name: string; remote: boolean; chat: string | null; embeddings: string | null }[];
  local_only: [string, string][];
  overridden: [string, string, string][];
  defects: string[];
}
