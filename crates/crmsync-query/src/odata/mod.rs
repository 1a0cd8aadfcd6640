//! OData query options of the Web API (`$select`, `$filter`, `$orderby`, `$top`, `$count`)
//! parsed into the same validated [`Query`] as FetchXML.
//!
//! Property names are attribute logical names; a lookup is also accepted under its Web API
//! name `_x_value` (and `x`). `$expand` is not supported: crmsync's metadata has no navigation
//! properties yet, and saying so beats ignoring it.

mod filter;
mod lexer;
mod literal;

use crmsync_model::{AttributeName, EntityMetadata};

use crate::ast::{Columns, OrderBy, Query};
use crate::{MetadataSource, QueryError};

/// Longest `$filter` accepted (characters), like FetchXML's size limit.
pub const MAX_FILTER_LEN: usize = 64 * 1024;

/// The raw (already percent-decoded) query options of a request; absent options are `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ODataParams {
    pub select: Option<String>,
    pub filter: Option<String>,
    pub orderby: Option<String>,
    pub top: Option<String>,
    pub count: Option<String>,
    pub expand: Option<String>,
}

/// Parses the OData options of a request on `entity`'s entity set. `metadata` is the org's
/// metadata (used for entities other than `entity` once `$expand` is supported).
pub fn parse_odata(
    entity: &EntityMetadata,
    params: &ODataParams,
    metadata: &dyn MetadataSource,
) -> Result<Query, QueryError> {
    let _ = metadata;
    if params.expand.as_deref().is_some_and(|e| !e.trim().is_empty()) {
        return Err(QueryError::Unsupported("$expand".into()));
    }
    let mut query = Query::new(entity.logical_name.clone());
    if let Some(select) = &params.select {
        query.columns = parse_select(entity, select)?;
    }
    if let Some(text) = params.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        if text.len() > MAX_FILTER_LEN {
            return Err(QueryError::TooLarge {
                size: text.len(),
                max: MAX_FILTER_LEN,
            });
        }
        query.filter = Some(filter::parse_filter(text, entity)?);
    }
    if let Some(orderby) = &params.orderby {
        query.order = parse_orderby(entity, orderby)?;
    }
    if let Some(top) = &params.top {
        query.top = Some(
            top.trim()
                .parse()
                .map_err(|_| option_error("$top", top, "a whole number"))?,
        );
    }
    if let Some(count) = &params.count {
        query.return_total_count = match count.trim() {
            "true" => true,
            "false" => false,
            _ => return Err(option_error("$count", count, "true or false")),
        };
    }
    Ok(query)
}

fn option_error(part: &'static str, value: &str, expected: &str) -> QueryError {
    QueryError::Syntax {
        part,
        position: 0,
        message: format!("'{value}' is not {expected}"),
    }
}

fn property(entity: &EntityMetadata, name: &str) -> Result<AttributeName, QueryError> {
    filter::resolve_property(entity, name)
        .map(|a| a.logical_name.clone())
        .ok_or_else(|| QueryError::UnknownAttribute {
            entity: entity.logical_name.to_string(),
            attribute: name.to_owned(),
        })
}

fn parse_select(entity: &EntityMetadata, select: &str) -> Result<Columns, QueryError> {
    let mut list = Vec::new();
    for item in select.split(',').map(str::trim) {
        match item {
            "*" => return Ok(Columns::All),
            "" => {
                return Err(option_error(
                    "$select",
                    select,
                    "a comma-separated list of properties",
                ));
            }
            name => {
                let attr = property(entity, name)?;
                if !list.contains(&attr) {
                    list.push(attr);
                }
            }
        }
    }
    Ok(Columns::List(list))
}

fn parse_orderby(entity: &EntityMetadata, orderby: &str) -> Result<Vec<OrderBy>, QueryError> {
    orderby
        .split(',')
        .map(|item| {
            let mut words = item.split_whitespace();
            let name = words
                .next()
                .ok_or_else(|| option_error("$orderby", orderby, "a comma-separated list of properties"))?;
            let descending = match words.next() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(other) => return Err(option_error("$orderby", other, "asc or desc")),
            };
            if let Some(extra) = words.next() {
                return Err(option_error("$orderby", extra, "the end of the item"));
            }
            Ok(OrderBy {
                attribute: property(entity, name)?,
                descending,
                alias: None,
            })
        })
        .collect()
}
