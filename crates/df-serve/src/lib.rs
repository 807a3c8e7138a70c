//! # df-serve
//!
//! A detection service around one [`df_detect::Detector`], on axum and tokio, for a
//! moderation pipeline that posts photos and videos, and a person who drops a file on a
//! page. The weights are loaded once; every forward pass of the detector runs on one
//! inference thread, in batches (up to [`ServeConfig::max_batch`] pictures, or what came
//! within [`ServeConfig::max_wait`] of the first), fed by a bounded queue: a full queue
//! answers `503` with `Retry-After`, as TorchServe and Triton do.
//!
//! | route | what |
//! | --- | --- |
//! | `POST /v1/score` | a photo or video (the body, or a multipart upload) → the verdict as `predict --per-frame` prints it, with `timings`; `?explain=1` adds Grad-CAM maps |
//! | `GET /v1/model` | the model card: family, parameters, input and preparation, the run's audit flags and validation metrics, the weights' SHA-256 |
//! | `GET /healthz` | `ok` |
//! | `GET /metrics` | Prometheus text: requests by status, latency, batch sizes, queue depth |
//! | `GET /` | a page: choose or drop a file, see the boxes, scores, heatmaps, verdict and card |
//!
//! Bad input is answered, never a panic: a body over [`ServeConfig::max_body`] is `413`,
//! content that is neither a supported image nor a video `415` naming what it is, a file
//! that does not decode `422` with the decoder's reason (as is a video over the frame or
//! duration limits), a body that does not arrive within [`ServeConfig::body_timeout`]
//! `408`. A client that has not sent a request's whole head (request line and headers)
//! within [`ServeConfig::header_timeout`] of connecting, or of its previous answer, is
//! disconnected. A video is written to a private temporary file (the `tempfile` crate),
//! removed when scored.
//!
//! ```no_run
//! use df_serve::{ServeConfig, Server};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::open(ServeConfig::new("runs/lfw/model.safetensors"))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // Stops taking connections on SIGTERM or Ctrl-C, finishes the requests in flight.
//! server.serve(listener, df_serve::shutdown_signal()).await?;
//! # Ok(()) }
//! ```

mod card;
mod engine;
mod explain;
mod input;
mod metrics;
mod page;
mod routes;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use df_detect::{Detector, DetectorOptions, Polarity};

pub use card::ModelCard;
pub use engine::InferenceHold;

/// What can go wrong starting the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening the detector (the message names the weights file).
    #[error(transparent)]
    Detector(#[from] df_detect::Error),
    /// The face detector.
    #[error(transparent)]
    Face(#[from] df_face::Error),
    /// An option that cannot be used, named.
    #[error("{0}")]
    Config(String),
    /// Reading the weights or the run's files, or the inference thread.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the service loads its detector and treats requests.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// A native checkpoint (`.safetensors`) or a Keras file (`.h5`, with `model`).
    pub weights: PathBuf,
    /// The registry name: required for a Keras file, checked against a checkpoint.
    pub model: Option<String>,
    /// What a Keras file's output scores.
    pub polarity: Polarity,
    /// The detector's device, precision, faces and video sampling.
    pub detector: DetectorOptions,
    /// The most pictures (whole images or face crops) in one forward pass (8).
    pub max_batch: usize,
    /// How long the inference thread waits for more requests after the first (5 ms).
    pub max_wait: Duration,
    /// Requests waiting for the inference thread beyond which `503` is answered (64).
    pub queue: usize,
    /// The largest request body in bytes (64 MiB): `413` above.
    pub max_body: usize,
    /// The time a client has to send its whole body (30 s): `408` after.
    pub body_timeout: Duration,
    /// The time a client has to send a request's line and headers, from its connection
    /// or its previous answer (30 s): the connection is closed after.
    pub header_timeout: Duration,
    /// The longest video accepted, in seconds (600): `422` above.
    pub max_video_seconds: f64,
    /// The most frames a video may hold (duration × rate; 100,000): `422` above.
    pub max_video_frames: f64,
    /// libtorch's intra-op threads (`None`: libtorch's default).
    pub threads: Option<usize>,
}

impl ServeConfig {
    /// Serving `weights` with the defaults.
    pub fn new(weights: impl Into<PathBuf>) -> Self {
        Self {
            weights: weights.into(),
            model: None,
            polarity: Polarity::default(),
            detector: DetectorOptions::default(),
            max_batch: 8,
            max_wait: Duration::from_millis(5),
            queue: 64,
            max_body: 64 << 20,
            body_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(30),
            max_video_seconds: 600.0,
            max_video_frames: 100_000.0,
            threads: None,
        }
    }

    /// A Keras file's registry `model` and `polarity`.
    pub fn keras(mut self, model: impl Into<String>, polarity: Polarity) -> Self {
        self.model = Some(model.into());
        self.polarity = polarity;
        self
    }

    /// Batches of at most `n` pictures, waiting at most `wait` after the first request.
    pub fn batching(mut self, n: usize, wait: Duration) -> Self {
        self.max_batch = n;
        self.max_wait = wait;
        self
    }

    /// A queue of `n` requests.
    pub fn queue(mut self, n: usize) -> Self {
        self.queue = n;
        self
    }

    /// Bodies of at most `bytes`.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The detector's options.
    pub fn detector(mut self, options: DetectorOptions) -> Self {
        self.detector = options;
        self
    }

    fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Config(what.to_string()));
        if self.max_batch == 0 {
            return bad("--max-batch: must be at least 1");
        }
        if self.queue == 0 {
            return bad("--queue: must be at least 1");
        }
        if self.max_body == 0 {
            return bad("--max-body: must be at least 1 byte");
        }
        // Positive, and at most a day (a deadline far beyond would overflow `Instant`).
        let day = Duration::from_secs(86_400);
        if self.body_timeout.is_zero() || self.body_timeout > day {
            return bad("--body-timeout-s: must be positive and at most 86400 (a day)");
        }
        if self.header_timeout.is_zero() || self.header_timeout > day {
            return bad("--header-timeout-s: must be positive and at most 86400 (a day)");
        }
        if !(self.max_video_seconds > 0.0 && self.max_video_frames >= 1.0) {
            return bad("--max-video-seconds and --max-video-frames: must be positive");
        }
        if self.threads == Some(0) {
            return bad("--threads: must be at least 1");
        }
        Ok(())
    }
}

