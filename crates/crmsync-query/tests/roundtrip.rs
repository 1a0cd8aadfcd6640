//! `parse_fetchxml(to_fetchxml(q)) == q` for every FetchXML-shaped query (property test), and
//! queries from OData (with `not` and `contains`) keep their meaning when written as FetchXML.

use crate::common;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use common::{account, guid, metadata};
use crmsync_model::{AttributeName, Record, Value};
use crmsync_query::{
    Columns, Condition, EvalContext, Filter, LinkEntity, LinkType, ODataParams, Operator, OrderBy, Query,
    QueryError, eval, lower, parse_fetchxml, parse_odata, to_fetchxml,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn name(s: &str) -> AttributeName {
    AttributeName::parse(s).unwrap()
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 %_'\"<>&é\t\n\r]{0,10}"
}

fn datetime() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..4_000_000_000, 0i64..1_000_000)
        .prop_map(|(s, us)| DateTime::from_timestamp_micros(s * 1_000_000 + us).unwrap())
}

fn account_condition() -> impl Strategy<Value = Condition> {
    let c = |attribute: &'static str, op: Operator| Condition {
        alias: None,
        attribute: name(attribute),
        operator: op,
    };
    let s = || text().prop_map(Value::String);
    prop_oneof![
        s().prop_map(move |v| c("name", Operator::Eq(v))),
        s().prop_map(move |v| c("name", Operator::Gt(v))),
        "[a-z%_ ]{0,8}".prop_map(move |p| c("name", Operator::NotLike(p))),
        text().prop_map(move |v| c("description", Operator::BeginsWith(v))),
        text().prop_map(move |v| c("name", Operator::NotEndWith(v))),
        prop::collection::vec(s(), 1..4).prop_map(move |v| c("name", Operator::In(v))),
        Just(c("name", Operator::Null)),
        Just(c("revenue", Operator::NotNull)),
        (any::<i32>(), any::<i32>()).prop_map(move |(a, b)| c(
            "numberofemployees",
            Operator::Between(Value::Integer(a), Value::Integer(b))
        )),
        (any::<i64>(), 0u32..5).prop_map(move |(m, s)| c(
            "revenue",
            Operator::Le(Value::Decimal(Decimal::new(m, s).normalize()))
        )),
        (-1e9f64..1e9).prop_map(move |f| c("latitude", Operator::Lt(Value::Double(f)))),
        any::<bool>().prop_map(move |b| c("creditonhold", Operator::Ne(Value::Boolean(b)))),
        datetime().prop_map(move |d| c("createdon", Operator::Ge(Value::DateTime(d)))),
        (0u32..50_000).prop_map(move |n| c(
            "createdon",
            Operator::On(NaiveDate::from_num_days_from_ce_opt(700_000 + n as i32).unwrap())
        )),
        (0u32..1000).prop_map(move |n| c("modifiedon", Operator::LastXDays(n))),
        (0u32..1000).prop_map(move |n| c("modifiedon", Operator::OlderThanXMinutes(n))),
        Just(c("createdon", Operator::Yesterday)),
        prop::collection::vec(1i32..4, 1..3).prop_map(move |v| c(
            "industrycode",
            Operator::NotIn(v.into_iter().map(Value::OptionSet).collect())
        )),
        (0u8..255).prop_map(move |n| c("accountid", Operator::In(vec![Value::Guid(guid(n))]))),
        (0u8..255).prop_map(move |n| c("primarycontactid", Operator::Eq(Value::Guid(guid(n))))),
        Just(c("ownerid", Operator::NeUserId)),
    ]
}

fn filter_tree(leaf: BoxedStrategy<Condition>) -> impl Strategy<Value = Filter> {
    let leaf = leaf.prop_map(Filter::Condition);
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Filter::And),
            prop::collection::vec(inner, 1..4).prop_map(Filter::Or),
        ]
    })
    .prop_map(|f| match f {
        group @ (Filter::And(_) | Filter::Or(_)) => group,
        single => Filter::And(vec![single]),
    })
}

fn contact_condition() -> BoxedStrategy<Condition> {
    prop_oneof![
        text().prop_map(|v| Condition {
            alias: None,
            attribute: name("fullname"),
            operator: Operator::Eq(Value::String(v)),
        }),
        Just(Condition {
            alias: None,
            attribute: name("birthdate"),
            operator: Operator::Today,
        }),
    ]
    .boxed()
}

fn link(alias: String) -> impl Strategy<Value = LinkEntity> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::option::of(filter_tree(contact_condition())),
    )
        .prop_map(move |(outer, all, filter)| LinkEntity {
            name: "contact".parse().unwrap(),
            from: name("contactid"),
            to: name("primarycontactid"),
            alias: alias.clone(),
            link_type: if outer { LinkType::Outer } else { LinkType::Inner },
            columns: if all {
                Columns::All
            } else {
                Columns::List(vec![name("fullname")])
            },
            filter,
            links: vec![],
        })
}

