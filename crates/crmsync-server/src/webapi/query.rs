//! Collection queries: OData options (`$select`, `$filter`, `$orderby`, `$top`, `$count`) and
//! FetchXML (`?fetchXml=`), executed by the store one page at a time.
//!
//! OData pages follow `@odata.nextLink` with `$skiptoken` `k.<id>` (by key) or `o.<offset>`;
//! the page size is `Prefer: odata.maxpagesize` (default and maximum: the server's page size).
//! FetchXML pages follow Dataverse's paging cookie: the response carries
//! `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie` (the cookie, URL-encoded twice, inside a
//! `<cookie pagenumber=… pagingcookie=…/>` element) and `@Microsoft.Dynamics.CRM.morerecords`;
//! the next request sends `page` and `paging-cookie` on `<fetch>`. Link-entity attributes
//! appear as `alias.attribute`.

use axum::http::HeaderValue;
use axum::response::Response;
use crmsync_model::{EntityMetadata, RecordId};
use crmsync_query::{EvalContext, ODataParams, Query, parse_fetchxml, parse_odata};
use crmsync_store::{PageCursor, PageRequest, QueryPage};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::json::{Envelope, JsonShape, RecordJson};
use super::{ApiRequest, Ctx, Prefer, encode_query};
use crate::ApiError;

/// Dataverse's page size when FetchXML names none.
const FETCH_DEFAULT_PAGE: usize = 5000;

fn eval_context(ctx: &Ctx) -> EvalContext {
    EvalContext {
        now: chrono::Utc::now(),
        user_id: Some(RecordId::from_uuid(ctx.caller.user.id)),
    }
}

fn rows<'a>(shape: &'a JsonShape<'a>, page: &'a QueryPage) -> impl Iterator<Item = RecordJson<'a>> {
    page.rows.iter().map(move |row| RecordJson {
        shape,
        record: &row.record,
        linked: &row.linked,
    })
}

