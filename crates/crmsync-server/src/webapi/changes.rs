//! Change tracking (`Prefer: odata.track-changes`), as Dataverse offers it.
//!
//! - A tracked read without a token returns every live record, page by page, and on the last
//!   page an `@odata.deltaLink` holding the token.
//! - Following the delta link returns what was created or updated since the token, plus one
//!   `$deletedEntity` entry per delete, and a new delta link.
//! - Pages follow `@odata.nextLink`, whose `$skiptoken` (`ct.<since>.<after>`) is enough to
//!   continue without the `Prefer` header.
//!
//! Tokens are versions (`<version>!<UTC time>`, the time only for readers); they never depend
//! on clocks. A token older than the tombstone retention answers 410 `ChangeTokenExpired`.
//! `$filter`, `$orderby`, `$top` and `fetchXml` cannot be combined with change tracking (as in
//! Dataverse): the caller gets a 400 that says so.

use axum::http::HeaderValue;
use axum::response::Response;
use crmsync_model::{EntityMetadata, Version};
use crmsync_store::{ChangeCursor, RowChange};
use serde_json::{Value as Json_, json};

use super::json::{Envelope, JsonShape, RowJson};
use super::records::select_columns;
use super::{ApiRequest, Ctx, Prefer};
use crate::ApiError;

const SKIP_PREFIX: &str = "ct.";
/// Room a page's body starts with per change: about what a record of a few dozen attributes
/// takes in JSON.
const BYTES_PER_CHANGE: usize = 1024;

/// One entry of a delta page.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Entry<'a> {
    Record(RowJson<'a>),
    Deleted(Json_),
}

/// Whether a collection request is a change-tracking read.
pub fn is_tracked(request: &ApiRequest, prefer: &Prefer) -> bool {
    prefer.track_changes
        || request.query_param("$deltatoken").is_some()
        || request
            .query_param("$skiptoken")
            .is_some_and(|t| t.starts_with(SKIP_PREFIX))
}

fn token(version: Version) -> String {
    format!("{version}!{}", chrono::Utc::now().format("%m/%d/%Y %H:%M:%S"))
}

fn parse_token(token: &str) -> Result<Version, ApiError> {
    token
        .split('!')
        .next()
        .and_then(|v| v.trim().parse::<Version>().ok())
        .filter(|v| *v >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("'{token}' is not a valid change tracking token")))
}

/// `ct.<since>.<after>.<started>.<page size>`.
fn parse_skip(skip: &str) -> Result<(ChangeCursor, usize), ApiError> {
    let bad = || ApiError::bad_request(format!("'{skip}' is not a valid $skiptoken"));
    let parts: Vec<&str> = skip
        .strip_prefix(SKIP_PREFIX)
        .ok_or_else(bad)?
        .split('.')
        .collect();
    let [since, after, started, size] = parts.as_slice() else {
        return Err(bad());
    };
    let cursor = ChangeCursor {
        since: since.parse().map_err(|_| bad())?,
        after: after.parse().map_err(|_| bad())?,
        started: started.parse().map_err(|_| bad())?,
    };
    Ok((cursor, size.parse().map_err(|_| bad())?))
}

fn cursor_of(request: &ApiRequest) -> Result<(ChangeCursor, Option<usize>), ApiError> {
    if let Some(skip) = request.query_param("$skiptoken") {
        return parse_skip(skip).map(|(cursor, size)| (cursor, Some(size)));
    }
    match request.query_param("$deltatoken") {
        Some(t) => Ok((ChangeCursor::start(parse_token(t)?), None)),
        None => Ok((ChangeCursor::start(0), None)),
    }
}

/// A link to the same collection with `$select` kept and `extra` query options.
fn link(ctx: &Ctx, entity: &EntityMetadata, request: &ApiRequest, extra: &[(&str, String)]) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(select) = request.query_param("$select") {
        pairs.push(("$select".into(), select.into()));
    }
    pairs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let query = super::encode_query(&pairs);
    format!("{}{}?{query}", ctx.base, entity.entity_set_name)
}

pub async fn get(
    ctx: &Ctx,
    request: &ApiRequest,
    entity: &EntityMetadata,
    prefer: &Prefer,
) -> Result<Response, ApiError> {
    for option in ["$filter", "$orderby", "$top", "$expand", "fetchXml"] {
        if request.query_param(option).is_some() {
            return Err(ApiError::bad_request(format!(
                "{option} cannot be combined with change tracking"
            )));
        }
    }
    let columns = select_columns(entity, request.query_param("$select"))?;
    let (cursor, linked_size) = cursor_of(request)?;
    let size = prefer
        .max_page_size
        .or(linked_size)
        .unwrap_or(ctx.state.config.max_page_size)
        .clamp(1, ctx.state.config.max_page_size);
    let page = ctx
        .caller
        .store
        .change_rows(&entity.logical_name, cursor, size)
        .await?;
    let deleted_context = format!("{}$metadata#{}/$deletedEntity", ctx.base, entity.entity_set_name);
    let shape = JsonShape::new(entity, prefer).selecting(columns.as_deref());
    let shape = shape.for_columns(&page.columns);
    let entries = page.changes.iter().map(|change| match change {
        RowChange::Upsert { version, values, .. } => Entry::Record(RowJson {
            shape: &shape,
            version: *version,
            values,
        }),
        RowChange::Delete { id, .. } => Entry::Deleted(
            json!({"@odata.context": deleted_context, "id": id.to_string(), "reason": "deleted"}),
        ),
    });
    let mut body = Envelope::with_capacity(
        &format!("{}$metadata#{}/$delta", ctx.base, entity.entity_set_name),
        (page.changes.len() * BYTES_PER_CHANGE).max(64 * 1024),
    );
    body.items(entries);
    if page.more {
        let next = page.next;
        let skip = format!(
            "{SKIP_PREFIX}{}.{}.{}.{size}",
            next.since, next.after, next.started
        );
        body.field(
            "@odata.nextLink",
            &link(ctx, entity, request, &[("$skiptoken", skip)]),
        );
    } else {
        body.field(
            "@odata.deltaLink",
            &link(ctx, entity, request, &[("$deltatoken", token(page.next.after))]),
        );
    }
    let mut response = body.into_response();
    if let Some(applied) = prefer.applied(Some(size), true) {
        response.headers_mut().insert(
            "preference-applied",
            HeaderValue::from_str(&applied).map_err(ApiError::internal)?,
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_skip_tokens_parse_back() {
        assert_eq!(parse_token(&token(42)).unwrap(), 42);
        assert_eq!(parse_token("919042!08/22/2017 08:10:44").unwrap(), 919042);
        assert!(parse_token("abc").is_err());
        assert!(parse_token("-5").is_err());
        assert_eq!(
            parse_skip("ct.5.9.0.100").unwrap(),
            (
                ChangeCursor {
                    since: 5,
                    after: 9,
                    started: 0
                },
                100
            )
        );
        assert!(parse_skip("ct.x.9.0.1").is_err());
        assert!(parse_skip("ct.5.9").is_err());
        assert!(parse_skip("k.123").is_err());
    }
}
