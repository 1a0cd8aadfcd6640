//! OData query options: every comparison and function, precedence, typed literals, lookups
//! as `_x_value`, `$select`/`$orderby`/`$top`/`$count`, and the errors.

use crate::common;

use std::str::FromStr;

use chrono::{NaiveDate, TimeZone, Utc};
use common::{account, guid, metadata};
use crmsync_model::Value;
use crmsync_query::{Columns, Condition, Filter, ODataParams, Operator, Query, QueryError, parse_odata};
use rust_decimal::Decimal;

fn query(params: ODataParams) -> Result<Query, QueryError> {
    parse_odata(&account(), &params, &metadata())
}

fn filter(text: &str) -> Result<Filter, QueryError> {
    let q = query(ODataParams {
        filter: Some(text.into()),
        ..Default::default()
    })?;
    Ok(q.filter.expect("a filter"))
}

fn op(text: &str) -> Operator {
    match filter(text).unwrap_or_else(|e| panic!("{text}: {e}")) {
        Filter::Condition(Condition { operator, .. }) => operator,
        other => panic!("{text}: {other:?}"),
    }
}

fn cond(attribute: &str, operator: Operator) -> Filter {
    Filter::Condition(Condition {
        alias: None,
        attribute: attribute.parse().unwrap(),
        operator,
    })
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

#[test]
fn comparisons_parse_with_typed_literals() {
    assert_eq!(op("name eq 'O''Brien'"), Operator::Eq(s("O'Brien")));
    assert_eq!(op("name ne 'x'"), Operator::Ne(s("x")));
    assert_eq!(op("numberofemployees gt 10"), Operator::Gt(Value::Integer(10)));
    assert_eq!(op("numberofemployees ge -3"), Operator::Ge(Value::Integer(-3)));
    assert_eq!(
        op("revenue lt 1000.50"),
        Operator::Lt(Value::Decimal(Decimal::from_str("1000.5").unwrap()))
    );
    assert_eq!(op("latitude le 1.5e1"), Operator::Le(Value::Double(15.0)));
    assert_eq!(op("creditonhold eq true"), Operator::Eq(Value::Boolean(true)));
    assert_eq!(op("creditonhold eq false"), Operator::Eq(Value::Boolean(false)));
    assert_eq!(op("industrycode eq 3"), Operator::Eq(Value::OptionSet(3)));
    assert_eq!(
        op("accountid eq 00000000-0000-0000-0000-000000000001"),
        Operator::Eq(Value::Guid(guid(1)))
    );
    let when = Utc.with_ymd_and_hms(2026, 1, 31, 10, 0, 0).unwrap();
    assert_eq!(
        op("createdon ge 2026-01-31T10:00:00Z"),
        Operator::Ge(Value::DateTime(when))
    );
    let midnight = Utc.with_ymd_and_hms(2026, 1, 31, 0, 0, 0).unwrap();
    assert_eq!(
        op("createdon lt 2026-01-31"),
        Operator::Lt(Value::DateTime(midnight))
    );
}

#[test]
fn lookups_are_addressed_as_underscore_value_properties() {
    let id = "00000000-0000-0000-0000-000000000002";
    assert_eq!(
        op(&format!("_primarycontactid_value eq {id}")),
        Operator::Eq(Value::Guid(guid(2)))
    );
    let f = filter(&format!("_primarycontactid_value eq {id}")).unwrap();
    assert!(matches!(f, Filter::Condition(c) if c.attribute.as_str() == "primarycontactid"));
    assert_eq!(op("_ownerid_value eq null"), Operator::Null);
    assert!(matches!(
        filter("_name_value eq 'x'"),
        Err(QueryError::UnknownAttribute { attribute, .. }) if attribute == "_name_value"
    ));
}

#[test]
fn null_comparisons_become_null_operators() {
    assert_eq!(op("name eq null"), Operator::Null);
    assert_eq!(op("name ne null"), Operator::NotNull);
    assert!(matches!(
        filter("revenue gt null"),
        Err(QueryError::Syntax { .. })
    ));
}

#[test]
fn a_literal_on_the_left_flips_the_comparison() {
    assert_eq!(op("10 lt numberofemployees"), Operator::Gt(Value::Integer(10)));
    assert_eq!(op("'x' eq name"), Operator::Eq(s("x")));
}

#[test]
fn string_functions_parse() {
    assert_eq!(op("contains(name,'50%')"), Operator::Contains("50%".into()));
    assert_eq!(op("startswith(name, 'Con')"), Operator::BeginsWith("Con".into()));
    assert_eq!(
        op("endswith(description,'Inc.')"),
        Operator::EndsWith("Inc.".into())
    );
    assert_eq!(
        filter("not contains(name,'x')").unwrap(),
        Filter::Not(Box::new(cond("name", Operator::Contains("x".into()))))
    );
}

#[test]
fn dataverse_query_functions_give_every_other_operator() {
    let f = |s: &str| op(&format!("Microsoft.Dynamics.CRM.{s}"));
    let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    assert_eq!(f("Today(PropertyName='createdon')"), Operator::Today);
    assert_eq!(f("Yesterday(PropertyName='createdon')"), Operator::Yesterday);
    assert_eq!(f("Tomorrow(PropertyName='createdon')"), Operator::Tomorrow);
    assert_eq!(
        f("LastXDays(PropertyName='createdon',PropertyValue=7)"),
        Operator::LastXDays(7)
    );
    assert_eq!(
        f("NextXDays(PropertyName='createdon',PropertyValue=2)"),
        Operator::NextXDays(2)
    );
    assert_eq!(
        f("LastXHours(PropertyName='createdon',PropertyValue=3)"),
        Operator::LastXHours(3)
    );
    assert_eq!(
        f("NextXHours(PropertyName='createdon',PropertyValue=4)"),
        Operator::NextXHours(4)
    );
    assert_eq!(
        f("OlderThanXDays(PropertyName='createdon',PropertyValue=30)"),
        Operator::OlderThanXDays(30)
    );
    assert_eq!(
        f("OlderThanXHours(PropertyName='createdon',PropertyValue=5)"),
        Operator::OlderThanXHours(5)
    );
    assert_eq!(
        f("OlderThanXMinutes(PropertyName='createdon',PropertyValue=15)"),
        Operator::OlderThanXMinutes(15)
    );
    assert_eq!(
        f("On(PropertyName='createdon',PropertyValue='2026-03-01')"),
        Operator::On(day)
    );
    assert_eq!(
        f("OnOrBefore(PropertyName='createdon',PropertyValue=2026-03-01)"),
        Operator::OnOrBefore(day)
    );
    assert_eq!(
        f("OnOrAfter(PropertyName='createdon',PropertyValue='2026-03-01')"),
        Operator::OnOrAfter(day)
    );
    assert_eq!(
        f("In(PropertyName='industrycode',PropertyValues=[\"1\",\"2\"])"),
        Operator::In(vec![Value::OptionSet(1), Value::OptionSet(2)])
    );
    assert_eq!(
        f("NotIn(PropertyName='name',PropertyValues=['a','b'])"),
        Operator::NotIn(vec![s("a"), s("b")])
    );
    assert_eq!(
        f("Between(PropertyName='numberofemployees',PropertyValues=[\"1\",\"10\"])"),
        Operator::Between(Value::Integer(1), Value::Integer(10))
    );
    assert_eq!(
        f("NotBetween(PropertyName='numberofemployees',PropertyValues=[1,10])"),
        Operator::NotBetween(Value::Integer(1), Value::Integer(10))
    );
    assert_eq!(f("EqualUserId(PropertyName='ownerid')"), Operator::EqUserId);
    assert_eq!(f("NotEqualUserId(PropertyName='ownerid')"), Operator::NeUserId);
}

#[test]
fn precedence_is_not_then_and_then_or() {
    let a = || cond("name", Operator::Eq(s("a")));
    let b = || cond("name", Operator::Eq(s("b")));
    let c = || cond("name", Operator::Eq(s("c")));
    assert_eq!(
        filter("name eq 'a' or name eq 'b' and name eq 'c'").unwrap(),
        Filter::Or(vec![a(), Filter::And(vec![b(), c()])])
    );
    assert_eq!(
        filter("(name eq 'a' or name eq 'b') and name eq 'c'").unwrap(),
        Filter::And(vec![Filter::Or(vec![a(), b()]), c()])
    );
    assert_eq!(
        filter("not name eq 'a' and name eq 'b'").unwrap(),
        Filter::And(vec![Filter::Not(Box::new(a())), b()])
    );
    assert_eq!(
        filter("not (name eq 'a' or name eq 'b')").unwrap(),
        Filter::Not(Box::new(Filter::Or(vec![a(), b()])))
    );
}

#[test]
fn validation_errors_name_the_attribute() {
    let cases = [
        ("numberofemployees eq 'abc'", "numberofemployees"),
        ("numberofemployees eq 1.5", "numberofemployees"),
        ("industrycode eq 42", "industrycode"),
        ("creditonhold gt true", "creditonhold"),
        (
            "_primarycontactid_value gt 00000000-0000-0000-0000-000000000001",
            "primarycontactid",
        ),
        ("contains(numberofemployees,'1')", "numberofemployees"),
        ("name eq 5", "name"),
        ("telephone9 eq 'x'", "telephone9"),
        ("accountid eq 'nope'", "accountid"),
        (
            "Microsoft.Dynamics.CRM.Between(PropertyName='revenue',PropertyValues=[1])",
            "revenue",
        ),
    ];
    for (text, attribute) in cases {
        let err = filter(text).unwrap_err().to_string();
        assert!(err.contains(attribute), "{text}: {err}");
    }
}

#[test]
fn syntax_errors_give_a_position() {
    for text in [
        "name eq",
        "name eq 'open",
        "name eq 'a' and",
        "(name eq 'a'",
        "name eq 'a')",
        "name equals 'a'",
        "name eq 'a' name eq 'b'",
        "unknownfn(name,'a')",
        "name eq #",
        "Microsoft.Dynamics.CRM.Someday(PropertyName='createdon')",
        "Microsoft.Dynamics.CRM.Today(PropertyName=createdon)",
        "primarycontactid/fullname eq 'x'",
    ] {
        let err = filter(text).unwrap_err();
        assert!(
            matches!(err, QueryError::Syntax { .. } | QueryError::Unsupported(_)),
            "{text}: {err:?}"
        );
    }
    let deep = format!("{}name eq 'a'{}", "(".repeat(200), ")".repeat(200));
    assert!(matches!(filter(&deep), Err(QueryError::Syntax { .. })));
}

#[test]
fn select_orderby_top_and_count_fill_the_query() {
    let q = query(ODataParams {
        select: Some("name, _primarycontactid_value,revenue".into()),
        orderby: Some("name desc, createdon".into()),
        top: Some("25".into()),
        count: Some("true".into()),
        ..Default::default()
    })
    .unwrap();
    let Columns::List(cols) = &q.columns else { panic!() };
    assert_eq!(
        cols.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        ["name", "primarycontactid", "revenue"]
    );
    assert_eq!(q.order.len(), 2);
    assert!(q.order[0].descending && !q.order[1].descending);
    assert_eq!(q.top, Some(25));
    assert!(q.return_total_count);
    assert_eq!(query(ODataParams::default()).unwrap().columns, Columns::All);
}

#[test]
fn bad_options_are_rejected() {
    let bad = [
        ODataParams {
            select: Some("name,telephone9".into()),
            ..Default::default()
        },
        ODataParams {
            select: Some("name,,revenue".into()),
            ..Default::default()
        },
        ODataParams {
            orderby: Some("name sideways".into()),
            ..Default::default()
        },
        ODataParams {
            top: Some("-1".into()),
            ..Default::default()
        },
        ODataParams {
            count: Some("yes".into()),
            ..Default::default()
        },
        ODataParams {
            expand: Some("primarycontactid".into()),
            ..Default::default()
        },
    ];
    for params in bad {
        assert!(query(params.clone()).is_err(), "{params:?}");
    }
}
