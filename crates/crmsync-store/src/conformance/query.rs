//! Queries ([`crate::QueryStore`]): FetchXML and OData text parsed by `crmsync_query` and run
//! against stored records. Expected rows come from `crmsync_query::eval` (the reference
//! semantics) and, where a case proves a specific rule (case folding, escaping), from ids
//! written out by hand. `paging.rs` covers order and pages, `differential.rs` random filters.

mod differential;
mod paging;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use crmsync_model::{
    AttributeMetadata, AttributeType, EntityMetadata, EntityReference, MetadataChange, Record, RecordId,
    Value,
};
use crmsync_query::{
    Columns, Condition, EvalContext, Filter, ODataParams, Operator, Query, RecordRow, lower, matches,
    parse_fetchxml, parse_odata,
};
use rust_decimal::Decimal;

pub use differential::*;
pub use paging::*;

use crate::conformance::{TestBackend, entity_name, org_with_thing};
use crate::{ListRequest, OrgStore, PageRequest, QueryRow, RecordStore, UpsertMode, WriteSet};

pub(crate) const HOSTILE: &str = "bob\"e'); DROP TABLE x;--";

/// The fixed "now" of every query test.
pub(crate) fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-15T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub(crate) fn user() -> RecordId {
    RecordId::parse("11111111-2222-3333-4444-555555555555").unwrap()
}

pub(crate) fn context() -> EvalContext {
    EvalContext::new(now()).with_user(user())
}

/// `other`: children of `thing` through the lookup `thingid`.
fn other() -> EntityMetadata {
    let attr = |n: &str, t| AttributeMetadata::new(n, t).unwrap();
    EntityMetadata::new("other", "others", "name")
        .unwrap()
        .with_attribute(attr(
            "thingid",
            AttributeType::Lookup {
                targets: vec![entity_name("thing")],
            },
        ))
        .unwrap()
        .with_attribute(attr("size", AttributeType::Integer { min: 0, max: 100 }))
        .unwrap()
}

pub(crate) struct Fixture {
    pub store: Arc<dyn OrgStore>,
    pub entities: Vec<EntityMetadata>,
    /// Ids of the `thing` rows, by row number.
    pub ids: Vec<RecordId>,
    /// The `thing` records as stored (all attributes).
    pub things: Vec<Record>,
}

type ThingRow<'a> = (
    Option<&'a str>,
    Option<i32>,
    Option<&'a str>,
    Option<i64>,
    Option<bool>,
    Option<i32>,
    Option<usize>,
);

/// Twelve things: name, count, ratio, `when` (hours from now), flag, kind, parent row.
const THINGS: [ThingRow<'static>; 12] = [
    (
        Some("Alpha"),
        Some(5),
        Some("1.5"),
        Some(-1),
        Some(true),
        Some(1),
        None,
    ),
    (
        Some("alpha"),
        Some(-3),
        Some("0.1"),
        Some(-24),
        Some(false),
        Some(2),
        Some(0),
    ),
    (
        Some("BETA"),
        Some(0),
        Some("100"),
        Some(-72),
        Some(true),
        Some(100_000_000),
        Some(0),
    ),
    (
        Some("beta%x"),
        Some(7),
        Some("-2.25"),
        Some(2),
        None,
        Some(1),
        Some(1),
    ),
    (Some("gamma_1"), None, None, None, Some(false), None, None),
    (
        None,
        Some(1000),
        Some("0"),
        Some(-960),
        Some(true),
        Some(2),
        Some(2),
    ),
    (
        Some("Delta 'q'"),
        Some(12),
        Some("12.5"),
        Some(72),
        Some(false),
        Some(1),
        Some(5),
    ),
    (
        Some("épée"),
        Some(3),
        Some("3.00"),
        Some(-2),
        Some(true),
        Some(2),
        None,
    ),
    (Some("Épée"), Some(4), Some("4"), Some(-240), None, None, Some(7)),
    (
        Some(HOSTILE),
        Some(1),
        Some("1"),
        Some(-5),
        Some(true),
        Some(1),
        None,
    ),
    (
        Some("zeta\\end"),
        Some(-1000),
        Some("-0.5"),
        Some(-2400),
        Some(false),
        Some(2),
        Some(9),
    ),
    (
        Some("Alpha"),
        Some(5),
        Some("1.5"),
        Some(24),
        Some(true),
        Some(1),
        Some(0),
    ),
];

