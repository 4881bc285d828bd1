//! The IPC commands (docs/app-api.md): each converts its arguments, delegates to the engine
//! and converts the result back. Engine calls run on a blocking thread (they do disk and model
//! work), so the webview's IPC never waits on them.

use crate::AppState;
use crate::error::{AppError, AppResult};
use crate::status::{Progress, StatusEvent, emit};
use cairn_core::Hit;
use cairn_engine::{
    Answer, AskOptions, BudgetStatus, CostQuery, CostReport, Engine, FeedbackReceipt, GroupBy, IndexEvent, IndexReport,
    KeyChange, KeyReport, LlmChoice, PolicyCheck, ProviderCheck, RankerInfo, Resolution, Review, ReviewStatus,
    Settings, Signal, Status, Verdict,
};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tauri::ipc::Channel;
use tauri::{AppHandle, State};
use tauri_plugin_opener::OpenerExt;

pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        status,
        add_folder,
        remove_folder,
        set_local_only,
        reindex,
        search,
        ask,
        cancel_ask,
        feedback,
        open_citation,
        costs,
        budget_status,
        settings,
        save_settings,
        policy,
        test_providers,
        key_status,
        key_set,
        key_remove,
        reviews,
        resolve_review,
        flag_answer,
        rankers,
        promote_ranker,
        rollback_ranker,
        conversations,
        turns,
    ]
}

/// Runs `f` with the engine on a blocking thread; async engine methods inside it are driven
/// with `tauri::async_runtime::block_on`.
async fn with_engine<T, F>(state: &State<'_, AppState>, f: F) -> AppResult<T>
where
    T: Send + 'static,
    F: FnOnce(Arc<Engine>) -> AppResult<T> + Send + 'static,
{
    let engine = state.engine()?;
    tauri::async_runtime::spawn_blocking(move || f(engine))
        .await
        .map_err(|e| AppError::internal(format!("the engine task failed: {e}")))?
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tauri::async_runtime::block_on(f)
}

fn to_value<T: Serialize>(v: &T) -> AppResult<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| AppError::internal(format!("cannot serialise the result: {e}")))
}

