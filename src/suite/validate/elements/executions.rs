//! `execution`: load shapes (closed and open model), ramp-up, durations, and which scenario each runs.

#[allow(unused_imports)]
use super::super::*;
#[allow(unused_imports)]
use super::*;

impl Validator<'_> {
    pub(in crate::suite::validate) fn executions<'r>(
        &mut self,
        raw: &'r RawSuite,
        pending: &mut Vec<PendingCriteria<'r>>,
    ) -> Vec<Execution> {
        let Some(list) = &raw.execution else {
            self.push(
                Diagnostic::error(
                    None,
                    format!(
                        "`{}` has no `execution`: there is nothing to run",
                        self.cx.path.display()
                    ),
                )
                .with_hint("add `execution: [{scenario: NAME, concurrency: 1, hold-for: 10s}]`"),
            );
            return Vec::new();
        };
        let names: Vec<&str> = raw
            .scenarios
            .iter()
            .flat_map(|s| s.iter().map(|(n, _)| n))
            .collect();
        let mut out = Vec::new();
        for (index, item) in list.iter().enumerate() {
            let Some(e) = item.get() else { continue };
            if let Some(executor) = &e.executor
                && let Some(name) = executor.get().filter(|n| n.as_str() != "perfgate")
            {
                self.push(Diagnostic::warning(
                        executor.span,
                        format!("`executor: {name}` is ignored: perfgate runs `requests:` scenarios with its own HTTP engine"),
                    ));
            }
            let scenario = match &e.scenario {
                None => {
                    self.push(
                        Diagnostic::error(item.span, "an execution needs `scenario`")
                            .with_hint("name a scenario from `scenarios:` or write one inline"),
                    );
                    continue;
                }
                Some(s) => {
                    let Some(name) = s.get() else { continue };
                    if !names.contains(&name.as_str()) {
                        self.push(
                            Diagnostic::error(s.span, format!("unknown scenario `{name}`"))
                                .with_suggestion(name, names.iter().copied())
                                .with_hint(if names.is_empty() {
                                    "declare it under `scenarios:`".to_owned()
                                } else {
                                    format!("scenarios in this suite: {}", names.join(", "))
                                }),
                        );
                    }
                    name.clone()
                }
            };
            let concurrency = e
                .concurrency
                .as_ref()
                .and_then(|c| c.get().copied())
                .unwrap_or(1);
            if concurrency == 0 {
                self.push(Diagnostic::error(
                    e.concurrency.as_ref().map(|c| c.span),
                    "`concurrency` must be at least 1",
                ));
            }
            let ramp_up = dur(e.ramp_up.as_ref()).unwrap_or_default();
            let hold_for = dur(e.hold_for.as_ref()).unwrap_or_default();
            let steps = e.steps.as_ref().and_then(|s| s.get().copied());
            if let (Some(steps_loc), Some(n)) = (&e.steps, steps)
                && (n == 0 || ramp_up.is_zero())
            {
                self.push(
                    Diagnostic::error(
                        steps_loc.span,
                        "`steps` needs a `ramp-up` and at least 1 step",
                    )
                    .with_hint("stepped ramp-up divides `ramp-up` into `steps` equal stages"),
                );
            }
            let throughput = e.throughput.as_ref().and_then(|t| t.get().copied());
            if let (Some(t), Some(loc)) = (throughput, &e.throughput)
                && t <= 0.0
            {
                self.push(Diagnostic::error(
                    loc.span,
                    "`throughput` must be more than 0 requests per second",
                ));
            }
            let arrival = e.arrival.as_ref().and_then(|a| a.get().copied());
            if let (Some(loc), None) = (&e.arrival, throughput) {
                self.push(
                    Diagnostic::error(
                        loc.span,
                        "`arrival` needs `throughput`, the rate at which requests arrive",
                    )
                    .with_hint("add e.g. `throughput: 100` (requests per second)"),
                );
            }
            let mut iterations = e.iterations.as_ref().and_then(|i| i.get().copied());
            if iterations.is_none() && hold_for.is_zero() && ramp_up.is_zero() {
                // As Taurus: with no duration, run the scenario once per user.
                iterations = Some(1);
            }
            if let Some(criteria) = &e.criteria {
                pending.push(PendingCriteria {
                    criteria,
                    scope: Scope::Execution(out.len()),
                });
            }
            let delay = dur(e.delay.as_ref()).unwrap_or_default();
            if let (Some(sweep), Some(search)) = (&e.sweep, &e.search) {
                self.push(
                    Diagnostic::error(
                        search.span,
                        "an execution has either a `sweep` or a `search`, not both",
                    )
                    .with_hint("a sweep runs listed loads; a search finds the highest load meeting its SLOs; write two executions for both"),
                );
                let _ = sweep;
                continue;
            }
            if let Some(sweep) = &e.sweep {
                out.extend(self.sweep(sweep, index, &scenario, delay, throughput, concurrency));
                continue;
            }
            if let Some(search) = &e.search {
                out.extend(self.search(search, index, &scenario, delay, concurrency));
                continue;
            }
            out.push(Execution {
                scenario,
                concurrency,
                ramp_up,
                steps,
                hold_for,
                iterations,
                throughput,
                arrival,
                warm_up: dur(e.warm_up.as_ref()).unwrap_or_default(),
                delay: dur(e.delay.as_ref()).unwrap_or_default(),
                phase: e
                    .phase
                    .as_ref()
                    .and_then(|p| p.get().copied())
                    .unwrap_or_default(),
                sweep: None,
                search: None,
            });
        }
        out
    }
}

