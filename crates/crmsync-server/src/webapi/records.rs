//! Single records: `GET|PATCH|DELETE /{set}({id})` and `POST /{set}`.
//!
//! `PATCH` is an upsert unless `If-Match: *` (update only; a missing record is 404) or
//! `If-None-Match: *` (create only; an existing record is 412). `If-Match` with an etag
//! updates only the version it names (412 otherwise). Writes answer 204 with
//! `OData-EntityId`, or the record itself with `Prefer: return=representation`.
//!
//! Writes are planned, then applied: `plan_create`, `plan_patch` and `plan_delete` resolve
//! the entity, read the body and decide the mode into a [`WritePlan`] without writing
//! anything; the single-record handlers write one plan, a `$batch` change set writes all of
//! its plans in one [`WriteSet`], and [`respond`] answers each plan once it is stored.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crmsync_model::{AttributeName, EntityMetadata, Record, RecordId};
use crmsync_store::{DeleteMode, StoreError, UpsertMode, WriteSet};

use super::json::{EntityJson, JsonShape, RecordJson, etag, record_from_body};
use super::writeback::{self, WriteError};
use super::{ApiRequest, Ctx, Prefer};
use crate::ApiError;

/// `$select` as attribute names; lookups may be named `_x_value`.
pub fn select_columns(
    entity: &EntityMetadata,
    select: Option<&str>,
) -> Result<Option<Vec<AttributeName>>, ApiError> {
    let Some(select) = select.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let mut columns = Vec::new();
    for item in select.split(',').map(str::trim) {
        let name = item
            .strip_prefix('_')
            .and_then(|i| i.strip_suffix("_value"))
            .unwrap_or(item);
        let attr = entity.attribute(name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Could not find a property named '{item}' on type '{}'",
                entity.logical_name
            ))
        })?;
        columns.push(attr.logical_name.clone());
    }
    Ok(Some(columns))
}

fn entity_id_header(ctx: &Ctx, entity: &EntityMetadata, id: RecordId) -> HeaderValue {
    HeaderValue::from_str(&format!("{}{}({id})", ctx.base, entity.entity_set_name))
        .expect("URL is a valid header")
}

/// An org's metadata, loaded once per request, change set or batch, shared by its plans.
pub type Entities = [Arc<EntityMetadata>];

/// The org's metadata as shared [`Entities`].
pub async fn entities(ctx: &Ctx) -> Result<Vec<Arc<EntityMetadata>>, ApiError> {
    Ok(ctx
        .caller
        .store
        .entities()
        .await?
        .into_iter()
        .map(Arc::new)
        .collect())
}

/// The entity of an entity set, among `entities`.
fn entity_in<'e>(entities: &'e Entities, set: &str) -> Result<&'e Arc<EntityMetadata>, ApiError> {
    entities
        .iter()
        .find(|e| e.entity_set_name == set)
        .ok_or_else(|| ApiError::not_found(format!("Resource not found for the segment '{set}'")))
}

