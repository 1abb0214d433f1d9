//! 10 000 tenants × 2 000 routes load and decide correctly. The load time is printed (run with
//! `--nocapture`), not asserted: machines differ.

use super::*;

#[path = "generate.rs"]
mod generate;

#[test]
fn ten_thousand_tenants_two_thousand_routes() {
    let f = Fixture::new();
    let path = generate::write_big_config(f.dir.path(), 10_000, 2_000);
    let started = switchyard::clock::Clock::system().instant();
    let rules = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let took = started.elapsed();
    println!(
        "loaded 10000 tenants x 2000 routes in {} ms",
        took.as_millis()
    );
    assert_eq!(rules.routes.len(), 2_000);
    assert_eq!(rules.known_tenants().len(), 10_000);

    // r1000 is GET-only /svc1000/items/{id}; r1001 its catch-all.
    let get = Req::get("/svc1000/items/42").tenant("t5000").decide(&rules);
    assert_eq!(get.route.as_deref(), Some("r1000"));
    let post = Req::new("POST", "/svc1000/items/42")
        .tenant("t5000")
        .decide(&rules);
    assert_eq!(post.route.as_deref(), Some("r1001"));
    let listed = Req::get("/svc1002/x").tenant("t7014").decide(&rules);
    assert_eq!(
        (listed.route.as_deref(), listed.reason),
        (Some("r1002"), Reason::TenantListed)
    );
    assert_eq!(
        Req::get("/svc1998").tenant("t7").decide(&rules).reason,
        Reason::TenantCutover
    );
    // r1000 has a cohort: eu + pro. t4 is eu (4 % 3 = 1), pro ((4 / 3) % 3 = 1).
    assert_eq!(
        Req::get("/svc1000/items/1")
            .tenant("t4")
            .decide(&rules)
            .reason,
        Reason::Cohort
    );
    assert_eq!(
        Req::get("/nothing/here").decide(&rules).reason,
        Reason::NoRoute
    );
}
