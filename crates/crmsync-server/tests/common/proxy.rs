//! A TCP proxy on a loopback port in front of a test server, which can lose the answers to
//! `$batch` requests: the request reaches the server (which applies it), then the connection
//! is cut before the answer gets back — the window in which a client cannot know whether its
//! writes were applied. It can also refuse connections, as a server that is down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
pub struct Faults {
    /// Answers to `$batch` requests still to lose.
    pub lose_batch_answers: AtomicUsize,
    /// `$batch` answers lost so far.
    pub lost: AtomicUsize,
    /// Down: refuse new connections and cut open ones at their next request.
    pub down: AtomicBool,
    /// Lose the answer of every `$batch` request whose bytes hold this text (the server
    /// still gets the request).
    pub lose_answers_to: std::sync::Mutex<Option<Vec<u8>>>,
}

pub struct Proxy {
    pub url: String,
    pub faults: Arc<Faults>,
    _task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self._task.abort();
    }
}

impl Proxy {
    /// A proxy to `target` (`http://127.0.0.1:port`).
    pub async fn start(target: &str) -> Proxy {
        let target = target.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let faults = Arc::new(Faults::default());
        let f = faults.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if f.down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target).await else {
                    continue;
                };
                tokio::spawn(pump(client, server, f.clone()));
            }
        });
        Proxy {
            url,
            faults,
            _task: task,
        }
    }
}

async fn pump(client: TcpStream, server: TcpStream, faults: Arc<Faults>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    // Set when the client has sent a `$batch` request on this connection, and when one held
    // the text of `lose_answers_to`.
    let batch_sent = Arc::new(AtomicBool::new(false));
    let seen = batch_sent.clone();
    let marked = Arc::new(AtomicBool::new(false));
    let seen_marker = marked.clone();
    let up_faults = faults.clone();
    let upstream = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut tail = Vec::new();
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if up_faults.down.load(Ordering::SeqCst) {
                break;
            }
            tail.extend_from_slice(&buf[..n]);
            if tail.windows(6).any(|w| w == b"$batch") {
                seen.store(true, Ordering::SeqCst);
            }
            let marker = up_faults.lose_answers_to.lock().unwrap().clone();
            let mut keep_bytes = 8;
            if let Some(marker) = marker.filter(|m| !m.is_empty()) {
                if tail.windows(marker.len()).any(|w| w == marker.as_slice()) {
                    seen_marker.store(true, Ordering::SeqCst);
                }
                keep_bytes = keep_bytes.max(marker.len());
            }
            let keep = tail.len().saturating_sub(keep_bytes);
            tail.drain(..keep);
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = sw.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match sr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let lose_marked = batch_sent.load(Ordering::SeqCst) && marked.load(Ordering::SeqCst);
        if lose_marked
            || batch_sent.load(Ordering::SeqCst)
                && faults
                    .lose_batch_answers
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
        {
            faults.lost.fetch_add(1, Ordering::SeqCst);
            break;
        }
        if cw.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    upstream.abort();
}
