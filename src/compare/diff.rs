//! MMS's comparisons of monitoring series (`diff_percent`, `diff_percent_previous`,
//! `diff_percent_run`), judged after the load as criteria of their own: each is a
//! [`CriterionReport`] with scope `comparison`, so every report shows it and JUnit puts it in
//! a comparison testsuite. MMS's symmetric formula: |a-b| / ((a+b)/2) × 100; a check passes
//! when the difference is at most its limit, so `diff_percent: 0` asks for equal values
//! (MMS ignores a 0; here it is a strict check).

use crate::criteria::eval::Verdict;
use crate::report::model::{CriterionBaseline, CriterionReport, SeriesReport, SuiteReport};
use crate::suite::model::{DiffAgainst, DiffCheck};

pub use crate::report::model::COMPARISON_SCOPE as SCOPE;

/// MMS's percent difference of two values: 0 when equal (both 0 included), infinite when
/// they differ around 0.
pub fn percent_difference(a: f64, b: f64) -> f64 {
    if a == b {
        return 0.0;
    }
    let mean = (a + b) / 2.0;
    if mean == 0.0 {
        return f64::INFINITY;
    }
    ((a - b) / mean).abs() * 100.0
}

/// Judges `checks` on `now`'s monitoring series against `baseline` (its run name and
/// suite). Without one, a baseline check is a notice (a failure with `fail_without_baseline`)
/// saying `missing`.
pub fn checks(
    checks: &[DiffCheck],
    now: &SuiteReport,
    baseline: Option<(String, &SuiteReport)>,
    missing: Option<&str>,
    fail_without_baseline: bool,
) -> Vec<CriterionReport> {
    let mut out = Vec::new();
    for check in checks {
        let series = now.monitoring.iter().find(|s| s.subject == check.subject);
        let metric = check
            .subject
            .rsplit_once('/')
            .map_or(check.subject.as_str(), |(_, m)| m);
        match check.against {
            DiffAgainst::FirstReading => {
                let name = format!("{metric}_diff_run > {}", number(check.limit));
                let values = series.and_then(|s| Some((s.points.first()?.1, s.points.last()?.1)));
                let case = match values {
                    Some((first, last)) if series.is_some_and(|s| s.points.len() >= 2) => {
                        let diff = percent_difference(first, last);
                        judged(
                            check,
                            name,
                            diff,
                            format!(
                                "first reading {} and last {}: {} apart",
                                number(first),
                                number(last),
                                percent(diff)
                            ),
                        )
                    }
                    _ => no_data(check, name, "fewer than 2 readings of the series"),
                };
                out.push(case);
            }
            DiffAgainst::Baseline => {
                let before = baseline.as_ref().map(|(run, suite)| {
                    (
                        run,
                        suite.monitoring.iter().find(|s| s.subject == check.subject),
                    )
                });
                for (agg, of) in [
                    (
                        "mean",
                        (|s: &SeriesReport| s.mean) as fn(&SeriesReport) -> f64,
                    ),
                    ("max", |s| s.max),
                    ("min", |s| s.min),
                ] {
                    let name = format!("{agg}_{metric}: {} < {}", check.key, number(check.limit));
                    let case = match (&before, series) {
                        (None, _) => no_baseline(
                            check,
                            name,
                            missing.unwrap_or("none was given"),
                            fail_without_baseline,
                        ),
                        (Some((run, None)), _) => no_baseline(
                            check,
                            name,
                            &format!("the baseline run {run} has no `{}`", check.subject),
                            fail_without_baseline,
                        ),
                        (_, None) => no_data(check, name, "no readings of the series"),
                        (Some((run, Some(old))), Some(new)) => {
                            let (a, b) = (of(old), of(new));
                            let diff = percent_difference(a, b);
                            let mut case = judged(
                                check,
                                name,
                                diff,
                                format!(
                                    "{agg} {} now, {} in {run}: {} apart",
                                    number(b),
                                    number(a),
                                    percent(diff)
                                ),
                            );
                            case.baseline = Some(CriterionBaseline {
                                relative: format!("{}: {}", check.key, number(check.limit)),
                                run: Some((*run).clone()),
                                value: Some(a),
                                value_text: Some(number(a)),
                                spread: None,
                                interval: None,
                                missing: None,
                            });
                            case
                        }
                    };
                    out.push(case);
                }
            }
        }
    }
    out
}

fn judged(check: &DiffCheck, name: String, diff: f64, what: String) -> CriterionReport {
    let passed = diff <= check.limit;
    let verdict = if passed {
        Verdict::Passed
    } else {
        Verdict::Failed
    };
    let detail = format!(
        "{what}; {} at most {}%{}",
        check.key,
        number(check.limit),
        if passed { "" } else { ": over" }
    );
    CriterionReport {
        observed: diff.is_finite().then_some(diff),
        observed_text: percent(diff),
        ..case(check, name, verdict, detail)
    }
}

fn no_data(check: &DiffCheck, name: String, why: &str) -> CriterionReport {
    case(check, name, Verdict::NoData, format!("no data: {why}"))
}

fn no_baseline(check: &DiffCheck, name: String, why: &str, fail: bool) -> CriterionReport {
    let verdict = if fail {
        Verdict::Failed
    } else {
        Verdict::Notice
    };
    let mut c = case(
        check,
        name,
        verdict,
        format!(
            "no baseline: {why}: {}",
            if fail {
                "fails (on-missing-baseline: fail)"
            } else {
                "a notice (on-missing-baseline: notice)"
            }
        ),
    );
    c.observed_text = "no baseline".to_owned();
    c.baseline = Some(CriterionBaseline {
        relative: format!("{}: {}", check.key, number(check.limit)),
        run: None,
        value: None,
        value_text: None,
        spread: None,
        interval: None,
        missing: Some(why.to_owned()),
    });
    c
}

