//! The routes and their handlers.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State as Shared};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use df_data::Transform;
use df_detect::{Face, FrameVerdict, ImageVerdict, Label, VideoVerdict};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::card::ModelCard;
use crate::engine::{Queue, Refused, Scored, Work};
use crate::input::{self, Content, FaceFinder, Pictures};
use crate::metrics::Metrics;
use crate::ServeConfig;

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct State {
    pub config: ServeConfig,
    pub card: ModelCard,
    pub transform: Transform,
    pub faces: Option<FaceFinder>,
    pub metrics: Arc<Metrics>,
    pub queue: Queue,
}

type St = Arc<State>;

pub(crate) fn router(state: St) -> Router {
    let limit = state.config.max_body;
    Router::new()
        .route("/", get(crate::page::index))
        .route("/app.js", get(crate::page::script))
        .route("/style.css", get(crate::page::style))
        .route("/v1/score", post(score))
        .route("/v1/model", get(model))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Counts each response by route and status, with its latency.
async fn track(Shared(st): Shared<St>, request: Request, next: Next) -> Response {
    let route = match request.uri().path() {
        "/v1/score" => "score",
        "/v1/model" => "model",
        "/healthz" => "healthz",
        "/metrics" => "metrics",
        "/" | "/app.js" | "/style.css" => "page",
        _ => "other",
    };
    let start = Instant::now();
    st.metrics.started();
    let response = next.run(request).await;
    st.metrics
        .finished(route, response.status().as_u16(), start.elapsed());
    response
}

async fn model(Shared(st): Shared<St>) -> Response {
    axum::Json(&st.card).into_response()
}

async fn metrics(Shared(st): Shared<St>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        st.metrics.render(),
    )
        .into_response()
}

/// An error answer: `{"error": message}` with `status`.
fn fail(status: StatusCode, message: impl Into<String>) -> Response {
    let mut r = (status, axum::Json(json!({"error": message.into()}))).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

fn refused(r: Refused) -> Response {
    match r {
        Refused::Full => fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "the queue is full: retry after a second",
        ),
        Refused::Stopped => fail(StatusCode::SERVICE_UNAVAILABLE, "the service is stopping"),
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The body (raw, or the first file of a multipart form) and the upload's name.
async fn read_body(st: &St, request: Request) -> Result<(Vec<u8>, Option<String>), Response> {
    let limit = st.config.max_body;
    let too_large = || {
        fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than the limit of {limit} bytes (--max-body)"),
        )
    };
    if let Some(n) = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if n > limit as u64 {
            return Err(too_large());
        }
    }
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if multipart {
        let mut form = Multipart::from_request(request, st)
            .await
            .map_err(|e| fail(StatusCode::BAD_REQUEST, e.body_text()))?;
        loop {
            let field = form.next_field().await.map_err(|e| {
                let status = e.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    fail(status, e.body_text())
                }
            })?;
            let Some(field) = field else {
                return Err(fail(
                    StatusCode::BAD_REQUEST,
                    "the multipart form holds no file (send it as a field named `file`)",
                ));
            };
            let name = field.file_name().map(str::to_string);
            if name.is_none() && field.name() != Some("file") {
                continue;
            }
            let bytes = field.bytes().await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    fail(e.status(), e.body_text())
                }
            })?;
            return Ok((bytes.to_vec(), name));
        }
    }
    let bytes = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|e| {
            // http-body-util's `LengthLimitError`, somewhere in the chain.
            let limited =
                std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .any(|e| e.to_string().contains("length limit exceeded"));
            if limited {
                too_large()
            } else {
                fail(StatusCode::BAD_REQUEST, format!("reading the body: {e}"))
            }
        })?;
    Ok((bytes.to_vec(), None))
}

async fn score(Shared(st): Shared<St>, request: Request) -> Response {
    let start = Instant::now();
    let explain = request.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|kv| matches!(kv, "explain=1" | "explain=true" | "explain"))
    });
    let read = tokio::time::timeout(st.config.body_timeout, read_body(&st, request)).await;
    let (body, name) = match read {
        Err(_) => {
            return fail(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {} s",
                    st.config.body_timeout.as_secs_f64()
                ),
            )
        }
        Ok(Err(response)) => return response,
        Ok(Ok(b)) => b,
    };
    let received = start.elapsed();
    match input::sniff(&body) {
        Content::Other(what) => fail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "expected a photo (JPEG, PNG, BMP, WebP) or a video (MP4, MOV, MKV, WebM, \
                 AVI); found {what}"
            ),
        ),
        Content::Image => score_image(st, body, name, explain, start, received).await,
        Content::Video(ext) => score_video(st, body, name, ext, start, received).await,
    }
}

