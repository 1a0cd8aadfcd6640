//! [`Query`] -> FetchXML text.
//!
//! For every query produced by [`super::parse_fetchxml`], `parse_fetchxml(to_fetchxml(q)) == q`.
//! Queries built elsewhere (OData, code) are written in FetchXML's vocabulary:
//! - `Not` is pushed down to the conditions (De Morgan; `eq`<->`ne`, `gt`<->`le`, `null`<->
//!   `not-null`, `on` -> `on-or-before`/`on-or-after` the neighbouring days…), which keeps the
//!   SQL three-valued meaning exactly; a negated relative-date operator (`not today`) has no
//!   FetchXML equivalent and is refused;
//! - `contains` becomes `like '%…%'` with `%`, `_` and `[` bracketed;
//! - a lone condition is wrapped in `<filter type="and">`;
//! - an empty `in` list or an empty `or` is refused (FetchXML cannot state "nothing matches").
//!
//! Link-entity orders are written at the root with `entityname`, which reads back the same.

use std::fmt::Write;

use chrono::{Days, NaiveDate};
use crmsync_model::Value;

use super::xml::escape;
use crate::QueryError;
use crate::ast::{Columns, Condition, Filter, LinkEntity, LinkType, Operator, OrderBy, Query};
use crate::operators::OpKind;

/// Writes `query` as FetchXML.
pub fn to_fetchxml(query: &Query) -> Result<String, QueryError> {
    let mut out = String::from("<fetch");
    let mut attr = |name: &str, value: &str| {
        let _ = write!(out, " {name}=\"{}\"", escape(value));
    };
    if let Some(top) = query.top {
        attr("top", &top.to_string());
    }
    if let Some(count) = query.count {
        attr("count", &count.to_string());
    }
    if let Some(page) = query.page {
        attr("page", &page.to_string());
    }
    if let Some(cookie) = &query.paging_cookie {
        attr("paging-cookie", cookie);
    }
    if query.return_total_count {
        attr("returntotalrecordcount", "true");
    }
    if query.distinct {
        attr("distinct", "true");
    }
    let _ = write!(out, "><entity name=\"{}\">", query.entity);
    write_columns(&mut out, &query.columns);
    query.order.iter().for_each(|o| write_order(&mut out, o));
    write_filter_opt(&mut out, query.filter.as_ref())?;
    for link in &query.links {
        write_link(&mut out, link)?;
    }
    out.push_str("</entity></fetch>");
    Ok(out)
}

fn write_columns(out: &mut String, columns: &Columns) {
    match columns {
        Columns::All => out.push_str("<all-attributes/>"),
        Columns::List(list) => list
            .iter()
            .for_each(|a| _ = write!(out, "<attribute name=\"{a}\"/>")),
    }
}

fn write_order(out: &mut String, order: &OrderBy) {
    out.push_str("<order");
    if let Some(alias) = &order.alias {
        let _ = write!(out, " entityname=\"{}\"", escape(alias));
    }
    let _ = write!(out, " attribute=\"{}\"", order.attribute);
    if order.descending {
        out.push_str(" descending=\"true\"");
    }
    out.push_str("/>");
}

fn write_link(out: &mut String, link: &LinkEntity) -> Result<(), QueryError> {
    let link_type = match link.link_type {
        LinkType::Inner => "inner",
        LinkType::Outer => "outer",
    };
    let _ = write!(
        out,
        "<link-entity name=\"{}\" from=\"{}\" to=\"{}\" alias=\"{}\" link-type=\"{link_type}\">",
        link.name,
        link.from,
        link.to,
        escape(&link.alias)
    );
    write_columns(out, &link.columns);
    write_filter_opt(out, link.filter.as_ref())?;
    for nested in &link.links {
        write_link(out, nested)?;
    }
    out.push_str("</link-entity>");
    Ok(())
}

fn write_filter_opt(out: &mut String, filter: Option<&Filter>) -> Result<(), QueryError> {
    match filter {
        None => Ok(()),
        Some(f @ (Filter::And(_) | Filter::Or(_))) => write_filter(out, f),
        Some(Filter::Not(inner)) => write_filter_opt(out, Some(&negate(inner)?)),
        Some(c @ Filter::Condition(_)) => write_filter(out, &Filter::And(vec![c.clone()])),
    }
}

fn write_filter(out: &mut String, filter: &Filter) -> Result<(), QueryError> {
    match filter {
        Filter::And(children) | Filter::Or(children) => {
            let or = matches!(filter, Filter::Or(_));
            if or && children.is_empty() {
                return Err(QueryError::NotExpressibleAsFetchXml(
                    "an empty 'or' (nothing matches)".into(),
                ));
            }
            let _ = write!(out, "<filter type=\"{}\">", if or { "or" } else { "and" });
            for child in children {
                write_filter(out, child)?;
            }
            out.push_str("</filter>");
            Ok(())
        }
        Filter::Not(inner) => write_filter(out, &negate(inner)?),
        Filter::Condition(c) => write_condition(out, c),
    }
}

fn write_condition(out: &mut String, c: &Condition) -> Result<(), QueryError> {
    let (name, values, list) = operator_parts(&c.operator);
    if list && values.is_empty() {
        return Err(QueryError::NotExpressibleAsFetchXml(format!(
            "an empty '{name}' list on '{}'",
            c.attribute
        )));
    }
    out.push_str("<condition");
    if let Some(alias) = &c.alias {
        let _ = write!(out, " entityname=\"{}\"", escape(alias));
    }
    let _ = write!(out, " attribute=\"{}\" operator=\"{name}\"", c.attribute);
    match (list, values.as_slice()) {
        (false, []) => out.push_str("/>"),
        (false, [v]) => _ = write!(out, " value=\"{}\"/>", escape(v)),
        _ => {
            out.push('>');
            values
                .iter()
                .for_each(|v| _ = write!(out, "<value>{}</value>", escape(v)));
            out.push_str("</condition>");
        }
    }
    Ok(())
}

