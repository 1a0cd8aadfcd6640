//! A fault-injecting HTTP proxy on a loopback port, in front of a real server.
//!
//! It reads each request head (GETs only: no bodies), asks its script what to do with request
//! number `n` (counted from 1), and then forwards it on a fresh upstream connection, answers
//! an error itself, cuts the upstream answer short, or goes down. One request per connection:
//! forwarded requests ask the server for `Connection: close`, so the client never reuses a
//! connection the script has not seen. Everything is bounded: request heads to 64 KiB, one
//! task per connection, loopback only.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const MAX_HEAD: usize = 64 * 1024;

/// What the proxy does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Forward,
    /// Answers this status itself, with `Retry-After` seconds if given.
    Answer {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Forwards, then closes the connection after this many bytes of the answer.
    Cut {
        after: usize,
    },
    /// Closes the listener (the server is down) and drops this request unanswered.
    Down,
}

type Script = Box<dyn FnMut(usize, &str) -> Action + Send>;

struct Shared {
    upstream: SocketAddr,
    script: Mutex<Script>,
    requests: AtomicUsize,
    /// Every action taken, with the request path.
    actions: Mutex<Vec<(Action, String)>>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    /// A proxy to `upstream` (`127.0.0.1:port`) that forwards everything until scripted.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let shared = Arc::new(Shared {
            upstream,
            script: Mutex::new(Box::new(|_, _| Action::Forward)),
            requests: AtomicUsize::new(0),
            actions: Mutex::new(Vec::new()),
            accept: Mutex::new(None),
        });
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            shared,
        };
        proxy.listen(listener);
        proxy
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the script; request numbers go on from where they are.
    pub fn script(&self, script: impl FnMut(usize, &str) -> Action + Send + 'static) {
        *self.shared.script.lock().unwrap() = Box::new(script);
    }

    /// Requests seen so far.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// How many requests got `action`.
    pub fn count(&self, action: Action) -> usize {
        let actions = self.shared.actions.lock().unwrap();
        actions.iter().filter(|(a, _)| *a == action).count()
    }

    /// Listens again on the same port after [`Action::Down`].
    pub async fn restart(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.listen(listener);
    }

    fn listen(&self, listener: TcpListener) {
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(handle(shared.clone(), socket));
            }
        });
        *self.shared.accept.lock().unwrap() = Some(task);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(task) = self.shared.accept.lock().unwrap().take() {
            task.abort();
        }
    }
}

/// The request head, up to and including the blank line.
async fn read_head(socket: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Some(head)
}

/// The head with `Connection: close` instead of whatever the client asked for.
fn closing(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

async fn handle(shared: Arc<Shared>, mut socket: TcpStream) {
    let Some(head) = read_head(&mut socket).await else {
        return;
    };
    let path = String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let n = shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let action = (shared.script.lock().unwrap())(n, &path);
    shared.actions.lock().unwrap().push((action, path));
    match action {
        Action::Down => {
            if let Some(task) = shared.accept.lock().unwrap().take() {
                task.abort();
            }
        }
        Action::Answer { status, retry_after } => {
            let body = format!(r#"{{"error":{{"code":"0x0","message":"injected {status}"}}}}"#);
            let retry = retry_after
                .map(|s| format!("Retry-After: {s}\r\n"))
                .unwrap_or_default();
            let answer = format!(
                "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{retry}\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
        Action::Forward | Action::Cut { .. } => {
            let limit = match action {
                Action::Cut { after } => after,
                _ => usize::MAX,
            };
            let Ok(mut upstream) = TcpStream::connect(shared.upstream).await else {
                return;
            };
            if upstream.write_all(&closing(&head)).await.is_err() {
                return;
            }
            let mut relayed = 0;
            let mut buf = vec![0u8; 64 * 1024];
            while relayed < limit {
                let n = match upstream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n.min(limit - relayed),
                };
                if socket.write_all(&buf[..n]).await.is_err() {
                    return;
                }
                relayed += n;
            }
            let _ = socket.shutdown().await;
        }
    }
}
