//! The inference thread: it owns the [`Detector`] (whose model is not `Sync`), takes jobs
//! from a bounded queue and runs the pictures of the jobs that came together in batches.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use df_detect::Detector;
use image::RgbImage;
use tch::Tensor;
use tokio::sync::oneshot;

use crate::metrics::Metrics;
use crate::ServeConfig;

/// What the inference thread says of one job's pictures.
#[derive(Debug)]
pub(crate) struct Scored {
    /// p(fake) of each row, in order.
    pub p_fake: Vec<f64>,
    /// Time from queueing to the start of its batch.
    pub queue: Duration,
    /// Time of the forward passes of its batch.
    pub inference: Duration,
    /// The pictures in the largest forward pass it was part of.
    pub batch: usize,
}

/// A Grad-CAM answer: the verdict's maps, as PNG overlays.
#[derive(Debug)]
pub(crate) struct Explained {
    pub maps: Vec<crate::explain::MapOut>,
    pub queue: Duration,
    pub inference: Duration,
}

pub(crate) enum Work {
    /// Preprocessed pictures `[N, 3, H, W]` (N ≥ 1) to score.
    Rows {
        x: Tensor,
        reply: oneshot::Sender<Result<Scored, String>>,
    },
    /// A picture to explain (run alone: it needs gradients).
    Explain {
        image: Box<RgbImage>,
        reply: oneshot::Sender<Result<Explained, String>>,
    },
    /// The end: the thread runs the batch it has and stops.
    Stop,
}

pub(crate) struct Job {
    pub work: Work,
    pub queued: Instant,
}

impl Job {
    fn rows(&self) -> usize {
        match &self.work {
            Work::Rows { x, .. } => x.size().first().map_or(0, |&n| n.max(0) as usize),
            Work::Explain { .. } => 1,
            Work::Stop => 0,
        }
    }
}

/// Why a job was not queued.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The queue is full.
    Full,
    /// The inference thread is gone (stopping).
    Stopped,
}

/// The sending side, shared by the request handlers.
#[derive(Debug, Clone)]
pub(crate) struct Queue {
    tx: SyncSender<Job>,
    metrics: Arc<Metrics>,
}

impl Queue {
    /// Queues `work`, or says why not (at once: never waits for room).
    pub fn submit(&self, work: Work) -> Result<(), Refused> {
        self.metrics.queue_depth.fetch_add(1, Ordering::SeqCst);
        let job = Job {
            work,
            queued: Instant::now(),
        };
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.metrics.queue_depth.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    TrySendError::Full(_) => Refused::Full,
                    TrySendError::Disconnected(_) => Refused::Stopped,
                })
            }
        }
    }
}

