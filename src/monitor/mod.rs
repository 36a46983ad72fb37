//! Monitoring of servers and hosts.
//!
//! For now this holds the catalog of metric names each kind of source provides
//! ([`names`]), which validation checks monitoring subjects and criteria against. Samplers
//! arrive with the run engine; they must report exactly these names.

pub mod names;
