//! The query statement: a validated [`Query`] planned once ([`SelectPlan`]) and rendered as
//! the SELECT of one page, its `EXPLAIN`, or the `count(*)` of all matching rows.
//!
//! Shape: `SELECT <columns> FROM <entity> t0 <joins> WHERE <filter> AND <exists…>
//! [AND t0.pk > ?] ORDER BY <order>, t0.pk LIMIT ? [OFFSET ?]`. Tables are aliased `t0` (the
//! queried entity) and `t1…` (link-entities, parents before children).
//!
//! Link-entities:
//! - an *inner* link that selects no columns, and whose alias (or a descendant's) no filter
//!   outside it and no order refers to, becomes `EXISTS (SELECT 1 FROM … WHERE link.from =
//!   parent.to AND <its filter> …)`: it never multiplies parent rows;
//! - every other link is a `JOIN` (inner) or `LEFT JOIN` (outer) with its filter in the `ON`
//!   clause (so an outer link's filter never removes parent rows); its selected columns come
//!   back in [`QueryRow::linked`] (NULL for an outer link without a match). A joined link whose
//!   `from` is not its entity's primary id may match several rows: the parent row then repeats,
//!   once per match, as in Dataverse.
//!
//! Order: the requested orders (text case-insensitive as in `filter.rs`, NULLs first when
//! ascending, last when descending, on both databases), then the primary id, then the primary
//! ids of joined links that may repeat rows: the order is total, so pages never overlap.
//!
//! Paging: by key (`t0.pk > ?`) when the order is empty or the primary id ascending, no link
//! may repeat rows and there is no `top`; by offset otherwise. Each page fetches one row more
//! than it returns to know whether another page follows. `top` caps the rows over all pages.
//! `distinct` is honoured trivially (the primary id is always selected, so rows are distinct)
//! and refused when a joined link may repeat rows.

use std::collections::BTreeSet;

use crmsync_model::EntityMetadata;
use crmsync_query::{Columns, EvalContext, LinkEntity, LinkType, Predicate, Query, lower};

use super::filter::{Bind, ColumnRef, Resolver, SqlWriter, render_predicate};
use super::{Dialect, Param, Raw, ReadLayout, SqlNames, Storage, decode_record, quote, value_of};
use crate::{PageCursor, PageRequest, QueryPage, QueryRow, StoreError, StoreResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Root,
    Join { outer: bool },
    Exists,
}

struct Table<'q> {
    sql_alias: String,
    alias: Option<&'q str>,
    meta: &'q EntityMetadata,
    link: Option<&'q LinkEntity>,
    parent: usize,
    mode: Mode,
    filter: Option<Predicate>,
    /// Columns returned from a joined link: the layout and whether its primary id was asked.
    returned: Option<(ReadLayout, bool)>,
}

/// A query planned against the org's metadata: tables, modes of links, lowered filters.
pub struct SelectPlan<'q> {
    names: &'q SqlNames,
    query: &'q Query,
    tables: Vec<Table<'q>>,
    main: ReadLayout,
    keyset: bool,
}

/// The SELECT of one page, ready to bind and run.
pub struct PageStatement<'s> {
    pub statement: SqlWriter<'s>,
    limit: usize,
    offset: Option<u64>,
}