fn paging() -> impl Strategy<Value = (Option<u32>, Option<u32>, Option<u32>, Option<String>)> {
    prop_oneof![
        (1u32..=5000).prop_map(|t| (Some(t), None, None, None)),
        (
            prop::option::of(1u32..=5000),
            prop::option::of(1u32..100),
            prop::option::of(text())
        )
            .prop_map(|(c, p, k)| (None, c, p, k)),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    let columns = prop_oneof![
        Just(Columns::All),
        prop::sample::subsequence(vec!["name", "revenue", "createdon", "primarycontactid"], 0..4)
            .prop_map(|v| Columns::List(v.into_iter().map(name).collect())),
    ];
    (
        columns,
        prop::option::of(filter_tree(account_condition().boxed())),
        prop::collection::vec(link("pc".into()), 0..2),
        prop::collection::vec((any::<bool>(), any::<bool>()), 0..3),
        paging(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(columns, filter, links, orders, paging, distinct, total)| {
            let order = orders
                .into_iter()
                .map(|(on_link, descending)| match (on_link, links.is_empty()) {
                    (true, false) => OrderBy {
                        attribute: name("fullname"),
                        descending,
                        alias: Some("pc".into()),
                    },
                    _ => OrderBy {
                        attribute: name("name"),
                        descending,
                        alias: None,
                    },
                })
                .collect();
            let mut q = Query::new("account".parse().unwrap());
            q.columns = columns;
            q.filter = filter;
            q.links = links;
            q.order = order;
            (q.top, q.count, q.page, q.paging_cookie) = paging;
            q.distinct = distinct;
            q.return_total_count = total;
            q
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn fetchxml_written_from_a_parsed_query_parses_back_to_the_same_query(q in query()) {
        let xml = to_fetchxml(&q).unwrap();
        let back = parse_fetchxml(&xml, &metadata());
        prop_assert_eq!(back.as_ref(), Ok(&q), "{}", xml);
    }
}

#[test]
fn conditions_on_link_aliases_round_trip() {
    let xml = r#"<fetch><entity name="account"><filter type="or"><condition entityname="pc" attribute="fullname" operator="like" value="a[%]%"/></filter><link-entity name="contact" from="contactid" to="primarycontactid" alias="pc" link-type="outer"/></entity></fetch>"#;
    let q = parse_fetchxml(xml, &metadata()).unwrap();
    assert_eq!(parse_fetchxml(&to_fetchxml(&q).unwrap(), &metadata()).unwrap(), q);
}

fn odata(filter: &str) -> Query {
    let params = ODataParams {
        filter: Some(filter.into()),
        ..Default::default()
    };
    parse_odata(&account(), &params, &metadata()).unwrap()
}

fn rows() -> Vec<Record> {
    let when = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let base = || Record::new(guid(1));
    vec![
        base(),
        base()
            .with("name", Value::String("50% off_".into()))
            .with("numberofemployees", Value::Integer(5))
            .with("createdon", Value::DateTime(when)),
        base()
            .with("name", Value::String("Contoso".into()))
            .with("numberofemployees", Value::Integer(50))
            .with("createdon", Value::DateTime(when - chrono::TimeDelta::days(1))),
        base()
            .with("name", Value::Null)
            .with("numberofemployees", Value::Null),
    ]
}

#[test]
fn negated_odata_filters_keep_their_three_valued_meaning_in_fetchxml() {
    let ctx = EvalContext::new(Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap());
    for text in [
        "not contains(name,'50%')",
        "not startswith(name,'con')",
        "not (name eq 'Contoso' or numberofemployees gt 10)",
        "not (numberofemployees ge 5 and not endswith(name,'_'))",
        "not Microsoft.Dynamics.CRM.On(PropertyName='createdon',PropertyValue='2026-03-01')",
        "not Microsoft.Dynamics.CRM.OnOrBefore(PropertyName='createdon',PropertyValue='2026-02-28')",
        "not Microsoft.Dynamics.CRM.Between(PropertyName='numberofemployees',PropertyValues=[1,10])",
        "not (name eq null)",
        "contains(name,'[x]')",
    ] {
        let q = odata(text);
        let xml = to_fetchxml(&q).unwrap_or_else(|e| panic!("{text}: {e}"));
        let back = parse_fetchxml(&xml, &metadata()).unwrap();
        let (a, b) = (
            lower(q.filter.as_ref().unwrap(), &ctx),
            lower(back.filter.as_ref().unwrap(), &ctx),
        );
        for row in rows() {
            assert_eq!(eval(&a, &row), eval(&b, &row), "{text}\n{xml}\n{row:?}");
        }
    }
}

#[test]
fn negated_relative_dates_and_empty_lists_are_refused_as_fetchxml() {
    let q = odata("not Microsoft.Dynamics.CRM.Today(PropertyName='createdon')");
    assert!(matches!(to_fetchxml(&q), Err(QueryError::NotExpressibleAsFetchXml(m)) if m.contains("today")));
    let mut q = Query::new("account".parse().unwrap());
    q.filter = Some(Filter::Condition(Condition {
        alias: None,
        attribute: name("accountid"),
        operator: Operator::In(vec![]),
    }));
    assert!(matches!(
        to_fetchxml(&q),
        Err(QueryError::NotExpressibleAsFetchXml(_))
    ));
}

#[test]
fn sync_engine_can_add_an_in_condition_and_write_it() {
    let mut q = parse_fetchxml(
        r#"<fetch><entity name="account"><filter><condition attribute="statecode" operator="eq" value="0"/></filter></entity></fetch>"#,
        &metadata(),
    )
    .unwrap();
    q.and_filter(Filter::Condition(Condition {
        alias: None,
        attribute: name("accountid"),
        operator: Operator::In((1..=3).map(|n| Value::Guid(guid(n))).collect()),
    }));
    let xml = to_fetchxml(&q).unwrap();
    assert!(
        xml.contains(r#"<condition attribute="accountid" operator="in"><value>"#),
        "{xml}"
    );
    assert_eq!(parse_fetchxml(&xml, &metadata()).unwrap(), q);
}
