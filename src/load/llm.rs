//! LLM requests to OpenAI-compatible servers: the request body (a prompt, messages or a
//! synthetic prompt of a given length, with `stream_options.include_usage` asked for), the
//! server-sent-events stream read as it arrives ([`SseSink`]), and what a request measured:
//! time to first token, inter-token latencies, time per output token, tokens, tokens per
//! second, the finish reason, and whether it met the goodput SLOs.
//!
//! Definitions follow vLLM's benchmark: TTFT is the time from sending to the first event that
//! carries generated content; ITL each gap between consecutive content events; TPOT
//! `(e2e − ttft) / (output tokens − 1)`; e2e the whole request. Output and input tokens come
//! from the server's `usage`; a server that sends none has its content events counted (each
//! event one token, as most servers stream), and the sample says so.

use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};

use super::transport::{BodySink, Failure};
use crate::metrics::{LlmEnd, Measure};
use crate::suite::model::{Goodput, Llm, LlmApi, Prompt};

/// Common short English words: each is one token for GPT-2, Llama and most BPE
/// vocabularies, so `prompt-tokens: N` sends N of them (about N tokens; the server's `usage`
/// gives the exact count as `input-tokens`).
const PROMPT_WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "was", "for", "on", "are", "with", "as", "at", "be",
    "this", "have", "from", "or", "one", "had", "by", "word", "but", "not", "what", "all", "were",
    "we", "when", "your", "can", "said", "there", "use", "an", "each", "which", "she", "do", "how",
    "their", "if", "will", "up", "other", "about", "out", "many", "then", "them", "these", "so",
    "some", "her", "would", "make", "like", "him", "into", "time", "has", "look", "two", "more",
    "write", "go", "see", "number", "no", "way", "could", "people", "my", "than", "first", "water",
    "been", "call", "who", "oil", "its", "now", "find", "long", "down", "day", "did", "get",
    "come", "made", "may", "part",
];

/// A synthetic prompt of `tokens` words drawn from [`PROMPT_WORDS`] (different for each
/// request, so a server's prefix cache does not answer every one).
pub(super) fn synthetic_prompt(tokens: u32, rng: &mut impl Rng) -> String {
    let mut text = String::with_capacity(tokens as usize * 5);
    for i in 0..tokens {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(PROMPT_WORDS[rng.random_range(0..PROMPT_WORDS.len())]);
    }
    text
}

/// Completes an LLM request's JSON body: the prompt or messages (already substituted), and
/// `stream_options.include_usage` when it streams (so tokens come from `usage`). Returns
/// whether the response will stream.
pub(super) fn complete_body(body: &mut Value, llm: &Llm, prompt: Option<Value>) -> bool {
    if !body.is_object() {
        *body = json!({});
    }
    if let Some(prompt) = prompt {
        match (llm.api, prompt) {
            (LlmApi::Chat, Value::String(text)) => {
                // `messages: ${messages}` from a JSON Lines row: a list of messages as JSON.
                body["messages"] = match serde_json::from_str::<Value>(&text) {
                    Ok(list @ Value::Array(_)) if text.trim_start().starts_with('[') => list,
                    _ => json!([{"role": "user", "content": text}]),
                };
            }
            (LlmApi::Chat, messages) => body["messages"] = messages,
            (LlmApi::Completions, prompt) => body["prompt"] = prompt,
        }
    }
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
    if stream && body.get("stream_options").is_none() {
        body["stream_options"] = json!({"include_usage": true});
    }
    stream
}

/// The prompt an LLM request sends, before variables are substituted.
pub(super) fn prompt_value(llm: &Llm, rng: &mut impl Rng) -> Option<Value> {
    match &llm.prompt {
        None => None,
        Some(Prompt::Text(text)) => Some(Value::String(text.clone())),
        Some(Prompt::Messages(messages)) => Some(messages.clone()),
        Some(Prompt::Synthetic { tokens }) => Some(Value::String(synthetic_prompt(*tokens, rng))),
    }
}

