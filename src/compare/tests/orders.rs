//! A deterministic ~100 KiB order listing, shared by the realistic comparison test and the
//! `diff` benchmark (which includes this file by path), so both measure the same document.

use serde_json::{Value, json};

/// A small deterministic generator (no randomness: runs compare like with like).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    pub fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        let i = usize::try_from(self.next()).unwrap_or(0) % options.len();
        options.get(i).copied().unwrap_or_default()
    }
}

/// One order item.
pub fn item(rng: &mut Lcg, id: u64) -> Value {
    json!({
        "id": id,
        "sku": format!("SKU-{id:05}"),
        "name": format!("{} {}", rng.pick(&["Steel", "Oak", "Linen", "Glass"]), rng.pick(&["Chair", "Lamp", "Table", "Shelf"])),
        "price": (rng.next() % 100_000) as f64 / 100.0,
        "currency": "EUR",
        "qty": rng.next() % 9 + 1,
        "tags": [rng.pick(&["new", "sale", "eco"]), rng.pick(&["indoor", "outdoor"]), "catalog"],
        "updated_at": format!("2024-05-01T12:{:02}:{:02}Z", rng.next() % 60, rng.next() % 60),
        "attributes": {"color": rng.pick(&["red", "blue", "black"]), "weight_g": rng.next() % 5000, "fragile": id.is_multiple_of(7)},
        "discounts": [{"code": format!("D{}", rng.next() % 100), "amount": (rng.next() % 500) as f64 / 100.0}],
    })
}

/// The listing with `items` items (400 make about 100 KiB).
pub fn document(items: u64) -> Value {
    let mut rng = Lcg(7);
    json!({
        "generated_at": "2024-05-01T12:00:00Z",
        "request_id": "req_9f86d081884c7d65",
        "account": {"id": "acct_42", "name": "Acme Corp", "email": "billing@acme.test",
                    "address": {"street": "1 Main St", "city": "Springfield", "country": "US"}},
        "items": (1..=items).map(|id| item(&mut rng, id)).collect::<Vec<_>>(),
        "totals": {"net": 12_345.67, "tax": 2_345.68, "gross": 14_691.35},
        "pagination": {"page": 1, "per_page": items, "total": items},
    })
}
