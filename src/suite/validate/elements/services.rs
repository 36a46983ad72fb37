//! `services`: servers under test, shellexec commands and monitoring sources.

#[allow(unused_imports)]
use super::super::*;
#[allow(unused_imports)]
use super::*;

impl Validator<'_> {
    pub(in crate::suite::validate) fn module_kind(
        &mut self,
        module: &Located<String>,
        allowed: &[(&str, ModuleKind)],
    ) -> Option<ModuleKind> {
        let name = module.get()?;
        if let Some((_, kind)) = allowed.iter().find(|(n, _)| n == name) {
            return Some(*kind);
        }
        if let Some(kind) = self.aliases.get(name) {
            return Some(*kind);
        }
        let candidates: Vec<&str> = allowed
            .iter()
            .map(|(n, _)| *n)
            .chain(self.aliases.keys().map(String::as_str))
            .collect();
        self.push(
            Diagnostic::error(module.span, format!("unknown module `{name}`"))
                .with_suggestion(name, candidates.iter().copied())
                .with_hint(format!("modules here: {}", candidates.join(", "))),
        );
        None
    }

    pub(in crate::suite::validate) fn services<'r>(
        &mut self,
        raw: &'r RawSuite,
        pending: &mut Vec<PendingCriteria<'r>>,
    ) -> (Vec<Service>, Vec<MonitorSource>) {
        let mut services = Vec::new();
        let mut monitoring = Vec::new();
        let allowed = [
            ("server", ModuleKind::Server),
            ("shellexec", ModuleKind::Shellexec),
            ("monitoring", ModuleKind::Monitoring),
            ("passfail", ModuleKind::Passfail),
            ("virtual-display", ModuleKind::Ignored),
        ];
        for item in raw.services.iter().flatten() {
            let Some(s) = item.get() else { continue };
            let Some(kind) = self.module_kind(&s.module, &allowed) else {
                continue;
            };
            let module = s.module.get().cloned().unwrap_or_default();
            self.service_keys(s, kind, &module);
            match kind {
                ModuleKind::Server => {
                    if let Some(server) = self.server(item.span, s, &services) {
                        monitoring.push(self.monitor_source(
                            s.monitoring.as_ref(),
                            server.label.clone(),
                            SourceKind::Server,
                        ));
                        services.push(Service::Server(Box::new(server)));
                    }
                }
                ModuleKind::Shellexec => {
                    let cmds = |v: &mut Self,
                                list: &Option<Vec<Located<RawCommand>>>|
                     -> Vec<ShellCommand> {
                        list.iter()
                            .flatten()
                            .filter_map(|c| v.shell_command(c))
                            .collect()
                    };
                    services.push(Service::Shellexec(ShellExec {
                        prepare: cmds(self, &s.prepare),
                        startup: cmds(self, &s.startup),
                        check: cmds(self, &s.check),
                        shutdown: cmds(self, &s.shutdown),
                        post_process: cmds(self, &s.post_process),
                    }));
                }
                ModuleKind::Monitoring => {
                    for src in s.local.iter().flatten() {
                        monitoring.push(self.monitor_source(
                            Some(src),
                            "local".into(),
                            SourceKind::Local,
                        ));
                    }
                    for src in s.server_local_client.iter().flatten() {
                        monitoring.push(self.monitor_source(
                            Some(src),
                            "ServerLocalClient".into(),
                            SourceKind::ServerLocalClient,
                        ));
                    }
                    for src in s.prometheus.iter().flatten() {
                        let name = src
                            .get()
                            .and_then(|p| p.label.as_ref())
                            .and_then(|l| l.get().cloned())
                            .unwrap_or_else(|| "prometheus".into());
                        monitoring.push(self.monitor_source(
                            Some(src),
                            name,
                            SourceKind::Prometheus,
                        ));
                    }
                    for agent in s.server_agent.iter().flatten() {
                        let Some(a) = agent.get() else { continue };
                        let address = a.address.as_ref().and_then(|l| l.get().cloned());
                        let Some(address) = address else {
                            self.push(
                                Diagnostic::error(
                                    agent.span,
                                    "a `server-agent` source needs `address`",
                                )
                                .with_hint("the agent's host:port, e.g. `address: localhost:4444`"),
                            );
                            continue;
                        };
                        if a.metrics.as_ref().is_none_or(Vec::is_empty) {
                            self.push(
                                Diagnostic::error(agent.span, "a `server-agent` source needs `metrics`")
                                    .with_hint("list what the agent should send, e.g. `metrics: [cpu, memory]`"),
                            );
                            continue;
                        }
                        // As Taurus: the label names the series, else the address.
                        let name = a
                            .label
                            .as_ref()
                            .and_then(|l| l.get().cloned())
                            .unwrap_or_else(|| address.clone());
                        let mut source =
                            self.monitor_source(Some(agent), name, SourceKind::ServerAgent);
                        source.url = Some(address);
                        monitoring.push(source);
                    }
                }
                ModuleKind::Passfail => {
                    if let Some(criteria) = &s.criteria {
                        pending.push(PendingCriteria {
                            criteria,
                            scope: Scope::Suite,
                        });
                    }
                }
                ModuleKind::Ignored => self.push(Diagnostic::warning(
                    s.module.span,
                    format!("module `{module}` is ignored: it has no effect on HTTP load"),
                )),
            }
        }
        let mut seen = BTreeSet::new();
        for source in &monitoring {
            if source.kind != SourceKind::Local
                && source.kind != SourceKind::ServerLocalClient
                && !seen.insert(source.name.clone())
            {
                self.push(
                    Diagnostic::error(
                        None,
                        format!("two monitoring sources are named `{}`", source.name),
                    )
                    .with_hint("give each server and prometheus source its own `label`"),
                );
            }
        }
        (services, monitoring)
    }

    pub(in crate::suite::validate) fn service_keys(
        &mut self,
        s: &RawService,
        kind: ModuleKind,
        module: &str,
    ) {
        let present = [
            ("label", s.label.as_ref().map(|l| l.span)),
            ("command", s.command.as_ref().map(|l| l.span)),
            ("shell", s.shell.as_ref().map(|l| l.span)),
            ("cwd", s.cwd.as_ref().map(|l| l.span)),
            ("pid-file", s.pid_file.as_ref().map(|l| l.span)),
            ("process-match", s.process_match.as_ref().map(|l| l.span)),
            ("workers-match", s.workers_match.as_ref().map(|l| l.span)),
            ("ready", s.ready.as_ref().map(|l| l.span)),
            ("stop", s.stop.as_ref().map(|l| l.span)),
            (
                "startup",
                s.startup.as_ref().and_then(|l| l.first()).map(|l| l.span),
            ),
            (
                "check",
                s.check.as_ref().and_then(|l| l.first()).map(|l| l.span),
            ),
            (
                "shutdown",
                s.shutdown.as_ref().and_then(|l| l.first()).map(|l| l.span),
            ),
            (
                "prepare",
                s.prepare.as_ref().and_then(|l| l.first()).map(|l| l.span),
            ),
            (
                "post-process",
                s.post_process
                    .as_ref()
                    .and_then(|l| l.first())
                    .map(|l| l.span),
            ),
            ("monitoring", s.monitoring.as_ref().map(|l| l.span)),
            (
                "local",
                s.local.as_ref().and_then(|l| l.first()).map(|l| l.span),
            ),
            (
                "ServerLocalClient",
                s.server_local_client
                    .as_ref()
                    .and_then(|l| l.first())
                    .map(|l| l.span),
            ),
            (
                "prometheus",
                s.prometheus
                    .as_ref()
                    .and_then(|l| l.first())
                    .map(|l| l.span),
            ),
            (
                "server-agent",
                s.server_agent
                    .as_ref()
                    .and_then(|l| l.first())
                    .map(|l| l.span),
            ),
            ("criteria", s.criteria.as_ref().map(|l| l.span)),
        ];
        if kind == ModuleKind::Ignored {
            return;
        }
        for (key, span) in present {
            let Some(span) = span else { continue };
            if !kind.keys().contains(&key) {
                self.push(
                    Diagnostic::error(span, format!("`{key}` does not apply to module `{module}`"))
                        .with_hint(format!(
                            "module `{module}` takes: {}",
                            kind.keys().join(", ")
                        )),
                );
            }
        }
    }

    pub(in crate::suite::validate) fn server(
        &mut self,
        span: Span,
        s: &RawService,
        existing: &[Service],
    ) -> Option<Server> {
        let label = s
            .label
            .as_ref()
            .and_then(|l| l.get().cloned())
            .unwrap_or_else(|| "server".into());
        if existing
            .iter()
            .any(|e| matches!(e, Service::Server(o) if o.label == label))
        {
            self.push(
                Diagnostic::error(
                    s.label.as_ref().map_or(span, |l| l.span),
                    format!("two servers are labelled `{label}`"),
                )
                .with_hint(
                    "give each server its own `label`; it names its log and monitoring series",
                ),
            );
        }
        let launch = match (&s.command, &s.shell) {
            (Some(argv), None) => {
                let argv = argv.get()?.clone();
                if argv.is_empty() {
                    self.push(Diagnostic::error(
                        s.command.as_ref().map(|c| c.span),
                        "`command` is empty",
                    ));
                }
                Launch::Argv(argv)
            }
            (None, Some(shell)) => Launch::Shell(shell.get()?.clone()),
            (Some(_), Some(shell)) => {
                self.push(
                    Diagnostic::error(shell.span, "a server has `command` or `shell`, not both")
                        .with_hint("`command` is an argv list; `shell` is one /bin/sh line for daemonising scripts"),
                );
                return None;
            }
            (None, None) => {
                self.push(
                    Diagnostic::error(
                        span,
                        format!("server `{label}` needs `command` (an argv list) or `shell`"),
                    )
                    .with_hint("e.g. command: [\"${PERFGATE}\", demo-server, --port, \"${PORT}\"]"),
                );
                return None;
            }
        };
        let ready = match s.ready.as_ref() {
            None => {
                self.push(
                    Diagnostic::error(s.module.span, format!("server `{label}` has no readiness check"))
                        .with_hint("add `ready: {tcp: \"127.0.0.1:${PORT}\"}` (or `http:` / `log:`) instead of sleeping"),
                );
                return None;
            }
            Some(r) => {
                let r = r.get()?;
                if r.tcp.is_none() && r.http.is_none() && r.log.is_none() {
                    self.push(
                        Diagnostic::error(
                            s.ready.as_ref().map(|l| l.span),
                            "`ready` needs `tcp`, `http` or `log`",
                        )
                        .with_hint(
                            "e.g. ready: {http: \"http://127.0.0.1:${PORT}/v2/health/ready\"}",
                        ),
                    );
                }
                if let Some(tcp) = r.tcp.as_ref()
                    && let Some(text) = tcp.get()
                {
                    let port_ok = text
                        .rsplit_once(':')
                        .is_some_and(|(_, p)| p.parse::<u16>().is_ok() || p.contains("${"));
                    if !port_ok {
                        self.push(
                            Diagnostic::error(tcp.span, format!("`{text}` is not host:port"))
                                .with_hint("e.g. tcp: \"127.0.0.1:${PORT}\""),
                        );
                    }
                }
                if let Some(http) = r.http.as_ref()
                    && let Some(text) = http
                        .get()
                        .filter(|t| !t.starts_with("http://") && !t.starts_with("https://"))
                {
                    self.push(Diagnostic::error(
                        http.span,
                        format!("`{text}` is not an http:// URL"),
                    ));
                }
                let log = r.log.as_ref().and_then(|l| self.regex(l, "`ready.log`"));
                Ready {
                    tcp: r.tcp.as_ref().and_then(|t| t.get().cloned()),
                    http: r.http.as_ref().and_then(|t| t.get().cloned()),
                    status: r
                        .status
                        .as_ref()
                        .and_then(|s| s.get().copied())
                        .unwrap_or(200),
                    log,
                    timeout: dur(r.timeout.as_ref()).unwrap_or(Duration::from_secs(60)),
                    interval: dur(r.interval.as_ref()).unwrap_or(Duration::from_millis(250)),
                    watchdog: dur(r.watchdog.as_ref()).unwrap_or(DEFAULT_WATCHDOG),
                }
            }
        };
        let stop_raw = s.stop.as_ref().and_then(Located::get);
        let signal = match stop_raw.and_then(|s| s.signal.as_ref()) {
            Some(sig) => {
                let text = sig
                    .get()
                    .map(|t| t.to_ascii_uppercase())
                    .unwrap_or_default();
                let full = if text.starts_with("SIG") {
                    text
                } else {
                    format!("SIG{text}")
                };
                self.one_of(sig.span, "signal", &full, SIGNALS);
                full
            }
            None => "SIGTERM".into(),
        };
        let cwd = s
            .cwd
            .as_ref()
            .and_then(|c| self.existing_file(c, "working directory"));
        let commands = |list: &Option<Vec<Located<RawCommand>>>| -> Vec<String> {
            list.iter()
                .flatten()
                .filter_map(|c| c.get())
                .filter_map(|c| c.command.get().cloned())
                .collect()
        };
        Some(Server {
            label,
            launch,
            cwd,
            env: keyed(s.env.as_ref()),
            pid_file: s.pid_file.as_ref().and_then(|p| p.get()).map(PathBuf::from),
            process_match: s
                .process_match
                .as_ref()
                .and_then(|p| self.regex(p, "`process-match`")),
            workers_match: s
                .workers_match
                .as_ref()
                .and_then(|p| self.regex(p, "`workers-match`")),
            ready,
            stop: Stop {
                signal,
                grace: dur(stop_raw.and_then(|s| s.grace.as_ref()))
                    .unwrap_or(Duration::from_secs(10)),
                command: stop_raw
                    .and_then(|s| s.command.as_ref())
                    .and_then(|c| c.get().cloned()),
            },
            prepare: commands(&s.prepare),
            post_process: commands(&s.post_process),
        })
    }

    pub(in crate::suite::validate) fn shell_command(
        &mut self,
        raw: &Located<RawCommand>,
    ) -> Option<ShellCommand> {
        let c = raw.get()?;
        Some(ShellCommand {
            command: c.command.get()?.clone(),
            background: c.background.unwrap_or(false),
            ignore_failure: c.ignore_failure.unwrap_or(false),
            out: c.out.as_ref().and_then(|o| o.get().cloned()),
            err: c.err.as_ref().and_then(|o| o.get().cloned()),
            cwd: c.cwd.as_ref().and_then(|d| d.get()).map(PathBuf::from),
            env: keyed(c.env.as_ref()),
        })
    }

    pub(in crate::suite::validate) fn monitor_source(
        &mut self,
        raw: Option<&Located<RawMonitorSource>>,
        name: String,
        kind: SourceKind,
    ) -> MonitorSource {
        let src = raw.and_then(Located::get);
        let mut metrics = Vec::new();
        let listed = src.and_then(|s| s.metrics.as_ref());
        for m in listed.into_iter().flatten() {
            let Some(metric) = m.get() else { continue };
            if metric == "all" && kind != SourceKind::Prometheus {
                metrics.extend(kind.all().into_iter().map(str::to_owned));
                continue;
            }
            if kind == SourceKind::Prometheus {
                if let Err(why) = parse_selector(metric) {
                    self.push(
                        Diagnostic::error(m.span, format!("invalid Prometheus selector: {why}"))
                            .with_hint("write `metric_name` or `metric_name{label=\"value\"}`"),
                    );
                }
            } else if !kind.provides(metric) {
                let all = kind.all();
                self.push(
                    Diagnostic::error(
                        m.span,
                        format!("`{name}` does not provide the metric `{metric}`"),
                    )
                    .with_suggestion(metric, all.iter().copied())
                    .with_hint(metric_hint(kind)),
                );
                continue;
            }
            if !metrics.contains(metric) {
                metrics.push(metric.clone());
            }
        }
        match (kind.unsupported_on(std::env::consts::OS), listed) {
            (None, None) => metrics = kind.defaults().into_iter().map(str::to_owned).collect(),
            (None, Some(_)) => {}
            // A `server` that lists nothing is simply not monitored here.
            (Some(_), None) => metrics.clear(),
            (Some(why), Some(_)) => {
                self.push(
                    Diagnostic::error(
                        raw.map(|r| r.span),
                        format!("`{name}` cannot be monitored on this platform: {why}"),
                    )
                    .with_hint("run on Linux, or scrape the server's own metrics with a `prometheus` source"),
                );
                metrics.clear();
            }
        }
        let url = src
            .and_then(|s| s.url.as_ref())
            .and_then(|u| u.get().cloned());
        if kind == SourceKind::Prometheus {
            let span = raw.map(|r| r.span);
            if url.is_none() {
                self.push(
                    Diagnostic::error(span, "a prometheus source needs `url`")
                        .with_hint("e.g. url: \"http://127.0.0.1:${PORT}/metrics\""),
                );
            }
            if metrics.is_empty() {
                self.push(
                    Diagnostic::error(
                        span,
                        "a prometheus source needs `metrics`: the series to scrape",
                    )
                    .with_hint("e.g. metrics: [\"http_requests_total{code=\\\"200\\\"}\"]"),
                );
            }
        }
        if kind != SourceKind::Prometheus {
            if let Some(label) = src
                .and_then(|s| s.label.as_ref())
                .filter(|_| kind != SourceKind::ServerAgent)
            {
                self.push(Diagnostic::error(
                    label.span,
                    "`label` only applies to prometheus and server-agent sources",
                ));
            }
            if let Some(a) = src
                .and_then(|s| s.address.as_ref())
                .filter(|_| kind != SourceKind::ServerAgent)
            {
                self.push(Diagnostic::error(
                    a.span,
                    "`address` only applies to server-agent sources",
                ));
            }
            if let Some(u) = src.and_then(|s| s.url.as_ref()) {
                self.push(Diagnostic::error(
                    u.span,
                    "`url` only applies to prometheus sources",
                ));
            }
        }
        MonitorSource {
            name,
            kind,
            interval: dur(src.and_then(|s| s.interval.as_ref())).unwrap_or(Duration::from_secs(1)),
            logging: src.and_then(|s| s.logging).unwrap_or(false),
            metrics,
            url,
        }
    }
}

