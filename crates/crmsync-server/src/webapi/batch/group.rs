//! Independent writes of a batch stored together. With `odata.continue-on-error`, each
//! request outside change sets stands alone: its failure does not affect the others. A run
//! of such writes (`POST`, `PATCH`, `DELETE` of records, no `return=representation`) is
//! planned, then stored through the write plugin as one store transaction; the answers are
//! the same as one by one. When that transaction fails — some write of the run fails on its
//! own — nothing of it was stored, and the run is executed again one request at a time, so
//! each gets its own answer. Runs touching one record twice are split there, so each write
//! sees the ones before it exactly as one by one.
//!
//! This is what makes a sync's upload of thousands of queued changes one transaction per
//! `$batch` instead of one per change.

use std::collections::HashSet;

use axum::http::Method;
use axum::response::IntoResponse;

use super::parse::PartRequest;
use super::response::PartResponse;
use super::target::api_request;
use super::{changeset, run_request};
use crate::webapi::records::{self, WritePlan};
use crate::webapi::writeback;
use crate::webapi::{ApiRequest, Ctx, Prefer};

/// Most writes stored in one transaction.
pub const MAX_GROUP: usize = 1000;

/// Whether a request may join a run of independent writes.
pub fn groupable(part: &PartRequest) -> bool {
    matches!(part.method, Method::POST | Method::PATCH | Method::DELETE)
        && !Prefer::parse(&part.headers).return_representation
}

/// Answers each request of `run`, in order.
pub async fn run(ctx: &Ctx, run: Vec<PartRequest>) -> Vec<PartResponse> {
    let mut answers = Vec::with_capacity(run.len());
    let mut rest = run.into_iter().peekable();
    while rest.peek().is_some() {
        // The longest prefix without a record written twice.
        let mut seen = HashSet::new();
        let mut chunk = Vec::new();
        while let Some(part) = rest.peek() {
            // A POST creates a new record; PATCH and DELETE name theirs in the target.
            if part.method != Method::POST && !seen.insert(part.target.to_ascii_lowercase()) {
                break;
            }
            chunk.push(rest.next().expect("peeked"));
        }
        answers.extend(run_chunk(ctx, chunk).await);
    }
    answers
}

async fn run_chunk(ctx: &Ctx, chunk: Vec<PartRequest>) -> Vec<PartResponse> {
    if chunk.len() > 1
        && let Some(answers) = together(ctx, &chunk).await
    {
        return answers;
    }
    let mut answers = Vec::with_capacity(chunk.len());
    for part in chunk {
        answers.push(run_request(ctx, part).await);
    }
    answers
}

/// Plans and stores the whole chunk in one transaction; `None` when any of it fails (then
/// nothing was stored).
async fn together(ctx: &Ctx, chunk: &[PartRequest]) -> Option<Vec<PartResponse>> {
    let entities = records::entities(ctx).await.ok()?;
    let mut requests: Vec<ApiRequest> = Vec::with_capacity(chunk.len());
    let mut plans: Vec<WritePlan> = Vec::with_capacity(chunk.len());
    for part in chunk {
        let request = api_request(ctx.caller.org.as_str(), part.clone(), None).ok()?;
        plans.push(changeset::plan(ctx, &entities, &request).await.ok()?);
        requests.push(request);
    }
    if writeback::store(ctx, &mut plans, false).await.is_err() {
        return None;
    }
    let mut answers = Vec::with_capacity(plans.len());
    for ((request, plan), part) in requests.iter().zip(&plans).zip(chunk) {
        let response = records::respond(ctx, request, plan, false)
            .await
            .unwrap_or_else(IntoResponse::into_response);
        answers.push(PartResponse::from_response(part.content_id.clone(), response).await);
    }
    Some(answers)
}
