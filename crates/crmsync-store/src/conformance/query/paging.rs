//! Order, pages, `top` and totals of queries, and lists longer than any parameter limit.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use crmsync_model::{AttributeName, Record, RecordId, Value};
use crmsync_query::{Condition, Filter, Operator, Query};

use super::{THINGS, all_rows, context, fixture, ids_of};
use crate::conformance::{TestBackend, entity_name};
use crate::{PageCursor, PageRequest};

fn name_of(r: &Record) -> Option<Vec<u8>> {
    match r.get("name") {
        Some(Value::String(s)) => Some(s.bytes().map(|b| b.to_ascii_lowercase()).collect()),
        _ => None,
    }
}

/// NULL first, then ascending by `key`; ties by id.
fn sorted_by<K: Ord>(
    records: &[Record],
    key: impl Fn(&Record) -> Option<K>,
    descending: bool,
) -> Vec<RecordId> {
    let mut rs: Vec<&Record> = records.iter().collect();
    rs.sort_by(|a, b| {
        let ord = match (key(a), key(b)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => x.cmp(&y),
        };
        let ord = if descending { ord.reverse() } else { ord };
        ord.then(a.id.cmp(&b.id))
    });
    rs.into_iter().map(|r| r.id.unwrap()).collect()
}

pub async fn query_orders_text_case_insensitively_with_nulls_first_and_ties_by_id(b: &impl TestBackend) {
    let f = fixture(b, "order").await;
    let order = |attr: &str, desc: bool| {
        f.fetch(&format!(
            "<fetch><entity name='thing'><attribute name='name'/><order attribute='{attr}' descending='{desc}'/></entity></fetch>"
        ))
    };
    let got = ids_of(&all_rows(&*f.store, &order("name", false), 5).await);
    assert_eq!(got, sorted_by(&f.things, name_of, false), "name ascending");
    let got = ids_of(&all_rows(&*f.store, &order("name", true), 5).await);
    assert_eq!(
        got,
        sorted_by(&f.things, name_of, true),
        "name descending: NULL last"
    );
    let ratio = |r: &Record| match r.get("ratio") {
        Some(Value::Decimal(d)) => Some(*d),
        _ => None,
    };
    let got = ids_of(&all_rows(&*f.store, &order("ratio", false), 4).await);
    assert_eq!(
        got,
        sorted_by(&f.things, ratio, false),
        "decimals by value, not as text"
    );
    let when = |r: &Record| match r.get("when") {
        Some(Value::DateTime(d)) => Some(*d),
        _ => None,
    };
    let got = ids_of(&all_rows(&*f.store, &order("when", true), 4).await);
    assert_eq!(got, sorted_by(&f.things, when, true), "date/times descending");
}

pub async fn query_keyset_pages_visit_every_row_once_in_id_order(b: &impl TestBackend) {
    let f = fixture(b, "keyset").await;
    let query = f.fetch("<fetch><entity name='thing'><attribute name='name'/></entity></fetch>");
    let mut expected = f.ids.clone();
    expected.sort();
    let first = f
        .store
        .query(&query, &context(), &PageRequest::first(5))
        .await
        .unwrap();
    assert!(
        matches!(first.next, Some(PageCursor::AfterId(_))),
        "{:?}",
        first.next
    );
    assert_eq!(ids_of(&all_rows(&*f.store, &query, 5).await), expected);
    assert_eq!(
        ids_of(&all_rows(&*f.store, &query, 12).await),
        expected,
        "an exact last page"
    );
    let filtered = f.fetch(
        "<fetch><entity name='thing'><filter><condition attribute='count' operator='not-null'/></filter>\
         <order attribute='thingid'/></entity></fetch>",
    );
    let want: Vec<RecordId> = expected
        .iter()
        .copied()
        .filter(|id| f.expected(&filtered).contains(id))
        .collect();
    assert_eq!(ids_of(&all_rows(&*f.store, &filtered, 2).await), want);
}

