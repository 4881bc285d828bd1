//! The embedded model: a GGUF file run in-process by llama.cpp (through `llama-cpp-2`), CPU only.
//!
//! Loads once, formats messages with the model's own chat template (ChatML if it has none),
//! checks the prompt fits, then samples token by token and streams complete UTF-8 text. It does
//! not download models, offload to a GPU, or keep a KV cache between requests: every `generate`
//! gets a fresh context, so requests never leak into each other.

use crate::utf8::Utf8Stream;
use crate::{ChatModel, ChatRequest, Completion, Finish, LlmError, millis, to_u32};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token_type::LlamaTokenAttr;
use llama_cpp_2::{LlamaCppError, LogOptions, send_logs_to_tracing};
use std::num::NonZeroU32;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Tokens evaluated per `decode` call while reading the prompt.
const PROMPT_BATCH: usize = 512;
/// Repetition penalty over the last `PENALTY_LAST_N` generated tokens. Small models loop
/// without it; 1.1 is mild enough not to stop a model from repeating a citation marker.
const PENALTY_REPEAT: f32 = 1.1;
const PENALTY_LAST_N: i32 = 64;

/// Where the GGUF file is and how much of it to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlamaModelConfig {
    pub path: PathBuf,
    /// Context window in tokens (prompt + answer). Capped at what the model was trained on.
    pub context: u32,
    /// CPU threads; `None` means every available core but one (see [`default_threads`]).
    pub threads: Option<i32>,
}

impl LlamaModelConfig {
    /// A 4096-token window on all cores.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LlamaModelConfig { path: path.into(), context: 4096, threads: None }
    }
}

/// A loaded GGUF chat model. Cheap to share (`Arc`); generations run one at a time.
pub struct LlamaChat {
    model: LlamaModel,
    /// `None` when the model has no template llama.cpp can apply: ChatML is used instead.
    template: Option<LlamaChatTemplate>,
    /// Text of control tokens (`<|im_end|>`...) that must not be created from message content.
    specials: Vec<String>,
    name: String,
    context: u32,
    threads: i32,
    /// llama.cpp contexts must not be created concurrently from one model; also keeps two
    /// generations from fighting over the same cores.
    busy: Mutex<()>,
}

impl std::fmt::Debug for LlamaChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaChat")
            .field("name", &self.name)
            .field("context", &self.context)
            .field("threads", &self.threads)
            .field("chat_template", &self.template.is_some())
            .finish_non_exhaustive()
    }
}

/// Every available core but one (at least one). llama.cpp (built without OpenMP) synchronises
/// its threads with pure spin barriers: if all cores run llama threads and anything else wants
/// a core (indexing, the UI, a build), each barrier waits a whole scheduler slice. Measured on a
/// 2-core machine with one busy neighbour: 2 threads 1.9 tokens/s, 1 thread 54 tokens/s.
/// Leaving one core free costs at most 1/n of the speed on an idle machine.
pub fn default_threads() -> i32 {
    let n = std::thread::available_parallelism().map_or(4, std::num::NonZeroUsize::get);
    i32::try_from(n.saturating_sub(1).max(1)).unwrap_or(1)
}

/// The process-wide llama.cpp backend. llama.cpp may be initialised only once per process.
fn backend() -> Result<&'static LlamaBackend, LlmError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // Before init, so nothing llama.cpp or ggml says reaches stderr (CLI output stays
            // clean); with logs disabled they are not forwarded to `tracing` either.
            send_logs_to_tracing(LogOptions::default().with_logs_enabled(false));
            match LlamaBackend::init() {
                Ok(b) => Ok(b),
                // Someone else in this process initialised llama.cpp first: it is ready to use.
                // `LlamaBackend` is a field-less proof token; this one lives in a static and is
                // never dropped, so it never frees the backend.
                Err(LlamaCppError::BackendAlreadyInitialized) => Ok(LlamaBackend {}),
                Err(e) => Err(e.to_string()),
            }
        })
        .as_ref()
        .map_err(|e| LlmError::ModelLoad(format!("llama.cpp backend: {e}")))
}

