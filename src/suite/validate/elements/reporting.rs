//! `reporting`: reporter modules and the paths of the files they write.

#[allow(unused_imports)]
use super::super::*;
#[allow(unused_imports)]
use super::*;

impl Validator<'_> {
    pub(in crate::suite::validate) fn reporters<'r>(
        &mut self,
        raw: &'r RawSuite,
        pending: &mut Vec<PendingCriteria<'r>>,
    ) -> Vec<Reporter> {
        let allowed = [
            ("passfail", ModuleKind::Passfail),
            ("junit-xml", ModuleKind::Ignored),
            ("final-stats", ModuleKind::Ignored),
            ("html", ModuleKind::Ignored),
            ("console", ModuleKind::Ignored),
            ("blazemeter", ModuleKind::Ignored),
        ];
        let mut out = Vec::new();
        for item in raw.reporting.iter().flatten() {
            let Some(r) = item.get() else { continue };
            let Some(kind) = self.module_kind(&r.module, &allowed) else {
                continue;
            };
            let name = r.module.get().map(String::as_str).unwrap_or_default();
            let reporter = match (kind, name) {
                (ModuleKind::Passfail, _) => {
                    if let Some(criteria) = &r.criteria {
                        pending.push(PendingCriteria {
                            criteria,
                            scope: Scope::Suite,
                        });
                    }
                    Reporter::Passfail
                }
                (_, "junit-xml") => Reporter::JunitXml {
                    filename: self.report_path(r.filename.as_ref()),
                    // Taurus's default: a testcase per sample label.
                    data_source: r
                        .data_source
                        .as_ref()
                        .and_then(|d| d.get().copied())
                        .unwrap_or(JunitDataSource::SampleLabels),
                },
                (_, "final-stats") => Reporter::FinalStats {
                    dump_csv: self.report_path(r.dump_csv.as_ref()),
                    dump_xml: self.report_path(r.dump_xml.as_ref()),
                    summary: r.summary.unwrap_or(true),
                    percentiles: r.percentiles.unwrap_or(true),
                    summary_labels: r.summary_labels.unwrap_or(false),
                    failed_labels: r.failed_labels.unwrap_or(false),
                    test_duration: r.test_duration.unwrap_or(true),
                },
                (_, "html") => Reporter::Html {
                    filename: r.filename.as_ref().and_then(|f| f.get().cloned()),
                },
                (_, "console") => Reporter::Console,
                _ => {
                    self.push(Diagnostic::warning(
                        r.module.span,
                        format!(
                            "reporter `{name}` is ignored: perfgate writes its reports locally"
                        ),
                    ));
                    continue;
                }
            };
            out.push(reporter);
        }
        out
    }

    /// A report file's path: relative to the suite's artifacts directory and inside it.
    pub(in crate::suite::validate) fn report_path(
        &mut self,
        path: Option<&Located<String>>,
    ) -> Option<String> {
        let path = path?;
        let text = path.get()?;
        let escapes = std::path::Path::new(text).components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
        if escapes || text.trim().is_empty() {
            self.push(
                Diagnostic::error(
                    path.span,
                    format!("report path `{text}` leaves the suite's artifacts directory"),
                )
                .with_hint("report files are written under <artifacts>/<suite>/: give a relative path without `..`, e.g. `final_stats.csv`"),
            );
            return None;
        }
        Some(text.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, suite_with};
    use crate::suite::model::{JunitDataSource, Reporter};

    #[test]
    fn junit_defaults_to_sample_labels_as_taurus() {
        let (suite, messages) = check(&suite_with(
            "reporting: [junit-xml, {module: junit-xml, data-source: pass-fail, filename: pf.xml}]\n",
        ));
        let suite = suite.unwrap_or_else(|| panic!("{messages:?}"));
        let sources: Vec<_> = suite
            .reporters
            .iter()
            .filter_map(|r| match r {
                Reporter::JunitXml {
                    data_source,
                    filename,
                } => Some((*data_source, filename.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            sources,
            [
                (JunitDataSource::SampleLabels, None),
                (JunitDataSource::PassFail, Some("pf.xml".to_owned()))
            ]
        );
    }

    #[test]
    fn report_paths_stay_in_the_artifacts_directory() {
        for path in ["../x.csv", "/tmp/x.csv", "a/../../x.csv"] {
            let (suite, messages) = check(&suite_with(&format!(
                "reporting: [{{module: final-stats, dump-csv: '{path}'}}]\n"
            )));
            assert!(suite.is_none(), "{path}");
            assert!(
                messages
                    .iter()
                    .any(|m| m.contains("leaves the suite's artifacts directory")),
                "{messages:?}"
            );
        }
        let (suite, _) = check(&suite_with(
            "reporting: [{module: final-stats, dump-csv: ./stats/final.csv}]\n",
        ));
        assert!(suite.is_some());
    }
}
