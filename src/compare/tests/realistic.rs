//! Two realistic ~100 KiB documents (an order listing) compared under a typical rule set.

use bytes::Bytes;
use http::HeaderValue;
use serde_json::json;

use super::{gzip, json_resp, kinds, rules};

#[path = "orders.rs"]
mod orders;
use crate::compare::{Kind, diff};
use orders::{Lcg, document, item};

const ITEMS: u64 = 400;

#[test]
fn realistic_documents_report_exactly_the_real_changes() {
    let a = document(ITEMS);
    let size = a.to_string().len();
    assert!((90 << 10..=140 << 10).contains(&size), "{size} bytes");

    let mut b = a.clone();
    b["generated_at"] = json!("2024-05-01T12:00:01.5Z");
    b["request_id"] = json!("req_0000aaaa1111bbbb");
    b["account"]["email"] = json!("billing@acme.example");
    b["totals"]["gross"] = json!(14_691.354);
    let items = b["items"].as_array_mut().unwrap();
    for (i, it) in items.iter_mut().enumerate() {
        it["updated_at"] = json!(format!("2024-06-0{}T00:00:00Z", i % 9 + 1));
    }
    items[10]["price"] = json!(1.5);
    items[20]["tags"].as_array_mut().unwrap().reverse();
    items[40]["attributes"]["fragile"] = json!("no");
    items.remove(30);
    items.reverse();
    items.push(item(&mut Lcg(99), 9999));

    let r = rules(|c| {
        c.ignore = vec![
            "/generated_at".into(),
            "/request_id".into(),
            "/items/*/updated_at".into(),
        ];
        c.unordered = vec!["/items/*/tags".into()];
        c.keyed.insert("/items".into(), "id".into());
        c.redact = vec!["/account/email".into()];
        c.tolerance = Some(0.01);
    });
    let mut shadow = json_resp(&b);
    shadow.body = Bytes::from(gzip(&shadow.body));
    shadow
        .headers
        .insert("content-encoding", HeaderValue::from_static("gzip"));
    let d = diff(&json_resp(&a), &shadow, &r);

    let last = format!("/items/{}", ITEMS - 1);
    assert_eq!(
        kinds(&d),
        [
            (Kind::Value, "/account/email"),
            (Kind::Value, "/items/10/price"),
            (Kind::Missing, "/items/30"),
            (Kind::Type, "/items/40/attributes/fragile"),
            (Kind::Extra, last.as_str()),
        ]
    );
    assert_eq!(d.differences[1].pattern, "/items/*/price");
    assert!(
        d.differences[0]
            .shadow
            .as_deref()
            .unwrap()
            .starts_with("\"redacted:")
    );
    assert!(!d.truncated);

    // Without the rules, the same pair is full of differences, and the cap holds.
    let noisy = diff(&json_resp(&a), &shadow, &Default::default());
    assert!(noisy.truncated);
    assert_eq!(noisy.differences.len(), crate::compare::MAX_DIFFERENCES);
}
