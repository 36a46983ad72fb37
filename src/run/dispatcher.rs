//! The dispatcher: the state of one suite's load, changed only by the events it consumes.
//!
//! Everything that happens during a load arrives as one [`Event`]: the engine's requests
//! starting and finishing, monitoring readings, the one-second tick, and the outside reasons
//! to stop (a server exited or hung, a shellexec check failed, a signal). The dispatcher
//! files measurements in the [`Store`], judges the criteria, and answers each event with
//! whether the load must end. It reads no clock and spawns nothing: the suite runner
//! (`run::drive`) turns tasks, channels and time into events, and tests drive it with
//! events alone.
//!
//! A second is judged only once every request due in it has finished (a watermark, as
//! Taurus's consolidator buffers late samples): the oldest request still in flight holds
//! the judgement back, up to its timeout. A `stop` criterion acts sooner when its breach is
//! already certain, counting each request in flight at its age so far. At the end, requests
//! still in flight are counted as `unfinished` at their age, and the last, partial second
//! of the load is not judged as a full one.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::criteria::eval::{Judge, Judged};
use crate::load::LoadEvent;
use crate::metrics::{Outcome, Retention, Sample, Store};
use crate::monitor::Reading;
use crate::plan::SuitePlan;
use crate::report::files::MetricsLog;

use super::CancelReason;
use super::search::ProbeAsk;
use crate::report::capacity;
use crate::suite::model::{Search, SweepStep};

/// What happens during a load, in the order the dispatcher sees it.
#[derive(Debug)]
pub(crate) enum Event {
    Load(LoadEvent),
    Reading(Reading),
    /// A second has passed: `now` from the start of the run, `in_flight` requests (or busy
    /// virtual users) at that moment.
    Tick {
        now: Duration,
        in_flight: u64,
        /// perfgate's own CPU time so far (user and system), when known.
        cpu: Option<Duration>,
    },
    /// A reason from outside the load to end it (a server, a check, a signal).
    Stop(CancelReason),
    /// A search's probe has run: which SLOs did its steady window miss?
    Probe(ProbeAsk),
}

/// A request in flight: its label and when it was due.
#[derive(Clone, Debug)]
struct Pending {
    label: std::sync::Arc<str>,
    due: Duration,
    execution: usize,
}

/// The state of one suite's load.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    pub(crate) store: Store,
    pub(crate) judge: Judge,
    pub(crate) logged: MetricsLog,
    /// Requests started and not yet finished, by id.
    pending: HashMap<u64, Pending>,
    /// How many of them are due in each second: the first key is the watermark.
    pending_by_second: BTreeMap<u64, u64>,
    /// Executions that have not finished.
    running: usize,
    /// Responses received: the readiness watchdogs' evidence that a slow server is alive.
    answers: u64,
    /// The servers perfgate manages, by label.
    servers: Vec<String>,
    /// Refused connections since the last response.
    refused: u64,
    /// When the executions that finished ended their load, the latest.
    ended: Option<Duration>,
    /// The capacity steps run so far: a sweep's (planned), a search's probes (as asked).
    steps: Vec<SweepStep>,
    /// The suite's capacity search, if it has one.
    search: Option<Search>,
    /// Probes waiting for their steady window to be judged.
    probes: Vec<ProbeAsk>,
    /// perfgate's own CPU, percent of one core, per second of the run.
    client_cpu: BTreeMap<u64, f64>,
    /// The last tick's time and CPU time.
    last_cpu: Option<(Duration, Duration)>,
    /// Requests cut when their execution's load (or a search's probe) ended.
    cut_earlier: usize,
}

/// Refused connections in a row, with no response between them, after which a managed
/// server counts as down: nothing listens on its port (an overloaded server queues or
/// times out; it does not refuse).
const REFUSED_IN_A_ROW: u64 = 100;

impl Dispatcher {
    pub(crate) fn new(plan: &SuitePlan) -> Self {
        let mut d = Self::with(
            Judge::new(&plan.suite.criteria, |c| scope_labels(plan, c)),
            MetricsLog::new(&plan.suite.monitoring),
            plan.executions.len(),
        );
        d.steps = capacity::planned_steps(&plan.suite);
        d.search = plan.executions.iter().find_map(|e| e.search.clone());
        d
    }