/// Reads an OpenAI-compatible server-sent-events stream as it arrives: the arrival time of
/// each content event, the last finish reason and usage, and whether `[DONE]` came.
#[derive(Debug)]
pub(super) struct SseSink {
    api: LlmApi,
    cap: u64,
    bytes: u64,
    /// Bytes of an event not yet complete.
    pending: Vec<u8>,
    /// When each event with generated content arrived (from the send).
    content: Vec<Duration>,
    events: u64,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    done: bool,
    /// A server's error event (`{"error": ...}`), which fails the request.
    error: Option<String>,
    /// The whole stream, when assertions or extractors read it.
    kept: Option<Vec<u8>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Usage {
    prompt: Option<u64>,
    completion: Option<u64>,
}

impl SseSink {
    /// `keep`: keep the whole stream too (for assertions and extractors).
    pub(super) fn new(api: LlmApi, cap: u64, keep: bool) -> Self {
        Self {
            kept: keep.then(Vec::new),
            api,
            cap,
            bytes: 0,
            pending: Vec::new(),
            content: Vec::new(),
            events: 0,
            finish_reason: None,
            usage: None,
            done: false,
            error: None,
        }
    }

    /// An empty sink like this one (for the body of a followed redirect).
    pub(super) fn fresh(&self, cap: u64) -> Self {
        Self::new(self.api, cap, self.kept.is_some())
    }

    /// Bytes received.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The whole stream when kept (else empty).
    pub(super) fn kept(&self) -> bytes::Bytes {
        self.kept
            .clone()
            .map(bytes::Bytes::from)
            .unwrap_or_default()
    }

    /// Content events received so far.
    pub(super) fn content_events(&self) -> usize {
        self.content.len()
    }

    fn event(&mut self, data: &str, at: Duration) {
        self.events += 1;
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return;
        }
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            return;
        };
        if let Some(error) = value.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| error.to_string(), str::to_owned);
            self.error.get_or_insert(message);
            return;
        }
        if let Some(usage) = read_usage(&value) {
            self.usage = Some(usage);
        }
        let Some(choice) = value
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            return;
        };
        let text = match self.api {
            LlmApi::Chat => {
                let delta = choice.get("delta");
                let text = |key: &str| delta.and_then(|d| d.get(key)).and_then(Value::as_str);
                // Reasoning models stream their thinking first: it is generated content too.
                text("content")
                    .filter(|t| !t.is_empty())
                    .or_else(|| text("reasoning_content"))
                    .or_else(|| text("reasoning"))
            }
            LlmApi::Completions => choice.get("text").and_then(Value::as_str),
        };
        if text.is_some_and(|t| !t.is_empty()) {
            self.content.push(at);
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
        }
    }

    /// What the stream measured, or why it is a failure: a stream that ended without
    /// `[DONE]` or a finish reason broke off.
    pub(super) fn finish(self, e2e: Duration, slo: Option<&Goodput>) -> Result<Done, Failure> {
        if let Some(error) = self.error {
            return Err(Failure::new(
                "stream",
                format!("the server sent an error event: {error}"),
            ));
        }
        if !self.done && self.finish_reason.is_none() {
            return Err(Failure::new(
                "stream",
                format!(
                    "the event stream ended before [DONE] or a finish_reason, after {} content events",
                    self.content.len()
                ),
            ));
        }
        let counted = self.usage.and_then(|u| u.completion).is_none();
        let output = match self.usage.and_then(|u| u.completion) {
            Some(n) => n,
            None => self.content.len() as u64,
        };
        let input = self.usage.and_then(|u| u.prompt);
        let ttft = self.content.first().copied();
        let itl: Vec<Duration> = self.content.windows(2).map(|w| w[1] - w[0]).collect();
        Ok(Done::measure(
            Timing {
                e2e,
                ttft,
                itl,
                output,
                input,
            },
            self.finish_reason,
            counted,
            slo,
        ))
    }
}

