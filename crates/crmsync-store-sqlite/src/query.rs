//! Queries ([`QueryStore`]): the statement planned by `crmsync_store::sql::SelectPlan`, run
//! on one pooled connection; with a total, the page and the count run in one read
//! transaction, so both come from the same snapshot.
//!
//! Parameters bind in order of appearance (`?` are anonymous); lists arrive as one JSON text
//! parameter read with `json_each` (see `crmsync_store::sql` `filter.rs`).

use async_trait::async_trait;
use crmsync_query::{EvalContext, Query};
use crmsync_store::sql::{Bind, SelectPlan, SqlWriter};
use crmsync_store::{PageRequest, QueryPage, QueryStore, StoreError, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row, SqliteConnection};

use crate::SqliteOrg;
use crate::bind::{SqliteQuery, bind, db_err, read};

/// `sql` with the parameters of `statement` bound in order.
fn bound<'q>(sql: String, statement: &SqlWriter<'_>) -> StoreResult<SqliteQuery<'q>> {
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for b in &statement.params {
        q = match b {
            Bind::Value(p) => bind(q, p.clone()),
            Bind::Text(s) => q.bind(s.clone()),
            Bind::Array(..) => {
                return Err(StoreError::database(
                    "array parameters are not rendered for SQLite",
                ));
            }
        };
    }
    Ok(q)
}

fn decode(plan: &SelectPlan<'_>, row: &SqliteRow) -> StoreResult<crmsync_store::QueryRow> {
    let raws = plan
        .storages()
        .into_iter()
        .enumerate()
        .map(|(i, s)| read(row, i, s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    plan.decode(raws)
}

impl SqliteOrg {
    async fn run_query(
        &self,
        conn: &mut SqliteConnection,
        query: &Query,
        context: &EvalContext,
        page: &PageRequest,
    ) -> StoreResult<QueryPage> {
        let schema = self.schema(conn).await?;
        let plan = SelectPlan::new(query, context, &schema.entities, &self.names)?;
        let mut result = match plan.page_statement(page)? {
            Some(statement) => {
                let rows = bound(statement.statement.sql.clone(), &statement.statement)?
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
            let n: i64 = bound(count.sql.clone(), &count)?
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
impl QueryStore for SqliteOrg {
    async fn query(
        &self,
        query: &Query,
        context: &EvalContext,
        page: &PageRequest,
    ) -> StoreResult<QueryPage> {
        if page.with_total {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
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
        let sql = format!("EXPLAIN QUERY PLAN {}", statement.statement.sql);
        let rows = bound(sql, &statement.statement)?
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        // Rows are (id, parent, notused, detail), parents first: indent by depth.
        let mut depths: Vec<(i64, usize)> = Vec::new();
        let mut lines = Vec::new();
        for row in rows {
            let id: i64 = row.try_get(0).map_err(db_err)?;
            let parent: i64 = row.try_get(1).map_err(db_err)?;
            let detail: String = row.try_get(3).map_err(db_err)?;
            let depth = depths
                .iter()
                .find(|(i, _)| *i == parent)
                .map_or(0, |(_, d)| d + 1);
            depths.push((id, depth));
            lines.push(format!("{}{detail}", "  ".repeat(depth)));
        }
        Ok(lines.join("\n"))
    }
}
