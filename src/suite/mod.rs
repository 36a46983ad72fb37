//! Suite files: discovery, layering, interpolation, validation.
//!
//! The front half of the pipeline turns paths on the command line into validated
//! [`model::Suite`]s: [`discover`] finds files, [`load`] merges their layers ([`merge`]) and
//! interpolates `${NAME}` ([`interpolate`]) on located trees ([`node`]), [`de`] reads the trees
//! into the serde types of [`raw`], and [`validate`] checks every cross-reference. Problems are
//! [`diagnostics`] that quote the user's YAML ([`source`]). Nothing here sends load.

pub mod de;
pub mod diagnostics;
pub mod discover;
pub mod interpolate;
pub mod jmx;
pub mod load;
pub mod merge;
pub mod model;
pub mod node;
pub mod raw;
pub mod source;
pub mod units;
pub mod validate;