/// Children of things: (name, parent row, size).
const OTHERS: [(&str, Option<usize>, i32); 5] = [
    ("x-one", Some(0), 1),
    ("x-two", Some(0), 2),
    ("y-three", Some(2), 3),
    ("x-four", Some(6), 4),
    ("z-five", None, 5),
];

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
    v.map_or(Value::Null, f)
}

pub(crate) async fn fixture(b: &impl TestBackend, org: &str) -> Fixture {
    let catalog = b.catalog().await;
    let store = org_with_thing(&*catalog, org).await;
    store
        .apply_metadata(&[MetadataChange::CreateEntity { entity: other() }])
        .await
        .unwrap();
    let mut ids: Vec<RecordId> = (0..THINGS.len()).map(|_| RecordId::new_random()).collect();
    ids.sort();
    // Ids in row order would make id order and row order coincide: shuffle them a little.
    ids.rotate_left(5);
    let mut set = WriteSet::new();
    for (i, (name, count, ratio, when, flag, kind, parent)) in THINGS.iter().enumerate() {
        let reference = |p: usize| {
            Value::Lookup(EntityReference {
                entity: entity_name("thing"),
                id: ids[p],
            })
        };
        let record = Record::new(ids[i])
            .with("name", opt(*name, |s| Value::String(s.into())))
            .with("count", opt(*count, Value::Integer))
            .with(
                "ratio",
                opt(*ratio, |s| Value::Decimal(s.parse::<Decimal>().unwrap())),
            )
            .with(
                "when",
                opt(*when, |h| Value::DateTime(now() + Duration::hours(h))),
            )
            .with("flag", opt(*flag, Value::Boolean))
            .with("kind", opt(*kind, Value::OptionSet))
            .with("parentid", opt(*parent, reference))
            .with(
                "ref",
                match i % 3 {
                    0 => Value::Guid(user()),
                    1 => Value::Guid(RecordId::new_random()),
                    _ => Value::Null,
                },
            );
        set = set.record(entity_name("thing"), record, UpsertMode::CreateOnly);
    }
    for (name, parent, size) in OTHERS {
        let record = Record::new(RecordId::new_random())
            .with("name", Value::String(name.into()))
            .with("size", Value::Integer(size))
            .with(
                "thingid",
                opt(parent, |p| {
                    Value::Lookup(EntityReference {
                        entity: entity_name("thing"),
                        id: ids[p],
                    })
                }),
            );
        set = set.record(entity_name("other"), record, UpsertMode::CreateOnly);
    }
    store.write(set).await.unwrap();
    let things = stored(&*store, "thing").await;
    let entities = store.entities().await.unwrap();
    Fixture {
        store,
        entities,
        ids,
        things,
    }
}

/// Every record of `entity`, all attributes.
pub(crate) async fn stored(store: &dyn RecordStore, entity: &str) -> Vec<Record> {
    let request = ListRequest {
        limit: 10_000,
        ..ListRequest::default()
    };
    store.list(&entity_name(entity), &request).await.unwrap().records
}

/// All rows of `query`, following the cursors with pages of `size`.
pub(crate) async fn all_rows(store: &dyn OrgStore, query: &Query, size: usize) -> Vec<QueryRow> {
    all_rows_at(store, query, &context(), size).await
}

/// [`all_rows`] evaluated in `context`.
pub(crate) async fn all_rows_at(
    store: &dyn OrgStore,
    query: &Query,
    context: &EvalContext,
    size: usize,
) -> Vec<QueryRow> {
    let mut rows = Vec::new();
    let mut page = PageRequest::first(size);
    for _ in 0..10_000 {
        let got = store.query(query, context, &page).await.unwrap();
        assert!(got.rows.len() <= size, "a page holds at most its size");
        rows.extend(got.rows);
        match got.next {
            Some(cursor) => page.cursor = Some(cursor),
            None => return rows,
        }
    }
    panic!("paging did not end");
}