fn case(check: &DiffCheck, name: String, verdict: Verdict, detail: String) -> CriterionReport {
    CriterionReport {
        name,
        message: None,
        scope: SCOPE.to_owned(),
        subject: check.subject.clone(),
        verdict,
        observed: None,
        observed_text: "no data".to_owned(),
        condition: "<=".to_owned(),
        threshold: format!("{}%", number(check.limit)),
        logic: match check.against {
            DiffAgainst::Baseline => "vs baseline".to_owned(),
            DiffAgainst::FirstReading => "first vs last reading".to_owned(),
        },
        window: None,
        stop: false,
        fail: true,
        stopped_load: false,
        detail,
        baseline: None,
    }
}

fn number(v: f64) -> String {
    let rounded = (v * 1000.0).round() / 1000.0;
    format!("{rounded}")
}

fn percent(diff: f64) -> String {
    if diff.is_finite() {
        format!("{}%", number(diff))
    } else {
        "∞%".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(subject: &str, values: &[f64]) -> SeriesReport {
        SeriesReport {
            subject: subject.to_owned(),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            mean: values.iter().sum::<f64>() / values.len() as f64,
            last: *values.last().unwrap_or(&0.0),
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| (i as u64, *v))
                .collect(),
        }
    }

    fn suite(values: &[f64]) -> SuiteReport {
        let mut s = SuiteReport::invalid("s".into(), "s.yaml".into(), String::new(), String::new());
        s.monitoring = vec![series("srv/rss", values)];
        s
    }

    fn check(against: DiffAgainst, limit: f64) -> DiffCheck {
        DiffCheck {
            subject: "srv/rss".to_owned(),
            against,
            limit,
            key: match against {
                DiffAgainst::Baseline => "diff_percent",
                DiffAgainst::FirstReading => "diff_percent_run",
            },
        }
    }

    fn verdicts(c: &DiffCheck, now: &[f64], before: Option<&[f64]>) -> Vec<(String, Verdict)> {
        let old = before.map(suite);
        let baseline = old.as_ref().map(|s| ("night1".to_owned(), s));
        checks(
            std::slice::from_ref(c),
            &suite(now),
            baseline,
            Some("first night"),
            false,
        )
        .into_iter()
        .map(|r| (r.name, r.verdict))
        .collect()
    }

    #[test]
    fn the_symmetric_formula() {
        assert_eq!(percent_difference(100.0, 100.0), 0.0);
        assert_eq!(percent_difference(0.0, 0.0), 0.0);
        assert!((percent_difference(100.0, 130.0) - 26.086_956).abs() < 1e-5);
        assert_eq!(
            percent_difference(100.0, 130.0),
            percent_difference(130.0, 100.0)
        );
        assert!(percent_difference(-1.0, 1.0).is_infinite());
    }

    #[test]
    fn mean_max_and_min_against_the_baseline_as_mms_names_them() {
        let c = check(DiffAgainst::Baseline, 30.0);
        let v = verdicts(&c, &[100.0, 110.0, 120.0], Some(&[100.0, 105.0, 110.0]));
        assert_eq!(
            v,
            [
                ("mean_rss: diff_percent < 30".to_owned(), Verdict::Passed),
                ("max_rss: diff_percent < 30".to_owned(), Verdict::Passed),
                ("min_rss: diff_percent < 30".to_owned(), Verdict::Passed),
            ]
        );
        // Max 200 against 110: 58% apart.
        let v = verdicts(&c, &[100.0, 110.0, 200.0], Some(&[100.0, 105.0, 110.0]));
        assert_eq!(v[1].1, Verdict::Failed);
        assert_eq!(v[2].1, Verdict::Passed);
    }

    /// `diff_percent: 0` is strict: equal values pass (0 and 0 included), any change fails.
    #[test]
    fn zero_means_equal() {
        let c = check(DiffAgainst::Baseline, 0.0);
        let all = |v: &[(String, Verdict)], want: Verdict| v.iter().all(|(_, x)| *x == want);
        assert!(all(
            &verdicts(&c, &[4.0, 4.0], Some(&[4.0, 4.0])),
            Verdict::Passed
        ));
        assert!(all(
            &verdicts(&c, &[0.0, 0.0], Some(&[0.0, 0.0])),
            Verdict::Passed
        ));
        let v = verdicts(&c, &[4.0, 5.0], Some(&[4.0, 4.0]));
        assert_eq!(v[1].1, Verdict::Failed, "{v:?}");
        assert_eq!(v[2].1, Verdict::Passed, "{v:?}");
    }

    #[test]
    fn first_against_last_reading_and_no_baseline() {
        let c = check(DiffAgainst::FirstReading, 10.0);
        let v = verdicts(&c, &[100.0, 150.0, 105.0], None);
        assert_eq!(v, [("rss_diff_run > 10".to_owned(), Verdict::Passed)]);
        assert_eq!(verdicts(&c, &[100.0, 120.0], None)[0].1, Verdict::Failed);
        assert_eq!(verdicts(&c, &[100.0], None)[0].1, Verdict::NoData);
        let b = check(DiffAgainst::Baseline, 30.0);
        let v = verdicts(&b, &[100.0], None);
        assert!(v.iter().all(|(_, x)| *x == Verdict::Notice), "{v:?}");
    }
}
