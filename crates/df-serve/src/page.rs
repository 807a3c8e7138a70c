//! The page at `/`: static HTML, CSS and JavaScript compiled into the binary (no build
//! step, nothing fetched from elsewhere).

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../static/index.html");
const SCRIPT: &str = include_str!("../static/app.js");
const STYLE: &str = include_str!("../static/style.css");

fn text(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:",
                ),
            ),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn index() -> Response {
    text(INDEX, "text/html; charset=utf-8")
}

pub(crate) async fn script() -> Response {
    text(SCRIPT, "text/javascript; charset=utf-8")
}

pub(crate) async fn style() -> Response {
    text(STYLE, "text/css; charset=utf-8")
}
