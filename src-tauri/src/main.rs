// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    keep_onnx_runtime_offline();
    cairn_app_lib::run()
}

/// The official ONNX Runtime builds for Linux ship Microsoft's telemetry client; the app, like
/// the `cairn` CLI, turns it off through the runtime's own variable before the embedder can load
/// it (the embedder also disables telemetry events through the API).
#[allow(unsafe_code)] // One variable, set first thing in main.
fn keep_onnx_runtime_offline() {
    // SAFETY: called before the app starts any thread, so no one reads the environment meanwhile.
    unsafe {
        std::env::set_var("ORT_DISABLE_TELEMETRY", "1");
    }
}