/// (FetchXML operator name, operand texts, operands written as `<value>` elements).
fn operator_parts(op: &Operator) -> (&'static str, Vec<String>, bool) {
    use Operator as O;
    let name = OpKind::of(op).name();
    match op {
        O::Eq(v) | O::Ne(v) | O::Gt(v) | O::Ge(v) | O::Lt(v) | O::Le(v) => (name, vec![value_text(v)], false),
        O::Like(s)
        | O::NotLike(s)
        | O::BeginsWith(s)
        | O::NotBeginWith(s)
        | O::EndsWith(s)
        | O::NotEndWith(s) => (name, vec![s.clone()], false),
        O::Contains(s) => ("like", vec![format!("%{}%", bracket_wildcards(s))], false),
        O::In(vs) | O::NotIn(vs) => (name, vs.iter().map(value_text).collect(), true),
        O::Between(a, b) | O::NotBetween(a, b) => (name, vec![value_text(a), value_text(b)], true),
        O::On(d) | O::OnOrBefore(d) | O::OnOrAfter(d) => {
            (name, vec![d.format("%Y-%m-%d").to_string()], false)
        }
        O::LastXDays(n)
        | O::NextXDays(n)
        | O::LastXHours(n)
        | O::NextXHours(n)
        | O::OlderThanXMinutes(n)
        | O::OlderThanXHours(n)
        | O::OlderThanXDays(n) => (name, vec![n.to_string()], false),
        O::Null | O::NotNull | O::Today | O::Yesterday | O::Tomorrow | O::EqUserId | O::NeUserId => {
            (name, Vec::new(), false)
        }
    }
}

/// The FetchXML text of an operand.
pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Integer(i) | Value::OptionSet(i) => i.to_string(),
        Value::BigInt(i) => i.to_string(),
        Value::Decimal(d) => d.to_string(),
        Value::Double(f) => f.to_string(),
        Value::Boolean(b) => if *b { "1" } else { "0" }.to_owned(),
        Value::DateTime(_) => v.to_json().as_str().unwrap_or_default().to_owned(),
        Value::Guid(g) => g.to_string(),
        Value::Lookup(r) => r.id.to_string(),
    }
}

/// Makes `%`, `_` and `[` literal in a Dataverse `LIKE` pattern.
pub(crate) fn bracket_wildcards(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' | '_' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

/// `NOT filter`, with the negation pushed into the conditions.
fn negate(filter: &Filter) -> Result<Filter, QueryError> {
    Ok(match filter {
        Filter::And(children) => Filter::Or(children.iter().map(negate).collect::<Result<_, _>>()?),
        Filter::Or(children) => Filter::And(children.iter().map(negate).collect::<Result<_, _>>()?),
        Filter::Not(inner) => (**inner).clone(),
        Filter::Condition(c) => negate_condition(c)?,
    })
}

fn negate_condition(c: &Condition) -> Result<Filter, QueryError> {
    use Operator as O;
    let with = |operator: Operator| {
        Filter::Condition(Condition {
            alias: c.alias.clone(),
            attribute: c.attribute.clone(),
            operator,
        })
    };
    let op = match &c.operator {
        O::Eq(v) => O::Ne(v.clone()),
        O::Ne(v) => O::Eq(v.clone()),
        O::Gt(v) => O::Le(v.clone()),
        O::Ge(v) => O::Lt(v.clone()),
        O::Lt(v) => O::Ge(v.clone()),
        O::Le(v) => O::Gt(v.clone()),
        O::Like(s) => O::NotLike(s.clone()),
        O::NotLike(s) => O::Like(s.clone()),
        O::BeginsWith(s) => O::NotBeginWith(s.clone()),
        O::NotBeginWith(s) => O::BeginsWith(s.clone()),
        O::EndsWith(s) => O::NotEndWith(s.clone()),
        O::NotEndWith(s) => O::EndsWith(s.clone()),
        O::Contains(s) => O::NotLike(format!("%{}%", bracket_wildcards(s))),
        O::In(vs) => O::NotIn(vs.clone()),
        O::NotIn(vs) => O::In(vs.clone()),
        O::Between(a, b) => O::NotBetween(a.clone(), b.clone()),
        O::NotBetween(a, b) => O::Between(a.clone(), b.clone()),
        O::Null => O::NotNull,
        O::NotNull => O::Null,
        O::EqUserId => O::NeUserId,
        O::NeUserId => O::EqUserId,
        O::OnOrBefore(d) => O::OnOrAfter(shift(*d, 1)),
        O::OnOrAfter(d) => O::OnOrBefore(shift(*d, -1)),
        O::On(d) => {
            return Ok(Filter::Or(vec![
                with(O::OnOrBefore(shift(*d, -1))),
                with(O::OnOrAfter(shift(*d, 1))),
            ]));
        }
        other => {
            return Err(QueryError::NotExpressibleAsFetchXml(format!(
                "'not' around the relative date operator '{}' on '{}'",
                OpKind::of(other).name(),
                c.attribute
            )));
        }
    };
    Ok(with(op))
}

fn shift(d: NaiveDate, days: i64) -> NaiveDate {
    let moved = if days >= 0 {
        d.checked_add_days(Days::new(days.unsigned_abs()))
    } else {
        d.checked_sub_days(Days::new(days.unsigned_abs()))
    };
    moved.unwrap_or(d)
}