pub(crate) fn ids_of(rows: &[QueryRow]) -> Vec<RecordId> {
    rows.iter().map(|r| r.record.id.unwrap()).collect()
}

impl Fixture {
    pub fn fetch(&self, xml: &str) -> Query {
        parse_fetchxml(xml, &self.entities).unwrap_or_else(|e| panic!("{xml}: {e}"))
    }

    pub fn odata(&self, filter: &str) -> Query {
        let params = ODataParams {
            filter: Some(filter.into()),
            ..ODataParams::default()
        };
        let meta = self
            .entities
            .iter()
            .find(|e| e.logical_name.as_str() == "thing")
            .unwrap();
        parse_odata(meta, &params, &self.entities).unwrap_or_else(|e| panic!("{filter}: {e}"))
    }

    /// The things `crmsync_query::eval` says match the query's (root) filter.
    pub fn expected(&self, query: &Query) -> BTreeSet<RecordId> {
        let predicate = query.filter.as_ref().map(|f| lower(f, &context()));
        self.things
            .iter()
            .filter(|r| {
                predicate
                    .as_ref()
                    .is_none_or(|p| matches(p, &RecordRow::new(r, "thingid")))
            })
            .map(|r| r.id.unwrap())
            .collect()
    }

    pub fn rows(&self, numbers: &[usize]) -> BTreeSet<RecordId> {
        numbers.iter().map(|i| self.ids[*i]).collect()
    }

    /// Runs `query` and checks it returns exactly what eval expects, each row once, and
    /// that the case is discriminating (some rows but not all).
    pub async fn check(&self, what: &str, query: &Query) -> BTreeSet<RecordId> {
        let rows = all_rows(&*self.store, query, 5).await;
        let ids = ids_of(&rows);
        let set: BTreeSet<RecordId> = ids.iter().copied().collect();
        assert_eq!(set.len(), ids.len(), "{what}: a row came back twice");
        let expected = self.expected(query);
        assert_eq!(set, expected, "{what}");
        assert!(
            !expected.is_empty() && expected.len() < self.things.len(),
            "{what}: the case should match some rows but not all"
        );
        set
    }
}

fn condition(attribute: &str, operator: &str, value: &str) -> String {
    let value = if value.is_empty() {
        String::new()
    } else {
        format!(" value='{value}'")
    };
    format!(
        "<fetch><entity name='thing'><filter><condition attribute='{attribute}' operator='{operator}'{value}/></filter></entity></fetch>"
    )
}