/// Runs `f` on tokio's blocking threads; a panic there is an error answer.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Response> + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|_| {
        Err(fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reading the file failed (a panic)",
        ))
    })
}

/// Queues `x` and waits for its scores.
async fn scores(st: &St, x: tch::Tensor) -> Result<Scored, Response> {
    let (reply, answer) = oneshot::channel();
    st.queue.submit(Work::Rows { x, reply }).map_err(refused)?;
    match answer.await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(message)) => Err(fail(StatusCode::INTERNAL_SERVER_ERROR, message)),
        Err(_) => Err(fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "the inference thread stopped",
        )),
    }
}

fn faces_of(boxes: &[([f32; 4], f32)], p: &[f64]) -> Vec<Face> {
    boxes
        .iter()
        .zip(p)
        .map(|(&(bbox, probability), &p_fake)| Face {
            bbox,
            probability,
            p_fake,
        })
        .collect()
}

async fn score_image(
    st: St,
    body: Vec<u8>,
    name: Option<String>,
    explain: bool,
    start: Instant,
    received: Duration,
) -> Response {
    let shared = st.clone();
    let prepared = blocking(move || {
        let image = df_data::decode_rgb(&body).map_err(|why| {
            fail(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the image does not decode: {why}"),
            )
        })?;
        let pictures = input::pictures(&image, &shared.transform, shared.faces.as_ref())
            .map_err(|why| fail(StatusCode::UNPROCESSABLE_ENTITY, why))?;
        Ok((image, pictures))
    })
    .await;
    let (image, Pictures { x, faces: boxes }) = match prepared {
        Ok(p) => p,
        Err(r) => return r,
    };
    let decoded = start.elapsed();
    let mut timings = json!({"receive_ms": ms(received), "decode_ms": ms(decoded - received)});
    let (p, batch) = match x {
        Some(x) => match scores(&st, x).await {
            Ok(s) => {
                timings["queue_ms"] = json!(ms(s.queue));
                timings["inference_ms"] = json!(ms(s.inference));
                (s.p_fake, s.batch)
            }
            Err(r) => return r,
        },
        None => (Vec::new(), 0),
    };
    let verdict = match &boxes {
        Some(boxes) => {
            let faces = faces_of(boxes, &p);
            let p_fake = faces.iter().map(|f| f.p_fake).reduce(f64::max);
            ImageVerdict {
                p_fake,
                label: Label::of(p_fake),
                faces: Some(faces),
            }
        }
        None => {
            let p_fake = p.first().copied();
            ImageVerdict {
                p_fake,
                label: Label::of(p_fake),
                faces: None,
            }
        }
    };
    let mut out = serde_json::to_value(&verdict).unwrap_or_else(|_| json!({}));
    out["kind"] = json!("image");
    out["width"] = json!(image.width());
    out["height"] = json!(image.height());
    out["batch"] = json!(batch);
    if let Some(name) = name {
        out["file"] = json!(name);
    }
    if explain {
        let (reply, answer) = oneshot::channel();
        let work = Work::Explain {
            image: Box::new(image),
            reply,
        };
        if let Err(r) = st.queue.submit(work) {
            return refused(r);
        }
        match answer.await {
            Ok(Ok(e)) => {
                out["explain"] = json!(e.maps);
                timings["explain_ms"] = json!(ms(e.inference));
                timings["explain_queue_ms"] = json!(ms(e.queue));
            }
            Ok(Err(message)) => out["explain_error"] = json!(message),
            Err(_) => out["explain_error"] = json!("the inference thread stopped"),
        }
    }
    timings["total_ms"] = json!(ms(start.elapsed()));
    out["timings"] = timings;
    axum::Json(out).into_response()
}

/// A video's frames as the detector's inputs, read from a private temporary file.
struct VideoInput {
    frames: Vec<Pictures>,
    width: u32,
    height: u32,
}

