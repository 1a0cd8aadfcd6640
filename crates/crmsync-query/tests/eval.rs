//! The evaluator's SQL semantics: three-valued logic around NULL, NOCASE text, LIKE
//! wildcards and escapes, cross-type numbers, lookups by id, and joined rows.

use crate::common;

use std::str::FromStr;

use chrono::{TimeZone, Utc};
use common::guid;
use crmsync_model::{EntityName, EntityReference, Record, Value};
use crmsync_query::eval::{compare, like};
use crmsync_query::{CompareOp, JoinedRow, Predicate, RecordRow, eval, matches};
use rust_decimal::Decimal;

fn cmp(attribute: &str, op: CompareOp, value: Value) -> Predicate {
    Predicate::Compare {
        alias: None,
        attribute: attribute.parse().unwrap(),
        op,
        value,
    }
}

fn is_null(attribute: &str, negated: bool) -> Predicate {
    Predicate::IsNull {
        alias: None,
        attribute: attribute.parse().unwrap(),
        negated,
    }
}

fn row() -> Record {
    Record::new(guid(1))
        .with("name", Value::String("Contoso Ltd".into()))
        .with("revenue", Value::Decimal(Decimal::from_str("100.50").unwrap()))
        .with("numberofemployees", Value::Integer(10))
        .with("description", Value::Null)
        .with(
            "primarycontactid",
            Value::Lookup(EntityReference {
                entity: EntityName::parse("contact").unwrap(),
                id: guid(2),
            }),
        )
}

const T: Option<bool> = Some(true);
const F: Option<bool> = Some(false);
const U: Option<bool> = None;

/// A predicate with the given three-valued result on `row()`.
fn constant(v: Option<bool>) -> Predicate {
    match v {
        Some(b) => Predicate::Const(b),
        None => cmp("description", CompareOp::Eq, Value::String("x".into())),
    }
}

#[test]
fn and_or_not_follow_sql_three_valued_truth_tables() {
    let r = row();
    let all = [T, F, U];
    for a in all {
        assert_eq!(eval(&Predicate::Not(Box::new(constant(a))), &r), a.map(|b| !b));
        for b in all {
            let and = match (a, b) {
                (F, _) | (_, F) => F,
                (T, T) => T,
                _ => U,
            };
            let or = match (a, b) {
                (T, _) | (_, T) => T,
                (F, F) => F,
                _ => U,
            };
            assert_eq!(
                eval(&Predicate::And(vec![constant(a), constant(b)]), &r),
                and,
                "{a:?} and {b:?}"
            );
            assert_eq!(
                eval(&Predicate::Or(vec![constant(a), constant(b)]), &r),
                or,
                "{a:?} or {b:?}"
            );
        }
    }
    assert_eq!(eval(&Predicate::And(vec![]), &r), T);
    assert_eq!(eval(&Predicate::Or(vec![]), &r), F);
}

#[test]
fn comparisons_with_null_are_unknown_so_ne_does_not_match_null() {
    let r = row();
    for op in [CompareOp::Eq, CompareOp::Ne, CompareOp::Gt, CompareOp::Le] {
        for attribute in ["description", "latitude"] {
            let p = cmp(attribute, op, Value::String("x".into()));
            assert_eq!(eval(&p, &r), U, "{attribute} {op}");
            assert!(!matches(&p, &r));
            assert!(
                !matches(&Predicate::Not(Box::new(p)), &r),
                "NOT unknown does not match"
            );
        }
    }
    assert!(matches(&is_null("description", false), &r), "explicit NULL");
    assert!(
        matches(&is_null("latitude", false), &r),
        "absent attribute is NULL"
    );
    assert!(matches(&is_null("name", true), &r));
    assert!(!matches(&is_null("name", false), &r));
}

#[test]
fn text_compares_case_insensitively_for_ascii_only() {
    let r = row().with("city", Value::String("ÉVRY".into()));
    assert!(matches(
        &cmp("name", CompareOp::Eq, Value::String("CONTOSO ltd".into())),
        &r
    ));
    assert!(matches(
        &cmp("name", CompareOp::Gt, Value::String("contoso a".into())),
        &r
    ));
    assert!(matches(
        &cmp("name", CompareOp::Lt, Value::String("D".into())),
        &r
    ));
    assert!(
        !matches(
            &cmp("name", CompareOp::Eq, Value::String("Contoso Ltd ".into())),
            &r
        ),
        "trailing space"
    );
    assert!(
        !matches(&cmp("city", CompareOp::Eq, Value::String("évry".into())), &r),
        "É is not folded"
    );
    assert!(matches(
        &cmp("city", CompareOp::Eq, Value::String("Évry".into())),
        &r
    ));
}

#[test]
fn like_supports_percent_underscore_and_backslash_escapes() {
    assert!(like("con%", "Contoso"));
    assert!(like("%TOSO", "Contoso"));
    assert!(like("c_ntoso", "Contoso"));
    assert!(like("%", ""));
    assert!(!like("_", ""));
    assert!(like("é_", "éa"), "_ matches one character, not one byte");
    assert!(!like("con", "Contoso"), "the whole text must match");
    assert!(like("50\\%", "50%"));
    assert!(!like("50\\%", "500"));
    assert!(like("a\\_b", "a_b"));
    assert!(!like("a\\_b", "axb"));
    assert!(like("a\\\\b", "a\\b"));
    assert!(like("%a%b%c%", "xxaxxbxxcxx"));
    assert!(!like("%a%b%c%", "xxaxxcxxbxx"));
    assert!(like("[x]", "[X]"), "brackets are not special");
    assert!(like(&"%a".repeat(20), &"a".repeat(40)));
    assert!(!like(&format!("{}b", "%a".repeat(20)), &"a".repeat(200)));
}

