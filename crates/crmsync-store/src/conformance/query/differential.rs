//! The differential test: random filters over random rows, where the SQL of the backend must
//! return exactly the rows for which `crmsync_query::eval::matches` holds.
//!
//! Filters are generated as `Filter` trees (operators with typed operands) and lowered once:
//! the store renders the very `Predicate` that eval evaluates, and the generated operators
//! reach every predicate variant (comparisons, `LIKE` with wildcards and escapes, `IN`,
//! `IS NULL`, constants from `eq-userid` without a user, nested AND/OR/NOT). Operands include
//! cases validation never produces (empty lists, values of another numeric type or of an
//! unrelated type), to hold SQL to eval's three-valued rules there too. One org of 200 rows
//! serves all cases, so 64 cases stay fast.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::Duration;
use crmsync_model::{
    AttributeMetadata, AttributeName, AttributeType, EntityMetadata, EntityReference, MetadataChange,
    OptionSet, RecordBatch, RecordId, Value,
};
use crmsync_query::{Columns, Condition, EvalContext, Filter, Operator, Query, RecordRow, lower, matches};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestRunner};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

use super::{all_rows_at, ids_of, now, stored};
use crate::conformance::{TestBackend, admin, entity_name, org};
use crate::{UpsertMode, WriteSet};

const ROWS: usize = 200;
const TEXTS: [&str; 24] = [
    "a",
    "A",
    "ab",
    "Ab",
    "AB",
    "b%",
    "B_",
    "_",
    "%",
    "it's",
    "\"q\"",
    "a\\b",
    "",
    " a",
    "a ",
    "abc",
    "ABC",
    "x%y",
    "x_y",
    "Zed",
    "zed\\",
    "é",
    "É",
    "bob\"e'); DROP TABLE x;--",
];
const PATTERNS: [&str; 14] = [
    "a%", "%b", "_", "%[%]%", "A_", "%'%", "a\\b", "%\\", "%", "_b%", "%[_]%", "é%", "", "%_%_%",
];
const PIECES: [&str; 8] = ["a", "A", "%", "_", "\\", "'", "b_", "x%"];
const DECIMALS: [&str; 9] = [
    "-1.5", "0", "0.1", "1", "1.5", "2.25", "100", "-0.0001", "99.9999",
];
const HOURS: [i64; 7] = [-720, -24, -1, 0, 1, 24, 720];

#[derive(Clone, Copy, Debug)]
enum Attr {
    Label,
    Num,
    Amount,
    At,
    Flag,
    Owner,
    Tier,
    Id,
}

impl Attr {
    const ALL: [Attr; 8] = [
        Attr::Label,
        Attr::Num,
        Attr::Amount,
        Attr::At,
        Attr::Flag,
        Attr::Owner,
        Attr::Tier,
        Attr::Id,
    ];

    fn name(self) -> AttributeName {
        let n = match self {
            Attr::Label => "label",
            Attr::Num => "num",
            Attr::Amount => "amount",
            Attr::At => "at",
            Attr::Flag => "flag",
            Attr::Owner => "owner",
            Attr::Tier => "tier",
            Attr::Id => "probeid",
        };
        AttributeName::parse(n).unwrap()
    }
}

fn probe() -> EntityMetadata {
    let attr = |n: &str, t| AttributeMetadata::new(n, t).unwrap();
    let mut e = EntityMetadata::new("probe", "probes", "label").unwrap();
    for a in [
        attr("num", AttributeType::Integer { min: -100, max: 100 }),
        attr("amount", AttributeType::Decimal { precision: 4 }),
        attr("at", AttributeType::DateTime),
        attr("flag", AttributeType::Boolean),
        attr(
            "owner",
            AttributeType::Lookup {
                targets: vec![entity_name("probe")],
            },
        ),
        attr(
            "tier",
            AttributeType::Picklist {
                options: OptionSet::new([(1, "Bronze"), (2, "Silver"), (3, "Gold")]),
            },
        ),
    ] {
        e = e.with_attribute(a).unwrap();
    }
    e
}