pub async fn query_fetchxml_operators_match_eval_on_stored_rows(b: &impl TestBackend) {
    let f = fixture(b, "fx-ops").await;
    let parent0 = f.ids[0].to_string();
    let cases: Vec<(&str, &str, &str)> = vec![
        ("name", "eq", "ALPHA"),
        ("name", "ne", "alpha"),
        ("count", "gt", "3"),
        ("count", "ge", "5"),
        ("ratio", "lt", "1.5"),
        ("ratio", "le", "1.50"),
        ("name", "like", "%A%"),
        ("name", "not-like", "b%"),
        ("name", "like", "beta[%]x"),
        ("name", "begins-with", "ALP"),
        ("name", "ends-with", "_1"),
        ("name", "null", ""),
        ("count", "not-null", ""),
        ("when", "on", "2026-03-15"),
        ("when", "on-or-before", "2026-03-14"),
        ("when", "on-or-after", "2026-03-16"),
        ("when", "today", ""),
        ("when", "yesterday", ""),
        ("when", "last-x-days", "7"),
        ("when", "next-x-days", "5"),
        ("when", "last-x-hours", "3"),
        ("when", "olderthan-x-days", "30"),
        ("ref", "eq-userid", ""),
        ("ref", "ne-userid", ""),
        ("parentid", "eq", &parent0),
        ("parentid", "ne", &parent0),
        ("kind", "eq", "2"),
        ("flag", "eq", "1"),
        ("flag", "ne", "true"),
        ("thingid", "eq", &parent0),
    ];
    for (attribute, operator, value) in cases {
        let query = f.fetch(&condition(attribute, operator, value));
        f.check(&format!("{attribute} {operator} {value}"), &query).await;
    }
    let lists = [
        "<condition attribute='count' operator='in'><value>5</value><value>7</value><value>12</value></condition>",
        "<condition attribute='kind' operator='not-in'><value>1</value><value>2</value></condition>",
        "<condition attribute='count' operator='between'><value>-3</value><value>5</value></condition>",
        "<condition attribute='ratio' operator='not-between'><value>0</value><value>10</value></condition>",
        "<condition attribute='name' operator='in'><value>beta</value><value>DELTA 'Q'</value></condition>",
        "<filter type='or'><condition attribute='count' operator='lt' value='0'/><filter type='and'>\
         <condition attribute='flag' operator='eq' value='1'/><condition attribute='name' operator='like' value='%a'/></filter></filter>",
    ];
    for c in lists {
        let xml = format!("<fetch><entity name='thing'><filter>{c}</filter></entity></fetch>");
        f.check(c, &f.fetch(&xml)).await;
    }
    let alpha = f
        .check("eq ALPHA", &f.fetch(&condition("name", "eq", "ALPHA")))
        .await;
    assert_eq!(alpha, f.rows(&[0, 1, 11]), "text equality ignores ASCII case");
    let under = f
        .check("ends-with _1", &f.fetch(&condition("name", "ends-with", "_1")))
        .await;
    assert_eq!(under, f.rows(&[4]), "'_' in ends-with is literal");
}

pub async fn query_odata_filters_match_eval_on_stored_rows(b: &impl TestBackend) {
    let f = fixture(b, "od-ops").await;
    let parent0 = f.ids[0];
    let cases = [
        "name eq 'ALPHA'".to_owned(),
        "count gt 3 and not (flag eq true)".into(),
        "contains(name,'%')".into(),
        "startswith(name,'b')".into(),
        "endswith(name,'_1')".into(),
        "name eq null".into(),
        "count ne null and ratio ge 1.5".into(),
        "ratio ge 1.5 or when lt 2026-03-10T00:00:00Z".into(),
        format!("_parentid_value eq {parent0}"),
        "kind eq 2 or kind eq 100000000".into(),
        "name ne 'alpha'".into(),
        "not (count le 5)".into(),
    ];
    for c in &cases {
        f.check(c, &f.odata(c)).await;
    }
    let percent = f.check("contains %", &f.odata("contains(name,'%')")).await;
    assert_eq!(percent, f.rows(&[3]), "'%' in contains is literal");
}

pub async fn query_text_folds_ascii_letters_only(b: &impl TestBackend) {
    let f = fixture(b, "fold").await;
    let got = f
        .check("eq ÉPée", &f.fetch(&condition("name", "eq", "ÉPée")))
        .await;
    assert_eq!(got, f.rows(&[8]), "É and é differ; P and p do not");
    let like = f
        .check("like é%", &f.fetch(&condition("name", "like", "é%")))
        .await;
    assert_eq!(like, f.rows(&[7]));
}

pub async fn query_hostile_filter_value_is_only_data(b: &impl TestBackend) {
    let f = fixture(b, "hostile").await;
    let xml = condition(
        "name",
        "eq",
        &HOSTILE.replace('\'', "&apos;").replace('"', "&quot;"),
    );
    let got = f.check("hostile eq", &f.fetch(&xml)).await;
    assert_eq!(got, f.rows(&[9]));
    let odata = f
        .check(
            "hostile odata",
            &f.odata(&format!("name eq '{}'", HOSTILE.replace('\'', "''"))),
        )
        .await;
    assert_eq!(odata, f.rows(&[9]));
    assert_eq!(
        f.store.count(&entity_name("thing")).await.unwrap(),
        12,
        "the table is intact"
    );
}

