//! `POST $batch`: many Web API requests in one `multipart/mixed` body, as Dataverse takes them.
//!
//! Items run in order. A request outside change sets goes through [`execute`] like any
//! other request (with `odata.continue-on-error`, a run of independent writes is first tried
//! as one store transaction, see `group`); a change set (`changeset`) is stored atomically in one write set. Without
//! `Prefer: odata.continue-on-error` the batch stops at the first failed item, and the
//! response — the answers so far — carries that item's status, as Dataverse's does; with it,
//! every item runs and the batch answers 200.
//!
//! The whole batch is rejected with 400 before anything runs when it is malformed, holds
//! more than [`MAX_OPERATIONS`] operations, nests a batch, or puts a `GET` in a change set.
//!
//! Layout: `parse` (multipart to items), `target` (part to [`ApiRequest`], `$id`
//! references), `changeset` (plan, then one write), `response` (items to multipart).

mod changeset;
mod group;
mod parse;
mod response;
mod target;

use std::future::Future;
use std::pin::Pin;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use self::parse::{BatchItem, PartRequest};
use self::response::{ItemResponse, PartResponse};
use super::{ApiRequest, Ctx, Resource};
use crate::ApiError;

/// Most operations one batch may hold, counting each operation of a change set (Dataverse's
/// limit).
pub const MAX_OPERATIONS: usize = 1000;

pub async fn handle(ctx: &Ctx, request: &ApiRequest) -> Result<Response, ApiError> {
    let boundary = parse::boundary(request.header(header::CONTENT_TYPE))?;
    let items = parse::parse_batch(&request.body, &boundary)?;
    validate(&items)?;
    let continue_on_error = continue_on_error(&request.headers);
    tracing::debug!(
        org = %ctx.caller.org,
        items = items.len(),
        continue_on_error,
        "batch"
    );
    let mut answers = Vec::with_capacity(items.len());
    let mut status = StatusCode::OK;
    let mut items = items.into_iter().peekable();
    while let Some(item) = items.next() {
        let answer = match item {
            BatchItem::Request(part) if continue_on_error && group::groupable(&part) => {
                // A run of independent writes: stored together when they all succeed.
                let mut run = vec![part];
                while let Some(BatchItem::Request(next)) = items.peek()
                    && group::groupable(next)
                    && run.len() < group::MAX_GROUP
                {
                    let Some(BatchItem::Request(next)) = items.next() else {
                        unreachable!("peeked a request")
                    };
                    run.push(next);
                }
                answers.extend(group::run(ctx, run).await.into_iter().map(ItemResponse::Single));
                continue;
            }
            BatchItem::Request(part) => ItemResponse::Single(run_request(ctx, part).await),
            BatchItem::ChangeSet(parts) => changeset::run(ctx, parts).await,
        };
        let failure = answer.failure();
        answers.push(answer);
        if let Some(failed) = failure
            && !continue_on_error
        {
            status = failed;
            break;
        }
    }
    let (content_type, body) = response::render(&answers);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).expect("the boundary is a valid header value"),
    );
    if continue_on_error {
        headers.insert(
            "preference-applied",
            HeaderValue::from_static("odata.continue-on-error"),
        );
    }
    Ok(response)
}

/// Rejects batches that cannot run as a whole.
fn validate(items: &[BatchItem]) -> Result<(), ApiError> {
    let operations: usize = items.iter().map(BatchItem::operations).sum();
    if operations > MAX_OPERATIONS {
        return Err(ApiError::bad_request(format!(
            "the batch holds {operations} operations; the limit is {MAX_OPERATIONS} per batch"
        )));
    }
    for item in items {
        if let BatchItem::ChangeSet(parts) = item
            && let Some(get) = parts.iter().find(|p| p.method == Method::GET)
        {
            return Err(ApiError::bad_request(format!(
                "GET {} is in a change set: change sets hold only POST, PATCH and DELETE; put GET requests outside them",
                get.target
            )));
        }
    }
    Ok(())
}

/// `Prefer: odata.continue-on-error` (or `=true`), among other preferences.
fn continue_on_error(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let (name, value) = item.split_once('=').unwrap_or((item, "true"));
            name.trim().eq_ignore_ascii_case("odata.continue-on-error")
                && !value.trim().eq_ignore_ascii_case("false")
        })
}

/// A request outside change sets, through the same [`execute`] as a direct request.
pub(super) async fn run_request(ctx: &Ctx, part: PartRequest) -> PartResponse {
    let content_id = part.content_id.clone();
    let result = match target::api_request(ctx.caller.org.as_str(), part, None) {
        Ok(request) if matches!(Resource::parse(&request.path), Ok(Resource::Batch)) => Err(
            ApiError::bad_request("a batch cannot contain another batch request"),
        ),
        Ok(request) => execute(ctx, request).await,
        Err(e) => Err(e),
    };
    let response = result.unwrap_or_else(IntoResponse::into_response);
    PartResponse::from_response(content_id, response).await
}

/// [`super::execute`] boxed: it runs `$batch`, which runs it for each part.
fn execute(
    ctx: &Ctx,
    request: ApiRequest,
) -> Pin<Box<dyn Future<Output = Result<Response, ApiError>> + Send + '_>> {
    Box::pin(super::execute(ctx, request))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_on_error_is_read_among_preferences() {
        let prefer = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("prefer", HeaderValue::from_static(v));
            continue_on_error(&h)
        };
        assert!(prefer("odata.continue-on-error"));
        assert!(prefer("return=representation, odata.continue-on-error"));
        assert!(prefer("odata.continue-on-error=true"));
        assert!(!prefer("odata.continue-on-error=false"));
        assert!(!prefer("odata.maxpagesize=10"));
        assert!(!continue_on_error(&HeaderMap::new()));
    }
}