async fn respond_written(
    ctx: &Ctx,
    request: &ApiRequest,
    entity: &EntityMetadata,
    id: RecordId,
    created: bool,
) -> Result<Response, ApiError> {
    let prefer = Prefer::parse(&request.headers);
    if prefer.return_representation {
        let columns = select_columns(entity, request.query_param("$select"))?;
        let record = ctx
            .caller
            .store
            .retrieve(&entity.logical_name, id, columns.as_deref())
            .await?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let shape = JsonShape::new(entity, &prefer);
        let mut response = (status, entity_body(ctx, entity, &shape, &record)).into_response();
        response
            .headers_mut()
            .insert("odata-entityid", entity_id_header(ctx, entity, id));
        response.headers_mut().insert(
            "preference-applied",
            HeaderValue::from_static("return=representation"),
        );
        return Ok(response);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert("odata-entityid", entity_id_header(ctx, entity, id));
    Ok(response)
}

/// The request's JSON body as a record of `entity`.
fn body_record(
    entities: &Entities,
    entity: &EntityMetadata,
    request: &ApiRequest,
) -> Result<crmsync_model::Record, ApiError> {
    if request.body.is_empty() {
        return Err(ApiError::bad_request("the request needs a JSON body"));
    }
    record_from_body(entity, entities, &request.body)
}

pub async fn get(ctx: &Ctx, request: &ApiRequest, set: &str, id: RecordId) -> Result<Response, ApiError> {
    let entity = ctx.entity_by_set(set).await?;
    let selected = select_columns(&entity, request.query_param("$select"))?;
    // The etag is always returned, as Dataverse does: read the version with the selection.
    let version = AttributeName::parse("versionnumber")?;
    let columns = selected.clone().map(|mut c| {
        c.push(version.clone());
        c
    });
    let record = ctx
        .caller
        .store
        .retrieve(&entity.logical_name, id, columns.as_deref())
        .await?;
    if let (Some(tag), Some(wanted)) = (etag(&record), request.header(header::IF_NONE_MATCH))
        && wanted == tag
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let prefer = Prefer::parse(&request.headers);
    // `versionnumber` is read for the etag; it is written only when selected.
    let shape = JsonShape::new(&entity, &prefer).selecting(selected.as_deref());
    Ok(entity_body(ctx, &entity, &shape, &record).into_response())
}

/// A record answered on its own, with its `@odata.context`.
fn entity_body(ctx: &Ctx, entity: &EntityMetadata, shape: &JsonShape, record: &Record) -> impl IntoResponse {
    let context = format!("{}$metadata#{}/$entity", ctx.base, entity.entity_set_name);
    let body = EntityJson {
        context: &context,
        record: RecordJson {
            shape,
            record,
            linked: &[],
        },
    };
    let body = serde_json::to_vec(&body).expect("a record serializes");
    ([(header::CONTENT_TYPE, "application/json")], body)
}

/// What a write request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    /// `POST /{set}`: always a new record.
    Create,
    /// `PATCH /{set}({id})` in the mode its conditional headers ask for.
    Patch(UpsertMode),
    /// `DELETE /{set}({id})`.
    Delete,
}

/// One write request, decided but not yet written.
#[derive(Clone, Debug)]
pub struct WritePlan {
    pub entity: Arc<EntityMetadata>,
    pub id: RecordId,
    pub kind: WriteKind,
    /// The store writes of this request (one op), to apply alone or merged with others.
    pub writes: WriteSet,
}

impl WritePlan {
    /// The record's path relative to the Web API base: `accounts(<id>)`.
    pub fn record_path(&self) -> String {
        format!("{}({})", self.entity.entity_set_name, self.id)
    }

    /// Store errors in the request's terms: an existing record under `If-None-Match: *` is a
    /// failed precondition.
    pub fn store_error(&self, error: StoreError) -> ApiError {
        match (self.kind, error) {
            (WriteKind::Patch(UpsertMode::CreateOnly), StoreError::Conflict(m)) => {
                ApiError::precondition_failed(m)
            }
            (_, e) => e.into(),
        }
    }

    /// A failed write in the request's terms.
    pub fn write_error(&self, error: WriteError) -> ApiError {
        match error {
            WriteError::Store(e) => self.store_error(e),
            WriteError::Api(e) => e,
        }
    }
}

pub fn plan_create(entities: &Entities, request: &ApiRequest, set: &str) -> Result<WritePlan, ApiError> {
    let entity = entity_in(entities, set)?;
    let mut record = body_record(entities, entity, request)?;
    let id = *record.id.get_or_insert_with(RecordId::new_random);
    Ok(WritePlan {
        entity: entity.clone(),
        id,
        kind: WriteKind::Create,
        writes: WriteSet::new().record(entity.logical_name.clone(), record, UpsertMode::CreateOnly),
    })
}