/// Load a GGUF chat model. A missing file is `ModelMissing` (never a panic inside llama.cpp).
pub fn load_llama(cfg: &LlamaModelConfig) -> Result<LlamaChat, LlmError> {
    if !cfg.path.is_file() {
        return Err(LlmError::ModelMissing { path: cfg.path.clone(), hint: "run scripts/setup.sh to fetch it".into() });
    }
    if cfg.context == 0 {
        return Err(LlmError::InvalidRequest("context window must be at least 1 token".into()));
    }
    let backend = backend()?;
    let model = LlamaModel::load_from_file(backend, &cfg.path, &LlamaModelParams::default())
        .map_err(|e| LlmError::ModelLoad(format!("{}: {e}", cfg.path.display())))?;

    let trained = model.n_ctx_train();
    let context = if trained > 0 { cfg.context.min(trained) } else { cfg.context };
    let threads = cfg.threads.filter(|&t| t > 0).unwrap_or_else(default_threads);

    // Keep the model's template only if llama.cpp's built-in engine can actually apply it
    // (it recognises common templates; arbitrary Jinja is not supported).
    let template = model.chat_template(None).ok().filter(|t| {
        LlamaChatMessage::new("user".into(), "hi".into())
            .ok()
            .is_some_and(|m| model.apply_chat_template(t, &[m], true).is_ok())
    });

    let vocab = model.vocab();
    let mut specials: Vec<String> = vocab
        .tokens()
        .filter(|&t| {
            let attr = vocab.attr(t);
            attr.contains(LlamaTokenAttr::Control) || attr.contains(LlamaTokenAttr::UserDefined)
        })
        .filter_map(|t| vocab.text(t).and_then(|s| s.to_str().ok()).map(str::to_owned))
        .filter(|s| s.chars().count() >= 2 && s.chars().any(|c| c.is_ascii_punctuation()))
        .collect();
    // Longest first, so `<|im_end|>` is handled before a shorter special inside it.
    specials.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    specials.dedup();

    let name =
        cfg.path.file_name().map_or_else(|| cfg.path.display().to_string(), |n| n.to_string_lossy().into_owned());
    Ok(LlamaChat { model, template, specials, name, context, threads, busy: Mutex::new(()) })
}

impl LlamaChat {
    /// The model's file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// CPU threads used for evaluation.
    pub fn threads(&self) -> i32 {
        self.threads
    }

    /// True when the GGUF carries a chat template llama.cpp applies; false means ChatML fallback.
    pub fn has_chat_template(&self) -> bool {
        self.template.is_some()
    }

    /// The exact prompt text the model sees for these messages (template applied, assistant
    /// turn opened). Message content is sanitised so it cannot forge control tokens.
    pub fn render_prompt(&self, messages: &[crate::ChatMessage]) -> Result<String, LlmError> {
        let cleaned: Vec<(&str, String)> =
            messages.iter().map(|m| (m.role.as_str(), self.neutralise(&m.content))).collect();
        if let Some(template) = &self.template {
            let chat = cleaned
                .iter()
                .map(|(role, content)| LlamaChatMessage::new((*role).to_owned(), content.clone()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| LlmError::InvalidRequest(e.to_string()))?;
            match self.model.apply_chat_template(template, &chat, true) {
                Ok(p) => return Ok(p),
                Err(e) => return Err(LlmError::Generation(format!("chat template: {e}"))),
            }
        }
        Ok(chatml(&cleaned))
    }

    /// Remove NUL bytes and break up any control-token text inside message content by inserting
    /// a zero-width space, so sources cannot close the user turn or open a fake system turn.
    fn neutralise(&self, text: &str) -> String {
        let mut out = text.replace('\0', "");
        for special in &self.specials {
            if out.contains(special.as_str()) {
                let mut chars = special.chars();
                let first = chars.next().map(String::from).unwrap_or_default();
                let broken = format!("{first}\u{200B}{}", chars.as_str());
                out = out.replace(special.as_str(), &broken);
            }
        }
        out
    }

    fn tokenize_prompt(&self, prompt: &str) -> Vec<LlamaToken> {
        let vocab = self.model.vocab();
        // parse_special: the template's own markers must become control tokens.
        let mut tokens = vocab.tokenize(prompt.as_bytes(), true, true);
        // Templates that spell out BOS themselves plus add_special would give two.
        let bos = vocab.bos();
        if tokens.len() >= 2 && tokens[0] == bos && tokens[1] == bos {
            tokens.remove(0);
        }
        tokens
    }

    fn sampler(&self, temperature: f32) -> LlamaSampler {
        let penalties = LlamaSampler::penalties(self.model.n_vocab(), PENALTY_LAST_N, PENALTY_REPEAT, 0.0, 0.0);
        if temperature <= 0.0 || !temperature.is_finite() {
            LlamaSampler::chain_simple([penalties, LlamaSampler::greedy()])
        } else {
            let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            LlamaSampler::chain_simple([
                penalties,
                LlamaSampler::top_k(40),
                LlamaSampler::top_p(0.95, 1),
                LlamaSampler::min_p(0.05, 1),
                LlamaSampler::temp(temperature),
                LlamaSampler::dist(seed),
            ])
        }
    }
}

/// ChatML, for models without a usable template.
fn chatml(messages: &[(&str, String)]) -> String {
    let mut p = String::new();
    for (role, content) in messages {
        p.push_str("<|im_start|>");
        p.push_str(role);
        p.push('\n');
        p.push_str(content);
        p.push_str("<|im_end|>\n");
    }
    p.push_str("<|im_start|>assistant\n");
    p
}

fn gen_err(what: &str, e: impl std::fmt::Display) -> LlmError {
    LlmError::Generation(format!("{what}: {e}"))
}

impl ChatModel for LlamaChat {
    fn id(&self) -> String {
        format!("llama.cpp:{}", self.name)
    }