    /// A dispatcher of `executions` judged by `judge`.
    fn with(judge: Judge, logged: MetricsLog, executions: usize) -> Self {
        // Criteria look back at most their longest timeframe: that much history stays per
        // second whatever the run's length; older history may be merged to bound memory.
        let keep = judge
            .criteria()
            .iter()
            .filter_map(|c| c.window.map(|w| w.timeframe.as_secs_f64().ceil() as u64))
            .max()
            .unwrap_or(0)
            + 2;
        Self {
            store: Store::with_retention(Retention::keeping(keep)),
            judge,
            logged,
            pending: HashMap::new(),
            pending_by_second: BTreeMap::new(),
            running: executions,
            answers: 0,
            servers: Vec::new(),
            refused: 0,
            ended: None,
            steps: Vec::new(),
            search: None,
            probes: Vec::new(),
            client_cpu: BTreeMap::new(),
            last_cpu: None,
            cut_earlier: 0,
        }
    }

    /// The labels of the servers under test: refused connections end the load when one of
    /// them stops listening, before its process has exited.
    pub(crate) fn watch_servers(&mut self, labels: Vec<String>) {
        self.servers = labels;
    }

    /// Executions still running.
    pub(crate) fn running(&self) -> usize {
        self.running
    }

    /// Responses received so far.
    pub(crate) fn answers(&self) -> u64 {
        self.answers
    }

    /// Files `event`; `Some` when the load must end, and why.
    pub(crate) fn handle(&mut self, event: Event) -> Option<CancelReason> {
        match event {
            Event::Load(event) => self.load(event),
            Event::Reading(reading) => {
                for (metric, value) in &reading.values {
                    let subject = format!("{}/{metric}", reading.source);
                    self.store.record_metric(reading.second, &subject, *value);
                }
                for (metric, buckets) in &reading.buckets {
                    let subject = format!("{}/{metric}", reading.source);
                    self.store.record_buckets(reading.second, &subject, buckets);
                }
                self.logged.add(&reading);
                None
            }
            Event::Tick {
                now,
                in_flight,
                cpu,
            } => {
                self.client_cpu(now, cpu);
                self.tick(now, in_flight)
            }
            Event::Stop(reason) => Some(reason),
            Event::Probe(ask) => {
                self.steps.push(ask.step.clone());
                self.probes.push(ask);
                None
            }
        }
    }

    fn load(&mut self, event: LoadEvent) -> Option<CancelReason> {
        match event {
            LoadEvent::Started {
                id,
                execution,
                label,
                due,
            } => {
                *self.pending_by_second.entry(due.as_secs()).or_default() += 1;
                self.pending.insert(
                    id,
                    Pending {
                        label,
                        due,
                        execution,
                    },
                );
            }
            LoadEvent::Cut { execution, at } => {
                let cut: Vec<u64> = self
                    .pending
                    .iter()
                    .filter(|(_, p)| p.execution == execution)
                    .map(|(id, _)| *id)
                    .collect();
                for id in cut {
                    if let Some(p) = self.pending.get(&id) {
                        let sample = unfinished(p, at);
                        self.settle(id);
                        self.store.record(&sample);
                        self.cut_earlier += 1;
                    }
                }
            }
            LoadEvent::Sample { id, sample } => {
                self.settle(id);
                match &sample.outcome {
                    Outcome::Response { .. } => {
                        self.answers += 1;
                        self.refused = 0;
                    }
                    Outcome::Error { message, .. } if message.contains("Connection refused") => {
                        self.refused += 1;
                    }
                    _ => {}
                }
                self.store.record(&sample);
                if self.refused >= REFUSED_IN_A_ROW && !self.servers.is_empty() {
                    return Some(CancelReason::ServerFailed {
                        label: self.servers.join(", "),
                        what: format!(
                            "stopped listening during the load ({} connections refused in a row)",
                            self.refused
                        ),
                        log_tail: String::new(),
                    });
                }
            }
            LoadEvent::Settled { id } => self.settle(id),
            LoadEvent::Dropped { second, label } => self.store.record_dropped(second, &label, 1),
            LoadEvent::Finished {
                index,
                error,
                ended,
            } => {
                self.running = self.running.saturating_sub(1);
                self.ended = Some(self.ended.map_or(ended, |e| e.max(ended)));
                if let Some(e) = error {
                    let what = format!("execution {} could not run: {e}", index + 1);
                    return Some(CancelReason::EngineFailed(what));
                }
                if self.running == 0 {
                    return Some(CancelReason::Completed);
                }
            }
        }
        None
    }

