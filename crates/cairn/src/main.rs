//! cairn
fn main() {}
