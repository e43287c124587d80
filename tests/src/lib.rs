//! Harness shared by the end-to-end tests: binaries, fixtures, leak checks.