    fn settle(&mut self, id: u64) {
        let Some(p) = self.pending.remove(&id) else {
            return;
        };
        let second = p.due.as_secs();
        if let Some(n) = self.pending_by_second.get_mut(&second) {
            *n -= 1;
            if *n == 0 {
                self.pending_by_second.remove(&second);
            }
        }
    }

    /// Seconds before this one may be judged at `now`: every request due in them has
    /// finished, and a second more has passed for requests that were due in them to have
    /// been sent (a late scheduler, a busy machine).
    pub(crate) fn watermark(&self, now: Duration) -> u64 {
        let settled = now.as_secs().saturating_sub(1);
        match self.pending_by_second.first_key_value() {
            Some((&oldest, _)) => oldest.min(settled),
            None => settled,
        }
    }

    fn tick(&mut self, now: Duration, in_flight: u64) -> Option<CancelReason> {
        let second = now.as_secs();
        self.store
            .record_concurrency(second.saturating_sub(1), "", in_flight);
        let watermark = self.watermark(now);
        self.store.close_before(watermark);
        self.answer_probes(watermark);
        if let Some(&i) = self.judge.closed(&self.store, watermark).first() {
            return Some(CancelReason::CriterionStop(
                self.judge.criteria()[i].name.clone(),
            ));
        }
        // Seconds past the watermark: a stop criterion acts as soon as its breach is certain.
        let settled = second.saturating_sub(1);
        if watermark < settled && self.judge.criteria().iter().any(|c| c.stop) {
            let provisional = self.provisional(now, settled);
            self.store.set_overlay(&provisional);
            let stops = self.judge.certain_stops(&self.store, settled);
            self.store.clear_overlay();
            if let Some(&i) = stops.first() {
                return Some(CancelReason::CriterionStop(
                    self.judge.criteria()[i].name.clone(),
                ));
            }
        }
        None
    }

    /// Files perfgate's own CPU over the second before `now`.
    fn client_cpu(&mut self, now: Duration, cpu: Option<Duration>) {
        let Some(cpu) = cpu else { return };
        if let Some((then, used)) = self.last_cpu
            && now > then
        {
            let percent = cpu.saturating_sub(used).as_secs_f64() / (now - then).as_secs_f64();
            self.client_cpu
                .insert(now.as_secs().saturating_sub(1), percent * 100.0);
        }
        self.last_cpu = Some((now, cpu));
    }