/// Runs a writer operation (it needs the index's writer lock, which the watcher holds) with the
/// watcher paused, then starts watching again: the restarted watcher's first full pass also
/// picks up folders added meanwhile.
async fn with_watcher_paused<T, F>(app: &AppHandle, state: &State<'_, AppState>, f: F) -> AppResult<T>
where
    T: Send + 'static,
    F: FnOnce(Arc<Engine>) -> AppResult<T> + Send + 'static,
{
    let engine = state.engine()?;
    let _writer = state.writer.lock().await;
    state.watcher.stop_async().await;
    let result = with_engine(state, f).await;
    state.watcher.start(app, engine);
    result
}

#[tauri::command]
pub async fn status(state: State<'_, AppState>) -> AppResult<Status> {
    with_engine(&state, |e| Ok(e.status()?)).await
}

/// Registers a folder; the watcher is restarted in the background so that it watches the new
/// folder and indexes it (progress arrives as `cairn://status` events).
#[tauri::command]
pub async fn add_folder(app: AppHandle, state: State<'_, AppState>, path: String) -> AppResult<serde_json::Value> {
    let row = with_engine(&state, move |e| Ok(e.add_folder(&PathBuf::from(path))?)).await?;
    let (watcher, writer, engine) = (state.watcher.clone(), state.writer.clone(), state.engine()?);
    tauri::async_runtime::spawn(async move {
        let _writer = writer.lock().await;
        watcher.stop_async().await;
        watcher.start(&app, engine);
    });
    to_value(&row)
}

#[tauri::command]
pub async fn remove_folder(app: AppHandle, state: State<'_, AppState>, path: String) -> AppResult<usize> {
    with_watcher_paused(&app, &state, move |e| Ok(block_on(e.remove_folder(&PathBuf::from(path)))?)).await
}

#[tauri::command]
pub async fn set_local_only(state: State<'_, AppState>, path: String, on: bool) -> AppResult<()> {
    with_engine(&state, move |e| Ok(e.set_local_only(&PathBuf::from(path), on)?)).await
}

/// A full indexing pass now, its progress through `on_progress` (and as status events).
#[tauri::command]
pub async fn reindex(
    app: AppHandle,
    state: State<'_, AppState>,
    on_progress: Channel<IndexEvent>,
) -> AppResult<IndexReport> {
    let events = app.clone();
    let report = with_watcher_paused(&app, &state, move |e| {
        let progress = Progress::default();
        let on_event = |ev: IndexEvent| {
            if let Some(s) = progress.update(&ev) {
                emit(&events, s);
            }
            let _ = on_progress.send(ev);
        };
        Ok(block_on(e.index(&on_event))?)
    })
    .await?;
    emit(&app, StatusEvent::Synced { report: report.clone() });
    Ok(report)
}

#[tauri::command]
pub async fn search(state: State<'_, AppState>, query: String, limit: Option<usize>) -> AppResult<Vec<Hit>> {
    let limit = limit.unwrap_or(10).clamp(1, 200);
    with_engine(&state, move |e| Ok(block_on(e.search(&query, limit))?)).await
}

/// Answers a question; tokens stream through `on_token` as they are generated.
#[tauri::command]
pub async fn ask(
    app: AppHandle,
    state: State<'_, AppState>,
    question: String,
    conversation: Option<i64>,
    provider: Option<String>,
    confirmed: Option<bool>,
    on_token: Channel<String>,
) -> AppResult<Answer> {
    let cancel = Arc::new(AtomicBool::new(false));
    let mine = cancel.clone();
    *state.asking.lock().unwrap_or_else(|p| p.into_inner()) = Some(cancel.clone());
    let opts = AskOptions {
        llm: provider.map_or(LlmChoice::Auto, LlmChoice::Provider),
        conversation,
        cancel: Some(cancel),
        confirmed: confirmed.unwrap_or(false),
        ..AskOptions::default()
    };
    let result = with_engine(&state, move |e| {
        let on_token = |t: &str| {
            let _ = on_token.send(t.to_owned());
        };
        let answer = block_on(e.ask(&question, &opts, &on_token))?;
        Ok((answer, e.budget_status().ok()))
    })
    .await;
    // Only this ask's flag is cleared: a second ask started meanwhile keeps its own.
    {
        let mut slot = state.asking.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, &mine)) {
            *slot = None;
        }
    }
    let (answer, budget) = result?;
    if let Some(b) = budget {
        for message in budget_warnings(&b) {
            emit(&app, StatusEvent::BudgetWarning { message });
        }
    }
    Ok(answer)
}

/// Budget gauges at or past the warning share, in words.
fn budget_warnings(b: &BudgetStatus) -> Vec<String> {
    b.gauges
        .iter()
        .filter(|g| g.used >= b.warn_at)
        .map(|g| {
            let scope = g.provider.as_deref().map_or_else(|| "overall".to_owned(), |p| format!("provider {p}"));
            format!("{:.0}% of the {:?} budget ({scope}) is spent", g.used * 100.0, g.window).to_lowercase()
        })
        .collect()
}

#[tauri::command]
pub fn cancel_ask(state: State<'_, AppState>) {
    if let Some(c) = state.asking.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        c.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tauri::command]
pub async fn feedback(
    state: State<'_, AppState>,
    event: i64,
    signal: String,
    source: Option<usize>,
    comment: Option<String>,
) -> AppResult<FeedbackReceipt> {
    let signal = Signal::parse(&signal).ok_or_else(|| {
        AppError::invalid(format!("unknown feedback signal `{signal}` (up, down, useful, not_useful, opened)"))
    })?;
    with_engine(&state, move |e| Ok(block_on(e.feedback(event, signal, source, comment.as_deref()))?)).await
}

