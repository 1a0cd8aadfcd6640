//! FetchXML element tree -> validated [`Query`].
//!
//! Two passes over the `<entity>` element: the first collects every link-entity alias (in
//! document order, generating one where the document has none), so that conditions and orders
//! may name an alias declared later in the document; the second builds the query, taking the
//! aliases in the same order.
//!
//! Normalizations (all preserved by [`super::to_fetchxml`]): an empty `<filter>` is dropped;
//! several `<filter>` elements under one entity are combined with `and`; `<order>` elements of
//! link-entities become query orders with the link's alias, after the root's orders;
//! `neq` reads as `ne`. XML attributes crmsync does not use (`version`, `mapping`,
//! `output-format`, `no-lock`, `uiname`, `uitype`, `visible`, `intersect`…) are ignored.

use crmsync_model::{AttributeName, EntityMetadata, Value};

use super::xml::Element;
use crate::QueryError;
use crate::ast::{Columns, Condition, Filter, LinkEntity, LinkType, OrderBy, Query};
use crate::metadata::{MetadataSource, require_entity};
use crate::operators::{self, OpKind};

/// Largest `top` and `count` (page size), as in Dataverse.
pub const MAX_PAGE: u32 = 5000;

struct Ctx<'m> {
    aliases: Vec<(String, &'m EntityMetadata)>,
    next_link: usize,
    link_orders: Vec<OrderBy>,
}

impl<'m> Ctx<'m> {
    fn entity_of(&self, alias: &str) -> Result<&'m EntityMetadata, QueryError> {
        self.aliases
            .iter()
            .find(|(a, _)| a == alias)
            .map(|(_, m)| *m)
            .ok_or_else(|| QueryError::UnknownAlias(alias.to_owned()))
    }
}

pub(crate) fn build_query(root: &Element, metadata: &dyn MetadataSource) -> Result<Query, QueryError> {
    if root.name != "fetch" {
        return Err(QueryError::UnexpectedElement {
            element: root.name.clone(),
            parent: "document".into(),
        });
    }
    let entity_el = single_entity(root)?;
    let name = required(entity_el, "entity", "name")?;
    let meta = require_entity(metadata, name)?;
    let mut ctx = Ctx {
        aliases: Vec::new(),
        next_link: 0,
        link_orders: Vec::new(),
    };
    collect_aliases(entity_el, metadata, &mut ctx.aliases)?;
    let mut query = Query::new(meta.logical_name.clone());
    read_fetch_attributes(root, &mut query)?;
    let body = build_body(entity_el, meta, &mut ctx)?;
    query.columns = body.columns;
    query.filter = body.filter;
    query.links = body.links;
    query.order = body.order;
    query.order.append(&mut ctx.link_orders);
    Ok(query)
}

fn single_entity(root: &Element) -> Result<&Element, QueryError> {
    let mut entity = None;
    for child in &root.children {
        match child.name.as_str() {
            "entity" if entity.is_none() => entity = Some(child),
            _ => return Err(unexpected(child, "fetch")),
        }
    }
    entity.ok_or(QueryError::MissingAttribute {
        element: "fetch",
        attribute: "entity (child element)",
    })
}

fn unexpected(child: &Element, parent: &str) -> QueryError {
    QueryError::UnexpectedElement {
        element: child.name.clone(),
        parent: parent.to_owned(),
    }
}

fn required<'e>(
    el: &'e Element,
    element: &'static str,
    attribute: &'static str,
) -> Result<&'e str, QueryError> {
    el.attr(attribute)
        .ok_or(QueryError::MissingAttribute { element, attribute })
}

fn collect_aliases<'m>(
    el: &Element,
    metadata: &'m dyn MetadataSource,
    out: &mut Vec<(String, &'m EntityMetadata)>,
) -> Result<(), QueryError> {
    for link in el.children.iter().filter(|c| c.name == "link-entity") {
        let name = required(link, "link-entity", "name")?;
        let meta = require_entity(metadata, name)?;
        let alias = match link.attr("alias") {
            Some(a) if out.iter().any(|(x, _)| x == a) => {
                return Err(QueryError::DuplicateAlias(a.to_owned()));
            }
            Some(a) if a.is_empty() => return Err(bad_attr("link-entity", "alias", a, "a non-empty name")),
            Some(a) => a.to_owned(),
            None => generated_alias(name, out),
        };
        out.push((alias, meta));
        collect_aliases(link, metadata, out)?;
    }
    Ok(())
}

