//! The pull bench's printed report: the image and programs compared, the
//! table, and whether berth is faster than containerd.

use std::fmt::Write as _;

use crate::cases::CaseResult;
use crate::pair_report;
use crate::pull_cases::BERTH;
use crate::pull_session::PushedImage;
use crate::report::{kernel_release, notes};

/// berth must pull faster than containerd (issue #3).
pub const TARGET_SPEEDUP: f64 = 1.0;

/// What the header says about containerd.
pub struct PeerInfo {
    pub name: &'static str,
    pub binary: String,
    pub version: Option<String>,
}

/// Renders the whole report.
pub fn render(samples: usize, image: &PushedImage, peer: &PeerInfo, rows: &[CaseResult]) -> String {
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    let shape = &image.shape;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "berth-bench pull: {samples} samples, kernel {}, image {}",
        kernel_release(),
        image.reference
    );
    let _ = writeln!(
        out,
        "  image      busybox + {} layers x {} files, {:.1} MiB of files, \
         {:.1} MiB of {:?} blobs",
        shape.layers,
        shape.files_per_layer,
        mib(shape.total_bytes as u64),
        mib(image.blob_bytes),
        shape.compression,
    );
    let _ = writeln!(
        out,
        "  {BERTH:<10} berth_agent::images::ImageStore::pull, fresh store root"
    );
    let _ = writeln!(
        out,
        "  {:<10} {} ({}), ctr images pull --plain-http",
        peer.name,
        peer.binary,
        peer.version.as_deref().unwrap_or("version unknown")
    );
    out.push('\n');
    out.push_str(&pair_report::table([BERTH, peer.name], rows));
    let _ = writeln!(out, "\ntarget: {BERTH} faster than {}", peer.name);
    out.push_str(&pair_report::verdict(rows.first(), TARGET_SPEEDUP));
    out.push_str(&notes(&[BERTH, peer.name], rows));
    out
}
