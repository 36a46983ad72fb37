pub mod diagnostics;
pub mod merge;
pub mod node;
pub mod source;
