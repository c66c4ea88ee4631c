//! The `fjord-operator` binary (work in progress).
fn main() {}