impl<'q> SelectPlan<'q> {
    /// Plans `query`; errors name unknown entities, attributes and aliases.
    pub fn new(
        query: &'q Query,
        context: &EvalContext,
        entities: &'q [EntityMetadata],
        names: &'q SqlNames,
    ) -> StoreResult<Self> {
        let find = |name: &str| {
            entities
                .iter()
                .find(|e| e.logical_name.as_str() == name)
                .ok_or_else(|| StoreError::not_found(format!("entity '{name}'")))
        };
        let meta = find(query.entity.as_str())?;
        let mut tables = vec![Table {
            sql_alias: "t0".into(),
            alias: None,
            meta,
            link: None,
            parent: 0,
            mode: Mode::Root,
            filter: query.filter.as_ref().map(|f| lower(f, context)),
            returned: None,
        }];
        let mut stack: Vec<(usize, &LinkEntity)> = query.links.iter().rev().map(|l| (0, l)).collect();
        while let Some((parent, link)) = stack.pop() {
            if tables.iter().any(|t| t.alias == Some(link.alias.as_str())) {
                return Err(StoreError::BadRequest(format!(
                    "the alias '{}' is used by more than one link-entity",
                    link.alias
                )));
            }
            let meta = find(link.name.as_str())?;
            meta.require_attribute(link.from.as_str())?;
            tables[parent].meta.require_attribute(link.to.as_str())?;
            let index = tables.len();
            tables.push(Table {
                sql_alias: format!("t{index}"),
                alias: Some(link.alias.as_str()),
                meta,
                link: Some(link),
                parent,
                mode: Mode::Join {
                    outer: link.link_type == LinkType::Outer,
                },
                filter: link.filter.as_ref().map(|f| lower(f, context)),
                returned: returned_columns(meta, &link.columns)?,
            });
            stack.extend(link.links.iter().rev().map(|l| (index, l)));
        }
        let main = match &query.columns {
            Columns::All => ReadLayout::new(meta, None)?,
            Columns::List(cols) => ReadLayout::new(meta, Some(cols))?,
        };
        let mut plan = SelectPlan {
            names,
            query,
            tables,
            main,
            keyset: false,
        };
        plan.choose_exists()?;
        if plan.may_repeat_rows() && query.distinct {
            return Err(StoreError::BadRequest(
                "distinct results are not supported with a link-entity that matches several rows per record"
                    .into(),
            ));
        }
        let pk = meta.primary_id_attribute.as_str();
        let by_id = match query.order.as_slice() {
            [] => true,
            [o] => o.alias.is_none() && o.attribute.as_str() == pk && !o.descending,
            _ => false,
        };
        plan.keyset = by_id && query.top.is_none() && !plan.may_repeat_rows();
        Ok(plan)
    }

    fn dialect(&self) -> Dialect {
        self.names.dialect
    }

    /// Makes EXISTS of the inner links that return nothing and are referred to only from
    /// within themselves.
    fn choose_exists(&mut self) -> StoreResult<()> {
        // (table holding the reference, referenced table)
        let mut refs: Vec<(Option<usize>, usize)> = Vec::new();
        for (i, t) in self.tables.iter().enumerate() {
            if let Some(p) = &t.filter {
                for alias in aliases(p) {
                    refs.push((Some(i), self.index_of(alias, i)?));
                }
            }
        }
        for o in &self.query.order {
            refs.push((None, self.index_of(o.alias.as_deref(), 0)?));
        }
        for i in 1..self.tables.len() {
            let inside = self.subtree(i);
            let t = &self.tables[i];
            let quiet = inside.iter().all(|j| self.tables[*j].returned.is_none());
            let private = refs
                .iter()
                .all(|(from, to)| !inside.contains(to) || from.is_some_and(|f| inside.contains(&f)));
            if t.mode == (Mode::Join { outer: false }) && quiet && private {
                self.tables[i].mode = Mode::Exists;
            }
        }
        Ok(())
    }

    fn index_of(&self, alias: Option<&str>, default: usize) -> StoreResult<usize> {
        match alias {
            None => Ok(default),
            Some(a) => self
                .tables
                .iter()
                .position(|t| t.alias == Some(a))
                .ok_or_else(|| StoreError::BadRequest(format!("no link-entity has the alias '{a}'"))),
        }
    }

    fn subtree(&self, root: usize) -> BTreeSet<usize> {
        let mut out = BTreeSet::from([root]);
        // Parents come before children, so one pass finds every descendant.
        for j in root + 1..self.tables.len() {
            if out.contains(&self.tables[j].parent) {
                out.insert(j);
            }
        }
        out
    }

