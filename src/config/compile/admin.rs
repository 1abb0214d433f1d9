//! `[admin]` and the admin tokens file it names.

use std::net::SocketAddr;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::Cx;
use crate::config::file::{RawAdmin, RawTokens};
use crate::config::{Positions, toml_error_in};
use crate::rules::{Admin, AdminRole, AdminToken};

pub(super) fn compile(cx: &mut Cx<'_>, raw: Option<&RawAdmin>) -> Admin {
    let default_listen = SocketAddr::from(([127, 0, 0, 1], 9901));
    let Some(a) = raw else {
        return Admin {
            listen: default_listen,
            tokens_file: None,
            tokens: Vec::new(),
            debug_headers: false,
            override_secret: None,
            max_body: 1 << 20,
        };
    };
    let listen = a
        .listen
        .as_ref()
        .and_then(|v| cx.socket(v, "admin.listen"))
        .unwrap_or(default_listen);
    let (tokens_file, tokens) = match &a.tokens_file {
        Some(v) => match cx.text_file(v, "admin.tokens_file") {
            Some((path, text)) => {
                let tokens = admin_tokens(cx, &path, &text);
                (Some(path), tokens)
            }
            None => (None, Vec::new()),
        },
        None => (None, Vec::new()),
    };
    let override_secret = a
        .override_secret_file
        .as_ref()
        .and_then(|v| cx.secret(v, "admin.override_secret_file"));
    let max_body = cx.size(a.max_body.as_ref(), 1 << 20).min(usize::MAX as u64) as usize;
    Admin {
        listen,
        tokens_file,
        tokens,
        debug_headers: a.debug_headers.unwrap_or(false),
        override_secret,
        max_body,
    }
}

/// `[tokens.<name>] role = "read"|"write"` with `secret_sha256 = "<hex>"` or `secret = "…"`.
fn admin_tokens(cx: &mut Cx<'_>, path: &Path, text: &str) -> Vec<AdminToken> {
    let raw: RawTokens = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let err = toml_error_in(path, text, &e);
            cx.diag.in_file(path, err.line, err.col, err.message);
            return Vec::new();
        }
    };
    let positions = Positions::new(text);
    let at = |cx: &mut Cx<'_>, span: std::ops::Range<usize>, msg: String| {
        let (line, col) = positions.at(span.start);
        cx.diag.in_file(path, line, col, msg);
    };
    let mut tokens = Vec::new();
    for (name, token) in &raw.tokens {
        let t = token.get_ref();
        let role = match t.role.get_ref().as_str() {
            "read" => AdminRole::Read,
            "write" => AdminRole::Write,
            other => {
                at(
                    cx,
                    t.role.span(),
                    format!("role must be \"read\" or \"write\", got {other:?}"),
                );
                continue;
            }
        };
        let digest = match (&t.secret, &t.secret_sha256) {
            (Some(s), None) if s.get_ref().len() >= 8 => {
                Sha256::digest(s.get_ref().as_bytes()).into()
            }
            (Some(s), None) => {
                at(
                    cx,
                    s.span(),
                    "secret must be at least 8 characters".to_owned(),
                );
                continue;
            }
            (None, Some(h)) => {
                let mut digest = [0u8; 32];
                if hex::decode_to_slice(h.get_ref().trim(), &mut digest).is_err() {
                    at(
                        cx,
                        h.span(),
                        "secret_sha256 must be 64 hex digits (sha256 of the secret)".to_owned(),
                    );
                    continue;
                }
                digest
            }
            _ => {
                at(
                    cx,
                    token.span(),
                    format!(
                        "token {:?} needs exactly one of `secret_sha256` or `secret`",
                        name.get_ref()
                    ),
                );
                continue;
            }
        };
        tokens.push(AdminToken {
            name: name.get_ref().clone(),
            role,
            secret_sha256: digest,
        });
    }
    tokens
}