fn decimal(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// 200 rows of random values from small pools (so that equal values are frequent), about
/// one value in five NULL.
fn random_rows(ids: &[RecordId]) -> RecordBatch {
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    let columns = ["label", "num", "amount", "at", "flag", "owner", "tier"];
    let mut batch = RecordBatch::new(columns.iter().map(|c| AttributeName::parse(c).unwrap()).collect());
    for id in ids {
        let values = (0..columns.len())
            .map(|c| {
                if rng.random_bool(0.2) {
                    return Value::Null;
                }
                match c {
                    0 => Value::String(TEXTS[rng.random_range(0..TEXTS.len())].into()),
                    1 => Value::Integer(rng.random_range(-3..=3)),
                    2 => Value::Decimal(decimal(DECIMALS[rng.random_range(0..DECIMALS.len())])),
                    3 => Value::DateTime(now() + Duration::hours(HOURS[rng.random_range(0..HOURS.len())])),
                    4 => Value::Boolean(rng.random_bool(0.5)),
                    5 => Value::Lookup(EntityReference {
                        entity: entity_name("probe"),
                        id: ids[rng.random_range(0..8)],
                    }),
                    _ => Value::OptionSet(rng.random_range(1..=3)),
                }
            })
            .collect();
        batch.push(*id, values);
    }
    batch
}

fn value(attr: Attr, ids: &[RecordId]) -> BoxedStrategy<Value> {
    let ids: Vec<RecordId> = ids[..10].to_vec();
    match attr {
        Attr::Label => select(TEXTS.to_vec())
            .prop_map(|s| Value::String(s.into()))
            .boxed(),
        Attr::Num => prop_oneof![
            6 => (-4..=4i32).prop_map(Value::Integer),
            1 => select(DECIMALS.to_vec()).prop_map(|d| Value::Decimal(decimal(d))),
            1 => Just(Value::String("3".into())),
        ]
        .boxed(),
        Attr::Amount => prop_oneof![
            6 => select(DECIMALS.to_vec()).prop_map(|d| Value::Decimal(decimal(d))),
            1 => (-2..=2i32).prop_map(Value::Integer),
        ]
        .boxed(),
        Attr::At => select(HOURS.to_vec())
            .prop_map(|h| Value::DateTime(now() + Duration::hours(h)))
            .boxed(),
        Attr::Flag => {
            prop_oneof![6 => any::<bool>().prop_map(Value::Boolean), 1 => Just(Value::Integer(1))].boxed()
        }
        Attr::Owner | Attr::Id => prop_oneof![
            6 => select(ids).prop_map(Value::Guid),
            1 => Just(Value::Guid(RecordId::new_random())),
        ]
        .boxed(),
        Attr::Tier => (0..=4i32).prop_map(Value::OptionSet).boxed(),
    }
}

fn condition(attr: Attr, operator: Operator) -> Filter {
    Filter::Condition(Condition {
        alias: None,
        attribute: attr.name(),
        operator,
    })
}

fn leaf(ids: Vec<RecordId>) -> BoxedStrategy<Filter> {
    let attribute = select(Attr::ALL.to_vec());
    let i = ids.clone();
    let compare = attribute
        .clone()
        .prop_flat_map(move |a| (Just(a), 0..6usize, value(a, &i)))
        .prop_map(|(a, op, v)| {
            let operator = match op {
                0 => Operator::Eq(v),
                1 => Operator::Ne(v),
                2 => Operator::Gt(v),
                3 => Operator::Ge(v),
                4 => Operator::Lt(v),
                _ => Operator::Le(v),
            };
            condition(a, operator)
        });
    let i = ids.clone();
    let list = attribute
        .clone()
        .prop_flat_map(move |a| (Just(a), prop::collection::vec(value(a, &i), 0..4), any::<bool>()))
        .prop_map(|(a, vs, negated)| {
            condition(
                a,
                if negated {
                    Operator::NotIn(vs)
                } else {
                    Operator::In(vs)
                },
            )
        });
    let i = ids;
    let range = attribute
        .clone()
        .prop_flat_map(move |a| (Just(a), value(a, &i), value(a, &i), any::<bool>()))
        .prop_map(|(a, x, y, not)| {
            condition(
                a,
                if not {
                    Operator::NotBetween(x, y)
                } else {
                    Operator::Between(x, y)
                },
            )
        });
    let null = (attribute, any::<bool>())
        .prop_map(|(a, not)| condition(a, if not { Operator::NotNull } else { Operator::Null }));
    let text = (0..7usize, select(PATTERNS.to_vec()), select(PIECES.to_vec())).prop_map(|(k, p, s)| {
        let operator = match k {
            0 => Operator::Like(p.into()),
            1 => Operator::NotLike(p.into()),
            2 => Operator::BeginsWith(s.into()),
            3 => Operator::NotBeginWith(s.into()),
            4 => Operator::EndsWith(s.into()),
            5 => Operator::NotEndWith(s.into()),
            _ => Operator::Contains(s.into()),
        };
        condition(Attr::Label, operator)
    });
    prop_oneof![
        4 => compare,
        2 => list,
        1 => range,
        1 => null,
        3 => text,
        1 => Just(condition(Attr::Owner, Operator::EqUserId)),
    ]
    .boxed()
}

fn filters(ids: Vec<RecordId>) -> impl Strategy<Value = Filter> {
    leaf(ids).prop_recursive(3, 24, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

pub async fn query_sql_matches_eval_for_random_filters(b: &impl TestBackend) {
    let catalog = b.catalog().await;
    catalog.create_org(&org("diff"), admin()).await.unwrap();
    let store = catalog.open_org(&org("diff")).await.unwrap();
    store
        .apply_metadata(&[MetadataChange::CreateEntity { entity: probe() }])
        .await
        .unwrap();
    let ids: Vec<RecordId> = (0..ROWS).map(|_| RecordId::new_random()).collect();
    store
        .write(WriteSet::new().upsert(entity_name("probe"), random_rows(&ids), UpsertMode::CreateOnly))
        .await
        .unwrap();
    let records = stored(&*store, "probe").await;
    assert_eq!(records.len(), ROWS);
    // No current user: eq-userid lowers to a constant.
    let context = EvalContext::new(now());
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = tokio::task::block_in_place(|| {
        let result = runner.run(&filters(ids), |filter| {
            let mut query = Query::new(entity_name("probe"));
            query.columns = Columns::List(Vec::new());
            query.filter = Some(filter);
            let predicate = lower(query.filter.as_ref().unwrap(), &context);
            let expected: BTreeSet<RecordId> = records
                .iter()
                .filter(|r| matches(&predicate, &RecordRow::new(r, "probeid")))
                .map(|r| r.id.unwrap())
                .collect();
            let rows = handle.block_on(all_rows_at(&*store, &query, &context, 64));
            let got = ids_of(&rows);
            let set: BTreeSet<RecordId> = got.iter().copied().collect();
            prop_assert_eq!(set.len(), got.len(), "no row twice");
            prop_assert_eq!(set, expected, "predicate {:?}", predicate);
            Ok(())
        });
        result.map_err(|e| e.to_string())
    });
    if let Err(e) = outcome {
        panic!("SQL and eval disagree: {e}");
    }
}
