//! The host's busybox-static binary: where it is, that it is static, its applets
//! and its content hash.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::FixtureError;

/// Environment variable that points at another busybox binary than `/bin/busybox`.
pub const BUSYBOX_ENV: &str = "BERTH_FIXTURES_BUSYBOX";

/// Where Debian's busybox-static installs its binary.
pub const DEFAULT_BUSYBOX: &str = "/bin/busybox";

/// ELF program header type of the dynamic loader path (`PT_INTERP`).
const PT_INTERP: u32 = 3;

/// A checked, statically linked busybox binary on the host.
#[derive(Debug, Clone)]
pub struct Busybox {
    path: PathBuf,
}

impl Busybox {
    /// Finds the host's busybox (`$BERTH_FIXTURES_BUSYBOX` or `/bin/busybox`) and
    /// checks that it is statically linked.
    pub fn locate() -> Result<Self, FixtureError> {
        let path = std::env::var_os(BUSYBOX_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BUSYBOX));
        Self::at(&path)
    }

    /// Uses the busybox binary at `path`, checking that it is statically linked.
    pub fn at(path: &Path) -> Result<Self, FixtureError> {
        let image = std::fs::read(path).map_err(|source| FixtureError::BusyboxMissing {
            path: path.to_path_buf(),
            source,
        })?;
        if has_interpreter(&image) {
            return Err(FixtureError::BusyboxNotStatic {
                path: path.to_path_buf(),
            });
        }
        Ok(Busybox {
            path: path.to_path_buf(),
        })
    }

    /// The binary's path on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every applet's install path relative to `/` (e.g. `bin/sh`, `usr/bin/[`), as
    /// printed by `busybox --list-full`.
    pub fn applets(&self) -> Result<Vec<PathBuf>, FixtureError> {
        let output = Command::new(&self.path)
            .arg("--list-full")
            .output()
            .map_err(FixtureError::io("run", &self.path))?;
        let list_error = |reason: String| FixtureError::AppletList {
            path: self.path.clone(),
            reason,
        };
        if !output.status.success() {
            return Err(list_error(format!(
                "exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let text = String::from_utf8(output.stdout)
            .map_err(|_| list_error("output is not utf-8".to_string()))?;
        let applets: Vec<PathBuf> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| PathBuf::from(line.trim_start_matches('/')))
            .collect();
        if let Some(bad) = applets.iter().find(|applet| !is_plain_relative(applet)) {
            return Err(list_error(format!(
                "unexpected applet path {}",
                bad.display()
            )));
        }
        if applets.is_empty() {
            return Err(list_error("no applets listed".to_string()));
        }
        Ok(applets)
    }

    /// Hex SHA-256 of the binary's content.
    pub fn sha256(&self) -> Result<String, FixtureError> {
        let image = std::fs::read(&self.path).map_err(FixtureError::io("read", &self.path))?;
        let digest = Sha256::digest(&image);
        Ok(digest.iter().map(|byte| format!("{byte:02x}")).collect())
    }
}

/// True when `path` has only normal components (no `..`, no root).
fn is_plain_relative(path: &Path) -> bool {
    path.components()
        .all(|component| matches!(component, std::path::Component::Normal(_)))
}

/// True when the 64-bit little-endian ELF `image` names a dynamic loader
/// (has a `PT_INTERP` program header). Anything unparsable counts as static: the
/// rootfs build then fails later, at exec, with the kernel's own error.
fn has_interpreter(image: &[u8]) -> bool {
    let read_u16 = |at: usize| {
        image
            .get(at..at + 2)
            .map(|bytes| u16::from_le_bytes([bytes[0], bytes[1]]) as usize)
    };
    let read_u32 = |at: usize| {
        image
            .get(at..at + 4)
            .map(|bytes| u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    };
    let read_u64 = |at: usize| {
        image.get(at..at + 8).and_then(|bytes| {
            let mut word = [0u8; 8];
            word.copy_from_slice(bytes);
            usize::try_from(u64::from_le_bytes(word)).ok()
        })
    };
    // ELF64 header: class at 4 (2 = 64-bit), phoff at 0x20, phentsize at 0x36,
    // phnum at 0x38.
    if image.get(..4) != Some(b"\x7fELF") || image.get(4) != Some(&2) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) =
        (read_u64(0x20), read_u16(0x36), read_u16(0x38))
    else {
        return false;
    };
    (0..phnum).any(|index| read_u32(phoff + index * phentsize) == Some(PT_INTERP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_busybox_is_static() {
        let busybox = Busybox::locate().unwrap();
        assert!(!has_interpreter(&std::fs::read(busybox.path()).unwrap()));
    }

    #[test]
    fn dynamic_binary_is_detected() {
        let image = std::fs::read("/bin/ls").unwrap();
        assert!(has_interpreter(&image));
        assert!(matches!(
            Busybox::at(Path::new("/bin/ls")),
            Err(FixtureError::BusyboxNotStatic { .. })
        ));
    }

    #[test]
    fn garbage_is_not_dynamic() {
        assert!(!has_interpreter(b"not an elf"));
        assert!(!has_interpreter(b"\x7fELF\x02"));
    }

    #[test]
    fn applets_are_relative_paths() {
        let applets = Busybox::locate().unwrap().applets().unwrap();
        assert!(applets.iter().any(|applet| applet == Path::new("bin/sh")));
        assert!(applets.iter().all(|applet| applet.is_relative()));
    }

    #[test]
    fn sha256_is_hex() {
        let sha = Busybox::locate().unwrap().sha256().unwrap();
        assert_eq!(sha.len(), 64);
        assert!(sha.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
