//! RFC 9363 JSON rule files (feature `std`). STUB: being written.

use crate::rule::RuleSetBuf;

/// Error reading a rule file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JsonError(pub String);

/// Parses an `ietf-schc:schc` document.
pub fn from_str(_s: &str) -> Result<RuleSetBuf, JsonError> {
    Err(JsonError("not yet".into()))
}
