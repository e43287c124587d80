//! The zlib dictionary that SPDY/3 (and 3.1) header blocks are compressed
//! against (draft 3, section 2.6.10.1).
//!
//! The dictionary is 1423 bytes. It opens with common header names and values,
//! each preceded by its length as a 32-bit big-endian integer, and ends with a
//! run of status codes, reason phrases, dates and media types written out
//! without length prefixes. It is built once from those two parts; the tests
//! check its length and its Adler-32 (0xe3c6a7c2, the DICTID every SPDY/3
//! header block carries in its zlib header).

use std::sync::OnceLock;

/// The length-prefixed words, in dictionary order.
const WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The unprefixed tail, split only to keep lines short.
const TAIL: &[&str] = &[
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information",
    "204 No Content",
    "301 Moved Permanently",
    "400 Bad Request",
    "401 Unauthorized",
    "403 Forbidden",
    "404 Not Found",
    "500 Internal Server Error",
    "501 Not Implemented",
    "503 Service Unavailable",
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,",
    "application/xhtml+xml,text/plain,text/javascript,",
    "publicprivatemax-age=gzip,deflate,sdch",
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
];

/// The SPDY/3 header compression dictionary.
pub fn dictionary() -> &'static [u8] {
    static DICT: OnceLock<Vec<u8>> = OnceLock::new();
    DICT.get_or_init(|| {
        let mut out = Vec::with_capacity(DICTIONARY_LEN);
        for word in WORDS {
            // Every word is a short literal: its length fits in a u32.
            out.extend_from_slice(&(word.len() as u32).to_be_bytes());
            out.extend_from_slice(word.as_bytes());
        }
        for part in TAIL {
            out.extend_from_slice(part.as_bytes());
        }
        out
    })
}

/// The dictionary's length in bytes.
pub const DICTIONARY_LEN: usize = 1423;

/// The dictionary's Adler-32, the DICTID in each header block's zlib header.
pub const DICTIONARY_ID: u32 = 0xe3c6_a7c2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_edges() {
        let d = dictionary();
        assert_eq!(d.len(), DICTIONARY_LEN);
        assert_eq!(&d[..11], b"\0\0\0\x07options");
        assert!(d.ends_with(b",enq=0."));
    }

    #[test]
    fn adler32_is_the_spdy3_dictid() {
        // Adler-32 (RFC 1950), computed here rather than through zlib.
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in dictionary() {
            a = (a + u32::from(byte)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, DICTIONARY_ID);
    }
}