pub async fn query_offset_pages_visit_every_row_once_in_custom_order(b: &impl TestBackend) {
    let f = fixture(b, "offset").await;
    let query = f.fetch(
        "<fetch><entity name='thing'><attribute name='count'/><order attribute='count' descending='true'/></entity></fetch>",
    );
    let first = f
        .store
        .query(&query, &context(), &PageRequest::first(3))
        .await
        .unwrap();
    assert_eq!(first.next, Some(PageCursor::Offset(3)));
    let whole = ids_of(&all_rows(&*f.store, &query, 100).await);
    let count = |r: &Record| match r.get("count") {
        Some(Value::Integer(i)) => Some(*i),
        _ => None,
    };
    assert_eq!(whole, sorted_by(&f.things, count, true));
    for size in [1, 3, 5] {
        assert_eq!(
            ids_of(&all_rows(&*f.store, &query, size).await),
            whole,
            "pages of {size}"
        );
    }
    let wrong = PageRequest {
        cursor: Some(PageCursor::AfterId(f.ids[0])),
        ..PageRequest::first(3)
    };
    assert!(
        f.store.query(&query, &context(), &wrong).await.is_err(),
        "a keyset cursor is refused"
    );
}

pub async fn query_top_caps_rows_over_all_pages(b: &impl TestBackend) {
    let f = fixture(b, "top").await;
    let query = f.fetch("<fetch top='7'><entity name='thing'><attribute name='name'/></entity></fetch>");
    let mut sizes = Vec::new();
    let mut page = PageRequest::first(3);
    loop {
        let got = f.store.query(&query, &context(), &page).await.unwrap();
        sizes.push(got.rows.len());
        match got.next {
            Some(next) => page.cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, [3, 3, 1]);
    let mut expected = f.ids.clone();
    expected.sort();
    expected.truncate(7);
    assert_eq!(ids_of(&all_rows(&*f.store, &query, 3).await), expected);
    assert_eq!(
        all_rows(&*f.store, &query, 7).await.len(),
        7,
        "top equal to the page size"
    );
}

pub async fn query_total_counts_all_matches_ignoring_paging_and_top(b: &impl TestBackend) {
    let f = fixture(b, "total").await;
    let query = f.fetch(
        "<fetch top='2'><entity name='thing'><filter><condition attribute='count' operator='gt' value='0'/></filter></entity></fetch>",
    );
    let page = PageRequest {
        with_total: true,
        ..PageRequest::first(1)
    };
    let got = f.store.query(&query, &context(), &page).await.unwrap();
    assert_eq!(got.rows.len(), 1);
    assert_eq!(got.total, Some(f.expected(&query).len() as u64));
    assert_eq!(
        got.total,
        Some(THINGS.iter().filter(|t| t.1.is_some_and(|c| c > 0)).count() as u64)
    );
    let linked = f.fetch(
        "<fetch><entity name='thing'><link-entity name='other' from='thingid' to='thingid' alias='o'/></entity></fetch>",
    );
    let got = f.store.query(&linked, &context(), &page).await.unwrap();
    assert_eq!(got.total, Some(3), "parents with at least one child");
    let without = f
        .store
        .query(&linked, &context(), &PageRequest::first(1))
        .await
        .unwrap();
    assert_eq!(without.total, None, "no total unless asked");
}

fn in_query(attribute: &str, values: Vec<Value>, negated: bool) -> Query {
    let mut q = Query::new(entity_name("thing"));
    let operator = if negated {
        Operator::NotIn(values)
    } else {
        Operator::In(values)
    };
    q.filter = Some(Filter::Condition(Condition {
        alias: None,
        attribute: AttributeName::parse(attribute).unwrap(),
        operator,
    }));
    q
}

pub async fn query_in_lists_longer_than_parameter_limits_work(b: &impl TestBackend) {
    let f = fixture(b, "bigin").await;
    let mut ids: Vec<Value> = (0..70_000).map(|_| Value::Guid(RecordId::new_random())).collect();
    ids.push(Value::Guid(f.ids[1]));
    ids.insert(100, Value::Guid(f.ids[4]));
    let got: BTreeSet<_> = ids_of(&all_rows(&*f.store, &in_query("thingid", ids, false), 50).await)
        .into_iter()
        .collect();
    assert_eq!(got, f.rows(&[1, 4]));
    let mut names: Vec<Value> = (0..70_000).map(|i| Value::String(format!("n{i}"))).collect();
    names.push(Value::String("GAMMA_1".into()));
    let q = in_query("name", names, false);
    assert_eq!(f.check("70k names", &q).await, f.rows(&[4]));
    let counts: Vec<Value> = (-35_000..35_000)
        .filter(|i| *i != 7)
        .map(Value::Integer)
        .collect();
    let q = in_query("count", counts, true);
    assert_eq!(f.check("70k counts, not in", &q).await, f.rows(&[3]));
}
