//! Bounded decoding of `Content-Encoding` (gzip, deflate, br) before bodies are compared.
//!
//! Output is capped: decoding stops as soon as it would exceed the limit and reports
//! [`DecodeError::TooLarge`], so a decompression bomb costs at most `limit` bytes of memory and
//! the time to produce them. Codings are undone in reverse order of application
//! (`Content-Encoding: gzip, br` is br of gzip); `identity` is skipped; at most
//! [`MAX_LAYERS`] codings are accepted. `deflate` is zlib-wrapped per RFC 9110, but servers
//! that send raw deflate are tolerated.

use std::io::Read;

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_ENCODING;

/// Codings accepted in one `Content-Encoding`.
pub const MAX_LAYERS: usize = 4;

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("decoded body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("unsupported content-encoding {0:?}")]
    Unsupported(String),
    #[error("more than {MAX_LAYERS} content codings")]
    TooManyLayers,
    #[error("corrupt {coding} data: {source}")]
    Corrupt {
        coding: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Default cap on a decoded body.
pub const DEFAULT_LIMIT: usize = 16 * 1024 * 1024;

/// Decodes `body` as its `Content-Encoding` header says, capped at [`DEFAULT_LIMIT`].
/// `Ok(None)` when there is nothing to undo (no header, or `identity` only).
pub fn decode(headers: &HeaderMap, body: &Bytes) -> Result<Option<Bytes>, DecodeError> {
    decode_with_limit(headers, body, DEFAULT_LIMIT)
}

/// [`decode`] with an explicit cap on the decoded size.
pub fn decode_with_limit(
    headers: &HeaderMap,
    body: &Bytes,
    limit: usize,
) -> Result<Option<Bytes>, DecodeError> {
    let mut codings = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        let value = String::from_utf8_lossy(value.as_bytes());
        for coding in value.split(',') {
            let coding = coding.trim().to_ascii_lowercase();
            if coding.is_empty() || coding == "identity" {
                continue;
            }
            if codings.len() == MAX_LAYERS {
                return Err(DecodeError::TooManyLayers);
            }
            codings.push(coding);
        }
    }
    if codings.is_empty() {
        return Ok(None);
    }
    let mut current = body.clone();
    for coding in codings.iter().rev() {
        current = Bytes::from(decode_coding(coding, &current, limit)?);
    }
    Ok(Some(current))
}

/// Decodes one coding (`gzip`, `x-gzip`, `deflate`, `br`) with output capped at `limit`.
pub fn decode_coding(coding: &str, input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    match coding {
        "gzip" | "x-gzip" => read_capped(flate2::read::MultiGzDecoder::new(input), "gzip", limit),
        "deflate" => {
            // A zlib stream starts with CMF 0x?8 and a header checksum divisible by 31.
            // Raw deflate can look like a zlib header by chance, so a failed zlib read retries.
            let zlib = matches!(input, [cmf, flg, ..]
                if cmf & 0x0f == 8 && ((u16::from(*cmf) << 8) | u16::from(*flg)) % 31 == 0);
            let raw = || read_capped(flate2::read::DeflateDecoder::new(input), "deflate", limit);
            if !zlib {
                return raw();
            }
            match read_capped(flate2::read::ZlibDecoder::new(input), "deflate", limit) {
                Err(DecodeError::Corrupt { .. }) => raw(),
                done => done,
            }
        }
        "br" => read_capped(brotli::Decompressor::new(input, 4096), "br", limit),
        other => Err(DecodeError::Unsupported(other.to_owned())),
    }
}

fn read_capped(
    reader: impl Read,
    coding: &'static str,
    limit: usize,
) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over it".
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|source| DecodeError::Corrupt { coding, source })?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use std::io::Write;

    use http::HeaderValue;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn brotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(data).unwrap();
        }
        out
    }

    fn headers(encoding: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding));
        h
    }

    const TEXT: &[u8] = b"{\"hello\": \"world\", \"n\": [1, 2, 3]}";

    #[test]
    fn decodes_each_coding() {
        let limit = 1 << 20;
        assert_eq!(decode_coding("gzip", &gzip(TEXT), limit).unwrap(), TEXT);
        assert_eq!(decode_coding("x-gzip", &gzip(TEXT), limit).unwrap(), TEXT);
        assert_eq!(decode_coding("deflate", &zlib(TEXT), limit).unwrap(), TEXT);
        assert_eq!(
            decode_coding("deflate", &raw_deflate(TEXT), limit).unwrap(),
            TEXT
        );
        assert_eq!(decode_coding("br", &brotli(TEXT), limit).unwrap(), TEXT);
        assert!(
            matches!(decode_coding("zstd", TEXT, limit), Err(DecodeError::Unsupported(c)) if c == "zstd")
        );
    }

    #[test]
    fn header_drives_decoding_in_reverse_order() {
        let body = Bytes::from(TEXT);
        assert_eq!(decode(&HeaderMap::new(), &body).unwrap(), None);
        assert_eq!(decode(&headers("identity"), &body).unwrap(), None);
        let gz = Bytes::from(gzip(TEXT));
        assert_eq!(decode(&headers("GZIP"), &gz).unwrap(), Some(body.clone()));
        let stacked = Bytes::from(brotli(&gzip(TEXT)));
        assert_eq!(
            decode_with_limit(&headers("gzip, br"), &stacked, 1 << 20).unwrap(),
            Some(body)
        );
        assert!(matches!(
            decode_with_limit(&headers("gzip, br"), &stacked, 10),
            Err(DecodeError::TooLarge { limit: 10 })
        ));
        assert!(matches!(
            decode(&headers("gzip, gzip, gzip, gzip, gzip"), &gz),
            Err(DecodeError::TooManyLayers)
        ));
    }

    #[test]
    fn corrupt_data_is_an_error_not_a_panic() {
        for coding in ["gzip", "deflate", "br"] {
            let err = decode_coding(
                coding,
                b"\x1f\x8b\x08garbage that is not compressed",
                1 << 20,
            );
            assert!(err.is_err(), "{coding}");
        }
    }

    #[test]
    fn decompression_bombs_stop_at_the_limit() {
        // 64 MiB of zeros compresses to about 64 KiB (gzip) or a few dozen bytes (br).
        let zeros = vec![0u8; 64 << 20];
        let limit = 1 << 20;
        for (coding, packed) in [
            ("gzip", gzip(&zeros)),
            ("br", brotli(&zeros)),
            ("deflate", zlib(&zeros)),
        ] {
            assert!(packed.len() < 256 << 10, "{coding}: {}", packed.len());
            match decode_coding(coding, &packed, limit) {
                Err(DecodeError::TooLarge { limit: l }) => assert_eq!(l, limit),
                other => panic!("{coding}: {other:?}"),
            }
        }
        // Exactly at the limit is fine.
        let exact = vec![7u8; 1000];
        assert_eq!(
            decode_coding("gzip", &gzip(&exact), 1000).unwrap().len(),
            1000
        );
        assert!(decode_coding("gzip", &gzip(&exact), 999).is_err());
    }
}
