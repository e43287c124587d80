//! SPDY/3 name/value header blocks: the ordered header list, its wire form
//! (a 32-bit pair count, then each name and value with a 32-bit length), and
//! the zlib contexts that compress it.
//!
//! Each direction of a connection has one compression context for its whole
//! life, primed with the SPDY/3 dictionary; every block ends with a sync flush
//! so the peer can decode it on its own. A decompressed block is capped so a
//! small compressed frame cannot expand without bound.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::{dictionary, DICTIONARY_ID};

/// Errors from encoding, compressing or decoding a header block.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderBlockError {
    /// the compressed header block is not valid zlib data for this context
    #[error("header block decompression failed: {0}")]
    Inflate(String),
    /// the header block asks for a zlib dictionary other than SPDY/3's
    #[error("header block wants zlib dictionary {0:#010x}, not the SPDY/3 one")]
    WrongDictionary(u32),
    /// the header block decompresses to more than the cap
    #[error("header block decompresses to more than {0} bytes")]
    TooLarge(usize),
    /// the header block compression failed
    #[error("header block compression failed: {0}")]
    Deflate(String),
    /// the decompressed block ends before the field at `offset`
    #[error("header block truncated at byte {offset} (reading {what})")]
    Truncated { offset: usize, what: &'static str },
    /// bytes are left after the last pair
    #[error("header block has {0} trailing bytes")]
    Trailing(usize),
    /// a name or value is not UTF-8
    #[error("header {what} at byte {offset} is not UTF-8")]
    NotUtf8 { offset: usize, what: &'static str },
}

/// An ordered list of header names and values. Names are kept lowercase, as
/// SPDY requires; a value may hold several values separated by NUL bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pairs: Vec<(String, String)>,
}