    /// Tells each probe whose steady window is before `watermark` the SLOs it missed.
    fn answer_probes(&mut self, watermark: u64) {
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.probes)
            .into_iter()
            .partition(|ask| ask.step.window().1 <= watermark);
        self.probes = waiting;
        for ask in ready {
            let (from, to) = ask.step.window();
            let missed = capacity::missed(&ask.step.slo, &self.store.window("", from, to));
            let _ = ask.reply.send(missed);
        }
    }

    /// The capacity the steps run so far measured: a sweep's or a search's.
    pub(crate) fn capacity(&self) -> Option<capacity::Capacity> {
        capacity::analyse(
            &self.steps,
            self.search.as_ref(),
            &self.store,
            &self.client_cpu,
        )
    }

    /// The requests in flight due before second `upto`, as unfinished samples of their age
    /// at `now`.
    fn provisional(&self, now: Duration, upto: u64) -> Vec<Sample> {
        self.pending
            .values()
            .filter(|p| p.due.as_secs() < upto)
            .map(|p| unfinished(p, now))
            .collect()
    }

    /// The load is over at `now`. The measured time ends then, or when the executions said
    /// their load ended if all did (the end of `hold-for`, not the grace after it).
    pub(crate) fn end_load(&mut self, now: Duration) {
        let end = match self.ended {
            Some(ended) if self.running == 0 => ended.min(now),
            _ => now,
        };
        self.store.set_end(end);
    }

    /// What is still in flight at `now` will not finish: each request is counted as
    /// unfinished, its age as a lower bound of its latency. Returns how many requests were
    /// cut in all (with those cut when their execution's load ended).
    pub(crate) fn cut(&mut self, now: Duration) -> usize {
        let cut: Vec<Sample> = self.pending.values().map(|p| unfinished(p, now)).collect();
        for sample in &cut {
            self.store.record(sample);
        }
        self.pending.clear();
        self.pending_by_second.clear();
        cut.len() + self.cut_earlier
    }

    /// The verdicts: every second of the load judged, but the last, partial one (unless it
    /// is the only one), then the criteria without a timeframe on cumulative values.
    pub(crate) fn finish(&mut self) -> Vec<Judged> {
        let seconds = self.store.seconds();
        let full = match self.store.end() {
            Some(end) if end.subsec_nanos() > 0 && end.as_secs() >= 1 => end.as_secs().min(seconds),
            _ => seconds,
        };
        if let Some(capacity) = self.capacity() {
            self.judge.set_capacity(capacity.figures());
        }
        self.judge.finish(&self.store, full)
    }
}

fn unfinished(p: &Pending, now: Duration) -> Sample {
    let second = p.due.as_secs();
    Sample {
        label: p.label.clone(),
        second,
        rt: now.saturating_sub(p.due),
        lt: Duration::ZERO,
        ct: None,
        bytes: 0,
        outcome: Outcome::Unfinished,
        concurrency: 0,
        completed: now.as_secs(),
        extra: None,
    }
}

/// The labels a scoped criterion without a label stands for: its scenario's requests.
fn scope_labels(plan: &SuitePlan, c: &crate::suite::model::Criterion) -> Option<Vec<String>> {
    use crate::suite::model::{Check, Scope};
    if let Check::Threshold { label, .. } = &c.check
        && !label.is_empty()
    {
        return None;
    }
    let scenario = match &c.scope {
        Scope::Suite => return None,
        Scope::Execution(i) => plan.suite.executions.get(*i)?.scenario.clone(),
        Scope::Scenario(name) => name.clone(),
    };
    let mut labels = Vec::new();
    let mut seen = Vec::new();
    collect_labels(&plan.suite.scenarios, &scenario, &mut labels, &mut seen);
    // Only when the scenario is not the whole suite's load does the scope narrow anything.
    let everything = plan.suite.executions.iter().all(|e| e.scenario == scenario);
    (!everything).then_some(labels)
}

