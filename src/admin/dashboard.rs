//! The dashboard at `GET /` of the admin listener: one static page, its script and style,
//! compiled into the binary (`include_str!`) — no CDN, no build step, works offline.
//!
//! The page holds no data, so it is served without a token; the operator signs in with a read
//! token typed into a form, kept in `sessionStorage` (gone with the tab) and sent as
//! `Authorization: Bearer` on every call to the JSON API. A token never appears in a URL: the
//! form posts nowhere useful (`POST /` is not a route) and the script never puts it in a query
//! string. A strict Content-Security-Policy allows only this origin's script and style, and no
//! framing.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AdminState;

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const STYLE_CSS: &str = include_str!("dashboard/style.css");
const ICON_SVG: &str = include_str!("dashboard/icon.svg");

/// Only this origin's files and API; inline SVG built by the script needs nothing more.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The dashboard's routes (no authentication: static files only).
pub fn router() -> Router<Arc<AdminState>> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/dashboard/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/dashboard/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route(
            "/dashboard/icon.svg",
            get(|| async { asset("image/svg+xml", ICON_SVG) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            // The files change with the binary only; revalidate so an upgrade shows at once.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_embedded_assets() {
        assert!(INDEX_HTML.contains("<html"));
        assert!(INDEX_HTML.contains("/dashboard/app.js"));
        for text in [INDEX_HTML, APP_JS, STYLE_CSS] {
            // The SVG namespace is a name, not a resource.
            let text = text.replace("http://www.w3.org/2000/svg", "");
            assert!(!text.contains("https://"), "no external resource");
            assert!(!text.contains("http://"), "no external resource");
        }
        // The token travels in a header only.
        assert!(APP_JS.contains("sessionStorage"));
        assert!(APP_JS.contains("'Bearer '"));
        assert!(!APP_JS.contains("?token"));
        assert!(!APP_JS.contains("&token"));
    }
}