    fn context_window(&self) -> usize {
        self.context as usize
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.model.vocab().tokenize(text.as_bytes(), false, false).len()
    }

    fn generate(
        &self,
        req: &ChatRequest,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Completion, LlmError> {
        let start = Instant::now();
        if req.messages.is_empty() {
            return Err(LlmError::InvalidRequest("no messages".into()));
        }
        let prompt = self.render_prompt(&req.messages)?;
        let tokens = self.tokenize_prompt(&prompt);
        let max_tokens = req.max_tokens as usize;
        let needed = tokens.len() + max_tokens;
        let window = self.context as usize;
        if needed > window || tokens.is_empty() {
            return Err(LlmError::ContextOverflow { needed, window });
        }
        let mut done = Completion {
            text: String::new(),
            prompt_tokens: to_u32(tokens.len()),
            completion_tokens: 0,
            cached_prompt_tokens: 0,
            cache_write_tokens: 0,
            usage_reported: true,
            finish: Finish::Length,
            model: self.name.clone(),
            first_token_ms: None,
            latency_ms: 0,
            attempts: 1,
            warnings: Vec::new(),
        };
        if max_tokens == 0 {
            done.latency_ms = millis(start.elapsed());
            return Ok(done);
        }

        let _busy = self.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let backend = backend()?;
        // Only as much KV cache as this request needs (rounded up), never more than the window.
        let n_ctx = needed.next_multiple_of(256).min(window);
        let batch_size = PROMPT_BATCH.min(n_ctx);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(to_u32(n_ctx)))
            .with_n_batch(to_u32(batch_size))
            .with_n_ubatch(to_u32(batch_size))
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.threads);
        let mut ctx = self.model.new_context(backend, params).map_err(|e| gen_err("context", e))?;

        // Read the prompt in batches; only the very last token needs logits.
        let mut batch = LlamaBatch::new(batch_size, 1);
        let last = tokens.len() - 1;
        for (chunk_no, chunk) in tokens.chunks(batch_size).enumerate() {
            batch.clear();
            for (i, &tok) in chunk.iter().enumerate() {
                let pos = chunk_no * batch_size + i;
                let pos_i32 = i32::try_from(pos).map_err(|e| gen_err("position", e))?;
                batch.add(tok, pos_i32, &[0], pos == last).map_err(|e| gen_err("batch", e))?;
            }
            ctx.decode(&mut batch).map_err(|e| gen_err("prompt", e))?;
        }

        let vocab = self.model.vocab();
        let mut sampler = self.sampler(req.temperature);
        let mut utf8 = Utf8Stream::default();
        let mut pos = tokens.len();
        let mut generated = 0usize;
        let mut piece = Vec::with_capacity(16);
        loop {
            // `sample` also feeds the token to the chain (repetition penalty history).
            let token = sampler.sample(&ctx, batch.n_tokens() - 1);
            if vocab.is_eog(token) {
                done.finish = Finish::Stop;
                break;
            }
            generated += 1;
            piece.clear();
            vocab.token_to_piece_into(token, &mut piece, false, None);
            let text = utf8.push(&piece);
            if !text.is_empty() {
                done.first_token_ms.get_or_insert_with(|| millis(start.elapsed()));
                done.text.push_str(&text);
                if on_token(&text).is_break() {
                    done.finish = Finish::Cancelled;
                    break;
                }
            }
            if generated >= max_tokens {
                done.finish = Finish::Length;
                break;
            }
            batch.clear();
            let pos_i32 = i32::try_from(pos).map_err(|e| gen_err("position", e))?;
            batch.add(token, pos_i32, &[0], true).map_err(|e| gen_err("batch", e))?;
            pos += 1;
            ctx.decode(&mut batch).map_err(|e| gen_err("decode", e))?;
        }
        let tail = utf8.finish();
        if !tail.is_empty() && done.finish != Finish::Cancelled {
            done.first_token_ms.get_or_insert_with(|| millis(start.elapsed()));
            done.text.push_str(&tail);
            // The caller is told about the last characters too; nothing is left to cancel.
            let _ = on_token(&tail);
        }
        done.completion_tokens = to_u32(generated);
        done.latency_ms = millis(start.elapsed());
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_fallback_opens_the_assistant_turn() {
        let p = chatml(&[("system", "Be brief.".into()), ("user", "Hi".into())]);
        assert_eq!(
            p,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn missing_file_is_model_missing() {
        let err = load_llama(&LlamaModelConfig::new("/nonexistent/model.gguf")).err();
        assert!(matches!(err, Some(LlmError::ModelMissing { .. })), "{err:?}");
    }
}