/// Opens a cited file with the system's opener. The opener takes no page or line, so they
/// are not passed on (the UI shows them). With `event` and `source`, records `opened`.
#[tauri::command]
#[allow(clippy::too_many_arguments)]
pub async fn open_citation(
    app: AppHandle,
    state: State<'_, AppState>,
    path: String,
    page: Option<u32>,
    line: Option<u32>,
    event: Option<i64>,
    source: Option<usize>,
) -> AppResult<()> {
    // Only a file inside a registered folder, by its real absolute path: the webview cannot make
    // the app launch arbitrary files, and a path can never pass for an option of `[open]`.
    let Ok(real) = std::fs::canonicalize(&path) else {
        return Err(AppError::new(cairn_core::ErrorCode::Io, format!("{path} is no longer there")));
    };
    if !real.is_file() {
        return Err(AppError::new(cairn_core::ErrorCode::Io, format!("{path} is not a file")));
    }
    let path = real.to_string_lossy().into_owned();
    // At the page or line when the user has set a command for it ([open] in settings.toml);
    // otherwise the system opener, which can only open the file.
    let command = {
        let p = path.clone();
        with_engine(&state, move |e| {
            let inside = e.status()?.folders.iter().any(|f| std::path::Path::new(&p).starts_with(&f.path));
            if !inside {
                return Err(AppError::new(
                    cairn_core::ErrorCode::InvalidInput,
                    format!("{p} is not in a registered folder; only sources are opened"),
                ));
            }
            Ok(e.settings()?.open.command(&p, page, line))
        })
        .await?
    };
    match command {
        Some(words) => {
            let mut child = std::process::Command::new(&words[0])
                .args(&words[1..])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| AppError::new(cairn_core::ErrorCode::Io, format!("cannot run `{}` to open {path}: {e}", words[0])))?;
            // Reaped when the viewer exits, so none lingers as a zombie.
            std::thread::spawn(move || {
                let _ = child.wait();
            });
        }
        None => {
            app.opener()
                .open_path(path.clone(), None::<&str>)
                .map_err(|e| AppError::new(cairn_core::ErrorCode::Io, format!("cannot open {path}: {e}")))?;
        }
    }
    // The file is open; recording the "opened" signal is best effort (a passage the answer did
    // not cite has no number to judge).
    if let (Some(event), Some(source)) = (event, source)
        && let Err(e) =
            with_engine(&state, move |e| Ok(block_on(e.feedback(event, Signal::Opened, Some(source), None))?)).await
    {
        eprintln!("cairn: the opened signal was not recorded: {}", e.message);
    }
    Ok(())
}

fn group_by(s: &str) -> AppResult<GroupBy> {
    Ok(match s {
        "day" => GroupBy::Day,
        "provider" => GroupBy::Provider,
        "model" => GroupBy::Model,
        "folder" => GroupBy::Folder,
        other => {
            return Err(AppError::invalid(format!("cannot group costs by `{other}` (day, provider, model, folder)")));
        }
    })
}

/// Costs of the last `days` days (30 by default), grouped.
#[tauri::command]
pub async fn costs(state: State<'_, AppState>, group_by: String, days: Option<u32>) -> AppResult<CostReport> {
    let group_by = self::group_by(&group_by)?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| AppError::internal(e.to_string()))?
        .as_millis() as i64;
    let from_ms = now_ms - i64::from(days.unwrap_or(30)) * 86_400_000;
    with_engine(&state, move |e| Ok(e.costs(CostQuery { from_ms, to_ms: now_ms + 1, group_by })?)).await
}

#[tauri::command]
pub async fn budget_status(state: State<'_, AppState>) -> AppResult<BudgetStatus> {
    with_engine(&state, |e| Ok(e.budget_status()?)).await
}