/// Plans a `PATCH`; an `If-Match` etag is checked against the stored version now.
pub async fn plan_patch(
    ctx: &Ctx,
    entities: &Entities,
    request: &ApiRequest,
    set: &str,
    id: RecordId,
) -> Result<WritePlan, ApiError> {
    let entity = entity_in(entities, set)?;
    let mut record = body_record(entities, entity, request)?;
    if record.id.is_some_and(|body_id| body_id != id) {
        return Err(ApiError::bad_request(format!(
            "the body's {} differs from the id in the URL",
            entity.primary_id_attribute
        )));
    }
    record.id = Some(id);
    let mode = match (
        request.header(header::IF_MATCH),
        request.header(header::IF_NONE_MATCH),
    ) {
        (Some("*"), _) => UpsertMode::UpdateOnly,
        (Some(tag), _) => {
            let current = ctx
                .caller
                .store
                .retrieve(
                    &entity.logical_name,
                    id,
                    Some(&[AttributeName::parse("versionnumber")?]),
                )
                .await?;
            if etag(&current).as_deref() != Some(tag) {
                return Err(ApiError::precondition_failed(
                    "the record has changed since it was read (etag mismatch)",
                ));
            }
            UpsertMode::UpdateOnly
        }
        (None, Some("*")) => UpsertMode::CreateOnly,
        _ => UpsertMode::Upsert,
    };
    Ok(WritePlan {
        entity: entity.clone(),
        id,
        kind: WriteKind::Patch(mode),
        writes: WriteSet::new().record(entity.logical_name.clone(), record, mode),
    })
}

pub fn plan_delete(entities: &Entities, set: &str, id: RecordId) -> Result<WritePlan, ApiError> {
    let entity = entity_in(entities, set)?;
    Ok(WritePlan {
        entity: entity.clone(),
        id,
        kind: WriteKind::Delete,
        writes: WriteSet::new().delete(entity.logical_name.clone(), vec![id], DeleteMode::MustExist),
    })
}

/// The answer to a stored plan; `created` tells an upsert that inserted from one that updated.
pub async fn respond(
    ctx: &Ctx,
    request: &ApiRequest,
    plan: &WritePlan,
    created: bool,
) -> Result<Response, ApiError> {
    match plan.kind {
        WriteKind::Delete => Ok(StatusCode::NO_CONTENT.into_response()),
        WriteKind::Create => respond_written(ctx, request, &plan.entity, plan.id, true).await,
        WriteKind::Patch(_) => respond_written(ctx, request, &plan.entity, plan.id, created).await,
    }
}

/// Writes one plan on its own (through the org's write plugin) and answers it.
async fn apply_one(ctx: &Ctx, request: &ApiRequest, mut plan: WritePlan) -> Result<Response, ApiError> {
    // Only an upsert's answer depends on whether it inserted (201 or 200 with a representation).
    let count_created = plan.kind == WriteKind::Patch(UpsertMode::Upsert);
    let outcome = writeback::store(ctx, std::slice::from_mut(&mut plan), count_created)
        .await
        .map_err(|e| plan.write_error(e))?;
    respond(ctx, request, &plan, outcome.created > 0).await
}

pub async fn create(ctx: &Ctx, request: &ApiRequest, set: &str) -> Result<Response, ApiError> {
    let entities = entities(ctx).await?;
    let plan = plan_create(&entities, request, set)?;
    apply_one(ctx, request, plan).await
}

pub async fn patch(ctx: &Ctx, request: &ApiRequest, set: &str, id: RecordId) -> Result<Response, ApiError> {
    let entities = entities(ctx).await?;
    let plan = plan_patch(ctx, &entities, request, set, id).await?;
    apply_one(ctx, request, plan).await
}

pub async fn delete(ctx: &Ctx, request: &ApiRequest, set: &str, id: RecordId) -> Result<Response, ApiError> {
    let entities = entities(ctx).await?;
    let plan = plan_delete(&entities, set, id)?;
    apply_one(ctx, request, plan).await
}
