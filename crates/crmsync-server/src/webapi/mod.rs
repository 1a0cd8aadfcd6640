//! The Dataverse-compatible Web API under `/{org}/api/data/v9.2/`.
//!
//! One catch-all route authenticates the caller, parses the OData resource path
//! ([`Resource`]) and hands an [`ApiRequest`] to [`execute`], which `$batch` reuses for each
//! of its parts. Modules: `json` (records to and from Dataverse JSON), `metadata`
//! (`EntityDefinitions`, `$metadata`), `records` (single records), `prefer` (the `Prefer`
//! header), `path` (resource paths).

mod batch;
mod changes;
mod json;
mod metadata;
mod path;
mod prefer;
mod query;
mod records;
mod writeback;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use crmsync_model::EntityMetadata;

use crate::auth::Caller;
use crate::{ApiError, AppState};
pub use path::Resource;
pub use prefer::Prefer;
pub use writeback::ConnectorCache;

/// One Web API request, from HTTP or from a `$batch` part.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// The resource path after `v9.2/`, percent-decoded.
    pub path: String,
    /// Query options, decoded (`+` is a space, as Dataverse reads them).
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ApiRequest {
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|h| h.to_str().ok())
    }
}

/// Everything a handler needs besides the request.
pub struct Ctx {
    pub state: AppState,
    pub caller: Caller,
    /// Absolute base URL of the org's Web API, ending with `/`.
    pub base: String,
}

impl Ctx {
    pub async fn entity_by_set(&self, set: &str) -> Result<EntityMetadata, ApiError> {
        let entities = self.caller.store.entities().await?;
        entities
            .into_iter()
            .find(|e| e.entity_set_name == set)
            .ok_or_else(|| ApiError::not_found(format!("Resource not found for the segment '{set}'")))
    }
}

fn base_url(headers: &HeaderMap, org: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http");
    format!("{scheme}://{host}/{org}/api/data/v9.2/")
}

/// Characters escaped in the values of links the server writes: everything but unreserved
/// characters and the punctuation OData queries use, so links stay readable.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'$')
    .remove(b',')
    .remove(b'(')
    .remove(b')')
    .remove(b'\'')
    .remove(b':')
    .remove(b'!')
    .remove(b'/')
    .remove(b'@')
    .remove(b'*');

/// `k=v&…` with OData's `$` names left as they are.
pub(crate) fn encode_query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encoding::utf8_percent_encode(k, QUERY_VALUE),
                percent_encoding::utf8_percent_encode(v, QUERY_VALUE)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub(crate) fn parse_query(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))
}

pub async fn dispatch_root(
    state: State<AppState>,
    Path(org): Path<String>,
    method: Method,
    headers: HeaderMap,
    query: RawQuery,
    body: Bytes,
) -> Response {
    dispatch(state, Path((org, String::new())), method, headers, query, body).await
}

pub async fn dispatch(
    State(state): State<AppState>,
    Path((org, path)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let result = async {
        let caller = state.auth.authenticate(&org, &headers).await?;
        let base = base_url(&headers, caller.org.as_str());
        let query = parse_query(raw.as_deref())?;
        let request = ApiRequest {
            method,
            path,
            query,
            headers,
            body,
        };
        execute(&Ctx { state, caller, base }, request).await
    }
    .await;
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response
        .headers_mut()
        .insert("odata-version", HeaderValue::from_static("4.0"));
    response
}

/// Executes one request against the caller's organization.
pub async fn execute(ctx: &Ctx, request: ApiRequest) -> Result<Response, ApiError> {
    let resource = Resource::parse(&request.path)?;
    tracing::debug!(org = %ctx.caller.org, method = %request.method, resource = ?resource, "web api request");
    match (&request.method, resource) {
        (&Method::POST, Resource::Batch) => batch::handle(ctx, &request).await,
        (&Method::GET, Resource::Root) => metadata::service_document(ctx).await,
        (&Method::GET, Resource::Metadata) => metadata::csdl(ctx).await,
        (&Method::GET, Resource::WhoAmI) => Ok(metadata::who_am_i(ctx)),
        (&Method::GET, Resource::EntityDefinitions(def)) => {
            metadata::entity_definitions(ctx, &request, def).await
        }
        (&Method::GET, Resource::Record { set, id }) => records::get(ctx, &request, &set, id).await,
        (&Method::GET, Resource::Collection(set)) => collection(ctx, &request, &set).await,
        (&Method::POST, Resource::Collection(set)) => records::create(ctx, &request, &set).await,
        (&Method::PATCH, Resource::Record { set, id }) => records::patch(ctx, &request, &set, id).await,
        (&Method::DELETE, Resource::Record { set, id }) => records::delete(ctx, &request, &set, id).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// `GET /{set}`: a change-tracking read, or a query.
async fn collection(ctx: &Ctx, request: &ApiRequest, set: &str) -> Result<Response, ApiError> {
    let entity = ctx.entity_by_set(set).await?;
    let prefer = Prefer::parse(&request.headers);
    if changes::is_tracked(request, &prefer) {
        return changes::get(ctx, request, &entity, &prefer).await;
    }
    query::get(ctx, request, &entity, &prefer).await
}