impl Validator<'_> {
    /// A sweep's steps as executions one after another: each `step` long, its load value
    /// from the list, its statistics after `warm-up`.
    fn sweep(
        &mut self,
        loc: &Located<RawSweep>,
        group: usize,
        scenario: &str,
        delay: Duration,
        throughput: Option<f64>,
        concurrency: u32,
    ) -> Vec<Execution> {
        let Some(s) = loc.get() else {
            return Vec::new();
        };
        let (kind, values): (SweepKind, Vec<f64>) = match (&s.concurrency, &s.throughput) {
            (Some(c), None) => (
                SweepKind::Concurrency,
                c.get()
                    .map(|v| v.iter().map(|n| f64::from(*n)).collect())
                    .unwrap_or_default(),
            ),
            (None, Some(t)) => (SweepKind::Throughput, t.get().cloned().unwrap_or_default()),
            _ => {
                self.push(
                    Diagnostic::error(
                        loc.span,
                        "a sweep lists either `concurrency` or `throughput` values",
                    )
                    .with_hint("e.g. sweep: {concurrency: [1, 2, 4, 8], step: 30s, warm-up: 5s}"),
                );
                return Vec::new();
            }
        };
        if values.is_empty() || values.iter().any(|v| !v.is_finite() || *v <= 0.0) {
            self.push(Diagnostic::error(
                loc.span,
                "a sweep needs at least one value, each more than 0",
            ));
            return Vec::new();
        }
        let length = dur(s.step.as_ref()).unwrap_or_default();
        let warm_up = dur(s.warm_up.as_ref()).unwrap_or_default();
        let slo = self.slos(s.slo.as_deref());
        if length.is_zero() || warm_up >= length {
            self.push(
                Diagnostic::error(loc.span, "a sweep needs a `step` longer than its `warm-up`")
                    .with_hint("e.g. step: 30s, warm-up: 5s"),
            );
            return Vec::new();
        }
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| {
                let start = delay + length * u32::try_from(i).unwrap_or(u32::MAX);
                let (users, rate, arrival) = match kind {
                    SweepKind::Concurrency => (value.round() as u32, throughput, None),
                    // The open model: the most in flight is the execution's concurrency,
                    // at least enough for a second of arrivals.
                    SweepKind::Throughput => (
                        concurrency.max(value.ceil() as u32),
                        Some(value),
                        Some(Arrival::Constant),
                    ),
                };
                Execution {
                    scenario: scenario.to_owned(),
                    concurrency: users.max(1),
                    ramp_up: Duration::ZERO,
                    steps: None,
                    hold_for: length,
                    iterations: None,
                    throughput: rate,
                    arrival,
                    // The step's steady window leaves its warm-up out; every sample reaches
                    // the store, so responses completing in the window all count.
                    warm_up: Duration::ZERO,
                    delay: start,
                    phase: Phase::Main,
                    search: None,
                    sweep: Some(SweepStep {
                        group,
                        kind,
                        value,
                        start,
                        warm_up,
                        length,
                        slo: slo.clone(),
                    }),
                }
            })
            .collect()
    }
}

