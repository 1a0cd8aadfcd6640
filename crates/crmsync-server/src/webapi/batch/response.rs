//! Writing a `$batch` response: `multipart/mixed; boundary=batchresponse_<uuid>`, each
//! answer an `application/http` part (`HTTP/1.1 204 No Content`, headers, body), and each
//! stored change set a nested `changesetresponse_<uuid>` multipart, as Dataverse answers.

use axum::body::{Bytes, to_bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// The answer to one operation of the batch.
#[derive(Debug)]
pub struct PartResponse {
    pub content_id: Option<String>,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl PartResponse {
    pub async fn from_response(content_id: Option<String>, response: Response) -> PartResponse {
        let (parts, body) = response.into_parts();
        // Bodies were produced in memory by this server: reading them cannot fail.
        let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
        let mut headers = parts.headers;
        headers.remove(header::CONTENT_LENGTH);
        headers.insert("odata-version", HeaderValue::from_static("4.0"));
        if let Some(id) = headers.get("odata-entityid").cloned() {
            headers.insert(header::LOCATION, id);
        }
        PartResponse {
            content_id,
            status: parts.status,
            headers,
            body,
        }
    }

    pub async fn from_error(content_id: Option<String>, error: ApiError) -> PartResponse {
        Self::from_response(content_id, error.into_response()).await
    }
}

/// The answer to one item of the batch.
#[derive(Debug)]
pub enum ItemResponse {
    /// A request outside change sets, or the one error of a change set that was not stored.
    Single(PartResponse),
    /// The answers to every operation of a stored change set.
    ChangeSet(Vec<PartResponse>),
}

impl ItemResponse {
    /// The status of a failed item.
    pub fn failure(&self) -> Option<StatusCode> {
        match self {
            ItemResponse::Single(part) if part.status.is_client_error() || part.status.is_server_error() => {
                Some(part.status)
            }
            _ => None,
        }
    }
}

/// The response body and its `Content-Type`.
pub fn render(items: &[ItemResponse]) -> (String, Vec<u8>) {
    let boundary = format!("batchresponse_{}", uuid::Uuid::new_v4());
    let mut out = Vec::new();
    for item in items {
        push_line(&mut out, &format!("--{boundary}"));
        match item {
            ItemResponse::Single(part) => write_part(&mut out, part),
            ItemResponse::ChangeSet(parts) => {
                let inner = format!("changesetresponse_{}", uuid::Uuid::new_v4());
                push_line(
                    &mut out,
                    &format!("Content-Type: multipart/mixed; boundary={inner}"),
                );
                push_line(&mut out, "");
                for part in parts {
                    push_line(&mut out, &format!("--{inner}"));
                    write_part(&mut out, part);
                }
                push_line(&mut out, &format!("--{inner}--"));
            }
        }
    }
    push_line(&mut out, &format!("--{boundary}--"));
    (format!("multipart/mixed; boundary={boundary}"), out)
}

fn push_line(out: &mut Vec<u8>, line: &str) {
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn write_part(out: &mut Vec<u8>, part: &PartResponse) {
    push_line(out, "Content-Type: application/http");
    push_line(out, "Content-Transfer-Encoding: binary");
    if let Some(id) = &part.content_id {
        push_line(out, &format!("Content-ID: {id}"));
    }
    push_line(out, "");
    push_line(
        out,
        &format!(
            "HTTP/1.1 {} {}",
            part.status.as_u16(),
            part.status.canonical_reason().unwrap_or_default()
        ),
    );
    for (name, value) in &part.headers {
        out.extend_from_slice(display_name(name.as_str()).as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    push_line(out, "");
    out.extend_from_slice(&part.body);
    // The line break before the next delimiter belongs to the delimiter.
    out.extend_from_slice(b"\r\n");
}

/// `odata-entityid` -> `OData-EntityId`: header names as Dataverse writes them (names are
/// case-insensitive, but some clients compare them as written).
fn display_name(name: &str) -> String {
    match name {
        "odata-entityid" => "OData-EntityId".to_owned(),
        "odata-version" => "OData-Version".to_owned(),
        "etag" => "ETag".to_owned(),
        _ => name
            .split('-')
            .map(|word| {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(status: StatusCode, content_id: Option<&str>, body: &str) -> PartResponse {
        let mut headers = HeaderMap::new();
        headers.insert("odata-version", HeaderValue::from_static("4.0"));
        PartResponse {
            content_id: content_id.map(str::to_owned),
            status,
            headers,
            body: Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    #[test]
    fn responses_nest_change_sets_in_their_own_boundary() {
        let items = [
            ItemResponse::ChangeSet(vec![part(StatusCode::NO_CONTENT, Some("1"), "")]),
            ItemResponse::Single(part(StatusCode::OK, None, "{}")),
        ];
        let (content_type, body) = render(&items);
        let body = String::from_utf8(body).unwrap();
        let outer = content_type.strip_prefix("multipart/mixed; boundary=").unwrap();
        assert!(outer.starts_with("batchresponse_"));
        assert!(body.starts_with(&format!(
            "--{outer}\r\nContent-Type: multipart/mixed; boundary=changesetresponse_"
        )));
        assert!(body.contains("Content-ID: 1\r\n\r\nHTTP/1.1 204 No Content\r\nOData-Version: 4.0\r\n\r\n\r\n--changesetresponse_"));
        assert!(body.contains("HTTP/1.1 200 OK\r\nOData-Version: 4.0\r\n\r\n{}\r\n"));
        assert!(body.ends_with(&format!("--{outer}--\r\n")));
        assert_eq!(display_name("content-type"), "Content-Type");
        assert_eq!(display_name("preference-applied"), "Preference-Applied");
    }
}
