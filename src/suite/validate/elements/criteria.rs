//! Criteria in their short, long and `expr:` forms, checked against the suite's labels and monitoring.

#[allow(unused_imports)]
use super::super::*;
#[allow(unused_imports)]
use super::*;
use crate::criteria::grammar::measure_names;
use crate::metrics::Agg;

/// What a criterion may measure, for the hint under an unknown subject.
const SUBJECTS_HINT: &str = "subjects: avg-rt, avg-lt, avg-ct, stdev-rt, hits, succ, fail, bytes, concurrency, throughput, dropped, goodput, truncated, p<level> (p99.9), <agg>-<measurement> with agg avg, min, max, stdev or p<level> and a measurement rt, lt, ct, ttft, itl, tpot, e2e, output-tokens, input-tokens, tokens-per-s, network or server.<component> (p95-ttft, avg-server.inference), rc<code> (rc5??), or source/metric";

impl Validator<'_> {
    pub(in crate::suite::validate) fn criterion(
        &mut self,
        item: &Located<RawCriterion>,
        scope: Scope,
        monitoring: &[MonitorSource],
    ) -> Option<Criterion> {
        let c = item.get()?;
        let criterion = match c {
            RawCriterion::Short { text, message } => {
                self.short_criterion(item.span, text, message.clone(), scope, monitoring)
            }
            RawCriterion::Long(long) => self.long_criterion(item.span, long, scope, monitoring),
        }?;
        self.check_capacity(Some(item.span), &criterion)
            .then_some(criterion)
    }

    /// A `capacity.<figure>` criterion is judged once, on the whole sweep or search, at the
    /// end: it needs one, and takes no label or timeframe.
    fn check_capacity(&mut self, span: Option<Span>, c: &Criterion) -> bool {
        let Check::Threshold {
            subject: Subject::Capacity { .. },
            label,
            ..
        } = &c.check
        else {
            return true;
        };
        let why = if !self.capacity {
            Some((
                "no execution of this suite sweeps or searches its capacity",
                "add `sweep: {concurrency: [1, 2, 4, 8], step: 30s}` or `search: {...}` to an execution",
            ))
        } else if !label.is_empty() {
            Some((
                "a capacity figure belongs to the whole sweep: it takes no label",
                "drop `of <label>`",
            ))
        } else if c.window.is_some() {
            Some((
                "a capacity figure is judged once, at the end: it takes no timeframe",
                "drop `for`/`within`/`over` and the timeframe",
            ))
        } else {
            None
        };
        if let Some((what, hint)) = why {
            self.push(Diagnostic::error(span, format!("`{}`: {what}", c.name)).with_hint(hint));
        }
        why.is_none()
    }

    pub(in crate::suite::validate) fn short_criterion(
        &mut self,
        span: Span,
        text: &str,
        message: Option<String>,
        scope: Scope,
        monitoring: &[MonitorSource],
    ) -> Option<Criterion> {
        if text.contains("${") {
            return None; // reported as an undefined variable
        }
        let parsed = match parse_short(text) {
            Ok(p) => p,
            Err(e) => {
                let mut d = Diagnostic::error(
                    self.span_in(span, text, e.range.clone()),
                    format!("invalid criterion: {}", e.message),
                )
                .with_hint(e.hint);
                if let Some(s) = e.suggestion {
                    d = d.with_label(format!("did you mean `{s}`?"));
                }
                self.push(d);
                return None;
            }
        };
        let at = |v: &Self, p: &grammar::Part| v.span_in(span, text, p.range.clone());
        let label = parsed.label.as_ref().map(|l| l.text.as_str());
        let subject = self.subject(at(self, &parsed.subject), &parsed.subject.text, label)?;
        let label_span = parsed.label.as_ref().map_or(span, |l| at(self, l));
        let (subject, histogram) = self.histogram_quantile(
            label_span,
            subject,
            parsed.label.as_ref().map(|l| l.text.as_str()),
            monitoring,
        );
        let (threshold, relative) = self.threshold(
            at(self, &parsed.threshold),
            &subject,
            &parsed.threshold.text,
        )?;
        let op = Op::parse(&parsed.op.text).ok()?;
        let window = match (&parsed.logic, &parsed.timeframe) {
            (Some(logic), Some(tf)) => match parse_duration(&tf.text) {
                Ok(timeframe) if !timeframe.is_zero() => Some(Window {
                    logic: Logic::parse(&logic.text)?,
                    timeframe,
                }),
                _ => {
                    self.push(
                        Diagnostic::error(at(self, tf), format!("invalid timeframe `{}`", tf.text))
                            .with_hint("write a duration of at least 1s, e.g. `for 10s`"),
                    );
                    return None;
                }
            },
            _ => None,
        };
        let label = parsed
            .label
            .as_ref()
            .filter(|_| !histogram)
            .map(|l| self.cx.stable_label(&l.text))
            .unwrap_or_default();
        if let Some(l) = parsed.label.as_ref().filter(|_| !histogram) {
            self.check_label(at(self, l), &subject, &label);
        }
        self.check_monitoring(at(self, &parsed.subject), &subject, monitoring);
        let stop = parsed.action.as_ref().is_none_or(|a| a.text == "stop");
        let fail = parsed.outcome.as_ref().is_none_or(|o| o.text == "failed");
        Some(Criterion {
            name: criterion_name(
                &subject,
                &label,
                op,
                &parsed.threshold.text,
                window.as_ref().map(|w| {
                    (
                        w.logic,
                        parsed.timeframe.as_ref().map_or("", |t| t.text.as_str()),
                    )
                }),
            ),
            message: message.or_else(|| parsed.message.map(|m| m.text)),
            check: Check::Threshold {
                subject,
                label,
                op,
                threshold,
            },
            window,
            stop,
            fail,
            scope,
            relative,
            baseline: None,
        })
    }

    /// `p95 of source/histogram`: a percentile whose label names a monitoring source's
    /// series is a quantile of a Prometheus histogram (a request label such as `/v2/x` is
    /// not: no source has an empty name). Returns the subject and whether it is one.
    pub(in crate::suite::validate) fn histogram_quantile(
        &mut self,
        span: Span,
        subject: Subject,
        label: Option<&str>,
        monitoring: &[MonitorSource],
    ) -> (Subject, bool) {
        let agg = match &subject {
            Subject::Percentile { level } => Agg::Percentile(*level),
            // `avg of source/histogram` (see `subject`).
            Subject::Measure {
                agg: Agg::Avg,
                metric,
            } if metric.is_empty() => Agg::Avg,
            _ => return (subject, false),
        };
        let Some((source, metric)) = label.and_then(|l| l.split_once('/')) else {
            return (subject, false);
        };
        let Some(found) = monitoring.iter().find(|m| m.name == source) else {
            if agg == Agg::Avg {
                self.push(
                    Diagnostic::error(span, format!("`{source}` is not a monitoring source"))
                        .with_suggestion(source, monitoring.iter().map(|m| m.name.as_str()))
                        .with_hint("`avg of source/histogram` reads a Prometheus histogram; for a request's mean write `avg-rt of label` (or avg-ttft, ...)"),
                );
            }
            return (subject, false);
        };
        if found.kind != SourceKind::Prometheus {
            self.push(
                Diagnostic::error(
                    span,
                    format!("`{source}` is not a prometheus source: percentiles of a series come from Prometheus histograms"),
                )
                .with_hint("name a `prometheus` source's histogram, e.g. `p95 of kserve/request_predict_seconds`"),
            );
        } else if !found.metrics.iter().any(|m| m == metric) {
            self.push(
                Diagnostic::error(span, format!("`{source}` does not collect `{metric}`"))
                    .with_suggestion(metric, found.metrics.iter().map(String::as_str))
                    .with_hint(format!(
                        "add the histogram's name (without `_bucket`) to the `metrics:` of `{source}`"
                    )),
            );
        }
        let quantile = Subject::HistogramQuantile {
            source: source.to_owned(),
            metric: metric.to_owned(),
            agg,
        };
        (quantile, true)
    }

    /// An MMS `diff_percent*` on a monitoring subject.
    pub(in crate::suite::validate) fn diff_check(
        &mut self,
        limit: &Located<f64>,
        subject: &Subject,
        against: DiffAgainst,
        key: &'static str,
    ) {
        let Some(&value) = limit.get() else { return };
        if !subject.is_monitoring() {
            self.push(
                Diagnostic::error(limit.span, format!("`{key}` compares monitoring series, not `{subject}`"))
                    .with_hint("use it on a `source/metric` subject, or write a relative threshold such as `baseline+10%`"),
            );
            return;
        }
        if !value.is_finite() || value < 0.0 {
            self.push(
                Diagnostic::error(
                    limit.span,
                    format!("`{key}` must be a percentage of 0 or more"),
                )
                .with_hint("e.g. 30 (0 asks for equal values)"),
            );
            return;
        }
        self.diff_checks.push(DiffCheck {
            subject: subject.to_string(),
            against,
            limit: value,
            key,
        });
    }

    /// MMS's top-level `compare_criteria`: `diff_percent_previous` and `diff_percent_run`.
    pub(in crate::suite::validate) fn compare_criteria(
        &mut self,
        raw: &RawSuite,
        monitoring: &[MonitorSource],
    ) {
        for entry in raw.compare_criteria.iter().flatten() {
            let Some(c) = entry.get() else { continue };
            let Some(subject_loc) = &c.subject else {
                self.push(
                    Diagnostic::error(entry.span, "a compare criterion needs `subject`")
                        .with_hint("e.g. subject: ServerLocalClient/total_processes"),
                );
                continue;
            };
            let Some(text) = subject_loc.get() else {
                continue;
            };
            if text.contains("${") {
                continue;
            }
            // MMS names the metric alone: the source that collects it.
            let full = if text.contains('/') {
                text.clone()
            } else {
                match monitoring
                    .iter()
                    .find(|m| m.metrics.iter().any(|x| x == text))
                {
                    Some(m) => format!("{}/{text}", m.name),
                    None => text.clone(),
                }
            };
            let Some(subject) = self.subject(subject_loc.span, &full, None) else {
                continue;
            };
            self.check_monitoring(subject_loc.span, &subject, monitoring);
            if let Some(d) = &c.diff_percent_previous {
                self.diff_check(d, &subject, DiffAgainst::Baseline, "diff_percent_previous");
            }
            if let Some(d) = &c.diff_percent_run {
                self.diff_check(d, &subject, DiffAgainst::FirstReading, "diff_percent_run");
            }
            if c.diff_percent_previous.is_none() && c.diff_percent_run.is_none() {
                self.push(
                    Diagnostic::warning(entry.span, "this compare criterion compares nothing")
                        .with_hint("add `diff_percent_previous: N` or `diff_percent_run: N`"),
                );
            }
        }
    }

    /// A threshold, absolute (`150ms`) or relative to a baseline (`baseline+10%`: then the
    /// threshold returned is only its unit).
    pub(in crate::suite::validate) fn threshold(
        &mut self,
        span: Span,
        subject: &Subject,
        text: &str,
    ) -> Option<(Threshold, Option<grammar::Relative>)> {
        let parsed = match grammar::parse_relative(subject, text) {
            Some(relative) => relative.map(|r| (subject.threshold_of(0.0), Some(r))),
            None => parse_threshold(subject, text).map(|t| (t, None)),
        };
        match parsed {
            Ok(found) => Some(found),
            Err(why) => {
                self.push(Diagnostic::error(span, format!("invalid threshold: {why}")));
                None
            }
        }
    }

    /// `label` is the criterion's: `avg` is a subject only as `avg of source/histogram`.
    pub(in crate::suite::validate) fn subject(
        &mut self,
        span: Span,
        text: &str,
        label: Option<&str>,
    ) -> Option<Subject> {
        if text == "avg" && label.is_some_and(|l| l.contains('/')) {
            // Made a histogram's mean by `histogram_quantile`.
            return Some(Subject::Measure {
                agg: Agg::Avg,
                metric: String::new(),
            });
        }
        match parse_subject(text) {
            Ok(s) => Some(s),
            Err(why) => {
                // `p95-ttf`: suggest among the measurements with the same aggregate.
                let measures = text
                    .split_once('-')
                    .filter(|(agg, _)| Agg::parse(agg).is_some())
                    .map(|(agg, _)| measure_names(agg))
                    .unwrap_or_default();
                let diagnostic = if measures.is_empty() {
                    Diagnostic::error(span, why).with_suggestion(text, subject_names())
                } else {
                    Diagnostic::error(span, why)
                        .with_suggestion(text, measures.iter().map(String::as_str))
                };
                self.push(diagnostic.with_hint(SUBJECTS_HINT));
                None
            }
        }
    }

    pub(in crate::suite::validate) fn check_label(
        &mut self,
        span: Span,
        subject: &Subject,
        label: &str,
    ) {
        if subject.is_monitoring() || label.is_empty() || self.opaque_scenarios || self.incomplete {
            return;
        }
        if !self.labels.iter().any(|l| l == label) {
            let shown: Vec<&str> = self.labels.iter().take(12).map(String::as_str).collect();
            self.push(
                Diagnostic::error(span, format!("unknown label `{label}`"))
                    .with_suggestion(label, self.labels.iter().map(String::as_str))
                    .with_hint(if shown.is_empty() {
                        "this suite has no requests".to_owned()
                    } else {
                        format!("labels in this suite: {} (a request's label defaults to its URL as written)", shown.join(", "))
                    }),
            );
        }
    }

    pub(in crate::suite::validate) fn check_monitoring(
        &mut self,
        span: Span,
        subject: &Subject,
        monitoring: &[MonitorSource],
    ) {
        let Subject::Monitoring { source, metric } = subject else {
            return;
        };
        if self.unsupported_sources.contains(source) {
            return;
        }
        let Some(found) = monitoring.iter().find(|m| &m.name == source) else {
            let names: Vec<&str> = monitoring.iter().map(|m| m.name.as_str()).collect();
            self.push(
                Diagnostic::error(span, format!("unknown monitoring source `{source}`"))
                    .with_suggestion(source, names.iter().copied())
                    .with_hint(if names.is_empty() {
                        "declare a source under `services:` (a `server`, or `monitoring` with local, ServerLocalClient or prometheus)".to_owned()
                    } else {
                        format!("sources in this suite: {}", names.join(", "))
                    }),
            );
            return;
        };
        if found.kind != SourceKind::Prometheus && !found.kind.provides(metric) {
            let all = found.kind.all();
            self.push(
                Diagnostic::error(
                    span,
                    format!("`{source}` does not provide the metric `{metric}`"),
                )
                .with_suggestion(metric, all.iter().copied())
                .with_hint(metric_hint(found.kind)),
            );
        } else if !found.metrics.iter().any(|m| m == metric) {
            self.push(
                Diagnostic::error(span, format!("`{source}` does not collect `{metric}`"))
                    .with_suggestion(metric, found.metrics.iter().map(String::as_str))
                    .with_hint(format!("add `{metric}` to the `metrics:` of `{source}`")),
            );
        }
    }

    pub(in crate::suite::validate) fn long_criterion(
        &mut self,
        span: Span,
        c: &RawCriterionLong,
        scope: Scope,
        monitoring: &[MonitorSource],
    ) -> Option<Criterion> {
        let stop = c.stop.unwrap_or(true);
        let fail = c.fail.unwrap_or(true);
        let window = self.long_window(c)?;
        if let Some(expr) = &c.expr {
            let text = self.expr(expr, monitoring)?;
            return Some(Criterion {
                name: format!("expr: {text}"),
                message: c.message.clone(),
                check: Check::Expr { expr: text },
                window,
                stop,
                fail,
                scope,
                relative: None,
                baseline: None,
            });
        }
        let class = c
            .class
            .as_ref()
            .and_then(|cl| cl.get().map(|t| (cl.span, t.as_str())));
        if let Some((cspan, class)) = class
            && class != MONITORING_CRITERIA_CLASS
            && class != DATA_CRITERIA_CLASS
        {
            self.push(
                    Diagnostic::error(cspan, format!("unknown criterion class `{class}`"))
                        .with_suggestion(class, [MONITORING_CRITERIA_CLASS, DATA_CRITERIA_CLASS])
                        .with_hint(format!("use `{MONITORING_CRITERIA_CLASS}` for `source/metric` subjects, or leave `class` out")),
                );
            return None;
        }
        let missing = |v: &mut Self, key: &str, example: &str| {
            v.push(
                Diagnostic::error(span, format!("a criterion map needs `{key}`"))
                    .with_hint(format!("e.g. {key}: {example}")),
            );
        };
        let Some(subject_loc) = &c.subject else {
            missing(self, "subject", "avg-rt");
            return None;
        };
        let (Some(condition), Some(threshold_loc)) = (&c.condition, &c.threshold) else {
            if c.condition.is_none() {
                missing(self, "condition", "'>'");
            }
            if c.threshold.is_none() {
                missing(self, "threshold", "150ms");
            }
            return None;
        };
        let subject_text = subject_loc.get()?;
        if subject_text.contains("${") {
            return None;
        }
        let label = c.label.as_ref().and_then(|l| l.get()).map(String::as_str);
        let subject = self.subject(subject_loc.span, subject_text, label)?;
        let (subject, histogram) = self.histogram_quantile(
            c.label.as_ref().map_or(subject_loc.span, |l| l.span),
            subject,
            c.label.as_ref().and_then(|l| l.get()).map(String::as_str),
            monitoring,
        );
        if class.is_some_and(|(_, cl)| cl == MONITORING_CRITERIA_CLASS) && !subject.is_monitoring()
        {
            self.push(
                Diagnostic::error(
                    subject_loc.span,
                    format!("monitoring criteria name `source/metric`, not `{subject_text}`"),
                )
                .with_hint("e.g. subject: ServerLocalClient/total_workers"),
            );
            return None;
        }
        let op_text = condition.get()?;
        let op = match Op::parse(op_text.trim()) {
            Ok(op) => op,
            Err((why, suggestion)) => {
                let mut d = Diagnostic::error(condition.span, why)
                    .with_hint(format!("operators are {}", grammar::OPERATORS));
                if let Some(s) = suggestion {
                    d = d.with_label(format!("did you mean `{s}`?"));
                }
                self.push(d);
                return None;
            }
        };
        let threshold_text = threshold_loc.get()?;
        if threshold_text.contains("${") {
            return None;
        }
        let (threshold, mut relative) =
            self.threshold(threshold_loc.span, &subject, threshold_text)?;
        let on_missing = self.on_missing_baseline(c.on_missing_baseline.as_ref());
        if let Some(r) = &mut relative {
            r.fail_without_baseline = on_missing;
        } else if let Some(o) = &c.on_missing_baseline {
            self.push(
                Diagnostic::warning(
                    o.span,
                    "`on-missing-baseline` is ignored: the threshold is not relative to a baseline",
                )
                .with_hint("write the threshold as `baseline+10%`, `baseline*1.2`, ..."),
            );
        }
        let label = c
            .label
            .as_ref()
            .filter(|_| !histogram)
            .and_then(|l| l.get().map(|l| self.cx.stable_label(l)))
            .unwrap_or_default();
        if let Some(l) = c.label.as_ref().filter(|_| !histogram) {
            self.check_label(l.span, &subject, &label);
        }
        self.check_monitoring(subject_loc.span, &subject, monitoring);
        if let Some(d) = &c.diff_percent {
            self.diff_check(d, &subject, DiffAgainst::Baseline, "diff_percent");
        }
        let tf_text = c
            .timeframe
            .as_ref()
            .and_then(|t| t.get().cloned())
            .unwrap_or_default();
        Some(Criterion {
            name: criterion_name(
                &subject,
                &label,
                op,
                threshold_text,
                window.as_ref().map(|w| (w.logic, tf_text.as_str())),
            ),
            message: c.message.clone(),
            check: Check::Threshold {
                subject,
                label,
                op,
                threshold,
            },
            window,
            stop,
            fail,
            scope,
            relative,
            baseline: None,
        })
    }

    /// `logic` + `timeframe` of the long form. `None` on error; `Some(None)` for no window.
    #[expect(clippy::option_option, reason = "error vs. no window")]
    pub(in crate::suite::validate) fn long_window(
        &mut self,
        c: &RawCriterionLong,
    ) -> Option<Option<Window>> {
        let logic = match &c.logic {
            Some(l) => {
                let text = l.get()?;
                let Some(logic) = Logic::parse(text) else {
                    self.push(
                        Diagnostic::error(l.span, format!("unknown logic `{text}`"))
                            .with_suggestion(text, ["for", "within", "over"])
                            .with_hint("logic is `for`, `within` or `over`"),
                    );
                    return None;
                };
                Some(logic)
            }
            None => None,
        };
        let Some(tf) = &c.timeframe else {
            if let (Some(_), Some(l)) = (logic, &c.logic) {
                self.push(
                    Diagnostic::error(l.span, "`logic` needs a `timeframe`")
                        .with_hint("e.g. timeframe: 10s"),
                );
                return None;
            }
            return Some(None);
        };
        let text = tf.get()?;
        if text.contains("${") {
            return None;
        }
        if text.trim().parse::<f64>().is_ok_and(|n| n <= 0.0) {
            return Some(None); // Taurus: -1 means "no timeframe"
        }
        match parse_duration(text) {
            Ok(timeframe) if !timeframe.is_zero() => Some(Some(Window {
                logic: logic.unwrap_or(Logic::For),
                timeframe,
            })),
            _ => {
                self.push(
                    Diagnostic::error(tf.span, format!("invalid timeframe `{text}`"))
                        .with_hint("write a duration such as 10s or 1m"),
                );
                None
            }
        }
    }

    pub(in crate::suite::validate) fn expr(
        &mut self,
        loc: &Located<String>,
        monitoring: &[MonitorSource],
    ) -> Option<String> {
        let text = loc.get()?;
        let tree = match evalexpr::build_operator_tree(text) {
            Ok(tree) => tree,
            Err(e) => {
                self.push(
                    Diagnostic::error(loc.span, format!("invalid expression: {e}"))
                        .with_hint("e.g. expr: 'p(99, \"infer\") > 3 * p(50, \"infer\")'"),
                );
                return None;
            }
        };
        let mut ok = true;
        for function in tree.iter_function_identifiers() {
            if !KPI_FUNCTIONS.contains(&function) && !EVALEXPR_BUILTINS.contains(&function) {
                ok = false;
                self.push(
                    Diagnostic::error(
                        loc.span,
                        format!("unknown function `{function}` in expression"),
                    )
                    .with_suggestion(function, KPI_FUNCTIONS.iter().copied())
                    .with_hint(format!(
                        "KPI functions: {} (times in milliseconds)",
                        KPI_FUNCTIONS.join(", ")
                    )),
                );
            }
        }
        for variable in tree.iter_variable_identifiers() {
            ok = false;
            self.push(
                Diagnostic::error(loc.span, format!("unknown name `{variable}` in expression"))
                    .with_hint(
                        "labels are strings: p(99, \"infer\"); functions need parentheses: hits()",
                    ),
            );
        }
        // Check the labels and subjects named in calls such as p(99, "infer") or metric("a/b").
        static CALLS: LazyLock<regex::Regex> = LazyLock::new(|| {
            // A string argument may hold `\"` (a selector's label value).
            regex::Regex::new(r#"(\w+)\s*\(\s*(?:[\d.]+\s*,\s*)?"((?:[^"\\]|\\.)*)""#)
                .expect("a valid regex")
        });
        for cap in CALLS.captures_iter(text) {
            let function = &cap[1];
            let arg = cap[2].replace("\\\"", "\"").replace("\\\\", "\\");
            let arg = arg.as_str();
            match function {
                "metric" => match parse_subject(arg) {
                    Ok(subject @ Subject::Monitoring { .. }) => {
                        self.check_monitoring(loc.span, &subject, monitoring)
                    }
                    _ => {
                        ok = false;
                        self.push(Diagnostic::error(
                            loc.span,
                            format!("`metric(\"{arg}\")` needs `source/metric`"),
                        ));
                    }
                },
                "rc" => {}
                _ if KPI_FUNCTIONS.contains(&function) => {
                    self.check_label(
                        loc.span,
                        &Subject::Kpi {
                            kpi: grammar::Kpi::Hits,
                        },
                        arg,
                    );
                }
                _ => {}
            }
        }
        ok.then(|| text.clone())
    }
}