impl Validator<'_> {
    /// Service levels as criteria read them, for all labels: `p99<200ms`, `fail<1%`.
    fn slos(&mut self, list: Option<&[Located<String>]>) -> Vec<Slo> {
        let mut slo = Vec::new();
        for text in list.into_iter().flatten() {
            let Some(t) = text.get() else { continue };
            let parsed = parse_short(t).ok().and_then(|p| {
                let subject = parse_subject(&p.subject.text).ok()?;
                let op = Op::parse(&p.op.text).ok()?;
                let threshold = parse_threshold(&subject, &p.threshold.text).ok()?;
                (p.label.is_none() && p.logic.is_none() && !subject.is_monitoring()).then(|| Slo {
                    text: t.clone(),
                    subject,
                    op,
                    threshold,
                })
            });
            match parsed {
                Some(s) => slo.push(s),
                None => self.push(
                    Diagnostic::error(text.span, format!("`{t}` is not a service level perfgate checks a step against"))
                        .with_hint("a request KPI, an operator and a threshold, for all labels: `p99<200ms`, `avg-rt<100ms`, `fail<1%`, `p95-ttft<500ms`"),
                ),
            }
        }
        slo
    }

    /// A search as one execution whose probes are chosen while it runs; its length here is
    /// the longest it can take (every probe).
    fn search(
        &mut self,
        loc: &Located<RawSearch>,
        group: usize,
        scenario: &str,
        delay: Duration,
        concurrency: u32,
    ) -> Option<Execution> {
        let s = loc.get()?;
        let example = "e.g. search: {slo: [\"p99<200ms\", \"fail<1%\"], throughput: {min: 10, max: 2000}, step: 20s, warm-up: 5s}";
        let (kind, range) = match (&s.throughput, &s.concurrency) {
            (Some(t), None) => (SweepKind::Throughput, t),
            (None, Some(c)) => (SweepKind::Concurrency, c),
            _ => {
                self.push(
                    Diagnostic::error(
                        loc.span,
                        "a search has either a `throughput` or a `concurrency` range",
                    )
                    .with_hint(example),
                );
                return None;
            }
        };
        let r = range.get()?;
        if !(r.min.is_finite() && r.max.is_finite() && r.min > 0.0 && r.max > r.min) {
            self.push(
                Diagnostic::error(range.span, "a search range needs 0 < min < max")
                    .with_hint("e.g. throughput: {min: 10, max: 2000}"),
            );
            return None;
        }
        let slo = self.slos(s.slo.as_deref());
        if slo.is_empty() {
            self.push(
                Diagnostic::error(
                    loc.span,
                    "a search needs `slo`: the service levels whose limit it finds",
                )
                .with_hint(example),
            );
            return None;
        }
        let length = dur(s.step.as_ref()).unwrap_or_default();
        let warm_up = dur(s.warm_up.as_ref()).unwrap_or_default();
        if length.is_zero() || warm_up >= length {
            self.push(
                Diagnostic::error(
                    loc.span,
                    "a search needs a `step` longer than its `warm-up`",
                )
                .with_hint("e.g. step: 20s, warm-up: 5s"),
            );
            return None;
        }
        let precision = match &s.precision {
            None => 0.05,
            Some(p) => {
                let text = p.get()?;
                match crate::suite::units::parse_percent(text)
                    .ok()
                    .or_else(|| text.trim().parse::<f64>().ok().map(|f| f * 100.0))
                {
                    Some(v) if v > 0.0 && v < 100.0 => v / 100.0,
                    _ => {
                        self.push(
                            Diagnostic::error(
                                p.span,
                                format!("`{text}` is not a precision between 0% and 100%"),
                            )
                            .with_hint("e.g. precision: 5%"),
                        );
                        return None;
                    }
                }
            }
        };
        let probes = s
            .probes
            .as_ref()
            .and_then(|p| p.get().copied())
            .unwrap_or(12);
        if probes < 2 {
            self.push(Diagnostic::error(
                s.probes.as_ref().map(|p| p.span),
                "a search needs at least 2 probes",
            ));
            return None;
        }
        let (users, rate, arrival) = match kind {
            SweepKind::Concurrency => (r.min.round().max(1.0) as u32, None, None),
            SweepKind::Throughput => (
                concurrency.max(r.max.ceil() as u32),
                Some(r.min),
                Some(Arrival::Constant),
            ),
        };
        Some(Execution {
            scenario: scenario.to_owned(),
            concurrency: users,
            ramp_up: Duration::ZERO,
            steps: None,
            hold_for: length * probes,
            iterations: None,
            throughput: rate,
            arrival,
            warm_up: Duration::ZERO,
            delay,
            phase: Phase::Main,
            sweep: None,
            search: Some(Search {
                group,
                kind,
                min: r.min,
                max: r.max,
                precision,
                probes,
                warm_up,
                length,
                slo,
                max_in_flight: concurrency.max(r.max.ceil() as u32),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::check;

    const SCENARIO: &str = "scenarios: {s: {requests: ['http://127.0.0.1:9/']}}\n";

    #[test]
    fn closed_and_open_models() {
        let (suite, messages) = check(&format!(
            "execution: [{{scenario: s, concurrency: 4, ramp-up: 2s, steps: 2, hold-for: 5s}}, {{scenario: s, throughput: 50, arrival: poisson, concurrency: 8, hold-for: 5s}}]\n{SCENARIO}"
        ));
        let suite = suite.unwrap_or_else(|| panic!("{messages:?}"));
        assert_eq!(suite.executions.len(), 2);
        assert_eq!(
            suite.executions[0].shape(),
            "4 users, ramp-up 2s in 2 steps, hold-for 5s"
        );
        assert!(
            suite.executions[1]
                .shape()
                .starts_with("50 req/s poisson arrivals")
        );
    }

    #[test]
    fn a_search_and_capacity_criteria_are_checked() {
        let search =
            "search: {slo: ['p99<200ms'], throughput: {min: 10, max: 200}, step: 10s, warm-up: 2s}";
        let (suite, messages) = check(&format!(
            "execution: [{{scenario: s, {search}}}]\nreporting: [{{module: passfail, criteria: ['capacity.slo-limit<100/s', 'capacity.knee<8']}}]\n{SCENARIO}"
        ));
        let suite = suite.unwrap_or_else(|| panic!("{messages:?}"));
        let s = suite.executions[0].search.as_ref().unwrap();
        assert_eq!(
            (s.min, s.max, s.precision, s.probes),
            (10.0, 200.0, 0.05, 12)
        );
        assert_eq!(
            suite.criteria.len(),
            2,
            "no default drop criterion: steps judge drops"
        );
        let errors = |yaml: String| check(&yaml).1;
        let m = errors(format!(
            "execution: [{{scenario: s, concurrency: 2, hold-for: 5s}}]\nreporting: [{{module: passfail, criteria: ['capacity.knee<8']}}]\n{SCENARIO}"
        ));
        assert!(
            m.iter()
                .any(|m| m.contains("no execution of this suite sweeps or searches")),
            "{m:?}"
        );
        let m = errors(format!(
            "execution: [{{scenario: s, {search}}}]\nreporting: [{{module: passfail, criteria: ['capacity.knee<8 for 5s', 'capacity.kne<8']}}]\n{SCENARIO}"
        ));
        assert!(m.iter().any(|m| m.contains("takes no timeframe")), "{m:?}");
        assert!(
            m.iter()
                .any(|m| m.contains("unknown capacity figure `capacity.kne`")),
            "{m:?}"
        );
        for (bad, why) in [
            (
                "search: {throughput: {min: 10, max: 20}, step: 10s}",
                "a search needs `slo`",
            ),
            (
                "search: {slo: ['p99<1s'], throughput: {min: 30, max: 20}, step: 10s}",
                "0 < min < max",
            ),
            (
                "search: {slo: ['p99<1s'], throughput: {min: 1, max: 20}, step: 1s, warm-up: 2s}",
                "longer than its `warm-up`",
            ),
            (
                "search: {slo: ['p99<1s'], throughput: {min: 1, max: 20}, step: 5s, precision: 150%}",
                "precision between",
            ),
            (
                "search: {slo: ['p99<1s'], step: 5s}",
                "either a `throughput` or a `concurrency` range",
            ),
            (
                "search: {slo: ['p99 of x<1s'], throughput: {min: 1, max: 2}, step: 5s}",
                "not a service level",
            ),
        ] {
            let m = errors(format!("execution: [{{scenario: s, {bad}}}]\n{SCENARIO}"));
            assert!(m.iter().any(|m| m.contains(why)), "{bad}: {m:?}");
        }
    }

    #[test]
    fn an_unknown_scenario_and_a_typo_are_errors() {
        let (_, messages) = check(&format!(
            "execution: [{{scenario: t, concurency: 1}}]\n{SCENARIO}"
        ));
        assert!(
            messages
                .iter()
                .any(|m| m.contains("unknown key `concurency`")),
            "{messages:?}"
        );
    }
}