    fn children(&self, parent: usize) -> impl Iterator<Item = usize> + '_ {
        (1..self.tables.len()).filter(move |j| self.tables[*j].parent == parent)
    }

    /// `root` and the links joined to it (transitively), in join order.
    fn group(&self, root: usize) -> Vec<usize> {
        let mut out = vec![root];
        let mut k = 0;
        while k < out.len() {
            let joined: Vec<usize> = self
                .children(out[k])
                .filter(|j| self.tables[*j].mode != Mode::Exists)
                .collect();
            out.extend(joined);
            k += 1;
        }
        out
    }

    /// Joined links of the main statement whose `from` is not their primary id.
    fn repeating_links(&self) -> Vec<usize> {
        self.group(0)
            .into_iter()
            .skip(1)
            .filter(|i| {
                let t = &self.tables[*i];
                t.link.is_some_and(|l| l.from != t.meta.primary_id_attribute)
            })
            .collect()
    }

    fn may_repeat_rows(&self) -> bool {
        !self.repeating_links().is_empty()
    }

    /// Whether pages are keyed by primary id ([`PageCursor::AfterId`]) rather than offsets.
    pub fn pages_by_key(&self) -> bool {
        self.keyset
    }

    /// The SELECT of the page `page` asks for; `None` when `top` rows were already returned.
    pub fn page_statement(&self, page: &PageRequest) -> StoreResult<Option<PageStatement<'_>>> {
        let size = page.size.max(1);
        let (after, offset) = match (&page.cursor, self.keyset) {
            (None, true) => (None, None),
            (None, false) => (None, Some(0)),
            (Some(PageCursor::AfterId(id)), true) => (Some(*id), None),
            (Some(PageCursor::Offset(n)), false) => (None, Some(*n)),
            _ => {
                return Err(StoreError::BadRequest(
                    "the paging cursor does not belong to this query".into(),
                ));
            }
        };
        let remaining = match self.query.top {
            Some(top) => u64::from(top).saturating_sub(offset.unwrap_or(0)),
            None => u64::MAX,
        };
        if remaining == 0 {
            return Ok(None);
        }
        let limit = usize::try_from(remaining).map_or(size, |r| size.min(r));
        let fetch = if (limit as u64) < remaining {
            limit + 1
        } else {
            limit
        };
        let mut w = SqlWriter::new(self.dialect());
        w.push("SELECT ");
        w.push(&self.select_list());
        self.render_from_where(&mut w, after.map(|id| Param::Uuid(*id.as_uuid())))?;
        w.push(" ORDER BY ");
        w.push(&self.order_by()?);
        w.push(" LIMIT ");
        w.bind(Bind::Value(Param::I64(fetch as i64)));
        if let Some(n) = offset.filter(|n| *n > 0) {
            w.push(" OFFSET ");
            w.bind(Bind::Value(Param::I64(i64::try_from(n).unwrap_or(i64::MAX))));
        }
        w.check_param_count()?;
        Ok(Some(PageStatement {
            statement: w,
            limit,
            offset,
        }))
    }

    /// `SELECT count(*)` of every row the query matches, ignoring paging and `top`.
    pub fn count_statement(&self) -> StoreResult<SqlWriter<'_>> {
        let mut w = SqlWriter::new(self.dialect());
        w.push("SELECT count(*)");
        self.render_from_where(&mut w, None)?;
        w.check_param_count()?;
        Ok(w)
    }

    fn select_list(&self) -> String {
        let mut cols: Vec<String> = self
            .main
            .columns
            .iter()
            .map(|c| format!("t0.{}", quote(&c.name)))
            .collect();
        for t in &self.tables {
            if let Some((layout, _)) = &t.returned {
                cols.extend(
                    layout
                        .columns
                        .iter()
                        .map(|c| format!("{}.{}", t.sql_alias, quote(&c.name))),
                );
            }
        }
        cols.join(", ")
    }

    fn render_from_where<'s>(&'s self, w: &mut SqlWriter<'s>, after: Option<Param<'s>>) -> StoreResult<()> {
        w.push(&format!(
            " FROM {} t0",
            self.names.table(self.tables[0].meta.logical_name.as_str())
        ));
        let group = self.group(0);
        self.joins(w, &group)?;
        let mut first = true;
        let mut and = |w: &mut SqlWriter<'s>| {
            w.push(if first { " WHERE " } else { " AND " });
            first = false;
        };
        if let Some(p) = &self.tables[0].filter {
            and(w);
            render_predicate(
                w,
                p,
                &Scope {
                    plan: self,
                    default: 0,
                },
            )?;
        }
        for e in self.exists_under(&group) {
            and(w);
            self.exists(w, e)?;
        }
        if let Some(id) = after {
            and(w);
            w.push(&format!(
                "t0.{} > ",
                quote(self.tables[0].meta.primary_id_attribute.as_str())
            ));
            w.bind(Bind::Value(id));
        }
        Ok(())
    }

    fn joins<'s>(&'s self, w: &mut SqlWriter<'s>, group: &[usize]) -> StoreResult<()> {
        for &j in &group[1..] {
            let join = match self.tables[j].mode {
                Mode::Join { outer: true } => " LEFT JOIN ",
                _ => " JOIN ",
            };
            w.push(join);
            w.push(&format!(
                "{} {} ON ",
                self.names.table(self.tables[j].meta.logical_name.as_str()),
                self.tables[j].sql_alias
            ));
            self.link_condition(w, j)?;
        }
        Ok(())
    }

    /// `link.from = parent.to [AND (filter)]`.
    fn link_condition<'s>(&'s self, w: &mut SqlWriter<'s>, j: usize) -> StoreResult<()> {
        let t = &self.tables[j];
        let link = t.link.expect("a link table has a link");
        w.push(&format!(
            "{}.{} = {}.{}",
            t.sql_alias,
            quote(link.from.as_str()),
            self.tables[t.parent].sql_alias,
            quote(link.to.as_str())
        ));
        if let Some(p) = &t.filter {
            w.push(" AND (");
            render_predicate(
                w,
                p,
                &Scope {
                    plan: self,
                    default: j,
                },
            )?;
            w.push(")");
        }
        Ok(())
    }

    fn exists_under(&self, group: &[usize]) -> Vec<usize> {
        group
            .iter()
            .flat_map(|g| self.children(*g))
            .filter(|c| self.tables[*c].mode == Mode::Exists)
            .collect()
    }

    fn exists<'s>(&'s self, w: &mut SqlWriter<'s>, i: usize) -> StoreResult<()> {
        let t = &self.tables[i];
        w.push(&format!(
            "EXISTS (SELECT 1 FROM {} {}",
            self.names.table(t.meta.logical_name.as_str()),
            t.sql_alias
        ));
        let group = self.group(i);
        self.joins(w, &group)?;
        w.push(" WHERE ");
        self.link_condition(w, i)?;
        for e in self.exists_under(&group) {
            w.push(" AND ");
            self.exists(w, e)?;
        }
        w.push(")");
        Ok(())
    }

    fn order_by(&self) -> StoreResult<String> {
        let scope = Scope {
            plan: self,
            default: 0,
        };
        let nulls = |descending: bool| match (self.dialect(), descending) {
            (Dialect::Sqlite, _) => "",
            (Dialect::Postgres, false) => " NULLS FIRST",
            (Dialect::Postgres, true) => " NULLS LAST",
        };
        let mut out = Vec::new();
        for o in &self.query.order {
            let col = scope.resolve(o.alias.as_deref(), o.attribute.as_str())?;
            let dir = if o.descending { "DESC" } else { "ASC" };
            out.push(format!(
                "{} {dir}{}",
                col.expression(self.dialect()),
                nulls(o.descending)
            ));
        }
        let pk = self.tables[0].meta.primary_id_attribute.as_str();
        if !self
            .query
            .order
            .iter()
            .any(|o| o.alias.is_none() && o.attribute.as_str() == pk)
        {
            out.push(format!("t0.{} ASC", quote(pk)));
        }
        for j in self.repeating_links() {
            let t = &self.tables[j];
            out.push(format!(
                "{}.{} ASC{}",
                t.sql_alias,
                quote(t.meta.primary_id_attribute.as_str()),
                nulls(false)
            ));
        }
        Ok(out.join(", "))
    }

    /// The storage classes of the selected columns, in select order.
    pub fn storages(&self) -> Vec<Storage> {
        let linked = self.tables.iter().filter_map(|t| t.returned.as_ref());
        self.main
            .columns
            .iter()
            .chain(linked.flat_map(|(l, _)| l.columns.iter()))
            .map(|c| c.storage)
            .collect()
    }

    /// One result row from its raw columns (read with [`SelectPlan::storages`]).
    pub fn decode(&self, mut raws: Vec<Raw>) -> StoreResult<QueryRow> {
        let rest = raws.split_off(self.main.columns.len().min(raws.len()));
        let record = decode_record(&self.main, raws)?;
        let mut rest = rest.into_iter();
        let mut linked = Vec::new();
        for t in &self.tables {
            let Some((layout, with_pk)) = &t.returned else {
                continue;
            };
            let mut cols: Vec<Raw> = rest.by_ref().take(layout.columns.len()).collect();
            for (k, (name, ty, col)) in layout.attributes.iter().enumerate() {
                let raw = std::mem::replace(&mut cols[*col], Raw::Null);
                let kind = matches!(ty, crmsync_model::AttributeType::Lookup { .. })
                    .then(|| std::mem::replace(&mut cols[col + 1], Raw::Null));
                let value = value_of(ty, raw, kind)?;
                if k > 0 || *with_pk {
                    let alias = t.alias.unwrap_or_default().to_owned();
                    linked.push((alias, name.clone(), value));
                }
            }
        }
        Ok(QueryRow { record, linked })
    }

    /// The page from the rows `statement` fetched (decoded, in order).
    pub fn finish(&self, statement: &PageStatement<'_>, mut rows: Vec<QueryRow>) -> QueryPage {
        let more = rows.len() > statement.limit;
        rows.truncate(statement.limit);
        let next = match (more, statement.offset) {
            (false, _) => None,
            (true, Some(offset)) => Some(PageCursor::Offset(offset + statement.limit as u64)),
            (true, None) => rows.last().and_then(|r| r.record.id).map(PageCursor::AfterId),
        };
        QueryPage {
            rows,
            next,
            total: None,
        }
    }
}

