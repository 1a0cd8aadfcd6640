//! Queries ([`QueryStore`]): the statement planned by `crmsync_store::sql::SelectPlan`, run
//! on one pooled connection; with a total, the page and the count run in one `REPEATABLE
//! READ` read-only transaction, so both come from the same snapshot.
//!
//! Lists arrive as one typed array parameter read with `unnest` (see `crmsync_store::sql`
//! `filter.rs`); NULL elements stand for values that compare as unknown.

use async_trait::async_trait;
use crmsync_query::{EvalContext, Query};
use crmsync_store::sql::{ArrayKind, Bind, Param, SelectPlan, SqlWriter};
use crmsync_store::{PageRequest, QueryPage, QueryRow, QueryStore, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};

use crate::PgOrg;
use crate::bind::{PgQuery, bind, db_err, read};

/// Collects the elements of an array parameter of one kind (other elements are NULL).
fn elements<T>(params: &[Param<'_>], pick: impl Fn(&Param<'_>) -> Option<T>) -> Vec<Option<T>> {
    params.iter().map(pick).collect()
}

fn bind_array<'q>(q: PgQuery<'q>, kind: ArrayKind, params: &[Param<'_>]) -> PgQuery<'q> {
    match kind {
        ArrayKind::Text => q.bind(elements(params, |p| match p {
            Param::Text(s) => Some((*s).to_owned()),
            _ => None,
        })),
        ArrayKind::I64 => q.bind(elements(params, |p| match p {
            Param::I64(i) => Some(*i),
            _ => None,
        })),
        ArrayKind::F64 => q.bind(elements(params, |p| match p {
            Param::F64(f) => Some(*f),
            _ => None,
        })),
        ArrayKind::Decimal => q.bind(elements(params, |p| match p {
            Param::Decimal(d) => Some(d.normalize()),
            _ => None,
        })),
        ArrayKind::Bool => q.bind(elements(params, |p| match p {
            Param::Bool(b) => Some(*b),
            _ => None,
        })),
        ArrayKind::DateTime => q.bind(elements(params, |p| match p {
            Param::DateTime(d) => Some(*d),
            _ => None,
        })),
        ArrayKind::Uuid => q.bind(elements(params, |p| match p {
            Param::Uuid(u) => Some(*u),
            _ => None,
        })),
    }
}

/// `sql` with the parameters of `statement` bound in order.
fn bound<'q>(sql: String, statement: &SqlWriter<'_>) -> PgQuery<'q> {
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for b in &statement.params {
        q = match b {
            Bind::Value(p) => bind(q, p.clone()),
            Bind::Text(s) => q.bind(s.clone()),
            Bind::Array(kind, params) => bind_array(q, *kind, params),
        };
    }
    q
}

fn decode(plan: &SelectPlan<'_>, row: &PgRow) -> StoreResult<QueryRow> {
    let raws = plan
        .storages()
        .into_iter()
        .enumerate()
        .map(|(i, s)| read(row, i, s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    plan.decode(raws)
}

impl PgOrg {
    async fn run_query(
        &self,
        conn: &mut PgConnection,
        query: &Query,
        context: &EvalContext,
        page: &PageRequest,
    ) -> StoreResult<QueryPage> {
        let schema = self.schema(conn).await?;
        let plan = SelectPlan::new(query, context, &schema.entities, &self.names)?;
        let mut result = match plan.page_statement(page)? {
            Some(statement) => {
                let rows = bound(statement.statement.sql.clone(), &statement.statement)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db_err)?;
                let rows = rows
                    .iter()
                    .map(|r| decode(&plan, r))
                    .collect::<StoreResult<Vec<_>>>()?;
                plan.finish(&statement, rows)
            }
            None => QueryPage::default(),
        };
        if page.with_total {
            let count = plan.count_statement()?;
            let n: i64 = bound(count.sql.clone(), &count)
                .fetch_one(&mut *conn)
                .await
                .map_err(db_err)?
                .try_get(0)
                .map_err(db_err)?;
            result.total = Some(u64::try_from(n).unwrap_or_default());
        }
        Ok(result)
    }
}

#[async_trait]
impl QueryStore for PgOrg {
    async fn query(
        &self,
        query: &Query,
        context: &EvalContext,
        page: &PageRequest,
    ) -> StoreResult<QueryPage> {
        if page.with_total {
            let mut tx = self
                .pool
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await
                .map_err(db_err)?;
            let result = self.run_query(&mut tx, query, context, page).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(result)
        } else {
            let mut conn = self.pool.acquire().await.map_err(db_err)?;
            self.run_query(&mut conn, query, context, page).await
        }
    }

    async fn explain(&self, query: &Query, context: &EvalContext, page: &PageRequest) -> StoreResult<String> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        let schema = self.schema(&mut conn).await?;
        let plan = SelectPlan::new(query, context, &schema.entities, &self.names)?;
        let Some(statement) = plan.page_statement(page)? else {
            return Ok("no statement: the query's top rows were already returned".into());
        };
        let sql = format!("EXPLAIN {}", statement.statement.sql);
        let rows = bound(sql, &statement.statement)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        let lines = rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?;
        Ok(lines.join("\n"))
    }
}
