//! A large generated config (many tenants, many routes) shared by the scale test and the
//! `decide` benchmark.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Secret of the generated HS256 tenant source.
pub const JWT_SECRET: &str = "bench-jwt-secret-0123456789";

/// Writes `gw.toml`, `tenants.toml` and `jwt.key` into `dir`; returns the config path.
///
/// Tenants `t0`…: region and plan from the directory. Routes come in fours: `r{4k}` is
/// `/svc{4k}/items/{id}` GET-only, `r{4k+1}` its `/svc{4k}/{*rest}` fallback for other
/// methods, `r{4k+2}` and `r{4k+3}` plain list patterns; each lists, excludes and buckets a
/// few tenants, and every tenth has a cohort.
pub fn write_big_config(dir: &Path, tenants: usize, routes: usize) -> PathBuf {
    let mut directory = String::with_capacity(tenants * 48);
    for t in 0..tenants {
        let region = ["us", "eu", "apac"][t % 3];
        let plan = ["free", "pro", "enterprise"][(t / 3) % 3];
        let _ = writeln!(
            directory,
            "[tenants.t{t}]\nregion = \"{region}\"\nplan = \"{plan}\""
        );
    }
    std::fs::write(dir.join("tenants.toml"), directory).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("jwt.key"), JWT_SECRET).unwrap_or_else(|e| panic!("{e}"));
    let mut config = String::from(
        r#"[listen]
http = "127.0.0.1:8080"

[tenant]
sources = [
  { header = "x-tenant-id" },
  { jwt_claim = "org", header = "authorization", hs256_secret_file = "jwt.key" },
]
directory = "tenants.toml"

[upstreams.legacy]
origins = ["http://127.0.0.1:8001"]

[upstreams.new]
origins = ["http://127.0.0.1:8002"]

[tenants.t7]
side = "new"
"#,
    );
    let tenants = tenants.max(1);
    for r in 0..routes {
        let base = r - r % 4;
        let (path, methods) = match r % 4 {
            0 => (
                format!("\"/svc{base}/items/{{id}}\""),
                "methods = [\"GET\"]\n",
            ),
            1 => (format!("\"/svc{base}/{{*rest}}\""), ""),
            _ => (format!("[\"/svc{r}\", \"/svc{r}/{{*rest}}\"]"), ""),
        };
        let listed = (0..3)
            .map(|k| format!("\"t{}\"", (r * 7 + k * 13) % tenants))
            .collect::<Vec<_>>()
            .join(", ");
        let excluded = format!("\"t{}\"", (r * 7 + 5) % tenants);
        let cohorts = if r % 10 == 0 {
            "cohorts = [{ region = \"eu\", plan = \"pro\" }]\n"
        } else {
            ""
        };
        let _ = write!(
            config,
            "\n[[routes]]\nname = \"r{r}\"\npath = {path}\n{methods}legacy = \"legacy\"\nnew = \"new\"\ntenants = [{listed}]\nexclude = [{excluded}]\n{cohorts}percent = {}\n",
            r % 100
        );
    }
    let path = dir.join("gw.toml");
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("{e}"));
    path
}
