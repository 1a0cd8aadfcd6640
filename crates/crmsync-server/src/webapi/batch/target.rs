//! Turning a batch part into an [`ApiRequest`]: its request target (an absolute URL, a path
//! from the server root, a path relative to the Web API base, or a `$id` reference to a
//! record created earlier in the same change set) and the `$id` references in its body's
//! `@odata.bind` values.

use std::collections::HashMap;

use axum::body::Bytes;
use serde_json::Value as Json;

use super::parse::PartRequest;
use crate::ApiError;
use crate::webapi::{ApiRequest, parse_query};

/// The Web API root below the server root (`/{org}` precedes it) or below a Dataverse host.
const API_ROOT: &str = "api/data/v9.2";

/// `Content-ID` -> the record path (`accounts(<id>)`) of the operation that carried it.
pub type References = HashMap<String, String>;

/// Builds the request of a part; `refs` are the change set's references so far (`None`
/// outside change sets, where nothing can be referenced).
pub fn api_request(org: &str, part: PartRequest, refs: Option<&References>) -> Result<ApiRequest, ApiError> {
    let none = References::new();
    let target = match part.target.strip_prefix('$') {
        Some(reference) => {
            resolve_reference(reference, refs.unwrap_or(&none))?.unwrap_or_else(|| part.target.clone())
        }
        None => part.target.clone(),
    };
    let relative = relative_target(org, &target)?;
    let (path, query) = match relative.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (relative, None),
    };
    let path = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| ApiError::bad_request(format!("the path of '{}' is not valid UTF-8", part.target)))?
        .into_owned();
    let body = match refs {
        Some(refs) => substitute_binds(part.body, refs)?,
        None => part.body,
    };
    Ok(ApiRequest {
        method: part.method,
        path,
        query: parse_query(query)?,
        headers: part.headers,
        body,
    })
}

/// `1/rest` -> `accounts(<id>)/rest` when `1` is a Content-ID of the change set. System
/// resources (`$metadata`, `$batch`) are not references.
fn resolve_reference(reference: &str, refs: &References) -> Result<Option<String>, ApiError> {
    let end = reference.find(['/', '?']).unwrap_or(reference.len());
    let (id, rest) = reference.split_at(end);
    if let Some(path) = refs.get(id) {
        return Ok(Some(format!("{path}{rest}")));
    }
    if matches!(id, "metadata" | "batch") {
        return Ok(None);
    }
    Err(ApiError::bad_request(format!(
        "Content-ID Reference: '${id}' does not exist in the batch context"
    )))
}

/// The part of `target` after the org's Web API base (`accounts?$top=1`).
fn relative_target<'t>(org: &str, target: &'t str) -> Result<&'t str, ApiError> {
    let absolute = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"));
    let path = match absolute {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    let Some(rooted) = path.strip_prefix('/') else {
        return Ok(target);
    };
    let after_org = rooted
        .split_once('/')
        .filter(|(first, _)| *first == org)
        .map(|(_, rest)| rest);
    for candidate in after_org.into_iter().chain([rooted]) {
        if let Some(rest) = candidate.strip_prefix(API_ROOT)
            && (rest.is_empty() || rest.starts_with(['/', '?']))
        {
            return Ok(rest.strip_prefix('/').unwrap_or(rest));
        }
    }
    Err(ApiError::bad_request(format!(
        "'{target}' is not under this organization's Web API (/{org}/{API_ROOT}/)"
    )))
}

/// Replaces `"$1"` in `…@odata.bind` and `@odata.id` values with the referenced record.
fn substitute_binds(body: Bytes, refs: &References) -> Result<Bytes, ApiError> {
    if !body.contains(&b'$') {
        return Ok(body);
    }
    // A body that is not a JSON object is left for the operation to report.
    let Ok(Json::Object(mut map)) = serde_json::from_slice::<Json>(&body) else {
        return Ok(body);
    };
    let mut changed = false;
    for (key, value) in map.iter_mut() {
        if !(key.ends_with("@odata.bind") || key == "@odata.id") {
            continue;
        }
        if let Json::String(text) = value
            && let Some(reference) = text.strip_prefix('$')
            && let Some(path) = resolve_reference(reference, refs)?
        {
            *text = format!("/{path}");
            changed = true;
        }
    }
    if !changed {
        return Ok(body);
    }
    Ok(Bytes::from(
        serde_json::to_vec(&map).expect("a JSON map serializes"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_from_urls_roots_and_the_base() {
        for target in [
            "accounts?$top=1",
            "/acme/api/data/v9.2/accounts?$top=1",
            "/api/data/v9.2/accounts?$top=1",
            "https://crm.example/acme/api/data/v9.2/accounts?$top=1",
            "http://crm.example/api/data/v9.2/accounts?$top=1",
        ] {
            assert_eq!(
                relative_target("acme", target).unwrap(),
                "accounts?$top=1",
                "{target}"
            );
        }
        assert_eq!(relative_target("acme", "/acme/api/data/v9.2").unwrap(), "");
        let err = relative_target("acme", "/beta/api/data/v9.2/accounts").unwrap_err();
        assert!(err.message.contains("not under this organization"), "{err}");
        assert!(relative_target("acme", "/acme/api/data/v9.20/accounts").is_err());
    }

    #[test]
    fn references_resolve_in_urls_and_binds() {
        let refs: References = [(
            "1".to_owned(),
            "accounts(00000000-0000-0000-0000-000000000001)".to_owned(),
        )]
        .into();
        assert_eq!(
            resolve_reference("1?$select=name", &refs).unwrap().unwrap(),
            "accounts(00000000-0000-0000-0000-000000000001)?$select=name"
        );
        assert_eq!(resolve_reference("metadata", &refs).unwrap(), None);
        let err = resolve_reference("2", &refs).unwrap_err();
        assert!(err.message.contains("'$2' does not exist"), "{err}");

        let body = Bytes::from_static(br#"{"parentaccountid@odata.bind":"$1","name":"$1"}"#);
        let out: Json = serde_json::from_slice(&substitute_binds(body, &refs).unwrap()).unwrap();
        assert_eq!(
            out["parentaccountid@odata.bind"],
            "/accounts(00000000-0000-0000-0000-000000000001)"
        );
        assert_eq!(out["name"], "$1");
        let missing = Bytes::from_static(br#"{"parentaccountid@odata.bind":"$9"}"#);
        assert!(substitute_binds(missing, &refs).is_err());
    }
}
