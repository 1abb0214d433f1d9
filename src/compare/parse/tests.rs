//! The parser agrees with serde_json: same documents accepted, same values read.

use proptest::prelude::*;
use serde_json::Value;

use super::super::tape::{Tag, Tape};
use super::*;

/// The tape as a `Value`, the way serde_json builds one (a repeated key keeps the last value).
fn to_value(t: &Tape<'_>, i: usize) -> Value {
    match t.tag(i) {
        Tag::Null => Value::Null,
        Tag::True => Value::Bool(true),
        Tag::False => Value::Bool(false),
        Tag::Int => Value::from(t.nodes[i].b as i64),
        Tag::Uint => Value::from(t.nodes[i].b),
        Tag::Float => Value::from(f64::from_bits(t.nodes[i].b)),
        Tag::Str => Value::String(t.str(i).to_owned()),
        Tag::Arr => Value::Array(t.items(i).map(|v| to_value(t, v)).collect()),
        Tag::Obj => Value::Object(
            t.entries(i)
                .map(|(k, v)| (k.to_owned(), to_value(t, v)))
                .collect(),
        ),
    }
}

/// Parses with both; they must agree on acceptance and, when accepted, on the value.
fn agree(text: &[u8]) -> Result<(), String> {
    let ours = parse(text);
    let theirs = serde_json::from_slice::<Value>(text);
    match (&ours, &theirs) {
        (Ok(t), Ok(v)) => {
            // Compared as text so that number kinds and the sign of zero count too.
            let (ours, theirs) = (to_value(t, 0).to_string(), v.to_string());
            if ours == theirs {
                Ok(())
            } else {
                Err(format!(
                    "{ours} != {theirs} for {:?}",
                    String::from_utf8_lossy(text)
                ))
            }
        }
        (Err(_), Err(_)) => Ok(()),
        _ => Err(format!(
            "ours {:?}, serde_json {:?} for {:?}",
            ours.as_ref().err(),
            theirs.as_ref().err().map(ToString::to_string),
            String::from_utf8_lossy(text)
        )),
    }
}

#[test]
fn accepts_and_reads_like_serde_json() {
    let cases: &[&str] = &[
        "0",
        "-0",
        "-0.0",
        "1",
        "-1",
        "1.5",
        "1e3",
        "1E+3",
        "1e-3",
        "-1.25e-7",
        "0.1",
        "1.7976931348623157e308",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "123456789012345678901234567890",
        "5e-324",
        "2.2250738585072011e-308",
        "true",
        "false",
        "null",
        "\"\"",
        "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
        "\"\\u00e9\\u20ac\\ud83d\\ude00\"",
        "\"é€😀\"",
        " [ 1 , [ ] , { } , { \"a\" : [ null ] } ] ",
        "[[[[[]]]]]",
        "{\"\":{\"\":\"\"}}",
    ];
    for text in cases {
        agree(text.as_bytes()).unwrap();
        assert!(parse(text.as_bytes()).is_ok(), "{text}");
    }
}

#[test]
fn rejects_what_serde_json_rejects() {
    let cases: &[&[u8]] = &[
        b"",
        b" ",
        b"01",
        b"-",
        b"1.",
        b".5",
        b"1e",
        b"1e+",
        b"+1",
        b"0x10",
        b"1 2",
        b"[1,]",
        b"[,1]",
        b"[1 2]",
        b"{\"a\":1,}",
        b"{,}",
        b"{\"a\"}",
        b"{\"a\" 1}",
        b"{1:2}",
        b"[",
        b"]",
        b"{",
        b"}",
        b"\"abc",
        b"\"a\nb\"",
        b"\"\\x\"",
        b"\"\\u12\"",
        b"\"\\ud800\"",
        b"\"\\udc00\"",
        b"\"\\ud800\\u0041\"",
        b"tru",
        b"nul",
        b"falsey",
        b"NaN",
        b"Infinity",
        b"1e400",
        b"-1e400",
        b"\xff",
        b"\"\xc3\"",
        b"[1]x",
        b"{\"a\":1}}",
    ];
    for text in cases {
        agree(text).unwrap();
        assert!(parse(text).is_err(), "{:?}", String::from_utf8_lossy(text));
    }
}

