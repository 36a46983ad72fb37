//! Named measurements: every distribution the store keeps per label, by name.
//!
//! `rt`, `lt` and `ct` come with every request; a token stream adds `ttft`, `itl`, `tpot`,
//! `e2e`, `output-tokens`, `input-tokens` and `tokens-per-s`; server timing headers add
//! `server.<component>` and `network`. Each is a histogram with the same windows and memory
//! bounds as the response time, so criteria (`p95-ttft`, `avg-server.inference`), reports,
//! results and baselines read any of them the same way.

use std::borrow::Cow;

/// Every fixed name a criterion may aggregate (`server.<component>` is open-ended).
pub const METRIC_NAMES: &[&str] = &[
    "rt",
    "lt",
    "ct",
    "ttft",
    "itl",
    "tpot",
    "e2e",
    "output-tokens",
    "input-tokens",
    "tokens-per-s",
    "network",
];

/// The prefix of server-side component times.
pub const SERVER_PREFIX: &str = "server.";

/// What a distribution's values are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Times, kept in microseconds, reported in milliseconds; thresholds take `500ms`.
    Seconds,
    /// Token counts.
    Count,
    /// Tokens per second, kept in thousandths.
    PerSecond,
}

impl Unit {
    /// The unit of a distribution by its name.
    pub fn of(name: &str) -> Self {
        match name {
            "output-tokens" | "input-tokens" => Self::Count,
            "tokens-per-s" => Self::PerSecond,
            _ => Self::Seconds,
        }
    }

    /// Histogram steps per unit value (values are recorded as integers).
    pub(crate) fn scale(self) -> f64 {
        match self {
            Self::Seconds => 1e6,
            Self::Count => 1.0,
            Self::PerSecond => 1e3,
        }
    }

    /// How reports name it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Seconds => "ms",
            Self::Count => "tokens",
            Self::PerSecond => "tokens/s",
        }
    }
}

/// Whether `name` is a distribution a criterion can name: a fixed one or
/// `server.<component>`.
pub fn is_metric(name: &str) -> bool {
    METRIC_NAMES.contains(&name)
        || name
            .strip_prefix(SERVER_PREFIX)
            .is_some_and(|c| !c.is_empty())
}

/// One value of a named distribution, in its unit's base (seconds, tokens, tokens/s).
#[derive(Clone, Debug, PartialEq)]
pub struct Measure {
    pub name: Cow<'static, str>,
    pub value: f64,
}

impl Measure {
    pub fn new(name: impl Into<Cow<'static, str>>, value: f64) -> Self {
        Self {
            name: name.into(),
            value,
        }
    }
}

/// What a request measured besides its times: named values, and how a token stream ended.
/// Boxed in a sample and absent for plain requests, so they cost nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extra {
    pub measures: Vec<Measure>,
    /// A model-server (LLM) request's end, when the request was one.
    pub llm: Option<LlmEnd>,
    /// `Server-Timing` / `X-Timing-Info` headers that could not be read.
    pub malformed_timing: u32,
}

/// How an LLM request ended, beyond its status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LlmEnd {
    /// The last `finish_reason` the server gave (`stop`, `length`, ...).
    pub finish_reason: Option<String>,
    /// Whether it met every goodput SLO; `None` without SLOs.
    pub good: Option<bool>,
    /// Whether its output tokens were counted from events rather than read from `usage`.
    pub counted: bool,
}