impl Headers {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a header; the name is lowercased. A name given twice has its
    /// values joined with NUL, since a block must not repeat a name.
    pub fn insert(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        match self.pairs.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                existing.push('\0');
                existing.push_str(value);
            }
            None => self.pairs.push((name, value.to_owned())),
        }
    }

    /// Builder form of [`Headers::insert`].
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.insert(name, value);
        self
    }

    /// The value of `name` (compared without case), NUL separators included.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Appends another list's pairs (HEADERS frames add to a stream's headers).
    pub fn extend(&mut self, other: &Headers) {
        for (n, v) in other.iter() {
            self.insert(n, v);
        }
    }

    /// The uncompressed wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_len(&mut out, self.pairs.len());
        for (name, value) in &self.pairs {
            put_len(&mut out, name.len());
            out.extend_from_slice(name.as_bytes());
            put_len(&mut out, value.len());
            out.extend_from_slice(value.as_bytes());
        }
        out
    }

    /// Parses the uncompressed wire form. Names are taken as sent.
    pub fn decode(raw: &[u8]) -> Result<Self, HeaderBlockError> {
        let mut at = 0usize;
        let count = take_u32(raw, &mut at, "pair count")? as usize;
        // Each pair needs at least 8 bytes: this bounds the allocation.
        let mut pairs = Vec::with_capacity(count.min(raw.len() / 8));
        for _ in 0..count {
            let name = take_str(raw, &mut at, "name")?;
            let value = take_str(raw, &mut at, "value")?;
            pairs.push((name, value));
        }
        if at != raw.len() {
            return Err(HeaderBlockError::Trailing(raw.len() - at));
        }
        Ok(Self { pairs })
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for Headers {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(iter: I) -> Self {
        let mut h = Headers::new();
        for (n, v) in iter {
            h.insert(n, v);
        }
        h
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Header blocks are built from in-memory strings far below 4 GiB; the
    // frame encoder rejects anything longer than 24 bits anyway.
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

fn take_u32(raw: &[u8], at: &mut usize, what: &'static str) -> Result<u32, HeaderBlockError> {
    let bytes = raw
        .get(*at..*at + 4)
        .ok_or(HeaderBlockError::Truncated { offset: *at, what })?;
    *at += 4;
    Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn take_str(raw: &[u8], at: &mut usize, what: &'static str) -> Result<String, HeaderBlockError> {
    let len = take_u32(raw, at, what)? as usize;
    let start = *at;
    let bytes = start
        .checked_add(len)
        .and_then(|end| raw.get(start..end))
        .ok_or(HeaderBlockError::Truncated {
            offset: start,
            what,
        })?;
    *at += len;
    String::from_utf8(bytes.to_vec()).map_err(|_| HeaderBlockError::NotUtf8 {
        offset: start,
        what,
    })
}

/// The sending direction's zlib context.
pub struct HeaderCompressor {
    z: Compress,
}

impl HeaderCompressor {
    /// A context primed with the SPDY/3 dictionary.
    pub fn new() -> Result<Self, HeaderBlockError> {
        let mut z = Compress::new(Compression::default(), true);
        z.set_dictionary(dictionary())
            .map_err(|e| HeaderBlockError::Deflate(e.to_string()))?;
        Ok(Self { z })
    }

    /// Encodes and compresses `headers`, ending with a sync flush.
    pub fn compress(&mut self, headers: &Headers) -> Result<Vec<u8>, HeaderBlockError> {
        self.compress_raw(&headers.encode())
    }

    /// Compresses an already encoded block.
    pub fn compress_raw(&mut self, raw: &[u8]) -> Result<Vec<u8>, HeaderBlockError> {
        let mut out = Vec::with_capacity(raw.len() / 2 + 64);
        let start_in = self.z.total_in();
        loop {
            let consumed = (self.z.total_in() - start_in) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            self.z
                .compress_vec(&raw[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| HeaderBlockError::Deflate(e.to_string()))?;
            let consumed = (self.z.total_in() - start_in) as usize;
            // Done once all input is in and the flush left spare room.
            if consumed == raw.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// The receiving direction's zlib context.
pub struct HeaderDecompressor {
    /// Created with the first block: most frames carry none.
    z: Option<Decompress>,
    max_len: usize,
}

impl HeaderDecompressor {
    /// A context whose blocks may decompress to at most `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        Self { z: None, max_len }
    }

    /// Decompresses and parses one header block.
    pub fn decompress(&mut self, compressed: &[u8]) -> Result<Headers, HeaderBlockError> {
        Headers::decode(&self.decompress_raw(compressed)?)
    }

    /// Decompresses one header block to its wire form.
    pub fn decompress_raw(&mut self, compressed: &[u8]) -> Result<Vec<u8>, HeaderBlockError> {
        let z = self.z.get_or_insert_with(|| Decompress::new(true));
        let mut out = Vec::with_capacity((compressed.len() * 4).min(self.max_len) + 64);
        let start_in = z.total_in();
        loop {
            let consumed = (z.total_in() - start_in) as usize;
            let (in_before, out_before) = (z.total_in(), z.total_out());
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            match z.decompress_vec(&compressed[consumed..], &mut out, FlushDecompress::Sync) {
                Ok(Status::StreamEnd) => {
                    return Err(HeaderBlockError::Inflate(
                        "zlib stream ended; SPDY keeps one stream per connection".into(),
                    ))
                }
                Ok(_) => {}
                Err(e) => match e.needs_dictionary() {
                    Some(id) if id == DICTIONARY_ID => {
                        z.set_dictionary(dictionary())
                            .map_err(|e| HeaderBlockError::Inflate(e.to_string()))?;
                        continue;
                    }
                    Some(id) => return Err(HeaderBlockError::WrongDictionary(id)),
                    None => return Err(HeaderBlockError::Inflate(e.to_string())),
                },
            }
            if out.len() > self.max_len {
                return Err(HeaderBlockError::TooLarge(self.max_len));
            }
            let consumed = (z.total_in() - start_in) as usize;
            if consumed == compressed.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            if z.total_in() == in_before && z.total_out() == out_before {
                return Err(HeaderBlockError::Inflate(
                    "no progress: truncated header block".into(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Headers {
        Headers::new()
            .with("streamtype", "stdout")
            .with("X-Stream-Protocol-Version", "v4.channel.k8s.io")
            .with("multi", "a")
            .with("multi", "b")
    }

    #[test]
    fn wire_form_round_trip() {
        let h = sample();
        assert_eq!(
            h.get("x-stream-protocol-version"),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(h.get("MULTI"), Some("a\0b"));
        assert_eq!(Headers::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn wire_form_errors() {
        let raw = sample().encode();
        for cut in 0..raw.len() {
            assert!(matches!(
                Headers::decode(&raw[..cut]),
                Err(HeaderBlockError::Truncated { .. })
            ));
        }
        let mut long = raw.clone();
        long.push(0);
        assert_eq!(Headers::decode(&long), Err(HeaderBlockError::Trailing(1)));
        // A huge pair count with no pairs must not allocate it up front.
        assert!(Headers::decode(&[0xff, 0xff, 0xff, 0xff]).is_err());
        let bad = [0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0, 0, 0, 0];
        assert!(matches!(
            Headers::decode(&bad),
            Err(HeaderBlockError::NotUtf8 { offset: 8, .. })
        ));
    }

    #[test]
    fn compression_round_trip_over_one_context() {
        let mut c = HeaderCompressor::new().unwrap();
        let mut d = HeaderDecompressor::new(1 << 16);
        for i in 0..20 {
            let h = sample().with("requestid", &i.to_string());
            let block = c.compress(&h).unwrap();
            // The first block carries the zlib header naming the dictionary.
            if i == 0 {
                assert_eq!(&block[2..6], &DICTIONARY_ID.to_be_bytes());
            }
            assert_eq!(d.decompress(&block).unwrap(), h);
        }
    }

    #[test]
    fn decompress_with_an_independent_flate2_context() {
        // Compressed by this module, inflated by a separate raw flate2
        // context that is handed the dictionary when zlib asks for it.
        let h = sample();
        let block = HeaderCompressor::new().unwrap().compress(&h).unwrap();
        let mut z = Decompress::new(true);
        let mut out = Vec::with_capacity(4096);
        let err = z
            .decompress_vec(&block, &mut out, FlushDecompress::Sync)
            .unwrap_err();
        assert_eq!(err.needs_dictionary(), Some(DICTIONARY_ID));
        z.set_dictionary(dictionary()).unwrap();
        let at = z.total_in() as usize;
        z.decompress_vec(&block[at..], &mut out, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(Headers::decode(&out).unwrap(), h);
    }

    #[test]
    fn decompress_a_block_from_another_implementation() {
        // The header block of a published SPDY/3 SYN_STREAM test vector
        // carrying {"bar": "foo", "foo": "bar"}.
        let block = [
            0x38, 0xea, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0xe5, 0x0e, 0x50, 0xc2, 0x4b, 0x4a, 0x04,
            0xe5, 0x0b, 0xe6, 0xb4, 0xfc, 0x7c, 0x24, 0x0a, 0x28, 0x08, 0x00, 0x00, 0x00, 0xff,
            0xff,
        ];
        let h = HeaderDecompressor::new(4096).decompress(&block).unwrap();
        assert_eq!(h, Headers::new().with("bar", "foo").with("foo", "bar"));
    }

    #[test]
    fn decompression_is_capped() {
        let big = Headers::new().with("x", &"a".repeat(100_000));
        let block = HeaderCompressor::new().unwrap().compress(&big).unwrap();
        assert!(block.len() < 2000);
        assert_eq!(
            HeaderDecompressor::new(10_000).decompress(&block),
            Err(HeaderBlockError::TooLarge(10_000))
        );
    }

    #[test]
    fn garbage_and_truncation_fail_cleanly() {
        let mut d = HeaderDecompressor::new(4096);
        assert!(d.decompress(&[1, 2, 3, 4, 5]).is_err());
        let block = HeaderCompressor::new()
            .unwrap()
            .compress(&sample())
            .unwrap();
        for cut in 0..block.len() {
            let _ = HeaderDecompressor::new(4096).decompress(&block[..cut]);
        }
    }
}