pub(in crate::suite::validate) fn metric_hint(kind: SourceKind) -> String {
    match kind {
        SourceKind::Local => "`local` provides cpu, mem, disk-space, bytes-recv, bytes-sent, disk-read, disk-write, conn-all".into(),
        SourceKind::Server | SourceKind::ServerLocalClient => {
            "process metrics are frontend_<m>, {sum,avg,min,max}_{workers,all}_<m> for m in cpu_percent, memory_rss, file_descriptors, ...; and total_processes, total_workers, orphans, zombies, system_*".into()
        }
        SourceKind::Prometheus => "list the selectors under the source's `metrics:`".into(),
        SourceKind::ServerAgent => "list the metrics the agent knows under `metrics:`".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, suite_with};
    use crate::suite::model::Service;

    #[test]
    fn a_server_gets_a_small_default_monitoring_set() {
        let (suite, messages) = check(&suite_with(
            "services: [{module: server, label: srv, command: [sleep, '1'], ready: {tcp: '127.0.0.1:9'}}]\n",
        ));
        let suite = suite.unwrap_or_else(|| panic!("{messages:?}"));
        assert!(matches!(suite.services[0], Service::Server(_)));
        assert_eq!(
            suite.monitoring[0].metrics,
            [
                "total_processes",
                "total_workers",
                "sum_all_cpu_percent",
                "max_all_cpu_percent",
                "sum_all_memory_rss"
            ]
        );
    }

    #[test]
    fn unknown_metrics_and_modules_are_errors() {
        let (_, messages) = check(&suite_with(
            "services: [{module: monitoring, local: [{metrics: [cpu, cpus]}]}, {module: nope}]\n",
        ));
        assert!(
            messages
                .iter()
                .any(|m| m.contains("does not provide the metric `cpus`")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("unknown module `nope`")),
            "{messages:?}"
        );
    }
}
