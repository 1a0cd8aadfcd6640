//! `GET /metrics` in the Prometheus text format (version 0.0.4), written by hand: a few
//! counters and one histogram do not need a metrics framework.
//!
//! - `crmsync_sync_runs_total{trigger,status}` and `crmsync_records_synced_total{change}`: sync
//!   runs that ended in this instance and the records they changed on the client;
//! - `crmsync_work_items{status}`: the durable work queue by status (all instances, read at
//!   scrape time);
//! - `crmsync_worker_running`, `crmsync_worker_retries_total`, `crmsync_worker_errors_total`:
//!   this instance's scheduler worker;
//! - `crmsync_upstream_errors_total`: failed attempts against a server org (network or server
//!   errors) in scheduled work;
//! - `crmsync_sync_lag_seconds{org}`: per connected client org, seconds since its last sync run
//!   that succeeded ended, whichever instance or command ran it (read at scrape time from
//!   each org's store; since the connection was made when no run succeeded yet);
//! - `crmsync_http_request_duration_seconds{method,status}`: latency of every HTTP request,
//!   labelled by method and status only (no paths: they hold org names and ids).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crmsync_sync::RunLog;

use crate::AppState;

const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct Histogram {
    /// Cumulative counts per bucket of [`BUCKETS`].
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    runs: Mutex<BTreeMap<(String, String), u64>>,
    records: Mutex<BTreeMap<&'static str, u64>>,
    upstream_errors: AtomicU64,
    http: Mutex<BTreeMap<(String, u16), Histogram>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn label(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Metrics {
    /// Counts a finished sync run and the records it changed.
    pub fn run_finished(&self, log: &RunLog) {
        *lock(&self.runs)
            .entry((label(&log.trigger), label(&log.status)))
            .or_default() += 1;
        let totals = log.totals();
        let mut records = lock(&self.records);
        for (change, n) in [
            ("created", totals.created),
            ("updated", totals.updated),
            ("deleted", totals.deleted + totals.filtered_out),
        ] {
            *records.entry(change).or_default() += n;
        }
    }

    pub fn upstream_error(&self) {
        self.upstream_errors.fetch_add(1, Ordering::Relaxed);
    }

    fn observe(&self, method: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut http = lock(&self.http);
        let h = http.entry((method.to_owned(), status)).or_default();
        for (bucket, bound) in h.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    fn render(
        &self,
        out: &mut String,
        state: &AppState,
        queue: &[(crmsync_store::WorkStatus, u64)],
        lags: &[(String, f64)],
    ) {
        let w = |out: &mut String, s: std::fmt::Arguments<'_>| {
            let _ = out.write_fmt(s);
        };
        w(
            out,
            format_args!("# HELP crmsync_sync_runs_total Sync runs ended in this instance.\n"),
        );
        w(out, format_args!("# TYPE crmsync_sync_runs_total counter\n"));
        for ((trigger, status), n) in lock(&self.runs).iter() {
            w(
                out,
                format_args!("crmsync_sync_runs_total{{trigger=\"{trigger}\",status=\"{status}\"}} {n}\n"),
            );
        }
        w(
            out,
            format_args!("# HELP crmsync_records_synced_total Records changed on clients by sync runs.\n"),
        );
        w(out, format_args!("# TYPE crmsync_records_synced_total counter\n"));
        for (change, n) in lock(&self.records).iter() {
            w(
                out,
                format_args!("crmsync_records_synced_total{{change=\"{change}\"}} {n}\n"),
            );
        }
        w(
            out,
            format_args!("# HELP crmsync_work_items Items of the durable work queue by status.\n"),
        );
        w(out, format_args!("# TYPE crmsync_work_items gauge\n"));
        for (status, n) in queue {
            w(
                out,
                format_args!("crmsync_work_items{{status=\"{}\"}} {n}\n", status.as_str()),
            );
        }
        let worker = state.worker.report();
        w(
            out,
            format_args!("# HELP crmsync_worker_running Work items this instance runs now.\n"),
        );
        w(out, format_args!("# TYPE crmsync_worker_running gauge\n"));
        w(
            out,
            format_args!("crmsync_worker_running {}\n", worker.running.len()),
        );
        w(
            out,
            format_args!("# HELP crmsync_worker_retries_total Failed attempts queued again for a retry.\n"),
        );
        w(out, format_args!("# TYPE crmsync_worker_retries_total counter\n"));
        w(
            out,
            format_args!("crmsync_worker_retries_total {}\n", worker.retries),
        );
        w(
            out,
            format_args!("# HELP crmsync_worker_errors_total Errors of this instance's scheduler worker.\n"),
        );
        w(out, format_args!("# TYPE crmsync_worker_errors_total counter\n"));
        w(
            out,
            format_args!("crmsync_worker_errors_total {}\n", worker.errors),
        );
        w(
            out,
            format_args!("# HELP crmsync_upstream_errors_total Failed attempts against server orgs.\n"),
        );
        w(
            out,
            format_args!("# TYPE crmsync_upstream_errors_total counter\n"),
        );
        w(
            out,
            format_args!(
                "crmsync_upstream_errors_total {}\n",
                self.upstream_errors.load(Ordering::Relaxed)
            ),
        );
        w(
            out,
            format_args!(
                "# HELP crmsync_sync_lag_seconds Seconds since the last successful sync run of each connection.\n"
            ),
        );
        w(out, format_args!("# TYPE crmsync_sync_lag_seconds gauge\n"));
        for (org, lag) in lags {
            w(
                out,
                format_args!("crmsync_sync_lag_seconds{{org=\"{org}\"}} {lag:.3}\n"),
            );
        }
        w(
            out,
            format_args!("# HELP crmsync_http_request_duration_seconds HTTP request latency.\n"),
        );
        w(
            out,
            format_args!("# TYPE crmsync_http_request_duration_seconds histogram\n"),
        );
        for ((method, status), h) in lock(&self.http).iter() {
            let labels = format!("method=\"{method}\",status=\"{status}\"");
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                w(
                    out,
                    format_args!(
                        "crmsync_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}\n"
                    ),
                );
            }
            w(
                out,
                format_args!(
                    "crmsync_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n",
                    h.count
                ),
            );
            w(
                out,
                format_args!(
                    "crmsync_http_request_duration_seconds_sum{{{labels}}} {}\n",
                    h.sum
                ),
            );
            w(
                out,
                format_args!(
                    "crmsync_http_request_duration_seconds_count{{{labels}}} {}\n",
                    h.count
                ),
            );
        }
    }
}

/// Times every request.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .observe(&method, response.status().as_u16(), started.elapsed());
    response
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let queue = match state.catalog.work().work_counts().await {
        Ok(q) => q,
        Err(e) => {
            tracing::error!(error = %e, "metrics: cannot count the work queue");
            return (StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable\n").into_response();
        }
    };
    let lags = match sync_lags(&state).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "metrics: cannot read the connections");
            return (StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable\n").into_response();
        }
    };
    let mut out = String::new();
    state.metrics.render(&mut out, &state, &queue, &lags);
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")
        .body(Body::from(out))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Per connected org, seconds since its last run that succeeded (or since it was connected).
async fn sync_lags(state: &AppState) -> Result<Vec<(String, f64)>, crmsync_sync::SyncError> {
    let now = chrono::Utc::now();
    let mut lags = Vec::new();
    for org in state.catalog.list_orgs().await? {
        let store = match state.catalog.open_org(&org.name).await {
            Ok(store) => store,
            // Deleted since it was listed.
            Err(crmsync_store::StoreError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let Some(conn) = crmsync_sync::Connection::load(&*store).await? else {
            continue;
        };
        let since = crmsync_sync::last_success(&*store)
            .await?
            .unwrap_or(conn.connected_on);
        let lag = (now - since).num_milliseconds().max(0) as f64 / 1000.0;
        lags.push((org.name.to_string(), lag));
    }
    Ok(lags)
}

/// `GET /healthz`: 200 `ok` when the store answers, else 503.
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.catalog.list_orgs().await {
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable").into_response()
        }
    }
}
