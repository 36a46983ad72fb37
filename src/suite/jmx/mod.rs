//! JMeter plans (`.jmx`): read into perfgate's own scenario model, so the engine, criteria,
//! reports and baselines are the same for a plan as for a YAML scenario.

pub mod expand;
pub mod import;
pub mod xml;
