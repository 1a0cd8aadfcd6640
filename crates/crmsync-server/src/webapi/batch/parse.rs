//! Reading a `$batch` body: `multipart/mixed` parts, each an `application/http` request or a
//! change set (a nested `multipart/mixed` of requests).
//!
//! The parser works on bytes and copies each request out, so nothing borrows the body after
//! parsing. Lines may end with CRLF (as MIME requires) or a bare LF (as hand-written batches
//! often do). A delimiter is `--boundary` at the start of a line; the line break before it
//! belongs to the delimiter, so a part's content ends right before that line break. Text
//! before the first delimiter and after the closing `--boundary--` is ignored, as MIME says.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::ApiError;

/// One request of a batch, as written in its part.
#[derive(Debug, Clone, PartialEq)]
pub struct PartRequest {
    /// The part's `Content-ID` (change sets reference it as `$id`).
    pub content_id: Option<String>,
    pub method: Method,
    /// The request target as written: an absolute URL, a path, or a `$id` reference.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A top-level item of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchItem {
    Request(PartRequest),
    ChangeSet(Vec<PartRequest>),
}

impl BatchItem {
    /// Number of operations (requests) in the item.
    pub fn operations(&self) -> usize {
        match self {
            BatchItem::Request(_) => 1,
            BatchItem::ChangeSet(requests) => requests.len(),
        }
    }
}

/// The `boundary` parameter of a `multipart/mixed` content type (quoted or not).
pub fn boundary(content_type: Option<&str>) -> Result<String, ApiError> {
    let content_type = content_type.ok_or_else(|| {
        ApiError::bad_request("a $batch request needs Content-Type: multipart/mixed; boundary=batch_<id>")
    })?;
    let mut params = content_type.split(';');
    let media = params.next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("multipart/mixed") {
        return Err(ApiError::bad_request(format!(
            "a $batch request needs Content-Type multipart/mixed, not '{media}'"
        )));
    }
    let boundary = params
        .filter_map(|p| p.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "the Content-Type '{content_type}' has no boundary: use multipart/mixed; boundary=batch_<id>"
            ))
        })?;
    if boundary.len() > 70 || boundary.contains(['\r', '\n']) {
        return Err(ApiError::bad_request(
            "the multipart boundary must be at most 70 characters on one line",
        ));
    }
    Ok(boundary)
}

/// Parses a whole batch body delimited by `boundary`.
pub fn parse_batch(body: &[u8], boundary: &str) -> Result<Vec<BatchItem>, ApiError> {
    let mut items = Vec::new();
    for part in split_parts(body, boundary)? {
        let (headers, content) = split_head(part)?;
        let content_type = header(&headers, "content-type").unwrap_or_default();
        if media_is(content_type, "multipart/mixed") {
            let inner = self::boundary(Some(content_type))?;
            let mut requests = Vec::new();
            for part in split_parts(content, &inner)? {
                let (headers, content) = split_head(part)?;
                let content_type = header(&headers, "content-type").unwrap_or_default();
                if media_is(content_type, "multipart/mixed") {
                    return Err(ApiError::bad_request(
                        "a change set cannot contain another change set",
                    ));
                }
                requests.push(request_part(&headers, content)?);
            }
            items.push(BatchItem::ChangeSet(requests));
        } else {
            items.push(BatchItem::Request(request_part(&headers, content)?));
        }
    }
    Ok(items)
}

fn media_is(content_type: &str, media: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(media))
}

/// The contents of the parts between `--boundary` delimiters, up to `--boundary--`.
fn split_parts<'b>(body: &'b [u8], boundary: &str) -> Result<Vec<&'b [u8]>, ApiError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut parts = Vec::new();
    // (start of the current part's content, if a delimiter was seen)
    let mut open: Option<usize> = None;
    let mut line_start = 0;
    while line_start <= body.len() {
        let line_end = find(&body[line_start..], b"\n").map_or(body.len(), |i| line_start + i);
        let next = (line_end + 1).min(body.len() + 1);
        let line = trim_cr(&body[line_start..line_end]);
        if let Some(rest) = line.strip_prefix(delimiter) {
            let closing = rest.starts_with(b"--");
            let rest = if closing { &rest[2..] } else { rest };
            // A longer line that merely starts with the delimiter is content.
            if rest.iter().all(|b| *b == b' ' || *b == b'\t') {
                if let Some(start) = open {
                    parts.push(content_before(body, start, line_start));
                }
                if closing {
                    return Ok(parts);
                }
                open = Some(next.min(body.len()));
            }
        }
        line_start = next;
    }
    Err(ApiError::bad_request(if open.is_none() {
        format!("the multipart body has no part starting with the delimiter '--{boundary}'")
    } else {
        format!("the multipart body is not terminated by '--{boundary}--'")
    }))
}

