//! OpenAI-compatible text generation for the demo server: `/v1/chat/completions` and
//! `/v1/completions`, whole or streamed as server-sent events, with deterministic timing
//! (time to first token, then one token per inter-token latency) so tests can assert exact
//! token counts and timings. Tokens are words of a fixed text; prompt tokens are counted as
//! whitespace-separated words (an approximation, as a server without a tokenizer would).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppState, error};

/// How the demo server generates text.
#[derive(Clone, Copy, Debug)]
pub struct LlmOptions {
    /// Until the first generated token.
    pub ttft: Duration,
    /// Between generated tokens.
    pub itl: Duration,
    /// Tokens in a reply (fewer when the request's `max_tokens` says so: `finish_reason`
    /// is then `length`).
    pub tokens: u32,
}

impl Default for LlmOptions {
    fn default() -> Self {
        Self {
            ttft: Duration::from_millis(50),
            itl: Duration::from_millis(10),
            tokens: 16,
        }
    }
}

const WORDS: &[&str] = &[
    "the", "model", "server", "answers", "each", "request", "with", "a", "steady", "stream", "of",
    "tokens", "so", "that", "tests", "can", "count",
];

/// Which endpoint: chat messages or a plain prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Chat,
    Completions,
}

#[derive(Debug, Deserialize)]
struct GenerateRequest {
    model: Option<String>,
    #[serde(default)]
    messages: Vec<Message>,
    prompt: Option<Value>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    /// Test hook: end the stream abruptly (the connection aborted) after this many tokens.
    demo_break_after: Option<u32>,
    /// Test hook: stop sending after this many tokens and keep the stream open until the
    /// client goes away.
    demo_stall_after: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    content: Value,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// Whitespace-separated words of every string in `v`.
fn words(v: &Value) -> u32 {
    match v {
        Value::String(s) => u32::try_from(s.split_whitespace().count()).unwrap_or(u32::MAX),
        Value::Array(items) => items.iter().map(words).sum(),
        Value::Object(map) => map.values().map(words).sum(),
        _ => 0,
    }
}

pub(super) async fn generate(state: Arc<AppState>, kind: Kind, body: Bytes) -> Response {
    let request: GenerateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid completion request: {e}"),
            );
        }
    };
    let model = request
        .model
        .clone()
        .unwrap_or_else(|| state.opts.model.clone());
    if model != state.opts.model {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "model `{model}` is not loaded; this server has `{}`",
                state.opts.model
            ),
        );
    }
    let llm = state.opts.llm;
    let prompt_tokens = match kind {
        Kind::Chat => request.messages.iter().map(|m| words(&m.content)).sum(),
        Kind::Completions => request.prompt.as_ref().map_or(0, words),
    };
    let cap = request.max_completion_tokens.or(request.max_tokens);
    let tokens = cap.map_or(llm.tokens, |cap| cap.min(llm.tokens));
    let finish = if tokens < llm.tokens {
        "length"
    } else {
        "stop"
    };
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": tokens,
        "total_tokens": prompt_tokens + tokens,
    });
    let id = format!("demo-{}", state.started.elapsed().as_nanos());
    let word = |i: u32| {
        let w = WORDS[i as usize % WORDS.len()];
        if i == 0 {
            w.to_owned()
        } else {
            format!(" {w}")
        }
    };
    if !request.stream {
        tokio::time::sleep(llm.ttft + llm.itl * tokens.saturating_sub(1)).await;
        let text: String = (0..tokens).map(word).collect();
        let choice = match kind {
            Kind::Chat => json!({"index": 0, "finish_reason": finish,
                "message": {"role": "assistant", "content": text}}),
            Kind::Completions => json!({"index": 0, "finish_reason": finish, "text": text}),
        };
        let object = match kind {
            Kind::Chat => "chat.completion",
            Kind::Completions => "text_completion",
        };
        return axum::Json(json!({"id": id, "object": object, "model": model,
            "choices": [choice], "usage": usage}))
        .into_response();
    }
    let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
    let (break_after, stall_after) = (request.demo_break_after, request.demo_stall_after);
    // `--jitter`: each wait up to this much longer, uniformly at random.
    let jitter = state.opts.jitter;
    let object = match kind {
        Kind::Chat => "chat.completion.chunk",
        Kind::Completions => "text_completion",
    };
    let chunk = move |choice: Value| json!({"id": id, "object": object, "model": model, "choices": [choice]});
    let (mut tx, body) = http_body_util::channel::Channel::<Bytes, std::io::Error>::new(4);
    tokio::spawn(async move {
        let event = |v: &Value| Bytes::from(format!("data: {v}\n\n"));
        let mut events = Vec::new();
        if kind == Kind::Chat {
            // The role comes first, at once, without content (as OpenAI sends it).
            events.push((
                Duration::ZERO,
                chunk(json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null})),
            ));
        }
        for i in 0..tokens {
            let mut wait = if i == 0 { llm.ttft } else { llm.itl };
            if !jitter.is_zero() {
                wait += jitter.mul_f64(rand::random::<f64>());
            }
            let choice = match kind {
                Kind::Chat => {
                    json!({"index": 0, "delta": {"content": word(i)}, "finish_reason": null})
                }
                Kind::Completions => json!({"index": 0, "text": word(i), "finish_reason": null}),
            };
            events.push((wait, chunk(choice)));
        }
        let last = match kind {
            Kind::Chat => json!({"index": 0, "delta": {}, "finish_reason": finish}),
            Kind::Completions => json!({"index": 0, "text": "", "finish_reason": finish}),
        };
        events.push((Duration::ZERO, chunk(last)));
        if include_usage {
            let mut with_usage = chunk(Value::Null);
            with_usage["choices"] = json!([]);
            with_usage["usage"] = usage;
            events.push((Duration::ZERO, with_usage));
        }
        let first_token = usize::from(kind == Kind::Chat);
        for (i, (wait, value)) in events.into_iter().enumerate() {
            let sent_tokens = u32::try_from(i.saturating_sub(first_token)).unwrap_or(u32::MAX);
            if break_after.is_some_and(|n| sent_tokens >= n) {
                tx.abort(std::io::Error::other("the demo server broke the stream"));
                return;
            }
            if stall_after.is_some_and(|n| sent_tokens >= n) {
                // Keep the stream open with SSE comments only, until the client hangs up.
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let comment = Bytes::from_static(b": still here\n\n");
                    if tx.send_data(comment).await.is_err() {
                        return;
                    }
                }
            }
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            if tx.send_data(event(&value)).await.is_err() {
                return; // the client went away
            }
        }
        let _ = tx.send_data(Bytes::from_static(b"data: [DONE]\n\n")).await;
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::new(body),
    )
        .into_response()
}

pub(super) async fn chat(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    generate(state, Kind::Chat, body).await
}

pub(super) async fn completions(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    generate(state, Kind::Completions, body).await
}
