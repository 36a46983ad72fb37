//! Suite → run plan: the concrete load shape of every execution, resolved once.
//!
//! [`Schedule`] is the one value the load engine is parameterised by (closed or open model);
//! [`ExecutionPlan`] pairs it with its scenario, delay, warm-up and seed. Nothing after this
//! sees raw YAML or CLI types.

use std::sync::Arc;
use std::time::Duration;

use crate::suite::model::{Arrival, Execution, Scenario, Suite};

/// When virtual users start and how fast requests may go.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// Virtual users loop over the scenario; each waits for its response.
    Closed {
        users: u32,
        ramp_up: Duration,
        steps: Option<u32>,
        hold_for: Duration,
        iterations: Option<u64>,
        /// Taurus `throughput`: a cap on the request rate (ramped like the users).
        throughput: Option<f64>,
    },
    /// Requests arrive at `rate` per second whether or not earlier ones finished; at most
    /// `max_in_flight` are outstanding, the rest are dropped.
    Open {
        rate: f64,
        arrival: Arrival,
        max_in_flight: u32,
        ramp_up: Duration,
        steps: Option<u32>,
        hold_for: Duration,
        iterations: Option<u64>,
    },
}

impl Schedule {
    fn from_execution(e: &Execution) -> Self {
        match (e.arrival, e.throughput) {
            (Some(arrival), Some(rate)) => Self::Open {
                rate,
                arrival,
                max_in_flight: e.concurrency,
                ramp_up: e.ramp_up,
                steps: e.steps,
                hold_for: e.hold_for,
                iterations: e.iterations,
            },
            _ => Self::Closed {
                users: e.concurrency,
                ramp_up: e.ramp_up,
                steps: e.steps,
                hold_for: e.hold_for,
                iterations: e.iterations,
                throughput: e.throughput,
            },
        }
    }

    /// How long the load lasts unless iterations end it first (`None`: only iterations do).
    pub fn duration(&self) -> Option<Duration> {
        let (ramp_up, hold_for) = match self {
            Self::Closed {
                ramp_up, hold_for, ..
            }
            | Self::Open {
                ramp_up, hold_for, ..
            } => (*ramp_up, *hold_for),
        };
        let total = ramp_up + hold_for;
        (!total.is_zero()).then_some(total)
    }

    /// The share (0..=1) of full load at `elapsed`: linear or stepped over the ramp-up.
    pub fn ramp(&self, elapsed: Duration) -> f64 {
        let (ramp_up, steps) = match self {
            Self::Closed { ramp_up, steps, .. } | Self::Open { ramp_up, steps, .. } => {
                (*ramp_up, *steps)
            }
        };
        if ramp_up.is_zero() || elapsed >= ramp_up {
            return 1.0;
        }
        let share = elapsed.as_secs_f64() / ramp_up.as_secs_f64();
        match steps {
            // Step k of n holds load k/n, starting at the first step.
            Some(n) if n > 0 => ((share * f64::from(n)).floor() + 1.0) / f64::from(n),
            _ => share,
        }
        .min(1.0)
    }
}

impl Schedule {
    fn ramp_shape(&self) -> (f64, Option<u32>) {
        match self {
            Self::Closed { ramp_up, steps, .. } | Self::Open { ramp_up, steps, .. } => {
                (ramp_up.as_secs_f64(), steps.filter(|n| *n > 0))
            }
        }
    }

    /// Full-load seconds done by `elapsed`: the integral of [`Schedule::ramp`]. At a rate of
    /// `r` per second, `r * work(t)` requests are due by `t`.
    pub fn work(&self, elapsed: Duration) -> f64 {
        let (ramp, steps) = self.ramp_shape();
        let t = elapsed.as_secs_f64();
        if ramp <= 0.0 {
            return t;
        }
        let during = t.min(ramp);
        let ramped = match steps {
            None => during * during / (2.0 * ramp),
            Some(n) => {
                let (n, step) = (f64::from(n), ramp / f64::from(n));
                let whole = (during / step).floor();
                // Steps 0..whole at levels 1/n..whole/n, then part of the next one.
                step * whole * (whole + 1.0) / (2.0 * n)
                    + (during - whole * step) * (whole + 1.0) / n
            }
        };
        ramped + (t - ramp).max(0.0)
    }

    /// When `work` full-load seconds are done: the inverse of [`Schedule::work`].
    pub fn at_work(&self, work: f64) -> Duration {
        let (ramp, steps) = self.ramp_shape();
        let w = work.max(0.0);
        let secs = if ramp <= 0.0 {
            w
        } else {
            let ramp_work = match steps {
                None => ramp / 2.0,
                Some(n) => ramp * (f64::from(n) + 1.0) / (2.0 * f64::from(n)),
            };
            if w >= ramp_work {
                ramp + (w - ramp_work)
            } else {
                match steps {
                    None => (2.0 * ramp * w).sqrt(),
                    Some(n) => {
                        let (nf, step) = (f64::from(n), ramp / f64::from(n));
                        let mut done = 0.0;
                        let mut at = 0.0;
                        for level in 1..=n {
                            let level = f64::from(level) / nf;
                            if done + step * level > w {
                                break;
                            }
                            done += step * level;
                            at += step;
                        }
                        let level = ((at / step).round() + 1.0) / nf;
                        at + (w - done) / level
                    }
                }
            }
        };
        Duration::from_secs_f64(secs.min(1e9))
    }
}

