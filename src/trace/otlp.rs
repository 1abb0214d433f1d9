//! The OTLP trace request (`ExportTraceServiceRequest` of opentelemetry-proto), encoded by
//! hand: the few messages Switchyard sends do not need a protobuf code generator.
//!
//! Field numbers from `opentelemetry/proto/collector/trace/v1/trace_service.proto`,
//! `trace/v1/trace.proto`, `common/v1/common.proto` and `resource/v1/resource.proto`.

use super::{SpanData, SpanKind, Value};

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// `ExportTraceServiceRequest { resource_spans = 1 }` with one resource (`service.name`) and
/// one instrumentation scope (`switchyard`).
pub(super) fn encode_request(service_name: &str, spans: &[&SpanData]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 * spans.len() + 64);
    message(&mut out, 1, |rs| {
        // ResourceSpans.resource = 1 → Resource.attributes = 1
        message(rs, 1, |res| {
            key_value(res, 1, "service.name", &Value::Str(service_name.to_owned()));
        });
        // ResourceSpans.scope_spans = 2
        message(rs, 2, |ss| {
            // ScopeSpans.scope = 1 → InstrumentationScope { name = 1, version = 2 }
            message(ss, 1, |scope| {
                string(scope, 1, "switchyard");
                string(scope, 2, env!("CARGO_PKG_VERSION"));
            });
            for span in spans {
                message(ss, 2, |s| encode_span(s, span));
            }
        });
    });
    out
}

fn encode_span(out: &mut Vec<u8>, span: &SpanData) {
    bytes(out, 1, &span.context.trace_id);
    bytes(out, 2, &span.context.span_id);
    if let Some(parent) = &span.parent {
        bytes(out, 4, parent);
    }
    string(out, 5, &span.name);
    let kind = match span.kind {
        SpanKind::Server => 2,
        SpanKind::Client => 3,
    };
    varint_field(out, 6, kind);
    fixed64(out, 7, span.start_ns);
    fixed64(out, 8, span.end_ns);
    for (key, value) in &span.attributes {
        key_value(out, 9, key, value);
    }
    for link in &span.links {
        // Link { trace_id = 1, span_id = 2, flags = 6 }
        message(out, 13, |l| {
            bytes(l, 1, &link.trace_id);
            bytes(l, 2, &link.span_id);
            fixed32(l, 6, u32::from(link.sampled) | 0x100);
        });
    }
    if span.error {
        // Status { code = 3 }: STATUS_CODE_ERROR = 2
        message(out, 15, |s| varint_field(s, 3, 2));
    }
    // Span.flags = 16: the sampled bit, and bit 8 says whether the parent is remote.
    let remote = if span.parent.is_some() && span.kind == SpanKind::Server {
        0x300
    } else {
        0x100
    };
    fixed32(out, 16, u32::from(span.context.sampled) | remote);
}

/// `KeyValue { key = 1, value = 2 }` with `AnyValue { string_value = 1, bool_value = 2,
/// int_value = 3 }`.
fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    message(out, field, |kv| {
        string(kv, 1, key);
        message(kv, 2, |any| match value {
            Value::Str(s) => string(any, 1, s),
            Value::Bool(b) => varint_field(any, 2, u64::from(*b)),
            // int64 is encoded as its two's complement, in ten bytes when negative.
            Value::Int(i) => varint_field(any, 3, *i as u64),
        });
    });
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, VARINT);
    varint(out, v);
}

fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, FIXED64);
    out.extend_from_slice(&v.to_le_bytes());
}

fn fixed32(out: &mut Vec<u8>, field: u32, v: u32) {
    tag(out, field, FIXED32);
    out.extend_from_slice(&v.to_le_bytes());
}

fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    tag(out, field, LEN);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn string(out: &mut Vec<u8>, field: u32, s: &str) {
    bytes(out, field, s.as_bytes());
}

/// A length-delimited sub-message.
fn message(out: &mut Vec<u8>, field: u32, build: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    build(&mut inner);
    bytes(out, field, &inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_as_protobuf_writes_them() {
        let enc = |v| {
            let mut out = Vec::new();
            varint(&mut out, v);
            out
        };
        assert_eq!(enc(0), [0]);
        assert_eq!(enc(1), [1]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(enc(u64::MAX).len(), 10);
    }

    #[test]
    fn a_key_value_encodes_as_expected() {
        let mut out = Vec::new();
        key_value(&mut out, 9, "a", &Value::Int(150));
        // 9:LEN { 1:LEN "a", 2:LEN { 3:VARINT 150 } }
        assert_eq!(out, [0x4a, 8, 0x0a, 1, b'a', 0x12, 3, 0x18, 0x96, 0x01]);
    }
}
