//! Reports: every format renders the one serialisable [`RunReport`].
//!
//! [`model`] builds the report from the metrics store; [`files`] writes `results.json`,
//! `final_stats.csv` (Taurus dump-csv columns), `timeline.csv` and `effective.yml`, each
//! atomically; [`console`] renders the final table. Nothing here measures or runs anything.

pub mod console;
pub mod files;
pub mod model;

pub use model::RunReport;