fn read_video(st: &State, body: &[u8], ext: &str) -> Result<VideoInput, Response> {
    let unprocessable = |m: String| fail(StatusCode::UNPROCESSABLE_ENTITY, m);
    let internal = |m: String| fail(StatusCode::INTERNAL_SERVER_ERROR, m);
    // Only the file's own name in messages, never the temporary folder.
    let mut file = tempfile::Builder::new()
        .prefix("df-serve-")
        .suffix(&format!(".{ext}"))
        .tempfile()
        .map_err(|e| internal(format!("a temporary file for the video: {e}")))?;
    file.write_all(body)
        .and_then(|()| file.flush())
        .map_err(|e| internal(format!("writing the video to a temporary file: {e}")))?;
    let path = file.path().to_path_buf();
    let clean = |m: String| m.replace(&path.display().to_string(), "the uploaded video");
    df_data::ffmpeg_path(&path).map_err(|e| internal(clean(e.to_string())))?;
    let info = df_data::probe_video(&path).map_err(|e| {
        unprocessable(format!(
            "the video does not decode: {}",
            clean(e.to_string())
        ))
    })?;
    if let Some(why) = input::video_limits(
        &info,
        st.config.max_video_seconds,
        st.config.max_video_frames,
    ) {
        return Err(unprocessable(why));
    }
    let sampling = input::sampling(&st.config);
    let stream = df_data::open_video(&path, &sampling).map_err(|e| {
        unprocessable(format!(
            "the video does not decode: {}",
            clean(e.to_string())
        ))
    })?;
    let mut frames = Vec::new();
    for frame in stream {
        let frame = frame.map_err(|e| {
            unprocessable(format!(
                "the video does not decode: {}",
                clean(e.to_string())
            ))
        })?;
        let mut pictures = input::pictures(&frame.image, &st.transform, st.faces.as_ref())
            .map_err(unprocessable)?;
        if let Some(boxes) = &mut pictures.faces {
            for (b, _) in boxes.iter_mut() {
                for v in b.iter_mut() {
                    *v = (f64::from(*v) * frame.scale) as f32;
                }
            }
        }
        frames.push(pictures);
    }
    drop(file);
    Ok(VideoInput {
        frames,
        width: info.width,
        height: info.height,
    })
}

async fn score_video(
    st: St,
    body: Vec<u8>,
    name: Option<String>,
    ext: &'static str,
    start: Instant,
    received: Duration,
) -> Response {
    let shared = st.clone();
    let video = match blocking(move || read_video(&shared, &body, ext)).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let decoded = start.elapsed();
    let mut timings = json!({"receive_ms": ms(received), "decode_ms": ms(decoded - received)});
    let rows: Vec<tch::Tensor> = video
        .frames
        .iter()
        .filter_map(|f| f.x.as_ref().map(tch::Tensor::shallow_clone))
        .collect();
    let (p, batch) = if rows.is_empty() {
        (Vec::new(), 0)
    } else {
        let x = match tch::Tensor::f_cat(&rows, 0) {
            Ok(x) => x,
            Err(e) => return fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
        match scores(&st, x).await {
            Ok(s) => {
                timings["queue_ms"] = json!(ms(s.queue));
                timings["inference_ms"] = json!(ms(s.inference));
                (s.p_fake, s.batch)
            }
            Err(r) => return r,
        }
    };
    let mut at = 0;
    let mut frames = Vec::new();
    for (index, f) in video.frames.iter().enumerate() {
        let n = f.rows();
        let mine = p.get(at..at + n).unwrap_or_default();
        at += n;
        frames.push(match &f.faces {
            Some(boxes) => {
                let faces = faces_of(boxes, mine);
                FrameVerdict {
                    index,
                    p_fake: faces.iter().map(|f| f.p_fake).reduce(f64::max),
                    faces: Some(faces),
                }
            }
            None => FrameVerdict {
                index,
                p_fake: mine.first().copied(),
                faces: None,
            },
        });
    }
    let scored: Vec<f64> = frames.iter().filter_map(|f| f.p_fake).collect();
    let p_fake = (!scored.is_empty()).then(|| scored.iter().sum::<f64>() / scored.len() as f64);
    let verdict = VideoVerdict {
        p_fake,
        label: Label::of(p_fake),
        frames,
        faces: st.faces.is_some(),
    };
    let shown = name.clone().unwrap_or_else(|| format!("upload.{ext}"));
    let report = verdict.report(Path::new(&shown), true);
    let mut out = serde_json::to_value(&report).unwrap_or_else(|_| json!({}));
    out["kind"] = json!("video");
    out["width"] = json!(video.width);
    out["height"] = json!(video.height);
    out["batch"] = json!(batch);
    if name.is_some() {
        out["file"] = json!(shown);
    }
    timings["total_ms"] = json!(ms(start.elapsed()));
    out["timings"] = timings;
    axum::Json::<Value>(out).into_response()
}
