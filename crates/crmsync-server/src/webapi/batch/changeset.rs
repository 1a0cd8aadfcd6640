//! Change sets: every operation is planned first (references resolved, bodies read, modes
//! decided), then all plans are written at once through the org's write plugin
//! (`writeback`: one store transaction, forwarded to the server first in immediate mode), so the change set is
//! stored whole or not at all. Any failure — while planning or in the store — becomes the
//! one error answer of the change set.
//!
//! `Content-ID` references resolve while planning: record ids are chosen before writing, so
//! a later operation can name a record an earlier one creates (`PATCH $1`,
//! `"x@odata.bind": "$1"`).

use std::collections::HashMap;

use axum::http::Method;
use crmsync_model::{AttributeName, EntityName, RecordId};
use crmsync_store::{StoreError, UpsertMode};

use super::parse::PartRequest;
use super::response::{ItemResponse, PartResponse};
use super::target::{References, api_request};
use crate::ApiError;
use crate::webapi::records::{self, WriteKind, WritePlan};
use crate::webapi::writeback::{self, WriteError};
use crate::webapi::{ApiRequest, Ctx, Prefer, Resource};

/// One operation, planned.
struct Planned {
    content_id: Option<String>,
    request: ApiRequest,
    plan: WritePlan,
    /// Whether an upsert inserts (it decides 201 or 200 for `return=representation`).
    created: bool,
}

/// A failed change set: the error, and the `Content-ID` of the operation that caused it.
type Failure = (Option<String>, ApiError);

pub async fn run(ctx: &Ctx, parts: Vec<PartRequest>) -> ItemResponse {
    match plan_and_write(ctx, parts).await {
        Ok(planned) => {
            let mut answers = Vec::with_capacity(planned.len());
            for p in planned {
                let response = records::respond(ctx, &p.request, &p.plan, p.created).await;
                let response = response.unwrap_or_else(axum::response::IntoResponse::into_response);
                answers.push(PartResponse::from_response(p.content_id, response).await);
            }
            ItemResponse::ChangeSet(answers)
        }
        Err((content_id, error)) => ItemResponse::Single(PartResponse::from_error(content_id, error).await),
    }
}

async fn plan_and_write(ctx: &Ctx, parts: Vec<PartRequest>) -> Result<Vec<Planned>, Failure> {
    let entities = records::entities(ctx).await.map_err(|e| (None, e))?;
    let mut refs = References::new();
    // Whether each record written so far in this change set exists after its operation.
    let mut exists: HashMap<(EntityName, RecordId), bool> = HashMap::new();
    let mut planned = Vec::with_capacity(parts.len());
    for part in parts {
        let content_id = part.content_id.clone();
        let fail = |e: ApiError| (content_id.clone(), e);
        let request = api_request(ctx.caller.org.as_str(), part, Some(&refs)).map_err(fail)?;
        let plan = plan(ctx, &entities, &request).await.map_err(fail)?;
        let key = (plan.entity.logical_name.clone(), plan.id);
        let created = match plan.kind {
            WriteKind::Create | WriteKind::Patch(UpsertMode::CreateOnly) => true,
            WriteKind::Patch(UpsertMode::UpdateOnly) | WriteKind::Delete => false,
            WriteKind::Patch(UpsertMode::Upsert) => match exists.get(&key) {
                Some(found) => !found,
                None if Prefer::parse(&request.headers).return_representation => {
                    !stored(ctx, &plan).await.map_err(fail)?
                }
                None => false,
            },
        };
        exists.insert(key, plan.kind != WriteKind::Delete);
        if let Some(id) = &content_id
            && refs.insert(id.clone(), plan.record_path()).is_some()
        {
            return Err(fail(ApiError::bad_request(format!(
                "the Content-ID '{id}' is used twice in one change set"
            ))));
        }
        planned.push(Planned {
            content_id,
            request,
            plan,
            created,
        });
    }
    let mut plans: Vec<WritePlan> = planned.iter().map(|p| p.plan.clone()).collect();
    match writeback::store(ctx, &mut plans, false).await {
        Ok(_) => Ok(planned),
        Err(WriteError::Store(error)) => Err((None, store_error(&planned, error))),
        Err(WriteError::Api(error)) => Err((None, error)),
    }
}

pub(super) async fn plan(
    ctx: &Ctx,
    entities: &records::Entities,
    request: &ApiRequest,
) -> Result<WritePlan, ApiError> {
    match (&request.method, Resource::parse(&request.path)?) {
        (&Method::POST, Resource::Collection(set)) => records::plan_create(entities, request, &set),
        (&Method::PATCH, Resource::Record { set, id }) => {
            records::plan_patch(ctx, entities, request, &set, id).await
        }
        (&Method::DELETE, Resource::Record { set, id }) => records::plan_delete(entities, &set, id),
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// Whether the plan's record is stored now (before the change set is written).
async fn stored(ctx: &Ctx, plan: &WritePlan) -> Result<bool, ApiError> {
    let version = [AttributeName::parse("versionnumber")?];
    match ctx
        .caller
        .store
        .retrieve(&plan.entity.logical_name, plan.id, Some(&version))
        .await
    {
        Ok(_) => Ok(true),
        Err(StoreError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The store's error in the terms of the operations: a conflict is a failed precondition when
/// an operation asked for `If-None-Match: *`.
fn store_error(planned: &[Planned], error: StoreError) -> ApiError {
    let create_only_patch = planned
        .iter()
        .find(|p| p.plan.kind == WriteKind::Patch(UpsertMode::CreateOnly));
    match (create_only_patch, error) {
        (Some(p), e @ StoreError::Conflict(_)) => p.plan.store_error(e),
        (_, e) => e.into(),
    }
}