#[test]
fn like_on_null_is_unknown_and_negated_like_excludes_null() {
    let r = row();
    let like_p = |attribute: &str, negated| Predicate::Like {
        alias: None,
        attribute: attribute.parse().unwrap(),
        pattern: "%o%".into(),
        negated,
    };
    assert_eq!(eval(&like_p("name", false), &r), T);
    assert_eq!(eval(&like_p("name", true), &r), F);
    assert_eq!(eval(&like_p("description", false), &r), U);
    assert_eq!(eval(&like_p("description", true), &r), U);
}

#[test]
fn in_lists_follow_sql_null_rules() {
    let r = row();
    let in_p = |attribute: &str, values: Vec<Value>, negated| Predicate::In {
        alias: None,
        attribute: attribute.parse().unwrap(),
        values,
        negated,
    };
    let ints = |v: &[i32]| v.iter().map(|i| Value::Integer(*i)).collect::<Vec<_>>();
    assert_eq!(eval(&in_p("numberofemployees", ints(&[1, 10]), false), &r), T);
    assert_eq!(eval(&in_p("numberofemployees", ints(&[1, 2]), false), &r), F);
    assert_eq!(eval(&in_p("numberofemployees", ints(&[1, 2]), true), &r), T);
    assert_eq!(eval(&in_p("description", ints(&[1]), false), &r), U);
    assert_eq!(
        eval(&in_p("description", ints(&[1]), true), &r),
        U,
        "NULL NOT IN (…) is unknown"
    );
    let with_null = vec![Value::Integer(1), Value::Null];
    assert_eq!(eval(&in_p("numberofemployees", with_null.clone(), false), &r), U);
    assert_eq!(eval(&in_p("numberofemployees", with_null, true), &r), U);
    let names = vec![Value::String("CONTOSO LTD".into())];
    assert_eq!(
        eval(&in_p("name", names, false), &r),
        T,
        "IN compares text NOCASE"
    );
}

#[test]
fn numbers_compare_by_value_across_types() {
    let d = |s: &str| Value::Decimal(Decimal::from_str(s).unwrap());
    assert_eq!(
        compare(&Value::Integer(10), &d("10.000")),
        Some(std::cmp::Ordering::Equal)
    );
    assert_eq!(
        compare(&d("100.50"), &d("100.5")),
        Some(std::cmp::Ordering::Equal)
    );
    assert_eq!(
        compare(&Value::BigInt(3), &Value::Double(2.5)),
        Some(std::cmp::Ordering::Greater)
    );
    assert_eq!(
        compare(&Value::OptionSet(2), &Value::Integer(2)),
        Some(std::cmp::Ordering::Equal)
    );
    assert_eq!(
        compare(&Value::String("1".into()), &Value::Integer(1)),
        None,
        "unrelated types"
    );
    let r = row();
    assert!(matches(&cmp("revenue", CompareOp::Ge, d("100.5")), &r));
    assert!(!matches(&cmp("revenue", CompareOp::Gt, d("100.5")), &r));
}

#[test]
fn datetimes_guids_and_lookups_compare_by_value() {
    let when = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let r = row().with("createdon", Value::DateTime(when));
    assert!(matches(
        &cmp(
            "createdon",
            CompareOp::Lt,
            Value::DateTime(when + chrono::TimeDelta::microseconds(1))
        ),
        &r
    ));
    assert!(matches(
        &cmp("createdon", CompareOp::Eq, Value::DateTime(when)),
        &r
    ));
    assert!(
        matches(&cmp("primarycontactid", CompareOp::Eq, Value::Guid(guid(2))), &r),
        "lookup by id"
    );
    assert!(matches(
        &cmp("primarycontactid", CompareOp::Ne, Value::Guid(guid(3))),
        &r
    ));
    assert!(matches(
        &cmp("creditonhold", CompareOp::Ne, Value::Boolean(true)),
        &r.clone().with("creditonhold", Value::Boolean(false))
    ));
}

#[test]
fn record_row_exposes_the_primary_id_and_joined_rows_expose_links() {
    let record = row();
    let plain = cmp("accountid", CompareOp::Eq, Value::Guid(guid(1)));
    assert_eq!(eval(&plain, &record), U, "a bare record has no accountid value");
    let rr = RecordRow::new(&record, "accountid");
    assert!(matches(&plain, &rr));
    let contact = Record::new(guid(2)).with("fullname", Value::String("Ann".into()));
    let joined = JoinedRow {
        main: &rr,
        linked: vec![("pc", &contact)],
    };
    let linked = Predicate::Compare {
        alias: Some("pc".into()),
        attribute: "fullname".parse().unwrap(),
        op: CompareOp::Eq,
        value: Value::String("ann".into()),
    };
    assert!(matches(&linked, &joined));
    let missing_link = Predicate::IsNull {
        alias: Some("other".into()),
        attribute: "fullname".parse().unwrap(),
        negated: false,
    };
    assert!(
        matches(&missing_link, &joined),
        "an unmatched outer link reads as NULL"
    );
    assert!(matches(&plain, &joined));
}