/// One execution, ready to run.
#[derive(Clone, Debug)]
pub struct ExecutionPlan {
    pub index: usize,
    pub scenario: Arc<Scenario>,
    /// Every scenario of the suite, for `include-scenario`.
    pub scenarios: Arc<Vec<Scenario>>,
    pub schedule: Schedule,
    pub delay: Duration,
    /// Samples sent before this much time (after the delay) are left out of statistics.
    pub warm_up: Duration,
    /// Seeds think times and arrivals; recorded in the results.
    pub seed: u64,
    /// How long requests in flight at the end of a time-bound load may take to finish
    /// before they are cancelled (`settings.graceful-stop`).
    pub graceful_stop: Duration,
    /// Setup executions run before the main load, teardown ones after it.
    pub phase: crate::suite::raw::Phase,
    /// A capacity search: its probes, chosen while it runs, replace the schedule.
    pub search: Option<crate::suite::model::Search>,
}

impl ExecutionPlan {
    /// This execution at one load value of a search, for one probe of `length` starting now.
    pub fn probe(&self, search: &crate::suite::model::Search, value: f64) -> Self {
        use crate::suite::model::SweepKind;
        let schedule = match search.kind {
            SweepKind::Concurrency => Schedule::Closed {
                users: (value.round() as u32).max(1),
                ramp_up: Duration::ZERO,
                steps: None,
                hold_for: search.length,
                iterations: None,
                throughput: None,
            },
            SweepKind::Throughput => Schedule::Open {
                rate: value,
                arrival: Arrival::Constant,
                max_in_flight: search.max_in_flight,
                ramp_up: Duration::ZERO,
                steps: None,
                hold_for: search.length,
                iterations: None,
            },
        };
        Self {
            schedule,
            delay: Duration::ZERO,
            warm_up: Duration::ZERO,
            search: None,
            ..self.clone()
        }
    }
}

/// A suite's executions, ready to run.
#[derive(Clone, Debug)]
pub struct SuitePlan {
    pub suite: Suite,
    pub executions: Vec<ExecutionPlan>,
    pub seed: u64,
}

impl SuitePlan {
    pub fn new(suite: Suite, seed: u64) -> Self {
        let scenarios = Arc::new(suite.scenarios.clone());
        let executions = suite
            .executions
            .iter()
            .enumerate()
            .filter_map(|(index, e)| {
                let scenario = scenarios.iter().find(|s| s.name == e.scenario)?.clone();
                let warm_up = if suite.settings.ramp_up_exclude {
                    e.warm_up.max(e.ramp_up)
                } else {
                    e.warm_up
                };
                Some(ExecutionPlan {
                    index,
                    scenario: Arc::new(scenario),
                    scenarios: scenarios.clone(),
                    schedule: Schedule::from_execution(e),
                    delay: e.delay,
                    warm_up,
                    seed: seed.wrapping_add(index as u64),
                    graceful_stop: suite.settings.graceful_stop,
                    phase: e.phase,
                    search: e.search.clone(),
                })
            })
            .collect();
        Self {
            suite,
            executions,
            seed,
        }
    }

    /// The load's length, if every execution is time-bound: the longest execution with its
    /// delay, or with `modules.local.sequential` all of them one after another.
    pub fn duration(&self) -> Option<Duration> {
        use crate::suite::raw::Phase;
        let mut total = Duration::ZERO;
        for phase in [Phase::Setup, Phase::Main, Phase::Teardown] {
            let mut each = self
                .executions
                .iter()
                .filter(|e| e.phase == phase)
                .map(|e| e.schedule.duration().map(|d| d + e.delay));
            let length = if self.suite.settings.sequential && phase == Phase::Main {
                each.sum::<Option<Duration>>()
            } else {
                each.try_fold(Duration::ZERO, |acc, d| d.map(|d| acc.max(d)))
            };
            total += length?;
        }
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(ramp_up: u64, steps: Option<u32>) -> Schedule {
        Schedule::Closed {
            users: 4,
            ramp_up: Duration::from_secs(ramp_up),
            steps,
            hold_for: Duration::from_secs(10),
            iterations: None,
            throughput: None,
        }
    }

    #[test]
    fn linear_and_stepped_ramps() {
        let s = |secs: f64| Duration::from_secs_f64(secs);
        assert_eq!(closed(0, None).ramp(s(0.0)), 1.0);
        assert_eq!(closed(10, None).ramp(s(2.5)), 0.25);
        assert_eq!(closed(10, None).ramp(s(12.0)), 1.0);
        // 4 steps over 8 s: 1/4 from 0 s, 2/4 from 2 s, ...
        assert_eq!(closed(8, Some(4)).ramp(s(0.0)), 0.25);
        assert_eq!(closed(8, Some(4)).ramp(s(1.9)), 0.25);
        assert_eq!(closed(8, Some(4)).ramp(s(2.0)), 0.5);
        assert_eq!(closed(8, Some(4)).ramp(s(7.9)), 1.0);
        assert_eq!(closed(8, None).duration(), Some(Duration::from_secs(18)));
    }

    #[test]
    fn work_and_its_inverse_agree() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        for schedule in [
            closed(0, None),
            closed(10, None),
            closed(8, Some(4)),
            closed(9, Some(3)),
        ] {
            for tenth in 0..250 {
                let t = f64::from(tenth) / 10.0;
                let w = schedule.work(Duration::from_secs_f64(t));
                let back = schedule.at_work(w).as_secs_f64();
                assert!(close(back, t), "{schedule:?}: t={t} work={w} back={back}");
            }
        }
        // A linear 10 s ramp does half its full-load work during the ramp.
        assert!(close(closed(10, None).work(Duration::from_secs(10)), 5.0));
        assert!(close(closed(10, None).work(Duration::from_secs(12)), 7.0));
        // 4 steps over 8 s: 2 s each at 1/4, 2/4, 3/4, 4/4.
        assert!(close(closed(8, Some(4)).work(Duration::from_secs(8)), 5.0));
        assert!(close(closed(8, Some(4)).work(Duration::from_secs(1)), 0.25));
    }
}
