//! Every FetchXML condition operator parses into its typed operator, with operands coerced
//! to the attribute's type.

use crate::common;

use std::str::FromStr;

use chrono::{NaiveDate, TimeZone, Utc};
use common::{guid, metadata};
use crmsync_model::Value;
use crmsync_query::{Filter, Operator, QueryError, parse_fetchxml};
use rust_decimal::Decimal;

/// Parses `<condition attribute=… operator=… {rest}` on account and returns its operator.
fn op(attribute: &str, operator: &str, rest: &str) -> Result<Operator, QueryError> {
    let xml = format!(
        r#"<fetch><entity name="account"><filter><condition attribute="{attribute}" operator="{operator}" {rest}</filter></entity></fetch>"#
    );
    let q = parse_fetchxml(&xml, &metadata())?;
    match q.filter {
        Some(Filter::And(mut v)) if v.len() == 1 => match v.remove(0) {
            Filter::Condition(c) => Ok(c.operator),
            other => panic!("unexpected {other:?}"),
        },
        other => panic!("unexpected {other:?}"),
    }
}

fn ok(attribute: &str, operator: &str, rest: &str) -> Operator {
    op(attribute, operator, rest).unwrap_or_else(|e| panic!("{operator}: {e}"))
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn comparison_operators_parse_with_typed_operands() {
    assert_eq!(
        ok("name", "eq", r#"value="Contoso"/>"#),
        Operator::Eq(s("Contoso"))
    );
    assert_eq!(ok("name", "ne", r#"value="x"/>"#), Operator::Ne(s("x")));
    assert_eq!(ok("name", "neq", r#"value="x"/>"#), Operator::Ne(s("x")));
    assert_eq!(
        ok("numberofemployees", "gt", r#"value="10"/>"#),
        Operator::Gt(Value::Integer(10))
    );
    assert_eq!(
        ok("numberofemployees", "ge", r#"value="-5"/>"#),
        Operator::Ge(Value::Integer(-5))
    );
    assert_eq!(
        ok("revenue", "lt", r#"value="100.50"/>"#),
        Operator::Lt(Value::Decimal(Decimal::from_str("100.5").unwrap()))
    );
    assert_eq!(
        ok("latitude", "le", r#"value="1.25"/>"#),
        Operator::Le(Value::Double(1.25))
    );
    assert_eq!(
        ok("versionnumber", "gt", r#"value="9000000000"/>"#),
        Operator::Gt(Value::BigInt(9_000_000_000))
    );
    let when = Utc.with_ymd_and_hms(2026, 1, 31, 10, 0, 0).unwrap();
    assert_eq!(
        ok("createdon", "ge", r#"value="2026-01-31T12:00:00+02:00"/>"#),
        Operator::Ge(Value::DateTime(when))
    );
}

#[test]
fn eq_parses_every_attribute_type() {
    assert_eq!(
        ok("creditonhold", "eq", r#"value="1"/>"#),
        Operator::Eq(Value::Boolean(true))
    );
    assert_eq!(
        ok("creditonhold", "eq", r#"value="false"/>"#),
        Operator::Eq(Value::Boolean(false))
    );
    assert_eq!(
        ok("industrycode", "eq", r#"value="2"/>"#),
        Operator::Eq(Value::OptionSet(2))
    );
    assert_eq!(
        ok("statecode", "eq", r#"value="0"/>"#),
        Operator::Eq(Value::OptionSet(0))
    );
    let id = "{00000000-0000-0000-0000-000000000001}";
    assert_eq!(
        ok("accountid", "eq", &format!(r#"value="{id}"/>"#)),
        Operator::Eq(Value::Guid(guid(1)))
    );
    assert_eq!(
        ok("primarycontactid", "eq", &format!(r#"value="{id}"/>"#)),
        Operator::Eq(Value::Guid(guid(1)))
    );
    assert_eq!(
        ok("description", "eq", r#"value="memo"/>"#),
        Operator::Eq(s("memo"))
    );
}

#[test]
fn string_operators_keep_their_text() {
    assert_eq!(
        ok("name", "like", r#"value="Con%o_[%]"/>"#),
        Operator::Like("Con%o_[%]".into())
    );
    assert_eq!(
        ok("name", "not-like", r#"value="%x%"/>"#),
        Operator::NotLike("%x%".into())
    );
    assert_eq!(
        ok("name", "begins-with", r#"value="50%"/>"#),
        Operator::BeginsWith("50%".into())
    );
    assert_eq!(
        ok("name", "not-begin-with", r#"value="a"/>"#),
        Operator::NotBeginWith("a".into())
    );
    assert_eq!(
        ok("name", "ends-with", r#"value="Inc."/>"#),
        Operator::EndsWith("Inc.".into())
    );
    assert_eq!(
        ok("name", "not-end-with", r#"value="Ltd"/>"#),
        Operator::NotEndWith("Ltd".into())
    );
    assert_eq!(
        ok("description", "like", r#"value="%a%"/>"#),
        Operator::Like("%a%".into())
    );
}

#[test]
fn list_and_range_operators_take_value_elements() {
    assert_eq!(
        ok(
            "industrycode",
            "in",
            "><value>1</value><value>3</value></condition>"
        ),
        Operator::In(vec![Value::OptionSet(1), Value::OptionSet(3)])
    );
    assert_eq!(
        ok(
            "name",
            "not-in",
            "><value>a</value><value> b </value></condition>"
        ),
        Operator::NotIn(vec![s("a"), s(" b ")])
    );
    assert_eq!(
        ok(
            "numberofemployees",
            "between",
            "><value>1</value><value>10</value></condition>"
        ),
        Operator::Between(Value::Integer(1), Value::Integer(10))
    );
    assert_eq!(
        ok(
            "numberofemployees",
            "not-between",
            "><value>1</value><value>10</value></condition>"
        ),
        Operator::NotBetween(Value::Integer(1), Value::Integer(10))
    );
    assert_eq!(
        ok(
            "accountid",
            "in",
            r#"value="00000000-0000-0000-0000-000000000002"/>"#
        ),
        Operator::In(vec![Value::Guid(guid(2))])
    );
}

#[test]
fn null_and_user_operators_take_no_value() {
    assert_eq!(ok("name", "null", "/>"), Operator::Null);
    assert_eq!(ok("revenue", "not-null", "/>"), Operator::NotNull);
    assert_eq!(ok("ownerid", "eq-userid", "/>"), Operator::EqUserId);
    assert_eq!(ok("ownerid", "ne-userid", "/>"), Operator::NeUserId);
    assert_eq!(ok("externalid", "eq-userid", "/>"), Operator::EqUserId);
}

#[test]
fn date_operators_parse_dates_and_counts() {
    assert_eq!(
        ok("createdon", "on", r#"value="2026-03-01"/>"#),
        Operator::On(day(2026, 3, 1))
    );
    assert_eq!(
        ok("createdon", "on-or-before", r#"value="2026-03-01T23:00:00Z"/>"#),
        Operator::OnOrBefore(day(2026, 3, 1))
    );
    assert_eq!(
        ok("createdon", "on-or-after", r#"value="2026-03-01"/>"#),
        Operator::OnOrAfter(day(2026, 3, 1))
    );
    assert_eq!(ok("createdon", "today", "/>"), Operator::Today);
    assert_eq!(ok("createdon", "yesterday", "/>"), Operator::Yesterday);
    assert_eq!(ok("createdon", "tomorrow", "/>"), Operator::Tomorrow);
    assert_eq!(
        ok("createdon", "last-x-days", r#"value="7"/>"#),
        Operator::LastXDays(7)
    );
    assert_eq!(
        ok("createdon", "next-x-days", r#"value="3"/>"#),
        Operator::NextXDays(3)
    );
    assert_eq!(
        ok("createdon", "last-x-hours", r#"value="2"/>"#),
        Operator::LastXHours(2)
    );
    assert_eq!(
        ok("createdon", "next-x-hours", r#"value="5"/>"#),
        Operator::NextXHours(5)
    );
    assert_eq!(
        ok("createdon", "olderthan-x-days", r#"value="30"/>"#),
        Operator::OlderThanXDays(30)
    );
    assert_eq!(
        ok("createdon", "olderthan-x-hours", r#"value="4"/>"#),
        Operator::OlderThanXHours(4)
    );
    assert_eq!(
        ok("createdon", "olderthan-x-minutes", r#"value="15"/>"#),
        Operator::OlderThanXMinutes(15)
    );
}

#[test]
fn operators_invalid_for_the_type_are_rejected_naming_the_attribute() {
    let cases = [
        ("numberofemployees", "like", r#"value="1%"/>"#),
        ("creditonhold", "gt", r#"value="1"/>"#),
        (
            "primarycontactid",
            "gt",
            r#"value="00000000-0000-0000-0000-000000000001"/>"#,
        ),
        ("name", "today", "/>"),
        ("name", "eq-userid", "/>"),
        ("revenue", "begins-with", r#"value="1"/>"#),
        ("createdon", "like", r#"value="2026%"/>"#),
    ];
    for (attribute, operator, rest) in cases {
        let err = op(attribute, operator, rest).unwrap_err();
        assert!(
            matches!(err, QueryError::OperatorNotAllowed { .. }),
            "{operator}: {err}"
        );
        let msg = err.to_string();
        assert!(msg.contains(attribute) && msg.contains(operator), "{msg}");
    }
}

#[test]
fn bad_literals_are_rejected_naming_the_attribute_and_value() {
    let cases = [
        ("numberofemployees", "eq", r#"value="abc"/>"#, "abc"),
        ("numberofemployees", "eq", r#"value="1.5"/>"#, "1.5"),
        ("accountid", "eq", r#"value="not-a-guid"/>"#, "not-a-guid"),
        ("industrycode", "eq", r#"value="99"/>"#, "99"),
        ("createdon", "on", r#"value="yesterday"/>"#, "yesterday"),
        ("createdon", "last-x-days", r#"value="-1"/>"#, "-1"),
        ("creditonhold", "eq", r#"value="yes"/>"#, "yes"),
        ("revenue", "gt", r#"value="1,5"/>"#, "1,5"),
        ("latitude", "gt", r#"value="NaN"/>"#, "NaN"),
        ("name", "like", r#"value="[a-c]%"/>"#, "[a-c]%"),
    ];
    for (attribute, operator, rest, shown) in cases {
        let err = op(attribute, operator, rest).unwrap_err();
        assert!(
            matches!(err, QueryError::InvalidValue { .. }),
            "{attribute} {operator}: {err}"
        );
        let msg = err.to_string();
        assert!(msg.contains(attribute) && msg.contains(shown), "{msg}");
    }
}

#[test]
fn wrong_number_of_values_is_rejected() {
    let cases = [
        ("name", "eq", "/>"),
        ("numberofemployees", "between", "><value>1</value></condition>"),
        (
            "numberofemployees",
            "between",
            "><value>1</value><value>2</value><value>3</value></condition>",
        ),
        ("name", "in", "/>"),
        ("name", "null", r#"value="x"/>"#),
        ("name", "eq", "><value>a</value><value>b</value></condition>"),
    ];
    for (attribute, operator, rest) in cases {
        let err = op(attribute, operator, rest).unwrap_err();
        assert!(
            matches!(err, QueryError::WrongValueCount { .. }),
            "{operator}: {err}"
        );
        assert!(err.to_string().contains(attribute));
    }
}

#[test]
fn unknown_and_unsupported_operators_are_named() {
    let err = op("name", "sounds-like", r#"value="x"/>"#).unwrap_err();
    assert_eq!(err, QueryError::UnknownOperator("sounds-like".into()));
    assert!(err.to_string().contains("sounds-like"));
    assert_eq!(
        op("name", "contains", r#"value="x"/>"#).unwrap_err(),
        QueryError::UnknownOperator("contains".into())
    );
}
