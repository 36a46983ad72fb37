pub mod de;
pub mod diagnostics;
pub mod interpolate;
pub mod merge;
pub mod node;
pub mod raw;
pub mod source;
pub mod units;
