//! Problems found in suite files, located and explained.
//!
//! A [`Diagnostic`] names the file, line and column (`path:line:col`, the form editors and CI
//! annotate), quotes the offending line, marks the span, and may carry a did-you-mean and a
//! `hint:` with the fix. Every stage appends to one [`Diagnostics`] so that a user sees every
//! problem of every file at once. Rendering is plain text; colour is the CLI's business.

use std::fmt::Write as _;

use super::node::Span;
use super::source::SourceMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub span: Option<Span>,
    /// Text printed under the caret, e.g. "did you mean `concurrency`?".
    pub label: Option<String>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(span: impl Into<Option<Span>>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            message: message.into(),
            span: span.into(),
            label: None,
            hint: None,
        }
    }

    pub fn warning(span: impl Into<Option<Span>>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(span, message)
        }
    }

    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds "did you mean `x`?" when one of `candidates` is close to `word`.
    #[must_use]
    pub fn with_suggestion<'a>(
        self,
        word: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        match did_you_mean(word, candidates) {
            Some(best) => self.with_label(format!("did you mean `{best}`?")),
            None => self,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders as `path:line:col: error: message`, the quoted line, a caret and the hint.
    pub fn render(&self, sources: &SourceMap) -> String {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = String::new();
        let Some(span) = self.span else {
            let _ = writeln!(out, "{severity}: {}", self.message);
            if let Some(label) = &self.label {
                let _ = writeln!(out, "  = {label}");
            }
            if let Some(hint) = &self.hint {
                let _ = writeln!(out, "  = hint: {hint}");
            }
            return out;
        };
        let file = sources.get(span.file);
        let _ = writeln!(
            out,
            "{}:{}:{}: {severity}: {}",
            file.name, span.line, span.col, self.message
        );
        let number = span.line.to_string();
        let gutter = " ".repeat(number.len());
        if let Some(line) = sources.line(span.file, span.line) {
            let line = line.trim_end();
            let col = usize::try_from(span.col.saturating_sub(1)).unwrap_or(0);
            let available = line.chars().count().saturating_sub(col).max(1);
            let width = usize::try_from(span.len).unwrap_or(1).clamp(1, available);
            let _ = writeln!(out, "{gutter} |");
            let _ = writeln!(out, "{number} | {line}");
            let pad: String = line
                .chars()
                .take(col)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let label = self
                .label
                .as_deref()
                .map_or(String::new(), |l| format!(" {l}"));
            let _ = writeln!(out, "{gutter} | {pad}{}{label}", "^".repeat(width));
        } else if let Some(label) = &self.label {
            let _ = writeln!(out, "{gutter} = {label}");
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "{gutter} = hint: {hint}");
        }
        out
    }
}

/// Everything found so far, in the order found.
#[derive(Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        if !self.items.contains(&diagnostic) {
            self.items.push(diagnostic);
        }
    }

    pub fn extend(&mut self, diagnostics: impl IntoIterator<Item = Diagnostic>) {
        for d in diagnostics {
            self.push(d);
        }
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// Sorted by file, line and column so output is stable and reads top to bottom.
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut items: Vec<&Diagnostic> = self.items.iter().collect();
        items.sort_by_key(|d| d.span.map(|s| (s.file, s.line, s.col)));
        items
    }

    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = String::new();
        for d in self.sorted() {
            out.push_str(&d.render(sources));
            out.push('\n');
        }
        out
    }
}

/// The closest candidate to `word`, if it is close enough to be a plausible typo: a few
/// edits (transpositions count as one) or a high Jaro-Winkler similarity.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_lower = word.to_ascii_lowercase();
    let max_edits = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| !c.is_empty() && *c != word)
        .filter_map(|c| {
            let lower = c.to_ascii_lowercase();
            let edits = strsim::osa_distance(&word_lower, &lower);
            let similarity = strsim::jaro_winkler(&word_lower, &lower);
            (edits <= max_edits || similarity >= 0.85).then_some((edits, -similarity, c))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .map(|(_, _, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        let keys = ["concurrency", "hold-for", "ramp-up", "iterations"];
        assert_eq!(did_you_mean("concurency", keys), Some("concurrency"));
        assert_eq!(did_you_mean("hold_for", keys), Some("hold-for"));
        assert_eq!(did_you_mean("zzz", keys), None);
        assert_eq!(did_you_mean("fro", ["for", "within", "over"]), Some("for"));
        assert_eq!(did_you_mean("x", ["for", "within"]), None);
    }
}