#[test]
fn repeated_keys_are_kept_in_order() {
    // serde_json keeps the last; the tape keeps both (the walker compares them in order).
    let t = parse(br#"{"a":1,"a":2}"#).unwrap();
    assert_eq!(t.len(0), 2);
    assert_eq!(
        t.get(0, "a").map(|v| t.num(v)),
        Some(crate::compare::value::Num::Int(1))
    );
}

#[test]
fn errors_say_where() {
    let e = parse(b"{\"a\": [1, 2,, 3]}").unwrap_err();
    assert_eq!(e.to_string(), "expected value at byte 12");
    let e = parse(b"[1] x").unwrap_err();
    assert_eq!(e.to_string(), "trailing characters at byte 4");
}

#[test]
fn nesting_is_bounded_without_recursion() {
    let ok = "[".repeat(MAX_NESTING) + &"]".repeat(MAX_NESTING);
    assert!(parse(ok.as_bytes()).is_ok());
    let deep = "[".repeat(MAX_NESTING + 1) + &"]".repeat(MAX_NESTING + 1);
    assert_eq!(parse(deep.as_bytes()).unwrap_err().what, "nesting too deep");
    let huge = "[{\"a\":".repeat(1_000_000);
    assert!(parse(huge.as_bytes()).is_err());
}

#[test]
fn strings_without_escapes_are_borrowed() {
    let t = parse(br#"{"key": "plain", "esc": "a\nb"}"#).unwrap();
    assert_eq!(t.esc, "a\nb");
    assert_eq!(t.str(t.get(0, "key").unwrap()), "plain");
    assert_eq!(t.str(t.get(0, "esc").unwrap()), "a\nb");
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[\\\\\"\\u{0}-\\u{1f}a-z\\u{80}-\\u{10ffff}]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn plain_run_stops_at_the_first_special_byte(bytes in prop::collection::vec(prop_oneof![
        Just(b'"'), Just(b'\\'), 0u8..0x20, 0x20u8..=0xff, Just(b'a')], 0..40)) {
        let naive = bytes.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).unwrap_or(bytes.len());
        prop_assert_eq!(super::plain_run(&bytes), naive);
    }

    #[test]
    fn serialised_values_read_back_identically(v in arb_value()) {
        for text in [serde_json::to_vec(&v).unwrap(), serde_json::to_vec_pretty(&v).unwrap()] {
            prop_assert!(parse(&text).is_ok());
            agree(&text).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn mutated_documents_are_judged_alike(v in arb_value(), at in any::<prop::sample::Index>(), byte in prop_oneof![
        Just(b'"'), Just(b'\\'), Just(b','), Just(b':'), Just(b'['), Just(b']'), Just(b'{'), Just(b'}'),
        Just(b'-'), Just(b'.'), Just(b'e'), Just(b'0'), Just(b'9'), Just(b' '), Just(b'u'), Just(b'\n'), Just(0xc3u8),
    ]) {
        let mut text = serde_json::to_vec(&v).unwrap();
        if !text.is_empty() {
            let i = at.index(text.len());
            text[i] = byte;
        }
        agree(&text).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn number_texts_are_read_like_serde_json(
        sign in prop_oneof![Just(""), Just("-")],
        int in "(0|[1-9][0-9]{0,25})",
        frac in prop::option::of("[0-9]{1,20}"),
        exp in prop::option::of("[eE][+-]?[0-9]{1,3}"),
    ) {
        let text = format!("{sign}{int}{}{}", frac.map(|f| format!(".{f}")).unwrap_or_default(), exp.unwrap_or_default());
        agree(text.as_bytes()).map_err(TestCaseError::fail)?;
    }
}
