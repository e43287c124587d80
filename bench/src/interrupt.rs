//! Ctrl-C and SIGTERM become a flag that the measuring loops check between
//! commands, so containers are always cleaned up before the bench exits.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::BenchError;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler that sets the flag.
pub fn install() -> Result<(), BenchError> {
    ctrlc::set_handler(|| {
        eprintln!("berth-bench: interrupted, cleaning up");
        INTERRUPTED.store(true, Ordering::SeqCst);
    })?;
    Ok(())
}

/// Fails with [`BenchError::Interrupted`] once the user asked to stop.
pub fn check() -> Result<(), BenchError> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(BenchError::Interrupted)
    } else {
        Ok(())
    }
}
