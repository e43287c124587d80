//! Images for benchmarks against other runtimes: a busybox layer whose
//! applets are symlinks, and large, deterministic images of that layer plus
//! layers of pseudo-random files (a seeded generator, so every run pushes
//! byte-identical blobs), sized to a total.

use crate::image::{Compression, ImageSpec, Layer, BUSYBOX_APPLETS};

/// A busybox rootfs layer like [`Layer::busybox`], but with the applets as
/// symlinks to `busybox`: the tar hard-link entries of `Layer::busybox`
/// carry mode 0644, and unpackers that apply a hard link's mode to its
/// target (containerd does) leave `/bin/busybox` non-executable.
pub fn busybox_symlinked() -> std::io::Result<Layer> {
    let busybox = std::fs::read("/bin/busybox")?;
    let mut layer = Layer::new();
    for dir in ["bin", "dev", "etc", "proc", "sys", "tmp", "root", "var"] {
        layer = layer.dir(dir, if dir == "tmp" { 0o1777 } else { 0o755 });
    }
    layer = layer.file_full("bin/busybox", busybox, 0o755, 0, 0, Vec::new());
    for applet in BUSYBOX_APPLETS {
        layer = layer.symlink(&format!("bin/{applet}"), "busybox");
    }
    Ok(layer
        .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        .file("etc/group", b"root:x:0:\n"))
}

/// Shape of a bulk image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkImage {
    /// Layers of random files on top of the busybox base layer.
    pub layers: usize,
    /// Bytes of file data over all random layers (before compression).
    pub total_bytes: usize,
    /// Files per random layer.
    pub files_per_layer: usize,
    /// Seed of the generator: same seed, same blobs.
    pub seed: u64,
    /// How the layer blobs are compressed.
    pub compression: Compression,
}

impl Default for BulkImage {
    /// Six gzip layers of 16 files, 100 MiB in all.
    fn default() -> Self {
        BulkImage {
            layers: 6,
            total_bytes: 100 << 20,
            files_per_layer: 16,
            seed: 0x6265_7274_6862_656e,
            compression: Compression::Gzip,
        }
    }
}

/// One in this many 4 KiB blocks of a file is a repeated byte rather than
/// random data, so that the blobs compress a little (as real layers do) and
/// the decompressor has both kinds of input.
const COMPRESSIBLE_EVERY: usize = 4;
const BLOCK: usize = 4096;

impl BulkImage {
    /// The image: busybox ([`busybox_symlinked`], `sleep` included), then
    /// [`BulkImage::layers`] layers each holding `bulk/<layer>/<file>` files
    /// whose sizes vary around the mean and add up to `total_bytes`.
    pub fn spec(&self) -> std::io::Result<ImageSpec> {
        let mut rng = SplitMix64(self.seed);
        let mut layers = vec![(busybox_symlinked()?, self.compression)];
        let layer_count = self.layers.max(1);
        let files = self.files_per_layer.max(1);
        let sizes = split(self.total_bytes, layer_count * files, &mut rng);
        for (index, layer_sizes) in sizes.chunks(files).enumerate() {
            let dir = format!("bulk/{index}");
            let mut layer = Layer::new().dir("bulk", 0o755).dir(&dir, 0o755);
            for (file, size) in layer_sizes.iter().enumerate() {
                let data = file_data(*size, &mut rng);
                layer = layer.file_full(&format!("{dir}/{file}"), data, 0o644, 0, 0, Vec::new());
            }
            layers.push((layer, self.compression));
        }
        let mut spec = ImageSpec::new(Vec::new());
        spec.layers = layers;
        spec.cmd = vec!["/bin/sleep".into(), "3600".into()];
        Ok(spec)
    }
}

/// `count` sizes between half and one and a half times the mean, adding up
/// to exactly `total`.
fn split(total: usize, count: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mean = total / count;
    let mut sizes: Vec<usize> = (0..count)
        .map(|_| mean / 2 + (rng.next() as usize) % (mean + 1))
        .collect();
    let sum: usize = sizes.iter().sum();
    // Scale to the total, then put the rounding rest on the last file.
    for size in &mut sizes {
        *size = ((*size as u128 * total as u128) / sum.max(1) as u128) as usize;
    }
    let scaled: usize = sizes.iter().sum();
    if let Some(last) = sizes.last_mut() {
        *last += total - scaled;
    }
    sizes
}

fn file_data(size: usize, rng: &mut SplitMix64) -> Vec<u8> {
    let mut data = vec![0u8; size];
    for (index, block) in data.chunks_mut(BLOCK).enumerate() {
        if index % COMPRESSIBLE_EVERY == COMPRESSIBLE_EVERY - 1 {
            block.fill((index % 251) as u8);
        } else {
            for word in block.chunks_mut(8) {
                let bytes = rng.next().to_le_bytes();
                word.copy_from_slice(&bytes[..word.len()]);
            }
        }
    }
    data
}

/// The SplitMix64 generator: tiny, fast and good enough for filler data.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> BulkImage {
        BulkImage {
            layers: 3,
            total_bytes: 300_000,
            files_per_layer: 4,
            ..BulkImage::default()
        }
    }

    #[test]
    fn sizes_add_up_to_the_total() {
        let mut rng = SplitMix64(7);
        for (total, count) in [(100 << 20, 96), (300_000, 12), (10, 3)] {
            let sizes = split(total, count, &mut rng);
            assert_eq!(sizes.len(), count);
            assert_eq!(sizes.iter().sum::<usize>(), total);
        }
    }

    #[test]
    fn same_seed_same_blobs_other_seed_other_blobs() {
        let blobs = |image: BulkImage| -> Vec<Vec<u8>> {
            let spec = image.spec().unwrap();
            spec.layers.iter().map(|(layer, _)| layer.tar()).collect()
        };
        let first = blobs(small());
        assert_eq!(first.len(), 4, "busybox and three random layers");
        assert_eq!(first, blobs(small()));
        let other = blobs(BulkImage { seed: 1, ..small() });
        assert_eq!(
            first[0], other[0],
            "the busybox layer does not depend on it"
        );
        assert_ne!(first[1], other[1]);
    }

    #[test]
    fn data_is_mostly_incompressible() {
        let spec = small().spec().unwrap();
        let (layer, _) = &spec.layers[1];
        let (tar, gzip) = (layer.tar().len(), layer.blob(Compression::Gzip).len());
        // A quarter of the blocks are runs of one byte.
        assert!(
            gzip > tar * 6 / 10 && gzip < tar * 9 / 10,
            "{gzip} of {tar}"
        );
    }
}