pub async fn query_inner_link_without_columns_filters_parents_once(b: &impl TestBackend) {
    let f = fixture(b, "link-in").await;
    // Thing 0 has two children named x-…: it must still come back once.
    let xml = "<fetch><entity name='thing'><attribute name='name'/>\
        <link-entity name='other' from='thingid' to='thingid' link-type='inner' alias='o'>\
        <filter><condition attribute='name' operator='begins-with' value='X'/></filter></link-entity></entity></fetch>";
    let rows = all_rows(&*f.store, &f.fetch(xml), 1).await;
    let ids = ids_of(&rows);
    assert_eq!(ids.len(), 2, "each parent once: {ids:?}");
    assert_eq!(ids.iter().copied().collect::<BTreeSet<_>>(), f.rows(&[0, 6]));
    assert!(rows.iter().all(|r| r.linked.is_empty()));
}

pub async fn query_outer_link_returns_columns_and_keeps_unmatched_rows(b: &impl TestBackend) {
    let f = fixture(b, "link-out").await;
    let xml = "<fetch><entity name='thing'><attribute name='name'/>\
        <link-entity name='thing' from='thingid' to='parentid' link-type='outer' alias='p'>\
        <attribute name='name'/><attribute name='count'/>\
        <filter><condition attribute='count' operator='gt' value='0'/></filter></link-entity></entity></fetch>";
    let rows = all_rows(&*f.store, &f.fetch(xml), 4).await;
    assert_eq!(rows.len(), 12, "an outer link keeps every parent row");
    for (i, (_, _, _, _, _, _, parent)) in THINGS.iter().enumerate() {
        let row = rows.iter().find(|r| r.record.id == Some(f.ids[i])).unwrap();
        // The link's filter (count > 0) belongs to the join: a parent failing it is NULL.
        let joined = parent.filter(|p| THINGS[*p].1.is_some_and(|c| c > 0));
        let name = joined
            .and_then(|p| THINGS[p].0)
            .map_or(Value::Null, |s| Value::String(s.into()));
        assert_eq!(row.linked_value("p", "name"), Some(&name), "row {i}");
        assert_eq!(row.linked.len(), 2, "only the selected link columns");
    }
    // A root condition on the link's alias filters the joined rows.
    let xml = "<fetch><entity name='thing'>\
        <link-entity name='thing' from='thingid' to='parentid' link-type='outer' alias='p'/>\
        <filter><condition entityname='p' attribute='name' operator='eq' value='alpha'/></filter></entity></fetch>";
    let ids: BTreeSet<_> = ids_of(&all_rows(&*f.store, &f.fetch(xml), 3).await)
        .into_iter()
        .collect();
    assert_eq!(ids, f.rows(&[1, 2, 3, 11]));
}

pub async fn query_unknown_attributes_and_aliases_are_errors_naming_them(b: &impl TestBackend) {
    let f = fixture(b, "unknown").await;
    let cond = |alias: Option<&str>, attribute: &str| {
        let mut q = Query::new(entity_name("thing"));
        q.filter = Some(Filter::Condition(Condition {
            alias: alias.map(str::to_owned),
            attribute: crmsync_model::AttributeName::parse(attribute).unwrap(),
            operator: Operator::Null,
        }));
        q
    };
    let page = PageRequest::first(10);
    let err = f
        .store
        .query(&cond(None, "nosuchfield"), &context(), &page)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nosuchfield"), "{err}");
    let err = f
        .store
        .query(&cond(Some("ghost"), "name"), &context(), &page)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ghost"), "{err}");
    let mut q = Query::new(entity_name("thing"));
    q.columns = Columns::List(vec![crmsync_model::AttributeName::parse("missingcol").unwrap()]);
    let err = f.store.query(&q, &context(), &page).await.unwrap_err();
    assert!(err.to_string().contains("missingcol"), "{err}");
    let err = f
        .store
        .query(&Query::new(entity_name("nothing")), &context(), &page)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nothing"), "{err}");
}
