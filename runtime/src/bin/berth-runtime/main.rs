//! `berth-runtime`: a runc-compatible command line over the berth runtime library.

fn main() {}
