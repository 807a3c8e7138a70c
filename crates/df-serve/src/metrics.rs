//! The service's metrics, written in Prometheus' text format (version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const LATENCY_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Upper bounds of the batch-size histogram, in pictures.
const BATCH_BOUNDS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        for (b, c) in self.bounds.iter().zip(&mut self.counts) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// Counters, gauges and histograms of the service.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Jobs waiting for the inference thread.
    pub queue_depth: AtomicI64,
    capacity: usize,
    in_flight: AtomicUsize,
    /// Responses by (route, status).
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    batches: Mutex<Histogram>,
}

impl Metrics {
    pub fn new(capacity: usize) -> Self {
        Self {
            queue_depth: AtomicI64::new(0),
            capacity,
            in_flight: AtomicUsize::new(0),
            requests: Mutex::new(BTreeMap::new()),
            latency: Mutex::new(BTreeMap::new()),
            batches: Mutex::new(Histogram::new(BATCH_BOUNDS)),
        }
    }

    pub fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    pub fn finished(&self, route: &'static str, status: u16, took: Duration) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((route, status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            l.entry(route)
                .or_insert_with(|| Histogram::new(LATENCY_BOUNDS))
                .observe(took.as_secs_f64());
        }
    }

    pub fn record_batch(&self, n: usize) {
        if let Ok(mut b) = self.batches.lock() {
            b.observe(n as f64);
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP deepfake_serve_requests_total HTTP responses by route and status.\n\
             # TYPE deepfake_serve_requests_total counter\n",
        );
        if let Ok(r) = self.requests.lock() {
            for ((route, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "deepfake_serve_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP deepfake_serve_request_duration_seconds Time from request to response.\n\
             # TYPE deepfake_serve_request_duration_seconds histogram\n",
        );
        if let Ok(l) = self.latency.lock() {
            for (route, h) in l.iter() {
                h.render(
                    &mut out,
                    "deepfake_serve_request_duration_seconds",
                    &format!("route=\"{route}\""),
                );
            }
        }
        out.push_str(
            "# HELP deepfake_serve_batch_size Pictures in each forward pass of the detector.\n\
             # TYPE deepfake_serve_batch_size histogram\n",
        );
        if let Ok(b) = self.batches.lock() {
            b.render(&mut out, "deepfake_serve_batch_size", "");
        }
        let _ = write!(
            out,
            "# HELP deepfake_serve_queue_depth Jobs waiting for the inference thread.\n\
             # TYPE deepfake_serve_queue_depth gauge\n\
             deepfake_serve_queue_depth {}\n\
             # HELP deepfake_serve_queue_capacity Jobs the queue holds before 503.\n\
             # TYPE deepfake_serve_queue_capacity gauge\n\
             deepfake_serve_queue_capacity {}\n\
             # HELP deepfake_serve_requests_in_flight Requests being answered.\n\
             # TYPE deepfake_serve_requests_in_flight gauge\n\
             deepfake_serve_requests_in_flight {}\n",
            self.queue_depth.load(Ordering::SeqCst).max(0),
            self.capacity,
            self.in_flight.load(Ordering::SeqCst),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_the_text_is_prometheus_format() {
        let m = Metrics::new(4);
        for n in [1, 3, 8] {
            m.record_batch(n);
        }
        m.started();
        m.finished("score", 200, Duration::from_millis(3));
        let text = m.render();
        for line in [
            "deepfake_serve_batch_size_bucket{le=\"1\"} 1",
            "deepfake_serve_batch_size_bucket{le=\"2\"} 1",
            "deepfake_serve_batch_size_bucket{le=\"4\"} 2",
            "deepfake_serve_batch_size_bucket{le=\"8\"} 3",
            "deepfake_serve_batch_size_bucket{le=\"+Inf\"} 3",
            "deepfake_serve_batch_size_sum 12",
            "deepfake_serve_batch_size_count 3",
            "deepfake_serve_requests_total{route=\"score\",status=\"200\"} 1",
            "deepfake_serve_request_duration_seconds_bucket{route=\"score\",le=\"0.0025\"} 0",
            "deepfake_serve_request_duration_seconds_bucket{route=\"score\",le=\"0.005\"} 1",
            "deepfake_serve_queue_capacity 4",
            "deepfake_serve_requests_in_flight 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}