#[derive(Debug, Default)]
struct Gate {
    held: Mutex<usize>,
    opened: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        while *held > 0 {
            held = self.opened.wait(held).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Holds the inference thread before its next batch while alive
/// ([`crate::Server::hold_inference`]).
#[derive(Debug)]
pub struct InferenceHold {
    gate: Arc<Gate>,
}

impl Drop for InferenceHold {
    fn drop(&mut self) {
        let mut held = self.gate.held.lock().unwrap_or_else(|e| e.into_inner());
        *held = held.saturating_sub(1);
        self.gate.opened.notify_all();
    }
}

/// The inference thread and its queue.
#[derive(Debug)]
pub(crate) struct Engine {
    queue: Option<Queue>,
    thread: Option<JoinHandle<()>>,
    gate: Arc<Gate>,
}

impl Engine {
    pub fn start(
        detector: Detector,
        config: &ServeConfig,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(config.queue);
        let gate = Arc::new(Gate::default());
        let worker = Worker {
            detector,
            rx,
            max_batch: config.max_batch,
            max_wait: config.max_wait,
            metrics: metrics.clone(),
            gate: gate.clone(),
            device: config.detector.device,
        };
        let thread = std::thread::Builder::new()
            .name("df-serve-inference".into())
            .spawn(move || worker.run())?;
        Ok(Self {
            queue: Some(Queue { tx, metrics }),
            thread: Some(thread),
            gate,
        })
    }

    pub fn sender(&self) -> Queue {
        // Present until `stop`, which consumes the engine.
        self.queue.clone().unwrap_or_else(unreachable_queue)
    }

    pub fn hold(&self) -> InferenceHold {
        let mut held = self.gate.held.lock().unwrap_or_else(|e| e.into_inner());
        *held += 1;
        InferenceHold {
            gate: self.gate.clone(),
        }
    }

    /// Lets the queued jobs finish, then ends the thread (the routes of a router still
    /// alive answer 503 after).
    pub fn stop(mut self) {
        if let Some(queue) = self.queue.take() {
            // Waits for room: the thread is draining the queue.
            let _ = queue.tx.send(Job {
                work: Work::Stop,
                queued: Instant::now(),
            });
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn unreachable_queue() -> Queue {
    // A queue whose receiver is gone: every submission is refused as `Stopped`.
    let (tx, _rx) = sync_channel(1);
    Queue {
        tx,
        metrics: Arc::new(Metrics::new(1)),
    }
}

struct Worker {
    detector: Detector,
    rx: Receiver<Job>,
    max_batch: usize,
    max_wait: Duration,
    metrics: Arc<Metrics>,
    gate: Arc<Gate>,
    device: tch::Device,
}

impl Worker {
    fn take(&self) {
        self.metrics.queue_depth.fetch_sub(1, Ordering::SeqCst);
    }

    fn run(self) {
        let mut stop = false;
        while !stop {
            let Ok(first) = self.rx.recv() else { break };
            if matches!(first.work, Work::Stop) {
                break;
            }
            self.take();
            self.gate.wait();
            let mut rows = first.rows();
            let mut jobs = vec![first];
            let deadline = Instant::now() + self.max_wait;
            while rows < self.max_batch {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.rx.recv_timeout(left) {
                    Ok(Job {
                        work: Work::Stop, ..
                    }) => {
                        stop = true;
                        break;
                    }
                    Ok(job) => {
                        self.take();
                        rows += job.rows();
                        jobs.push(job);
                    }
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            self.run_batch(jobs);
        }
    }

    fn run_batch(&self, jobs: Vec<Job>) {
        let started = Instant::now();
        let mut xs = Vec::new();
        let mut waiting = Vec::new();
        let mut explains = Vec::new();
        for job in jobs {
            match job.work {
                Work::Rows { x, reply } => {
                    let n = x.size().first().copied().unwrap_or(0).max(0) as usize;
                    xs.push(x);
                    waiting.push((n, reply, started.saturating_duration_since(job.queued)));
                }
                Work::Explain { image, reply } => explains.push((image, reply, job.queued)),
                Work::Stop => {}
            }
        }
        if !xs.is_empty() {
            let outcome = self.forward(&xs);
            let inference = started.elapsed();
            match outcome {
                Ok((p, largest)) => {
                    let mut at = 0;
                    for (n, reply, queue) in waiting {
                        let p_fake = p.get(at..at + n).map(<[f64]>::to_vec).unwrap_or_default();
                        at += n;
                        let _ = reply.send(Ok(Scored {
                            p_fake,
                            queue,
                            inference,
                            batch: largest,
                        }));
                    }
                }
                Err(message) => {
                    for (_, reply, _) in waiting {
                        let _ = reply.send(Err(message.clone()));
                    }
                }
            }
        }
        for (image, reply, queued) in explains {
            let start = Instant::now();
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                crate::explain::explain(&self.detector, &image)
            }))
            .unwrap_or_else(|_| Err("the Grad-CAM computation failed (a panic)".into()));
            self.metrics.record_batch(1);
            let _ = reply.send(outcome.map(|maps| Explained {
                maps,
                queue: start.saturating_duration_since(queued),
                inference: start.elapsed(),
            }));
        }
    }

    /// p(fake) of every row of `xs`, in forward passes of at most `max_batch` rows;
    /// also the size of the largest pass.
    fn forward(&self, xs: &[Tensor]) -> Result<(Vec<f64>, usize), String> {
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            let x = Tensor::f_cat(xs, 0).map_err(|e| e.to_string())?;
            let total = x.size().first().copied().unwrap_or(0).max(0) as usize;
            let mut p = Vec::with_capacity(total);
            let mut largest = 0;
            let mut start = 0;
            while start < total {
                let n = self.max_batch.min(total - start);
                let chunk = x
                    .f_narrow(0, start as i64, n as i64)
                    .map_err(|e| e.to_string())?
                    .f_to_device(self.device)
                    .map_err(|e| e.to_string())?;
                let scores = self.detector.p_fake(&chunk).map_err(|e| e.to_string())?;
                if scores.len() != n {
                    return Err(format!(
                        "the model gave {} scores for {n} pictures",
                        scores.len()
                    ));
                }
                if let Some(bad) = scores.iter().find(|s| !s.is_finite()) {
                    return Err(format!(
                        "the model's score is {bad}: its weights hold NaN or infinite values"
                    ));
                }
                self.metrics.record_batch(n);
                largest = largest.max(n);
                p.extend(scores);
                start += n;
            }
            Ok((p, largest))
        }))
        .unwrap_or_else(|_| Err("the forward pass failed (a panic in the model)".into()))
    }
}
