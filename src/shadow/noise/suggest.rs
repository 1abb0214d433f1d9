//! Recognising values that are different on every call by nature, to suggest `ignore` rules.

/// Looks at the values a path took (rendered as in a [`Difference`](crate::compare::Difference):
/// JSON strings keep their quotes) and, when every one of them looks like the same kind of
/// per-call value, names it: `"timestamp"` (RFC 3339 or HTTP date), `"epoch_time"` (Unix
/// seconds, milliseconds or microseconds between 2001 and 2100, as number or string),
/// `"uuid"`, or `"request_id"` (a long hex or base64 token mixing letters and digits,
/// optionally with a short prefix such as `req_`). `None` for no values, mixed kinds, or
/// anything else.
pub fn suggest_ignore(values: &[&str]) -> Option<&'static str> {
    let mut found = None;
    for v in values {
        let kind = kind_of(unquote(v.trim()))?;
        match found {
            None => found = Some(kind),
            Some(k) if k == kind => {}
            Some(_) => return None,
        }
    }
    found
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}

fn kind_of(v: &str) -> Option<&'static str> {
    if is_rfc3339(v) || is_http_date(v) {
        Some("timestamp")
    } else if is_epoch(v) {
        Some("epoch_time")
    } else if is_uuid(v) {
        Some("uuid")
    } else if is_token(v) {
        Some("request_id")
    } else {
        None
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u32, |acc, d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

fn field(b: &[u8], at: usize, len: usize, max: u32) -> bool {
    b.get(at..at + len)
        .and_then(digits)
        .is_some_and(|n| n <= max)
}

/// `2024-05-01T12:30:00Z`, `2024-05-01 12:30:00.123+02:00`.
fn is_rfc3339(v: &str) -> bool {
    let b = v.as_bytes();
    let date = field(b, 0, 4, 9999)
        && b.get(4) == Some(&b'-')
        && field(b, 5, 2, 12)
        && b.get(7) == Some(&b'-')
        && field(b, 8, 2, 31)
        && matches!(b.get(10), Some(b'T' | b't' | b' '))
        && field(b, 11, 2, 23)
        && b.get(13) == Some(&b':')
        && field(b, 14, 2, 59)
        && b.get(16) == Some(&b':')
        && field(b, 17, 2, 60);
    if !date {
        return false;
    }
    let mut rest = b.get(19..).unwrap_or_default();
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = frac.get(n..).unwrap_or_default();
    }
    match rest {
        b"Z" | b"z" => true,
        [b'+' | b'-', ..] => {
            rest.len() == 6
                && field(rest, 1, 2, 23)
                && rest.get(3) == Some(&b':')
                && field(rest, 4, 2, 59)
        }
        _ => false,
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 IMF-fixdate).
fn is_http_date(v: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = v.split(' ').collect();
    let [day, dd, mon, year, time, gmt] = parts.as_slice() else {
        return false;
    };
    let t = time.as_bytes();
    day.strip_suffix(',').is_some_and(|d| DAYS.contains(&d))
        && field(dd.as_bytes(), 0, 2, 31)
        && dd.len() == 2
        && MONTHS.contains(mon)
        && year.len() == 4
        && field(year.as_bytes(), 0, 4, 9999)
        && t.len() == 8
        && field(t, 0, 2, 23)
        && field(t, 3, 2, 59)
        && field(t, 6, 2, 60)
        && *gmt == "GMT"
}

/// Unix time in seconds, milliseconds or microseconds between 2001-09-09 and 2100.
fn is_epoch(v: &str) -> bool {
    let int = v.split_once('.').map_or(v, |(i, frac)| {
        if !frac.is_empty() && frac.bytes().all(|c| c.is_ascii_digit()) {
            i
        } else {
            ""
        }
    });
    if int.is_empty() || int.len() > 17 || !int.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let Ok(n) = int.parse::<u64>() else {
        return false;
    };
    const UPPER: u64 = 4_102_444_800; // 2100-01-01
    (1_000_000_000..UPPER).contains(&n)
        || (1_000_000_000_000..UPPER * 1_000).contains(&n)
        || (1_000_000_000_000_000..UPPER * 1_000_000).contains(&n)
}

fn is_uuid(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Long random-looking tokens: hex (≥ 16) or base64/base64url (≥ 20), letters and digits mixed.
fn is_token(v: &str) -> bool {
    // Allow a short alphabetic prefix such as `req_` or `txn-`.
    let body = match v.split_once(['_', '-']) {
        Some((prefix, rest))
            if (1..=8).contains(&prefix.len())
                && prefix.bytes().all(|c| c.is_ascii_alphabetic()) =>
        {
            rest
        }
        _ => v,
    };
    let has_digit = body.bytes().any(|c| c.is_ascii_digit());
    let has_alpha = body.bytes().any(|c| c.is_ascii_alphabetic());
    if !(has_digit && has_alpha) {
        return false;
    }
    let hex = body.len() >= 16 && body.bytes().all(|c| c.is_ascii_hexdigit());
    let base64 = body.len() >= 20
        && body
            .trim_end_matches('=')
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_'));
    hex || base64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn recognises_timestamps() {
        for v in [
            "\"2024-05-01T12:30:00Z\"",
            "2024-05-01t12:30:00.123456+02:00",
            "2024-05-01 12:30:00-05:00",
            "Sun, 06 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(suggest_ignore(&[v]), Some("timestamp"), "{v}");
        }
        assert_eq!(suggest_ignore(&["2024-13-01T12:30:00Z"]), None);
        assert_eq!(suggest_ignore(&["2024-05-01"]), None);
        assert_eq!(suggest_ignore(&["2024-05-01T12:30:00"]), None, "no offset");
    }

    #[test]
    fn recognises_epoch_times() {
        for v in [
            "1714566600",
            "1714566600123",
            "1714566600.25",
            "\"1714566600123456\"",
        ] {
            assert_eq!(suggest_ignore(&[v]), Some("epoch_time"), "{v}");
        }
        for v in ["42", "999999999", "9999999999", "17145666001", "1.5"] {
            assert_eq!(suggest_ignore(&[v]), None, "{v}");
        }
    }

    #[test]
    fn recognises_uuids_and_request_ids() {
        assert_eq!(
            suggest_ignore(&["\"3f2504e0-4f89-11d3-9a0c-0305e82c3301\""]),
            Some("uuid")
        );
        for v in [
            "9f86d081884c7d65",
            "req_a1B2c3D4e5F6g7H8i9J0",
            "01HZX3N7Q8W2V5K9T4M6R1P0YB",
            "dGhpcyBpcyBhIHRva2VuIDEyMw==",
        ] {
            assert_eq!(suggest_ignore(&[v]), Some("request_id"), "{v}");
        }
        for v in [
            "internationalization",
            "hello world",
            "deadbeefdeadbeef",
            "0123456789012345",
            "\"cards\"",
            "true",
            "null",
        ] {
            assert_eq!(suggest_ignore(&[v]), None, "{v}");
        }
    }

    #[test]
    fn all_values_must_agree() {
        assert_eq!(suggest_ignore(&[]), None);
        assert_eq!(
            suggest_ignore(&["\"2024-05-01T12:30:00Z\"", "\"2024-05-01T12:30:01Z\""]),
            Some("timestamp")
        );
        assert_eq!(
            suggest_ignore(&["\"2024-05-01T12:30:00Z\"", "1714566600"]),
            None
        );
        assert_eq!(
            suggest_ignore(&["\"2024-05-01T12:30:00Z\"", "\"soon\""]),
            None
        );
    }
}
