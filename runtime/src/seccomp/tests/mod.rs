//! Tests of the seccomp module: the generator against a BPF interpreter, and
//! compiled filters in forked children on the real kernel.

mod generator;
mod interp;
mod kernel;
