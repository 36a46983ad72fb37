//! Pass/fail criteria: the grammar, and their judgement over the metrics store.
//!
//! [`grammar`] parses the Taurus short form and the pieces of the long form into typed parts
//! with byte ranges, so `suite::validate` can point at the exact character that is wrong. It is
//! pure string processing and must not depend on suites, metrics or clocks. [`eval`] judges
//! compiled criteria over a [`Store`](crate::metrics::Store), second by second and at the end.

pub mod eval;
pub mod grammar;
