//! perfgate runs declarative YAML performance suites against a server and gates on
//! pass/fail criteria judged over time windows.
//!
//! The pipeline is `suite` (discover, load, merge, validate) → `plan` → `run` → `report`; see
//! DESIGN.md. The binary in `main.rs` only parses arguments and maps results to exit codes.

pub mod cli;
pub mod compare;
pub mod criteria;
pub mod demo;
pub mod load;
pub mod metrics;
pub mod monitor;
pub mod plan;
pub mod report;
pub mod run;
pub mod server;
pub mod stats;
pub mod suite;