impl BodySink for SseSink {
    fn chunk(&mut self, data: &[u8], at: Duration) -> Result<(), Failure> {
        self.bytes += data.len() as u64;
        if self.bytes > self.cap {
            return Err(Failure::too_large(self.cap));
        }
        self.pending.extend_from_slice(data);
        if let Some(kept) = &mut self.kept {
            kept.extend_from_slice(data);
        }
        // Events end at a blank line (LF or CRLF); each `data:` line of an event joins.
        while let Some((end, skip)) = event_end(&self.pending) {
            let block: Vec<u8> = self.pending.drain(..end + skip).take(end).collect();
            let text = String::from_utf8_lossy(&block);
            let mut data = String::new();
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("data:") {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
                }
            }
            if !data.is_empty() {
                self.event(&data, at);
            }
        }
        Ok(())
    }
}

/// Where the first event in `buf` ends, and the length of the blank line that ends it.
fn event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn read_usage(value: &Value) -> Option<Usage> {
    let usage = value.get("usage").filter(|u| u.is_object())?;
    let n = |key: &str| usage.get(key).and_then(Value::as_u64);
    Some(Usage {
        prompt: n("prompt_tokens"),
        completion: n("completion_tokens"),
    })
}

/// What a whole (non-streaming) response says: tokens from `usage`, the finish reason.
pub(super) fn whole_response(
    api: LlmApi,
    body: &[u8],
    e2e: Duration,
    slo: Option<&Goodput>,
) -> Done {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let usage = read_usage(&value);
    let choice = value
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    let finish_reason = choice
        .and_then(|c| c.get("finish_reason"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let text = choice.and_then(|c| match api {
        LlmApi::Chat => c.pointer("/message/content").and_then(Value::as_str),
        LlmApi::Completions => c.get("text").and_then(Value::as_str),
    });
    // Without usage, whitespace-separated words stand in for tokens (and the sample says so).
    let (output, counted) = match usage.and_then(|u| u.completion) {
        Some(n) => (n, false),
        None => (
            text.map_or(0, |t| t.split_whitespace().count() as u64),
            true,
        ),
    };
    Done::measure(
        Timing {
            e2e,
            ttft: None,
            itl: Vec::new(),
            output,
            input: usage.and_then(|u| u.prompt),
        },
        finish_reason,
        counted,
        slo,
    )
}

/// The times and tokens of one LLM request.
#[derive(Debug)]
struct Timing {
    e2e: Duration,
    ttft: Option<Duration>,
    itl: Vec<Duration>,
    output: u64,
    input: Option<u64>,
}

/// What an LLM request measured: its named values and how it ended.
#[derive(Debug)]
pub(super) struct Done {
    pub measures: Vec<Measure>,
    pub end: LlmEnd,
}

impl Done {
    fn measure(
        t: Timing,
        finish_reason: Option<String>,
        counted: bool,
        slo: Option<&Goodput>,
    ) -> Self {
        let secs = Duration::as_secs_f64;
        let mut measures = Vec::with_capacity(6 + t.itl.len());
        measures.push(Measure::new("e2e", secs(&t.e2e)));
        measures.push(Measure::new("output-tokens", t.output as f64));
        if let Some(input) = t.input {
            measures.push(Measure::new("input-tokens", input as f64));
        }
        if !t.e2e.is_zero() {
            measures.push(Measure::new("tokens-per-s", t.output as f64 / secs(&t.e2e)));
        }
        let tpot = match (t.ttft, t.output) {
            (Some(ttft), n) if n > 1 => Some(t.e2e.saturating_sub(ttft) / (n - 1) as u32),
            _ => None,
        };
        if let Some(ttft) = t.ttft {
            measures.push(Measure::new("ttft", secs(&ttft)));
        }
        if let Some(tpot) = tpot {
            measures.push(Measure::new("tpot", secs(&tpot)));
        }
        measures.extend(t.itl.iter().map(|gap| Measure::new("itl", secs(gap))));
        let good = slo.map(|slo| {
            let within = |value: Option<Duration>, limit: Option<Duration>| match limit {
                None => true,
                Some(limit) => value.is_some_and(|v| v <= limit),
            };
            within(t.ttft, slo.ttft)
                && within(tpot, slo.tpot)
                && within(Some(t.e2e), slo.e2e)
                && (slo.itl.is_none() || t.itl.iter().all(|gap| within(Some(*gap), slo.itl)))
        });
        Self {
            measures,
            end: LlmEnd {
                finish_reason,
                good,
                counted,
            },
        }
    }

    /// A failed LLM request: it counts, and it is never good.
    pub(super) fn failed(slo: Option<&Goodput>) -> LlmEnd {
        LlmEnd {
            finish_reason: None,
            good: slo.map(|_| false),
            counted: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn value(done: &Done, name: &str) -> Vec<f64> {
        done.measures
            .iter()
            .filter(|m| m.name == name)
            .map(|m| m.value)
            .collect()
    }

    /// Events split across chunks anywhere, CRLF or LF, several in one chunk: each content
    /// event counts at the arrival of the chunk that completed it.
    #[test]
    fn sse_events_across_chunks() {
        let mut sink = SseSink::new(LlmApi::Chat, 1 << 20, false);
        let role = r#"data: {"choices":[{"delta":{"role":"assistant","content":""}}]}"#;
        let a = r#"data: {"choices":[{"delta":{"content":"Hi"}}]}"#;
        let b = r#"data: {"choices":[{"delta":{"content":" there"},"finish_reason":null}]}"#;
        let end = r#"data: {"choices":[{"delta":{},"finish_reason":"stop"}]}"#;
        let usage = r#"data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#;
        let first = format!("{role}\n\n{}", &a[..10]);
        sink.chunk(first.as_bytes(), ms(5)).unwrap();
        sink.chunk(format!("{}\r\n\r\n", &a[10..]).as_bytes(), ms(100))
            .unwrap();
        sink.chunk(
            format!("{b}\n\n{end}\n\n{usage}\n\ndata: [DONE]\n\n").as_bytes(),
            ms(130),
        )
        .unwrap();
        let done = sink.finish(ms(140), None).unwrap();
        assert_eq!(value(&done, "ttft"), [0.1]);
        assert_eq!(value(&done, "itl"), [0.03]);
        assert_eq!(value(&done, "output-tokens"), [2.0]);
        assert_eq!(value(&done, "input-tokens"), [7.0]);
        assert_eq!(value(&done, "e2e"), [0.14]);
        // (140 − 100) / (2 − 1)
        assert_eq!(value(&done, "tpot"), [0.04]);
        assert_eq!(done.end.finish_reason.as_deref(), Some("stop"));
        assert!(!done.end.counted);
    }

    /// Without usage, content events are counted (and the sample says so); completions read
    /// `text`.
    #[test]
    fn tokens_counted_without_usage() {
        let mut sink = SseSink::new(LlmApi::Completions, 1 << 20, false);
        for (i, t) in ["a", "b", "c"].iter().enumerate() {
            let e = format!("data: {{\"choices\":[{{\"text\":\"{t}\"}}]}}\n\n");
            sink.chunk(e.as_bytes(), ms(10 * (i as u64 + 1))).unwrap();
        }
        sink.chunk(
            b"data: {\"choices\":[{\"text\":\"\",\"finish_reason\":\"length\"}]}\n\n",
            ms(40),
        )
        .unwrap();
        let done = sink.finish(ms(40), None).unwrap();
        assert_eq!(value(&done, "output-tokens"), [3.0]);
        assert!(done.end.counted);
        assert_eq!(done.end.finish_reason.as_deref(), Some("length"));
        assert!(value(&done, "input-tokens").is_empty());
    }

    /// A stream that stops without `[DONE]` or a finish reason broke off: a failure that
    /// says after how many events; an error event fails with the server's message.
    #[test]
    fn broken_streams_and_error_events_fail() {
        let mut sink = SseSink::new(LlmApi::Chat, 1 << 20, false);
        sink.chunk(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n",
            ms(1),
        )
        .unwrap();
        let broken = sink.finish(ms(2), None).unwrap_err();
        assert_eq!(broken.kind, "stream");
        assert!(
            broken.message.contains("after 1 content events"),
            "{}",
            broken.message
        );
        let mut sink = SseSink::new(LlmApi::Chat, 1 << 20, false);
        sink.chunk(
            b"data: {\"error\":{\"message\":\"out of memory\"}}\n\n",
            ms(1),
        )
        .unwrap();
        let error = sink.finish(ms(2), None).unwrap_err();
        assert!(error.message.contains("out of memory"));
        let mut sink = SseSink::new(LlmApi::Chat, 10, false);
        assert!(
            sink.chunk(&[b'x'; 11], ms(1)).is_err(),
            "max-body bounds a stream"
        );
    }

    /// Goodput: every SLO given must hold; a request without a first token misses a TTFT SLO.
    #[test]
    fn goodput_slos() {
        let slo = Goodput {
            ttft: Some(ms(100)),
            tpot: Some(ms(50)),
            itl: None,
            e2e: None,
        };
        let timing = |ttft: u64, e2e: u64, output| Timing {
            e2e: ms(e2e),
            ttft: Some(ms(ttft)),
            itl: Vec::new(),
            output,
            input: None,
        };
        let good = Done::measure(timing(90, 490, 9), None, false, Some(&slo));
        assert_eq!(good.end.good, Some(true)); // tpot 50ms
        let slow = Done::measure(timing(90, 500, 9), None, false, Some(&slo));
        assert_eq!(slow.end.good, Some(false)); // tpot 51.25ms
        let late = Done::measure(timing(101, 200, 9), None, false, Some(&slo));
        assert_eq!(late.end.good, Some(false));
        let none = Done::measure(timing(101, 200, 9), None, false, None);
        assert_eq!(none.end.good, None);
        assert_eq!(Done::failed(Some(&slo)).good, Some(false));
    }

    #[test]
    fn bodies_get_the_prompt_and_ask_for_usage() {
        let chat = Llm {
            api: LlmApi::Chat,
            prompt: Some(Prompt::Synthetic { tokens: 12 }),
            goodput: None,
        };
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let prompt = prompt_value(&chat, &mut rng);
        let mut body = json!({"model": "m", "stream": true});
        assert!(complete_body(&mut body, &chat, prompt));
        let content = body["messages"][0]["content"].as_str().unwrap();
        assert_eq!(content.split(' ').count(), 12);
        assert_eq!(body["stream_options"]["include_usage"], true);
        let completions = Llm {
            api: LlmApi::Completions,
            prompt: Some(Prompt::Text("hello".into())),
            goodput: None,
        };
        let mut body = json!({"max_tokens": 4});
        let prompt = prompt_value(&completions, &mut rng);
        assert!(!complete_body(&mut body, &completions, prompt));
        assert_eq!(body["prompt"], "hello");
        assert!(body.get("stream_options").is_none());
    }

    #[test]
    fn whole_responses_read_usage() {
        let body = br#"{"choices":[{"message":{"content":"a b c"},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#;
        let done = whole_response(LlmApi::Chat, body, ms(200), None);
        assert_eq!(value(&done, "output-tokens"), [4.0]);
        assert_eq!(value(&done, "tokens-per-s"), [20.0]);
        assert!(value(&done, "ttft").is_empty());
        assert_eq!(done.end.finish_reason.as_deref(), Some("length"));
        let no_usage = br#"{"choices":[{"message":{"content":"a b c"}}]}"#;
        let done = whole_response(LlmApi::Chat, no_usage, ms(200), None);
        assert_eq!(value(&done, "output-tokens"), [3.0]);
        assert!(done.end.counted);
    }
}