pub(in crate::suite::validate) fn criterion_name(
    subject: &Subject,
    label: &str,
    op: Op,
    threshold: &str,
    window: Option<(Logic, &str)>,
) -> String {
    let subject_text = match subject {
        Subject::Percentile { level } => format!("p{level}"),
        other => other.to_string(),
    };
    let of = if label.is_empty() {
        String::new()
    } else {
        format!(" of {label}")
    };
    let window = window.map_or(String::new(), |(logic, tf)| {
        format!(" {} {tf}", logic.name())
    });
    format!(
        "{subject_text}{of}{}{}{window}",
        op.symbol(),
        threshold.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, suite_with};

    fn criteria(list: &str) -> (Option<Vec<String>>, Vec<String>) {
        let (suite, messages) = check(&suite_with(&format!(
            "reporting: [{{module: passfail, criteria: {list}}}]\n"
        )));
        (
            suite.map(|s| s.criteria.iter().map(|c| c.name.clone()).collect()),
            messages,
        )
    }

    #[test]
    fn short_long_and_expr_forms() {
        let (names, messages) = criteria(
            "['avg-rt of x>150ms for 10s, stop as failed', {subject: p99, label: x, condition: '>', threshold: 1s, logic: within, timeframe: 5s}, {expr: 'p(99, \"x\") > 2 * p(50, \"x\")'}]",
        );
        assert_eq!(
            names.unwrap_or_else(|| panic!("{messages:?}")),
            [
                "avg-rt of x>150ms for 10s",
                "p99 of x>1s within 5s",
                "expr: p(99, \"x\") > 2 * p(50, \"x\")"
            ]
        );
    }

    #[test]
    fn unknown_labels_operators_and_huge_timeframes_are_errors() {
        let (names, messages) =
            criteria("['avg-rt of y>1s', 'fail=<1%', 'hits<1 for 99999999999999999999d']");
        assert!(names.is_none());
        for expected in [
            "unknown label `y`",
            "`=<` is not an operator",
            "invalid timeframe",
        ] {
            assert!(
                messages.iter().any(|m| m.contains(expected)),
                "{expected}: {messages:?}"
            );
        }
    }
}
