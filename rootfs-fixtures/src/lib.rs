//! Test and benchmark fixtures built from Debian's busybox-static.
pub mod image;