/// The content from `start` to the line break that precedes the delimiter at `delimiter`.
fn content_before(body: &[u8], start: usize, delimiter: usize) -> &[u8] {
    if delimiter <= start {
        return &[];
    }
    let mut end = delimiter;
    if body[end - 1] == b'\n' {
        end -= 1;
        if end > start && body[end - 1] == b'\r' {
            end -= 1;
        }
    }
    &body[start..end]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A part's MIME headers, in order.
type PartHeaders = Vec<(String, String)>;

/// Splits a header block (up to the first empty line) from the content after it.
fn split_head(part: &[u8]) -> Result<(PartHeaders, &[u8]), ApiError> {
    let mut headers = Vec::new();
    let mut at = 0;
    loop {
        let end = find(&part[at..], b"\n").map_or(part.len(), |i| at + i);
        let line = trim_cr(&part[at..end]);
        let next = (end + 1).min(part.len());
        if line.is_empty() {
            return Ok((headers, &part[next..]));
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| ApiError::bad_request("a multipart header line is not valid UTF-8"))?;
        let (name, value) = line.split_once(':').ok_or_else(|| {
            ApiError::bad_request(format!("'{}' is not a header line (Name: value)", truncate(line)))
        })?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
        if end >= part.len() {
            // Headers without the empty line that ends them: no content.
            return Ok((headers, &[]));
        }
        at = next;
    }
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// An `application/http` part: request line, headers, body.
fn request_part(part_headers: &[(String, String)], content: &[u8]) -> Result<PartRequest, ApiError> {
    let content_type = header(part_headers, "content-type").ok_or_else(|| {
        ApiError::bad_request(
            "each batch part needs Content-Type: application/http (or multipart/mixed for a change set)",
        )
    })?;
    if !media_is(content_type, "application/http") {
        return Err(ApiError::bad_request(format!(
            "unsupported batch part Content-Type '{content_type}': use application/http"
        )));
    }
    // Blank lines may precede the request line.
    let start = content
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or_else(|| ApiError::bad_request("a batch part has no request line"))?;
    let (head, body) = split_request(&content[start..]);
    let mut lines = head.split(|b| *b == b'\n').map(trim_cr);
    let request_line = std::str::from_utf8(lines.next().unwrap_or_default())
        .map_err(|_| ApiError::bad_request("a batch request line is not valid UTF-8"))?;
    let mut words = request_line.split_whitespace();
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return Err(ApiError::bad_request(format!(
            "'{}' is not a request line like 'GET accounts HTTP/1.1'",
            truncate(request_line)
        )));
    };
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| ApiError::bad_request(format!("'{}' is not an HTTP method", truncate(method))))?;
    let mut headers = HeaderMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let line = std::str::from_utf8(line)
            .map_err(|_| ApiError::bad_request("a batch request header is not valid UTF-8"))?;
        let (name, value) = line.split_once(':').ok_or_else(|| {
            ApiError::bad_request(format!("'{}' is not a header line (Name: value)", truncate(line)))
        })?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| ApiError::bad_request(format!("'{}' is not a header name", truncate(name))))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| ApiError::bad_request(format!("the {name} header has an invalid value")))?;
        headers.append(name, value);
    }
    let body = body.trim_ascii();
    Ok(PartRequest {
        content_id: header(part_headers, "content-id").map(str::to_owned),
        method,
        target: target.to_owned(),
        headers,
        body: Bytes::copy_from_slice(body),
    })
}