fn collect_labels(
    scenarios: &[crate::suite::model::Scenario],
    name: &str,
    labels: &mut Vec<String>,
    seen: &mut Vec<String>,
) {
    use crate::suite::model::Step;
    if seen.iter().any(|s| s == name) {
        return;
    }
    seen.push(name.to_owned());
    fn walk(
        steps: &[Step],
        scenarios: &[crate::suite::model::Scenario],
        labels: &mut Vec<String>,
        seen: &mut Vec<String>,
    ) {
        for step in steps {
            match step {
                Step::Request(r) => {
                    if !labels.iter().any(|l| **l == *r.label) {
                        labels.push(r.label.to_string());
                    }
                }
                Step::IncludeScenario { scenario } => {
                    collect_labels(scenarios, scenario, labels, seen)
                }
                Step::Transaction { name, steps } => {
                    if !labels.contains(name) {
                        labels.push(name.clone());
                    }
                    walk(steps, scenarios, labels, seen);
                }
                Step::Loop { steps, .. } => walk(steps, scenarios, labels, seen),
                Step::If {
                    then, otherwise, ..
                } => {
                    walk(then, scenarios, labels, seen);
                    walk(otherwise, scenarios, labels, seen);
                }
                Step::SetVariables { .. } => {}
            }
        }
    }
    if let Some(s) = scenarios.iter().find(|s| s.name == name) {
        walk(&s.steps, scenarios, labels, seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::criteria::eval::Verdict;
    use crate::criteria::eval::tests::crit;

    fn dispatcher(criteria: &[&str]) -> Dispatcher {
        let criteria: Vec<_> = criteria.iter().map(|c| crit(c)).collect();
        Dispatcher::with(Judge::new(&criteria, |_| None), MetricsLog::new(&[]), 1)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Request `id` of label `x`, due at `due` ms, answered `rt` ms later.
    fn request(d: &mut Dispatcher, id: u64, due: u64, rt: Option<u64>) {
        let label = "x".to_owned();
        d.handle(Event::Load(LoadEvent::Started {
            id,
            execution: 0,
            label: label.as_str().into(),
            due: ms(due),
        }));
        if let Some(rt) = rt {
            answer(d, id, due, rt);
        }
    }

    fn answer(d: &mut Dispatcher, id: u64, due: u64, rt: u64) {
        let sample = Sample {
            label: "x".into(),
            second: due / 1000,
            rt: ms(rt),
            lt: ms(rt),
            ct: None,
            bytes: 1,
            outcome: Outcome::Response {
                status: 200,
                success: true,
                message: None,
            },
            concurrency: 1,
            completed: (due + rt) / 1000,
            extra: None,
        };
        d.handle(Event::Load(LoadEvent::Sample { id, sample }));
    }

    fn tick(d: &mut Dispatcher, at: u64) -> Option<CancelReason> {
        d.handle(Event::Tick {
            now: ms(at),
            in_flight: 0,
            cpu: None,
        })
    }

    /// Ten fast requests in each of seconds `from..to`, ids from `from * 100`.
    fn fast(d: &mut Dispatcher, from: u64, to: u64) {
        for s in from..to {
            for i in 0..10 {
                request(d, s * 100 + i, s * 1000 + i * 100, Some(5));
            }
        }
    }

    #[test]
    fn a_second_is_judged_once_its_slow_requests_have_landed() {
        let mut d = dispatcher(&["p99>1s for 2s, continue as failed"]);
        fast(&mut d, 0, 2);
        // Seconds 2 and 3: one request each that will take 3 s.
        request(&mut d, 900, 2_000, None);
        request(&mut d, 901, 3_000, None);
        fast(&mut d, 2, 8);
        for at in 1..=5 {
            assert_eq!(tick(&mut d, at * 1000 + 1), None);
            // Seconds from 2 on wait for the request due in second 2.
            assert!(
                d.judge.judged() <= 2,
                "judged {} at {at}s",
                d.judge.judged()
            );
        }
        answer(&mut d, 900, 2_000, 3_000);
        answer(&mut d, 901, 3_000, 3_000);
        tick(&mut d, 7_001);
        assert_eq!(d.judge.judged(), 6);
        d.end_load(ms(8_000));
        let j = d.finish().remove(0);
        assert_eq!(j.verdict, Verdict::Failed);
        let t = j.trigger.unwrap();
        assert_eq!((t.from, t.to), (2, 4));
    }

    #[test]
    fn a_cut_load_settles_what_it_had_in_flight_and_a_probe_waits_for_its_window() {
        use crate::criteria::grammar::{Op, Subject, Threshold, parse_subject};
        use crate::suite::model::{Slo, SweepKind};
        let mut d = dispatcher(&[]);
        fast(&mut d, 0, 3);
        // A request of second 2 that will never answer: its load is cut at 3.5 s.
        request(&mut d, 900, 2_500, None);
        let subject: Subject = parse_subject("p99").unwrap();
        let step = SweepStep {
            group: 0,
            kind: SweepKind::Throughput,
            value: 10.0,
            start: Duration::ZERO,
            warm_up: Duration::from_secs(1),
            length: Duration::from_secs(3),
            slo: vec![Slo {
                text: "p99<500ms".to_owned(),
                subject,
                op: Op::Lt,
                threshold: Threshold::Duration(ms(500)),
            }],
        };
        assert_eq!(step.window(), (1, 3));
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        d.handle(Event::Probe(ProbeAsk { step, reply }));
        tick(&mut d, 4_001);
        assert!(
            answer.try_recv().is_err(),
            "second 2 still has a request in flight"
        );
        d.handle(Event::Load(LoadEvent::Cut {
            execution: 0,
            at: ms(3_500),
        }));
        tick(&mut d, 5_001);
        let missed = answer.try_recv().unwrap();
        assert_eq!(missed, ["p99<500ms (1s)"], "cut at its age: 1 s");
        assert_eq!(d.store.window("", 0, 4).unfinished(), 1);
        assert!(d.pending.is_empty());
        // The probe is a step of the capacity read at the end.
        assert_eq!(d.capacity().unwrap().steps.len(), 1);
    }

    /// perfgate's own CPU per second comes from the CPU time each tick carries.
    #[test]
    fn the_ticks_give_perfgates_own_cpu_per_second() {
        let mut d = dispatcher(&[]);
        for (at, cpu) in [(1_000, 100), (2_000, 600), (3_000, 1_600)] {
            d.handle(Event::Tick {
                now: ms(at),
                in_flight: 0,
                cpu: Some(ms(cpu)),
            });
        }
        let percent: Vec<(u64, f64)> = d.client_cpu.iter().map(|(s, p)| (*s, p.round())).collect();
        assert_eq!(
            percent,
            [(1, 50.0), (2, 100.0)],
            "half a core, then a whole one"
        );
    }

    #[test]
    fn the_partial_last_second_is_not_judged() {
        let mut d = dispatcher(&["avg-rt>100ms for 1s, continue as failed"]);
        fast(&mut d, 0, 3);
        // Second 3 lasted 200 ms: one slow request in it.
        request(&mut d, 999, 3_050, Some(500));
        d.end_load(ms(3_200));
        let j = d.finish().remove(0);
        assert_eq!(j.verdict, Verdict::Passed, "{j:?}");
        // A load that ends on a whole second judges every second.
        let mut d = dispatcher(&["avg-rt>100ms for 1s, continue as failed"]);
        fast(&mut d, 0, 3);
        request(&mut d, 999, 2_050, Some(2_000));
        d.end_load(ms(3_000));
        assert_eq!(d.finish().remove(0).verdict, Verdict::Failed);
    }

    #[test]
    fn a_stop_criterion_acts_once_its_breach_is_certain() {
        let mut d = dispatcher(&["p99>1s for 2s, stop as failed"]);
        fast(&mut d, 0, 2);
        // From second 2 on the server stalls: nothing comes back.
        for s in 2..6 {
            for i in 0..10 {
                request(&mut d, s * 100 + i, s * 1000 + i * 100, None);
            }
        }
        // At 4.0 s the requests of second 2 are not all older than 1 s yet.
        assert_eq!(tick(&mut d, 4_000), None);
        let mut stopped = None;
        for at in [5_000, 6_000] {
            stopped = stopped.or(tick(&mut d, at));
        }
        assert_eq!(
            stopped,
            Some(CancelReason::CriterionStop(
                "p99>1s for 2s, stop as failed".to_owned()
            ))
        );
        d.end_load(ms(6_000));
        assert_eq!(d.cut(ms(6_500)), 40);
        let all = d.store.cumulative("");
        assert_eq!((all.hits(), all.unfinished(), all.succ()), (60, 40, 20));
        let j = d.finish().remove(0);
        assert_eq!(j.verdict, Verdict::Failed);
        let t = j.trigger.unwrap();
        assert_eq!((t.from, t.to), (2, 4), "the seconds of the stall");
    }

    #[test]
    fn a_criterion_that_could_still_pass_waits_for_the_answers() {
        // A low throughput is not certain while requests are in flight: no early stop.
        let mut d = dispatcher(&["avg-rt<1ms for 1s, stop as failed"]);
        for i in 0..10 {
            request(&mut d, i, 100 * i, None);
        }
        for at in 1..10 {
            assert_eq!(tick(&mut d, at * 1000), None);
        }
        assert_eq!(d.judge.judged(), 0);
    }
}
