//! Pass/fail criteria: the grammar now, compilation and evaluation with the run engine.
//!
//! [`grammar`] parses the Taurus short form and the pieces of the long form into typed parts
//! with byte ranges, so `suite::validate` can point at the exact character that is wrong. It is
//! pure string processing and must not depend on suites, metrics or clocks.

pub mod grammar;
