//! Validation split by config element, as nextest splits its config: one file per top-level
//! key of a suite, each an `impl Validator` with the checks of that element and its unit tests.

mod criteria;
mod executions;
mod reporting;
mod scenarios;
mod services;
mod settings;
mod variables;

#[allow(unused_imports)]
use {
    criteria::criterion_name,
    scenarios::{first_line, think_time},
    services::metric_hint,
    variables::collect_refs,
};

#[cfg(test)]
pub(super) mod testing;