/// `$skiptoken` `k.<page size>.<id>` or `o.<page size>.<offset>`: the page size travels with
/// the link, so the link alone continues the read.
fn parse_skip(skip: &str) -> Result<(PageCursor, usize), ApiError> {
    let bad = || ApiError::bad_request(format!("'{skip}' is not a valid $skiptoken"));
    let mut parts = skip.splitn(3, '.');
    let (Some(kind), Some(size), Some(position)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let size: usize = size.parse().map_err(|_| bad())?;
    let cursor = match kind {
        "k" => PageCursor::AfterId(RecordId::parse(position).map_err(|_| bad())?),
        "o" => PageCursor::Offset(position.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    };
    Ok((cursor, size))
}

fn skip_token(cursor: &PageCursor, size: usize) -> String {
    match cursor {
        PageCursor::AfterId(id) => format!("k.{size}.{id}"),
        PageCursor::Offset(o) => format!("o.{size}.{o}"),
    }
}

pub async fn get(
    ctx: &Ctx,
    request: &ApiRequest,
    entity: &EntityMetadata,
    prefer: &Prefer,
) -> Result<Response, ApiError> {
    if let Some(fetch) = request.query_param("fetchXml") {
        return fetch_xml(ctx, entity, fetch, prefer).await;
    }
    let entities = ctx.caller.store.entities().await?;
    let params = ODataParams {
        select: request.query_param("$select").map(str::to_owned),
        filter: request.query_param("$filter").map(str::to_owned),
        orderby: request.query_param("$orderby").map(str::to_owned),
        top: request.query_param("$top").map(str::to_owned),
        count: request.query_param("$count").map(str::to_owned),
        expand: request.query_param("$expand").map(str::to_owned),
    };
    let query = parse_odata(entity, &params, &entities)?;
    let skip = request.query_param("$skiptoken").map(parse_skip).transpose()?;
    let size = prefer
        .max_page_size
        .or(skip.as_ref().map(|(_, size)| *size))
        .unwrap_or(ctx.state.config.max_page_size)
        .clamp(1, ctx.state.config.max_page_size);
    let cursor = skip.map(|(cursor, _)| cursor);
    let request_page = PageRequest {
        size,
        cursor,
        with_total: query.return_total_count,
    };
    let page = ctx
        .caller
        .store
        .query(&query, &eval_context(ctx), &request_page)
        .await?;
    let mut body = Envelope::new(&format!("{}$metadata#{}", ctx.base, entity.entity_set_name));
    if let Some(total) = page.total {
        body.field("@odata.count", &total);
    }
    let shape = JsonShape::new(entity, prefer);
    body.items(rows(&shape, &page));
    if let Some(next) = &page.next {
        let mut pairs: Vec<(String, String)> = request
            .query
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
            .cloned()
            .collect();
        pairs.push(("$skiptoken".into(), skip_token(next, size)));
        body.field(
            "@odata.nextLink",
            &format!("{}{}?{}", ctx.base, entity.entity_set_name, encode_query(&pairs)),
        );
    }
    let mut response = body.into_response();
    if let Some(applied) = prefer.applied(Some(size), false) {
        response.headers_mut().insert(
            "preference-applied",
            HeaderValue::from_str(&applied).map_err(ApiError::internal)?,
        );
    }
    Ok(response)
}

/// The `last="…"` id of a paging cookie we issued, if it has one.
fn cookie_last_id(cookie: &str) -> Option<RecordId> {
    let start = cookie.find("last=\"")? + 6;
    let end = cookie[start..].find('"')? + start;
    RecordId::parse(&cookie[start..end]).ok()
}

fn fetch_cursor(query: &Query, size: usize) -> Option<PageCursor> {
    let page = query.page.unwrap_or(1).max(1) as u64;
    if page == 1 {
        return None;
    }
    if let Some(id) = query.paging_cookie.as_deref().and_then(cookie_last_id) {
        return Some(PageCursor::AfterId(id));
    }
    Some(PageCursor::Offset((page - 1) * size as u64))
}

/// The annotation value Dataverse returns: the cookie, URL-encoded twice, in an element.
fn paging_cookie(entity: &EntityMetadata, page_number: u32, next: &PageCursor, page: &QueryPage) -> String {
    let inner = match next {
        PageCursor::AfterId(last) => {
            let first = page
                .rows
                .first()
                .and_then(|r| r.record.id)
                .map(|id| id.to_string())
                .unwrap_or_default();
            format!(
                r#"<cookie page="{page_number}"><{pk} last="{{{last}}}" first="{{{first}}}" /></cookie>"#,
                pk = entity.primary_id_attribute
            )
        }
        PageCursor::Offset(offset) => format!(r#"<cookie page="{page_number}" offset="{offset}"></cookie>"#),
    };
    let once = utf8_percent_encode(&inner, NON_ALPHANUMERIC).to_string();
    let twice = utf8_percent_encode(&once, NON_ALPHANUMERIC).to_string();
    format!(
        r#"<cookie pagenumber="{}" pagingcookie="{twice}" istracking="False" />"#,
        page_number + 1
    )
}

async fn fetch_xml(
    ctx: &Ctx,
    entity: &EntityMetadata,
    fetch: &str,
    prefer: &Prefer,
) -> Result<Response, ApiError> {
    let entities = ctx.caller.store.entities().await?;
    let query = parse_fetchxml(fetch, &entities)?;
    if query.entity != entity.logical_name {
        return Err(ApiError::bad_request(format!(
            "the FetchXML queries '{}' but the request addresses '{}'",
            query.entity, entity.entity_set_name
        )));
    }
    let size = query.count.map(|c| c as usize).unwrap_or(FETCH_DEFAULT_PAGE);
    let request_page = PageRequest {
        size,
        cursor: fetch_cursor(&query, size),
        with_total: query.return_total_count,
    };
    let page = ctx
        .caller
        .store
        .query(&query, &eval_context(ctx), &request_page)
        .await?;
    let mut body = Envelope::new(&format!("{}$metadata#{}", ctx.base, entity.entity_set_name));
    if let Some(total) = page.total {
        body.field("@Microsoft.Dynamics.CRM.totalrecordcount", &total);
        body.field("@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded", &false);
    }
    if let Some(next) = &page.next {
        let number = query.page.unwrap_or(1).max(1);
        body.field(
            "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie",
            &paging_cookie(entity, number, next, &page),
        );
    }
    body.field("@Microsoft.Dynamics.CRM.morerecords", &page.next.is_some());
    let shape = JsonShape::new(entity, prefer);
    body.items(rows(&shape, &page));
    Ok(body.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_tokens_and_cookies_parse_back() {
        let id = RecordId::new_random();
        assert_eq!(
            parse_skip(&skip_token(&PageCursor::AfterId(id), 7)).unwrap(),
            (PageCursor::AfterId(id), 7)
        );
        assert_eq!(parse_skip("o.10.5000").unwrap(), (PageCursor::Offset(5000), 10));
        assert!(parse_skip("x").is_err());
        assert!(parse_skip("o.x.1").is_err());
        let cookie = format!(r#"<cookie page="1"><accountid last="{{{id}}}" first="{{{id}}}" /></cookie>"#);
        assert_eq!(cookie_last_id(&cookie), Some(id));
        assert_eq!(cookie_last_id(r#"<cookie page="1" offset="10"></cookie>"#), None);
    }
}
