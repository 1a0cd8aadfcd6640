//! The typed query tree shared by FetchXML and OData.
//!
//! Invariants of a tree built by [`crate::parse_fetchxml`] or [`crate::parse_odata`]:
//! - every entity, attribute and alias it names exists in the metadata it was checked against;
//! - every operator fits the type of its attribute, and every operand is already coerced to
//!   that type (lookup operands are [`Value::Guid`], option-set operands [`Value::OptionSet`],
//!   string operands [`Value::String`], never [`Value::Null`]);
//! - `In`/`NotIn` hold at least one value;
//! - link-entity aliases are unique within the query.
//!
//! A condition's `alias` names the link-entity whose attribute it tests; `None` means the
//! entity that holds the filter (the root entity for [`Query::filter`], the linked entity for
//! [`LinkEntity::filter`]). A link-entity's own filter restricts the joined rows (it belongs
//! to the join's `ON` clause), as in Dataverse: on an outer link it never removes parent rows.
//!
//! `Like`/`NotLike` keep their pattern in Dataverse (SQL Server) syntax: `%`, `_`, and
//! `[...]` brackets, of which only single-character brackets such as `[%]` are accepted.
//! [`crate::lower`] turns every string operator into a portable `LIKE` pattern.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use crmsync_model::{AttributeName, EntityName, Value};

#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub entity: EntityName,
    pub columns: Columns,
    pub filter: Option<Filter>,
    pub links: Vec<LinkEntity>,
    pub order: Vec<OrderBy>,
    pub top: Option<u32>,
    /// Page size (FetchXML `count`, OData `odata.maxpagesize`).
    pub count: Option<u32>,
    /// 1-based page number.
    pub page: Option<u32>,
    /// Opaque cookie returned with the previous page; passed back unchanged.
    pub paging_cookie: Option<String>,
    pub distinct: bool,
    pub return_total_count: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Columns {
    All,
    /// The listed attributes, in request order. Empty means "no attribute asked for".
    List(Vec<AttributeName>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrderBy {
    pub attribute: AttributeName,
    pub descending: bool,
    /// Alias of the link-entity the attribute belongs to; `None` for the root entity.
    pub alias: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    Inner,
    Outer,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LinkEntity {
    pub name: EntityName,
    /// Attribute of the linked entity.
    pub from: AttributeName,
    /// Attribute of the parent entity (the root or the enclosing link-entity).
    pub to: AttributeName,
    pub alias: String,
    pub link_type: LinkType,
    pub columns: Columns,
    pub filter: Option<Filter>,
    pub links: Vec<LinkEntity>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Condition(Condition),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// Link-entity alias for an attribute of a linked entity; `None` for the filter's own entity.
    pub alias: Option<String>,
    pub attribute: AttributeName,
    pub operator: Operator,
}

/// A condition operator with its typed operands.
#[derive(Clone, Debug, PartialEq)]
pub enum Operator {
    Eq(Value),
    Ne(Value),
    Gt(Value),
    Ge(Value),
    Lt(Value),
    Le(Value),
    /// Dataverse `LIKE` pattern (`%`, `_`, `[x]`).
    Like(String),
    NotLike(String),
    /// Literal prefix (wildcards in it are matched literally).
    BeginsWith(String),
    NotBeginWith(String),
    EndsWith(String),
    NotEndWith(String),
    /// Literal substring (OData `contains`).
    Contains(String),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    Between(Value, Value),
    NotBetween(Value, Value),
    Null,
    NotNull,
    /// The whole UTC day.
    On(NaiveDate),
    OnOrBefore(NaiveDate),
    OnOrAfter(NaiveDate),
    Today,
    Yesterday,
    Tomorrow,
    LastXDays(u32),
    NextXDays(u32),
    LastXHours(u32),
    NextXHours(u32),
    OlderThanXMinutes(u32),
    OlderThanXHours(u32),
    OlderThanXDays(u32),
    EqUserId,
    NeUserId,
}

impl Operator {
    /// True for operators whose meaning depends on the current time: a record can enter or
    /// leave their result without being modified.
    pub fn is_relative_date(&self) -> bool {
        use Operator::*;
        matches!(
            self,
            Today
                | Yesterday
                | Tomorrow
                | LastXDays(_)
                | NextXDays(_)
                | LastXHours(_)
                | NextXHours(_)
                | OlderThanXMinutes(_)
                | OlderThanXHours(_)
                | OlderThanXDays(_)
        )
    }
}

impl Filter {
    /// Calls `f` on every condition of the tree, depth first, in document order.
    pub fn for_each_condition<'a>(&'a self, f: &mut impl FnMut(&'a Condition)) {
        match self {
            Filter::And(children) | Filter::Or(children) => {
                children.iter().for_each(|c| c.for_each_condition(f))
            }
            Filter::Not(inner) => inner.for_each_condition(f),
            Filter::Condition(c) => f(c),
        }
    }

    /// The link-entity aliases that conditions of this filter refer to.
    pub fn referenced_aliases(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.for_each_condition(&mut |c| {
            if let Some(a) = &c.alias {
                out.insert(a.as_str());
            }
        });
        out
    }

    pub fn has_relative_date_conditions(&self) -> bool {
        let mut found = false;
        self.for_each_condition(&mut |c| found |= c.operator.is_relative_date());
        found
    }
}

impl LinkEntity {
    fn visit<'a>(&'a self, f: &mut impl FnMut(&'a LinkEntity)) {
        f(self);
        self.links.iter().for_each(|l| l.visit(f));
    }
}

impl Query {
    /// A query of every attribute of `entity`, without filter, order or paging.
    pub fn new(entity: EntityName) -> Self {
        Self {
            entity,
            columns: Columns::All,
            filter: None,
            links: Vec::new(),
            order: Vec::new(),
            top: None,
            count: None,
            page: None,
            paging_cookie: None,
            distinct: false,
            return_total_count: false,
        }
    }

    /// Every link-entity of the query, nested ones included, parents before children.
    pub fn all_links(&self) -> Vec<&LinkEntity> {
        let mut out = Vec::new();
        self.links.iter().for_each(|l| l.visit(&mut |x| out.push(x)));
        out
    }

    /// The entities the query reads: the root entity and every linked entity.
    pub fn referenced_entities(&self) -> BTreeSet<&EntityName> {
        let mut out: BTreeSet<&EntityName> = self.all_links().into_iter().map(|l| &l.name).collect();
        out.insert(&self.entity);
        out
    }

    /// True if some filter of the query (root or link-entity) uses an operator relative to the
    /// current time, so that the set of matching records changes as time passes.
    pub fn has_relative_date_conditions(&self) -> bool {
        self.filter.iter().any(Filter::has_relative_date_conditions)
            || self
                .all_links()
                .iter()
                .filter_map(|l| l.filter.as_ref())
                .any(Filter::has_relative_date_conditions)
    }

    /// Adds `filter` to the query's filter with `and` (used by the sync engine to restrict a
    /// user's filter further).
    pub fn and_filter(&mut self, filter: Filter) {
        self.filter = Some(match self.filter.take() {
            None => filter,
            Some(Filter::And(mut children)) => {
                children.push(filter);
                Filter::And(children)
            }
            Some(existing) => Filter::And(vec![existing, filter]),
        });
    }
}
