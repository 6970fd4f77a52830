//! The `schc` command. STUB.
fn main() {}
