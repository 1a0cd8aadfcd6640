//! Lowering resolves every relative operator against a fixed `now` (Monday 2026-08-17
//! 13:00 UTC) and turns string operators into escaped LIKE patterns.

use crate::common;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use common::guid;
use crmsync_model::Value;
use crmsync_query::{CompareOp, Condition, EvalContext, Filter, Operator, Predicate, lower};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, 17, 13, 0, 0).unwrap()
}

fn t(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 8, d, h, 0, 0).unwrap()
}

fn lowered(attribute: &str, operator: Operator) -> Predicate {
    let f = Filter::Condition(Condition {
        alias: Some("x".into()),
        attribute: attribute.parse().unwrap(),
        operator,
    });
    lower(&f, &EvalContext::new(now()).with_user(guid(7)))
}

fn cmp(op: CompareOp, at: DateTime<Utc>) -> Predicate {
    Predicate::Compare {
        alias: Some("x".into()),
        attribute: "createdon".parse().unwrap(),
        op,
        value: Value::DateTime(at),
    }
}

fn range(lo: (CompareOp, DateTime<Utc>), hi: (CompareOp, DateTime<Utc>)) -> Predicate {
    Predicate::And(vec![cmp(lo.0, lo.1), cmp(hi.0, hi.1)])
}

fn date(op: Operator) -> Predicate {
    lowered("createdon", op)
}

use CompareOp::{Ge, Gt, Le, Lt};

#[test]
fn whole_day_operators_cover_utc_days() {
    assert_eq!(date(Operator::Today), range((Ge, t(17, 0)), (Lt, t(18, 0))));
    assert_eq!(date(Operator::Yesterday), range((Ge, t(16, 0)), (Lt, t(17, 0))));
    assert_eq!(date(Operator::Tomorrow), range((Ge, t(18, 0)), (Lt, t(19, 0))));
    let d = NaiveDate::from_ymd_opt(2026, 8, 3).unwrap();
    assert_eq!(date(Operator::On(d)), range((Ge, t(3, 0)), (Lt, t(4, 0))));
    assert_eq!(date(Operator::OnOrBefore(d)), cmp(Lt, t(4, 0)));
    assert_eq!(date(Operator::OnOrAfter(d)), cmp(Ge, t(3, 0)));
}

#[test]
fn last_x_days_runs_from_midnight_x_days_ago_to_now() {
    assert_eq!(date(Operator::LastXDays(4)), range((Ge, t(13, 0)), (Le, now())));
    assert_eq!(date(Operator::LastXDays(0)), range((Ge, t(17, 0)), (Le, now())));
}

#[test]
fn next_x_days_runs_from_now_to_the_end_of_the_xth_day() {
    assert_eq!(date(Operator::NextXDays(4)), range((Ge, now()), (Lt, t(22, 0))));
}

#[test]
fn hour_operators_count_from_the_current_instant() {
    assert_eq!(date(Operator::LastXHours(3)), range((Ge, t(17, 10)), (Le, now())));
    assert_eq!(date(Operator::NextXHours(3)), range((Ge, now()), (Le, t(17, 16))));
}

#[test]
fn older_than_operators_are_strictly_before_now_minus_x() {
    assert_eq!(date(Operator::OlderThanXDays(2)), cmp(Lt, t(15, 13)));
    assert_eq!(date(Operator::OlderThanXHours(5)), cmp(Lt, t(17, 8)));
    let fifteen_min = Utc.with_ymd_and_hms(2026, 8, 17, 12, 45, 0).unwrap();
    assert_eq!(date(Operator::OlderThanXMinutes(15)), cmp(Lt, fifteen_min));
}

#[test]
fn huge_counts_saturate_instead_of_overflowing() {
    let p = date(Operator::OlderThanXMinutes(u32::MAX));
    assert!(matches!(p, Predicate::Compare { op: Lt, .. }));
    let p = date(Operator::NextXDays(1_000_000));
    assert!(matches!(p, Predicate::And(_)));
}

#[test]
fn between_becomes_an_inclusive_range_and_not_between_its_complement() {
    let n = |op, v| Predicate::Compare {
        alias: Some("x".into()),
        attribute: "numberofemployees".parse().unwrap(),
        op,
        value: Value::Integer(v),
    };
    assert_eq!(
        lowered(
            "numberofemployees",
            Operator::Between(Value::Integer(1), Value::Integer(9))
        ),
        Predicate::And(vec![n(Ge, 1), n(Le, 9)])
    );
    assert_eq!(
        lowered(
            "numberofemployees",
            Operator::NotBetween(Value::Integer(1), Value::Integer(9))
        ),
        Predicate::Or(vec![n(Lt, 1), n(Gt, 9)])
    );
}

fn pattern(op: Operator) -> (String, bool) {
    match lowered("name", op) {
        Predicate::Like { pattern, negated, .. } => (pattern, negated),
        other => panic!("{other:?}"),
    }
}

#[test]
fn string_operators_escape_wildcards_in_their_operand() {
    assert_eq!(
        pattern(Operator::BeginsWith("50%_a\\[".into())),
        ("50\\%\\_a\\\\[%".into(), false)
    );
    assert_eq!(pattern(Operator::NotBeginWith("a".into())), ("a%".into(), true));
    assert_eq!(pattern(Operator::EndsWith("_x".into())), ("%\\_x".into(), false));
    assert_eq!(pattern(Operator::NotEndWith("x".into())), ("%x".into(), true));
    assert_eq!(
        pattern(Operator::Contains("100%".into())),
        ("%100\\%%".into(), false)
    );
}

#[test]
fn like_patterns_translate_dataverse_brackets_to_escapes() {
    assert_eq!(pattern(Operator::Like("a[%]b%".into())), ("a\\%b%".into(), false));
    assert_eq!(
        pattern(Operator::NotLike("[[]x_\\".into())),
        ("[x_\\\\".into(), true)
    );
}

#[test]
fn user_operators_compare_with_the_current_user_or_match_nothing_without_one() {
    let expected = |op| Predicate::Compare {
        alias: Some("x".into()),
        attribute: "ownerid".parse().unwrap(),
        op,
        value: Value::Guid(guid(7)),
    };
    assert_eq!(lowered("ownerid", Operator::EqUserId), expected(CompareOp::Eq));
    assert_eq!(lowered("ownerid", Operator::NeUserId), expected(CompareOp::Ne));
    let f = Filter::Condition(Condition {
        alias: None,
        attribute: "ownerid".parse().unwrap(),
        operator: Operator::EqUserId,
    });
    assert_eq!(lower(&f, &EvalContext::new(now())), Predicate::Const(false));
}

#[test]
fn lists_nulls_and_logic_map_directly() {
    let f = Filter::Or(vec![
        Filter::Not(Box::new(Filter::Condition(Condition {
            alias: None,
            attribute: "name".parse().unwrap(),
            operator: Operator::Null,
        }))),
        Filter::Condition(Condition {
            alias: None,
            attribute: "industrycode".parse().unwrap(),
            operator: Operator::NotIn(vec![Value::OptionSet(1)]),
        }),
    ]);
    let p = lower(&f, &EvalContext::new(now()));
    assert_eq!(
        p,
        Predicate::Or(vec![
            Predicate::Not(Box::new(Predicate::IsNull {
                alias: None,
                attribute: "name".parse().unwrap(),
                negated: false
            })),
            Predicate::In {
                alias: None,
                attribute: "industrycode".parse().unwrap(),
                values: vec![Value::OptionSet(1)],
                negated: true
            },
        ])
    );
}
