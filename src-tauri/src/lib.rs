//! Cairn's desktop app: a thin Tauri 2 shell over `cairn_engine::Engine`.
//!
//! Startup opens the engine and starts the folder watcher on its own thread; commands
//! (commands.rs) convert, delegate to the engine and convert back; app-wide status goes out as
//! `cairn://status` events (status.rs). Closing the window stops the watcher only after the
//! batch in hand is written.

mod commands;
pub mod error;
pub mod status;

use cairn_engine::{Engine, EngineConfig, WatchOptions};
use error::{AppError, AppResult};
use status::{Progress, StatusEvent, emit};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tauri::{AppHandle, Manager, RunEvent, WindowEvent};

/// What every command reaches through `State<AppState>`.
pub struct AppState {
    engine: Result<Arc<Engine>, AppError>,
    watcher: Arc<Watcher>,
    /// Operations that need the index's writer lock (re-index, folder removal) run one at a
    /// time, with the watcher paused; closing waits for the one in hand.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// The cancel flag of the answer being generated, if any.
    asking: Arc<Mutex<Option<Arc<AtomicBool>>>>,
    closing: Arc<AtomicBool>,
}

impl AppState {
    pub fn engine(&self) -> AppResult<Arc<Engine>> {
        self.engine.clone()
    }
}

/// The background watch loop (`Engine::watch`), on a thread of its own so that stopping it can
/// wait for the batch in hand.
#[derive(Default)]
pub struct Watcher {
    running: Mutex<Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>>,
    closing: AtomicBool,
}

impl Watcher {
    /// Starts watching every registered folder (a full pass first); does nothing if running.
    pub fn start(&self, app: &AppHandle, engine: Arc<Engine>) {
        if self.closing.load(Ordering::SeqCst) {
            return;
        }
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.as_ref().is_some_and(|(_, h)| !h.is_finished()) {
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let app = app.clone();
        let spawned = std::thread::Builder::new().name("cairn-watch".into()).spawn(move || {
            let progress = Progress::default();
            let on_event = |e| {
                if let Some(s) = progress.watch_event(e) {
                    emit(&app, s);
                }
            };
            let result = tauri::async_runtime::block_on(engine.watch(WatchOptions::default(), &on_event, &flag));
            if let Err(e) = result {
                emit(&app, StatusEvent::error(&e.into()));
            }
            emit(&app, StatusEvent::WatchStopped);
        });
        match spawned {
            Ok(handle) => *running = Some((stop, handle)),
            Err(e) => eprintln!("cairn: cannot start the folder watcher: {e}"),
        }
    }

    /// Asks the loop to stop and waits until the batch in hand is written. Blocking.
    pub fn stop(&self) {
        let taken = self.running.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((stop, handle)) = taken {
            stop.store(true, Ordering::SeqCst);
            let _ = handle.join();
        }
    }

    /// `stop` for async callers: waits on a blocking thread.
    pub async fn stop_async(self: &Arc<Self>) {
        let me = self.clone();
        let _ = tauri::async_runtime::spawn_blocking(move || me.stop()).await;
    }
}

fn open_engine() -> AppResult<Arc<Engine>> {
    let engine = Engine::open(EngineConfig::from_env())?;
    Ok(Arc::new(engine))
}

/// Stops everything that writes, then exits: the watcher finishes its batch, a re-index or
/// folder removal in hand completes, an answer being generated is cancelled (and kept as such).
fn shut_down(app: &AppHandle) {
    let state = app.state::<AppState>();
    if state.closing.swap(true, Ordering::SeqCst) {
        return;
    }
    state.watcher.closing.store(true, Ordering::SeqCst);
    emit(app, StatusEvent::Closing);
    let watcher = state.watcher.clone();
    let writer = state.writer.clone();
    let asking = state.asking.clone();
    let app = app.clone();
    std::thread::spawn(move || {
        if let Some(cancel) = asking.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            cancel.store(true, Ordering::SeqCst);
        }
        // Waits for a re-index or removal in hand (it restarts no watcher: `closing` is set).
        let guard = writer.blocking_lock();
        watcher.stop();
        drop(guard);
        // Give a cancelled answer a moment to be recorded.
        let deadline = Instant::now() + Duration::from_secs(5);
        while asking.lock().unwrap_or_else(|p| p.into_inner()).is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        app.exit(0);
    });
}

pub fn run() {
    let engine = open_engine();
    if let Err(e) = &engine {
        eprintln!("cairn: cannot open the engine: {e}");
    }
    let state = AppState {
        engine,
        watcher: Arc::new(Watcher::default()),
        writer: Arc::new(tokio::sync::Mutex::new(())),
        asking: Arc::new(Mutex::new(None)),
        closing: Arc::new(AtomicBool::new(false)),
    };
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        .manage(state)
        .setup(|app| {
            let handle = app.handle().clone();
            let state = app.state::<AppState>();
            match state.engine() {
                Ok(engine) => state.watcher.start(&handle, engine),
                Err(e) => emit(&handle, StatusEvent::error(&e)),
            }
            Ok(())
        })
        .invoke_handler(commands::handler())
        .build(tauri::generate_context!("../tauri.conf.json"));
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            eprintln!("cairn: cannot start the app: {e}");
            std::process::exit(1);
        }
    };
    app.run(|app, event| match event {
        RunEvent::WindowEvent { label, event: WindowEvent::CloseRequested { api, .. }, .. } => {
            // The process stays until the work in hand is written (a first full pass over a
            // big folder can take minutes); the window goes at once. shut_down exits the app.
            api.prevent_close();
            if let Some(window) = app.get_webview_window(&label) {
                let _ = window.hide();
            }
            shut_down(app);
        }
        RunEvent::ExitRequested { code: None, api, .. } => {
            if !app.state::<AppState>().closing.load(Ordering::SeqCst) {
                api.prevent_exit();
                shut_down(app);
            }
        }
        _ => {}
    });
}
