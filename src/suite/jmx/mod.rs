//! JMeter plans (`.jmx`): read into perfgate's own scenario model.

pub mod xml;
