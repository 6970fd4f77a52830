//! Fuzz targets for `lpwan-schc`. The bodies live in [`targets`] so that
//! `tests/fuzz_corpus.rs` can replay the corpora through the same code on stable Rust;
//! [`gen`] builds packets and matching rules for the structure-aware target.

pub mod gen;
pub mod targets;