/// Splits an HTTP request at the empty line that ends its headers.
fn split_request(content: &[u8]) -> (&[u8], &[u8]) {
    let mut at = 0;
    while at < content.len() {
        let end = find(&content[at..], b"\n").map_or(content.len(), |i| at + i);
        if at > 0 && trim_cr(&content[at..end]).is_empty() {
            return (&content[..at], &content[(end + 1).min(content.len())..]);
        }
        at = end + 1;
    }
    (content, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(v: &str) -> Result<String, ApiError> {
        boundary(Some(v))
    }

    #[test]
    fn boundaries_are_read_quoted_or_not() {
        assert_eq!(ct("multipart/mixed; boundary=batch_1").unwrap(), "batch_1");
        assert_eq!(ct("multipart/mixed;boundary=\"batch_a b\"").unwrap(), "batch_a b");
        assert_eq!(ct("Multipart/Mixed; charset=utf-8; BOUNDARY=\"x\"").unwrap(), "x");
        assert!(ct("multipart/mixed").unwrap_err().message.contains("no boundary"));
        assert!(
            ct("application/json")
                .unwrap_err()
                .message
                .contains("multipart/mixed")
        );
        assert!(boundary(None).unwrap_err().message.contains("Content-Type"));
        assert!(ct("multipart/mixed; boundary=\"\"").is_err());
    }

    const CRLF_BATCH: &str = "preamble\r\n--batch_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET accounts(00000000-0000-0000-0000-000000000001)?$select=name HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n--batch_1\r\nContent-Type: multipart/mixed; boundary=\"changeset_2\"\r\n\r\n--changeset_2\r\nContent-Type: application/http\r\nContent-Transfer-Encoding:binary\r\nContent-ID: 1\r\n\r\nPOST /acme/api/data/v9.2/accounts HTTP/1.1\r\nContent-Type: application/json; type=entry\r\n\r\n{\"name\":\"--batch_1 in a value\"}\r\n--changeset_2\r\nContent-Type: application/http\r\nContent-ID: 2\r\n\r\nDELETE $1 HTTP/1.1\r\n\r\n\r\n--changeset_2--\r\n--batch_1--\r\nepilogue";

    fn expected() -> Vec<BatchItem> {
        let mut get_headers = HeaderMap::new();
        get_headers.insert("accept", HeaderValue::from_static("application/json"));
        let mut post_headers = HeaderMap::new();
        post_headers.insert(
            "content-type",
            HeaderValue::from_static("application/json; type=entry"),
        );
        vec![
            BatchItem::Request(PartRequest {
                content_id: None,
                method: Method::GET,
                target: "accounts(00000000-0000-0000-0000-000000000001)?$select=name".into(),
                headers: get_headers,
                body: Bytes::new(),
            }),
            BatchItem::ChangeSet(vec![
                PartRequest {
                    content_id: Some("1".into()),
                    method: Method::POST,
                    target: "/acme/api/data/v9.2/accounts".into(),
                    headers: post_headers,
                    body: Bytes::from_static(b"{\"name\":\"--batch_1 in a value\"}"),
                },
                PartRequest {
                    content_id: Some("2".into()),
                    method: Method::DELETE,
                    target: "$1".into(),
                    headers: HeaderMap::new(),
                    body: Bytes::new(),
                },
            ]),
        ]
    }

    #[test]
    fn crlf_batches_parse_into_requests_and_change_sets() {
        let items = parse_batch(CRLF_BATCH.as_bytes(), "batch_1").unwrap();
        assert_eq!(items, expected());
        assert_eq!(items.iter().map(BatchItem::operations).sum::<usize>(), 3);
    }

    #[test]
    fn lf_only_batches_parse_the_same() {
        let lf = CRLF_BATCH.replace("\r\n", "\n");
        assert_eq!(parse_batch(lf.as_bytes(), "batch_1").unwrap(), expected());
    }

    #[test]
    fn malformed_bodies_are_clear_errors() {
        let err = parse_batch(b"garbage", "batch_1").unwrap_err();
        assert!(
            err.message
                .contains("no part starting with the delimiter '--batch_1'"),
            "{err}"
        );
        let unterminated = "--batch_1\nContent-Type: application/http\n\nGET WhoAmI HTTP/1.1\n";
        let err = parse_batch(unterminated.as_bytes(), "batch_1").unwrap_err();
        assert!(err.message.contains("not terminated by '--batch_1--'"), "{err}");
        let no_type = "--b\n\nGET WhoAmI HTTP/1.1\n--b--\n";
        let err = parse_batch(no_type.as_bytes(), "b").unwrap_err();
        assert!(err.message.contains("application/http"), "{err}");
        let bad_line = "--b\nContent-Type: application/http\n\nGET\n--b--\n";
        let err = parse_batch(bad_line.as_bytes(), "b").unwrap_err();
        assert!(err.message.contains("request line"), "{err}");
        let nested = "--b\nContent-Type: multipart/mixed; boundary=c\n\n--c\nContent-Type: multipart/mixed; boundary=d\n\n--d--\n--c--\n--b--\n";
        let err = parse_batch(nested.as_bytes(), "b").unwrap_err();
        assert!(err.message.contains("another change set"), "{err}");
    }

    #[test]
    fn a_longer_line_starting_with_the_delimiter_is_content() {
        let body = "--b\nContent-Type: application/http\n\nPOST accounts HTTP/1.1\n\n--bx\n--b--\n";
        let items = parse_batch(body.as_bytes(), "b").unwrap();
        let BatchItem::Request(r) = &items[0] else {
            panic!("not a request")
        };
        assert_eq!(&r.body[..], b"--bx");
    }
}