/// The layout of a link's returned columns: none when it selects nothing.
fn returned_columns(meta: &EntityMetadata, columns: &Columns) -> StoreResult<Option<(ReadLayout, bool)>> {
    Ok(match columns {
        Columns::List(cols) if cols.is_empty() => None,
        Columns::All => Some((ReadLayout::new(meta, None)?, true)),
        Columns::List(cols) => {
            let with_pk = cols.contains(&meta.primary_id_attribute);
            Some((ReadLayout::new(meta, Some(cols))?, with_pk))
        }
    })
}

/// The aliases a predicate refers to (`None`: the entity holding it).
fn aliases(p: &Predicate) -> Vec<Option<&str>> {
    match p {
        Predicate::And(ps) | Predicate::Or(ps) => ps.iter().flat_map(aliases).collect(),
        Predicate::Not(p) => aliases(p),
        Predicate::Const(_) => Vec::new(),
        Predicate::Compare { alias, .. }
        | Predicate::Like { alias, .. }
        | Predicate::In { alias, .. }
        | Predicate::IsNull { alias, .. } => vec![alias.as_deref()],
    }
}

/// Resolves columns for a filter held by table `default`.
struct Scope<'p, 'q> {
    plan: &'p SelectPlan<'q>,
    default: usize,
}

impl Resolver for Scope<'_, '_> {
    fn resolve(&self, alias: Option<&str>, attribute: &str) -> StoreResult<ColumnRef<'_>> {
        let t = &self.plan.tables[self.plan.index_of(alias, self.default)?];
        Ok(ColumnRef {
            table: &t.sql_alias,
            attribute: t.meta.require_attribute(attribute)?,
        })
    }
}