/// The entity name, or the name followed by the first free number (`contact1`, `contact2`…).
fn generated_alias(name: &str, taken: &[(String, &EntityMetadata)]) -> String {
    let free = |a: &str| !taken.iter().any(|(x, _)| x == a);
    if free(name) {
        return name.to_owned();
    }
    (1..)
        .map(|i| format!("{name}{i}"))
        .find(|a| free(a))
        .unwrap_or_else(|| name.to_owned())
}

fn bad_attr(
    element: &'static str,
    attribute: &'static str,
    value: &str,
    expected: &'static str,
) -> QueryError {
    QueryError::InvalidAttributeValue {
        element,
        attribute,
        value: value.to_owned(),
        expected,
    }
}

fn read_fetch_attributes(root: &Element, q: &mut Query) -> Result<(), QueryError> {
    if root
        .attr("aggregate")
        .is_some_and(|v| parse_bool(v) == Some(true))
    {
        return Err(QueryError::Unsupported(
            "aggregate queries (aggregate=\"true\")".into(),
        ));
    }
    q.top = number(root, "top", 1, MAX_PAGE)?;
    q.count = number(root, "count", 1, MAX_PAGE)?;
    q.page = number(root, "page", 1, u32::MAX)?;
    q.paging_cookie = root.attr("paging-cookie").map(str::to_owned);
    q.distinct = flag(root, "distinct")?;
    q.return_total_count = flag(root, "returntotalrecordcount")?;
    if q.top.is_some() && (q.count.is_some() || q.page.is_some()) {
        return Err(QueryError::Unsupported(
            "'top' together with paging ('count' or 'page'); use 'count' and 'page' only".into(),
        ));
    }
    Ok(())
}

fn number(el: &Element, attribute: &'static str, min: u32, max: u32) -> Result<Option<u32>, QueryError> {
    let Some(raw) = el.attr(attribute) else {
        return Ok(None);
    };
    match raw.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ if max == MAX_PAGE => Err(bad_attr("fetch", attribute, raw, "a whole number from 1 to 5000")),
        _ => Err(bad_attr("fetch", attribute, raw, "a whole number from 1")),
    }
}

pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn flag(el: &Element, attribute: &'static str) -> Result<bool, QueryError> {
    match el.attr(attribute) {
        None => Ok(false),
        Some(v) => parse_bool(v).ok_or_else(|| bad_attr("fetch", attribute, v, "true or false")),
    }
}

struct Body {
    columns: Columns,
    filter: Option<Filter>,
    links: Vec<LinkEntity>,
    order: Vec<OrderBy>,
}

/// Reads the children of `<entity>` or `<link-entity>` (`meta` is that entity).
fn build_body(el: &Element, meta: &EntityMetadata, ctx: &mut Ctx<'_>) -> Result<Body, QueryError> {
    let mut body = Body {
        columns: Columns::List(Vec::new()),
        filter: None,
        links: Vec::new(),
        order: Vec::new(),
    };
    let mut filters = Vec::new();
    for child in &el.children {
        match child.name.as_str() {
            "attribute" => add_column(&mut body.columns, child, meta)?,
            "all-attributes" => body.columns = Columns::All,
            "order" => body.order.push(build_order(child, meta, ctx)?),
            "filter" => filters.extend(build_filter(child, meta, ctx)?),
            "link-entity" => body.links.push(build_link(child, meta, ctx)?),
            _ => return Err(unexpected(child, &el.name)),
        }
    }
    body.filter = match filters.len() {
        0 => None,
        1 => filters.pop(),
        _ => Some(Filter::And(filters)),
    };
    Ok(body)
}

pub(crate) fn attribute_of(meta: &EntityMetadata, name: &str) -> Result<AttributeName, QueryError> {
    meta.attribute(name)
        .map(|a| a.logical_name.clone())
        .ok_or_else(|| QueryError::UnknownAttribute {
            entity: meta.logical_name.to_string(),
            attribute: name.to_owned(),
        })
}

fn add_column(columns: &mut Columns, el: &Element, meta: &EntityMetadata) -> Result<(), QueryError> {
    for unsupported in ["aggregate", "groupby", "alias"] {
        if el.attr(unsupported).is_some() {
            return Err(QueryError::Unsupported(format!(
                "'{unsupported}' on <attribute> (aggregates and column aliases)"
            )));
        }
    }
    let name = attribute_of(meta, required(el, "attribute", "name")?)?;
    if let Columns::List(list) = columns
        && !list.contains(&name)
    {
        list.push(name);
    }
    Ok(())
}

