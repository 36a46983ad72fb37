pub mod diagnostics;
pub mod interpolate;
pub mod merge;
pub mod node;
pub mod source;