#[tauri::command]
pub async fn settings(state: State<'_, AppState>) -> AppResult<Settings> {
    with_engine(&state, |e| Ok(e.settings()?)).await
}

#[tauri::command]
pub async fn save_settings(state: State<'_, AppState>, settings: Settings) -> AppResult<()> {
    with_engine(&state, move |e| Ok(e.save_settings(&settings)?)).await
}

#[tauri::command]
pub async fn policy(state: State<'_, AppState>) -> AppResult<PolicyCheck> {
    with_engine(&state, |e| Ok(e.check_policy(None)?)).await
}

#[tauri::command]
pub async fn test_providers(state: State<'_, AppState>, name: Option<String>) -> AppResult<Vec<ProviderCheck>> {
    with_engine(&state, move |e| Ok(block_on(e.test_providers(name.as_deref()))?)).await
}

#[tauri::command]
pub async fn key_status(state: State<'_, AppState>) -> AppResult<KeyReport> {
    with_engine(&state, |e| Ok(e.key_status(&[])?)).await
}

#[tauri::command]
pub async fn key_set(state: State<'_, AppState>, name: String, key: String) -> AppResult<KeyChange> {
    with_engine(&state, move |e| Ok(e.set_key(&name, &key)?)).await
}

#[tauri::command]
pub async fn key_remove(state: State<'_, AppState>, name: String) -> AppResult<KeyChange> {
    with_engine(&state, move |e| Ok(e.remove_key(&name)?)).await
}

/// Reviews with this status (`open`, `right`, `wrong`); all of them when absent.
#[tauri::command]
pub async fn reviews(state: State<'_, AppState>, status: Option<ReviewStatus>) -> AppResult<Vec<Review>> {
    with_engine(&state, move |e| Ok(e.reviews(status)?)).await
}

#[tauri::command]
pub async fn resolve_review(
    state: State<'_, AppState>,
    id: i64,
    verdict: Verdict,
    note: Option<String>,
) -> AppResult<Resolution> {
    with_engine(&state, move |e| Ok(block_on(e.resolve_review(id, verdict, note.as_deref()))?)).await
}

#[tauri::command]
pub async fn flag_answer(state: State<'_, AppState>, event: i64, note: Option<String>) -> AppResult<Review> {
    with_engine(&state, move |e| Ok(e.flag_answer(event, note.as_deref())?)).await
}

#[tauri::command]
pub async fn rankers(state: State<'_, AppState>) -> AppResult<Vec<RankerInfo>> {
    with_engine(&state, |e| Ok(e.rankers()?)).await
}

#[tauri::command]
pub async fn promote_ranker(state: State<'_, AppState>, version: i64) -> AppResult<bool> {
    with_engine(&state, move |e| Ok(e.promote_ranker(version)?)).await
}

#[tauri::command]
pub async fn rollback_ranker(state: State<'_, AppState>) -> AppResult<i64> {
    with_engine(&state, |e| Ok(e.rollback_ranker()?)).await
}

/// Recent conversations, newest first (50 unless `limit`).
#[tauri::command]
pub async fn conversations(state: State<'_, AppState>, limit: Option<usize>) -> AppResult<serde_json::Value> {
    let rows = with_engine(&state, move |e| Ok(e.conversations(limit.unwrap_or(50))?)).await?;
    to_value(&rows)
}

/// The turns of one conversation, oldest first.
#[tauri::command]
pub async fn turns(state: State<'_, AppState>, id: i64) -> AppResult<serde_json::Value> {
    let (_, turns) = with_engine(&state, move |e| Ok(e.conversation(id)?)).await?;
    to_value(&turns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_by_names() {
        assert_eq!(group_by("day"), Ok(GroupBy::Day));
        assert_eq!(group_by("folder"), Ok(GroupBy::Folder));
        assert_eq!(group_by("week").map_err(|e| e.code), Err("invalid_input".to_owned()));
    }
}
