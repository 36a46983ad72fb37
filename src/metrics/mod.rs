//! Request measurements: per-second buckets per label, HDR histograms, windows.
//!
//! The engine reports each finished request as a [`Sample`]; [`Store`] files it into the
//! bucket of its second, for its label and for the overall label `""`. Closed seconds keep
//! their latency histogram sparsely, so memory grows with labels × seconds × distinct
//! latencies, never with the request count. [`Store::window`] merges seconds into a
//! [`Snapshot`] whose KPIs (DESIGN §4.6) criteria and reports read. No async and no clocks:
//! time arrives inside samples, so everything here is deterministic and unit-tested.

mod measure;
mod store;

pub use measure::{Extra, LlmEnd, METRIC_NAMES, Measure, SERVER_PREFIX, Unit, is_metric};
pub use store::{Agg, Outcome, Retention, Sample, Select, Snapshot, Store, Summary, code_matches};