/// The service: the detector on its inference thread, the model card, the metrics.
/// [`Server::router`] gives its routes to mount in an application of one's own;
/// [`Server::serve`] runs them on a listener until a shutdown signal.
#[derive(Debug)]
pub struct Server {
    state: Arc<routes::State>,
    engine: engine::Engine,
}

impl Server {
    /// Opens the weights (once) and starts the inference thread.
    ///
    /// # Errors
    /// An option that cannot be used; weights that cannot be opened (the message names
    /// the file); the face detector's weights missing when faces are scored.
    pub fn open(config: ServeConfig) -> Result<Self> {
        config.check()?;
        if let Some(n) = config.threads {
            tch::set_num_threads(n as i32);
        }
        let detector = Detector::open_weights(
            config.model.as_deref(),
            &config.weights,
            config.polarity,
            &config.detector,
        )?;
        if config.detector.device == tch::Device::Cpu {
            // Freed memory kept for the next forward pass, as `predict` does.
            let _ = df_train::allocator::retain_freed_memory();
        }
        let card = card::ModelCard::of(&detector, &config)?;
        let faces = if detector.scores_faces() {
            Some(input::FaceFinder::new(&detector, config.detector.device)?)
        } else {
            None
        };
        let transform = *detector.transform();
        let metrics = Arc::new(metrics::Metrics::new(config.queue));
        let engine = engine::Engine::start(detector, &config, metrics.clone())?;
        let state = Arc::new(routes::State {
            config,
            card,
            transform,
            faces,
            metrics,
            queue: engine.sender(),
        });
        Ok(Self { state, engine })
    }

    /// The service's routes (with their body limit and metrics), to serve or to mount.
    pub fn router(&self) -> axum::Router {
        routes::router(self.state.clone())
    }

    /// The model card [`GET /v1/model`](crate) answers.
    pub fn card(&self) -> &ModelCard {
        &self.state.card
    }

    /// The metrics in Prometheus' text format, as `GET /metrics` answers.
    pub fn metrics_text(&self) -> String {
        self.state.metrics.render()
    }

    /// Holds the inference thread before its next batch until the returned guard is
    /// dropped: requests then wait in the queue (for tests of the queue and batching).
    #[doc(hidden)]
    pub fn hold_inference(&self) -> InferenceHold {
        self.engine.hold()
    }

    /// Serves the routes on `listener` (HTTP/1.1) until `shutdown` completes; then stops
    /// taking connections, finishes the requests in flight (and the batches they wait
    /// on), and stops the inference thread. A connection whose request head does not
    /// arrive within [`ServeConfig::header_timeout`] is closed.
    ///
    /// # Errors
    /// The inference thread cannot be joined. A failed accept (too many open files, ...)
    /// is retried, as axum's `serve` does.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        use axum::serve::{Listener as _, ListenerExt as _};
        use hyper_util::rt::{TokioIo, TokioTimer};
        use hyper_util::service::TowerToHyperService;
        let app = self.router();
        // Answers go out at once (no Nagle delay waiting for the client's ACK).
        let mut listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        // hyper's own connection builder rather than `axum::serve`, which sets no timer:
        // without one a client that sends its headers slowly, or nothing, holds its
        // connection forever.
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.state.config.header_timeout);
        let connections = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (io, _peer) = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let service = TowerToHyperService::new(app.clone());
            let connection = connections.watch(http.serve_connection(TokioIo::new(io), service));
            tokio::spawn(async move {
                // A client that goes away, or sends no head in time: nothing to answer.
                let _ = connection.await;
            });
        }
        // No new connection; those open finish the request they are on, then close.
        drop(listener);
        connections.shutdown().await;
        let Server { state, engine } = self;
        drop(state);
        tokio::task::spawn_blocking(move || engine.stop())
            .await
            .map_err(std::io::Error::other)?;
        Ok(())
    }
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