fn build_order(el: &Element, meta: &EntityMetadata, ctx: &Ctx<'_>) -> Result<OrderBy, QueryError> {
    let Some(attribute) = el.attr("attribute") else {
        if el.attr("alias").is_some() {
            return Err(QueryError::Unsupported("ordering by an aggregate alias".into()));
        }
        return Err(QueryError::MissingAttribute {
            element: "order",
            attribute: "attribute",
        });
    };
    let (alias, target) = match el.attr("entityname") {
        Some(a) => (Some(a.to_owned()), ctx.entity_of(a)?),
        None => (None, meta),
    };
    let descending = match el.attr("descending") {
        None => false,
        Some(v) => parse_bool(v).ok_or_else(|| bad_attr("order", "descending", v, "true or false"))?,
    };
    Ok(OrderBy {
        attribute: attribute_of(target, attribute)?,
        descending,
        alias,
    })
}

fn build_link(el: &Element, parent: &EntityMetadata, ctx: &mut Ctx<'_>) -> Result<LinkEntity, QueryError> {
    let (alias, meta) = ctx
        .aliases
        .get(ctx.next_link)
        .cloned()
        .ok_or_else(|| QueryError::UnknownAlias(el.attr("alias").unwrap_or_default().to_owned()))?;
    ctx.next_link += 1;
    let from = attribute_of(meta, required(el, "link-entity", "from")?)?;
    let to = attribute_of(parent, required(el, "link-entity", "to")?)?;
    let link_type = match el.attr("link-type").unwrap_or("inner") {
        "inner" => LinkType::Inner,
        "outer" => LinkType::Outer,
        other => {
            return Err(QueryError::Unsupported(format!(
                "link-type=\"{other}\" (crmsync supports inner and outer)"
            )));
        }
    };
    let mut body = build_body(el, meta, ctx)?;
    for mut order in body.order.drain(..) {
        order.alias.get_or_insert_with(|| alias.clone());
        ctx.link_orders.push(order);
    }
    Ok(LinkEntity {
        name: meta.logical_name.clone(),
        from,
        to,
        alias,
        link_type,
        columns: body.columns,
        filter: body.filter,
        links: body.links,
    })
}

/// Builds a `<filter>`; `None` when it holds no condition at all.
fn build_filter(el: &Element, meta: &EntityMetadata, ctx: &Ctx<'_>) -> Result<Option<Filter>, QueryError> {
    let or = match el.attr("type").unwrap_or("and") {
        "and" => false,
        "or" => true,
        other => return Err(bad_attr("filter", "type", other, "and or or")),
    };
    let mut children = Vec::new();
    for child in &el.children {
        match child.name.as_str() {
            "condition" => children.push(Filter::Condition(build_condition(child, meta, ctx)?)),
            "filter" => children.extend(build_filter(child, meta, ctx)?),
            _ => return Err(unexpected(child, "filter")),
        }
    }
    Ok(match (children.is_empty(), or) {
        (true, _) => None,
        (false, true) => Some(Filter::Or(children)),
        (false, false) => Some(Filter::And(children)),
    })
}

fn build_condition(el: &Element, meta: &EntityMetadata, ctx: &Ctx<'_>) -> Result<Condition, QueryError> {
    if el.attr("valueof").is_some() {
        return Err(QueryError::Unsupported("comparing two columns (valueof)".into()));
    }
    let attribute = required(el, "condition", "attribute")?;
    let op_name = required(el, "condition", "operator")?;
    let kind =
        OpKind::from_fetchxml(op_name).ok_or_else(|| QueryError::UnknownOperator(op_name.to_owned()))?;
    let (alias, target) = match el.attr("entityname") {
        Some(a) => (Some(a.to_owned()), ctx.entity_of(a)?),
        None => (None, meta),
    };
    let attr_meta = target
        .attribute(attribute)
        .ok_or_else(|| QueryError::UnknownAttribute {
            entity: target.logical_name.to_string(),
            attribute: attribute.to_owned(),
        })?;
    let operator = operators::build(kind, attr_meta, condition_values(el)?)?;
    Ok(Condition {
        alias,
        attribute: attr_meta.logical_name.clone(),
        operator,
    })
}

/// The operands of a condition: its `<value>` children, else its `value` attribute.
fn condition_values(el: &Element) -> Result<Vec<Value>, QueryError> {
    let mut values = Vec::new();
    for child in &el.children {
        match child.name.as_str() {
            "value" => values.push(Value::String(child.text.clone())),
            _ => return Err(unexpected(child, "condition")),
        }
    }
    if values.is_empty()
        && let Some(v) = el.attr("value")
    {
        values.push(Value::String(v.to_owned()));
    }
    Ok(values)
}
