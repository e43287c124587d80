//! Root tests: real prepare/pivot/finalize in a forked child on a busybox rootfs.
