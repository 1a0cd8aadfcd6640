//! The operator table shared by both parsers: names, how many operands each takes, which
//! attribute types accept it, and the construction of a typed [`Operator`] from raw operands.
//!
//! Type rules (Dataverse's, narrowed where our storage could not honour them):
//! - `eq`, `ne`, `in`, `not-in`, `null`, `not-null`: every type;
//! - `gt`, `ge`, `lt`, `le`, `between`, `not-between`: text, numbers, date/times, option sets
//!   (compared by value); not booleans, GUIDs or lookups;
//! - `like` and the other string operators: String and Memo only;
//! - `on…`, `today`… and the `x` operators: DateTime only;
//! - `eq-userid`, `ne-userid`: Lookup and Uniqueidentifier only.

use crmsync_model::{AttributeMetadata, AttributeType, Value};

use crate::ast::Operator;
use crate::{QueryError, operand};

/// Largest `x` of the `…-x-days`, `…-x-hours`, `…-x-minutes` operators.
const MAX_DAYS: u32 = 1_000_000;
const MAX_HOURS: u32 = 24_000_000;
const MAX_MINUTES: u32 = 1_440_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpKind {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    NotLike,
    BeginsWith,
    NotBeginWith,
    EndsWith,
    NotEndWith,
    Contains,
    In,
    NotIn,
    Between,
    NotBetween,
    Null,
    NotNull,
    On,
    OnOrBefore,
    OnOrAfter,
    Today,
    Yesterday,
    Tomorrow,
    LastXDays,
    NextXDays,
    LastXHours,
    NextXHours,
    OlderThanXMinutes,
    OlderThanXHours,
    OlderThanXDays,
    EqUserId,
    NeUserId,
}

/// (FetchXML name, kind). `contains` is not a FetchXML operator; it is listed for messages.
const NAMES: [(&str, OpKind); 34] = [
    ("eq", OpKind::Eq),
    ("ne", OpKind::Ne),
    ("gt", OpKind::Gt),
    ("ge", OpKind::Ge),
    ("lt", OpKind::Lt),
    ("le", OpKind::Le),
    ("like", OpKind::Like),
    ("not-like", OpKind::NotLike),
    ("begins-with", OpKind::BeginsWith),
    ("not-begin-with", OpKind::NotBeginWith),
    ("ends-with", OpKind::EndsWith),
    ("not-end-with", OpKind::NotEndWith),
    ("contains", OpKind::Contains),
    ("in", OpKind::In),
    ("not-in", OpKind::NotIn),
    ("between", OpKind::Between),
    ("not-between", OpKind::NotBetween),
    ("null", OpKind::Null),
    ("not-null", OpKind::NotNull),
    ("on", OpKind::On),
    ("on-or-before", OpKind::OnOrBefore),
    ("on-or-after", OpKind::OnOrAfter),
    ("today", OpKind::Today),
    ("yesterday", OpKind::Yesterday),
    ("tomorrow", OpKind::Tomorrow),
    ("last-x-days", OpKind::LastXDays),
    ("next-x-days", OpKind::NextXDays),
    ("last-x-hours", OpKind::LastXHours),
    ("next-x-hours", OpKind::NextXHours),
    ("olderthan-x-minutes", OpKind::OlderThanXMinutes),
    ("olderthan-x-hours", OpKind::OlderThanXHours),
    ("olderthan-x-days", OpKind::OlderThanXDays),
    ("eq-userid", OpKind::EqUserId),
    ("ne-userid", OpKind::NeUserId),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Category {
    Text,
    Number,
    Boolean,
    DateTime,
    Guid,
    Lookup,
    Option,
}

fn category(ty: &AttributeType) -> Category {
    use AttributeType as T;
    match ty {
        T::String { .. } | T::Memo { .. } => Category::Text,
        T::Integer { .. } | T::BigInt | T::Decimal { .. } | T::Money { .. } | T::Double => Category::Number,
        T::Boolean => Category::Boolean,
        T::DateTime => Category::DateTime,
        T::Uniqueidentifier => Category::Guid,
        T::Lookup { .. } => Category::Lookup,
        T::Picklist { .. } | T::State { .. } | T::Status { .. } => Category::Option,
    }
}

impl OpKind {
    /// Parses a FetchXML operator name (`neq` is Dataverse's alias of `ne`). `contains` is
    /// refused: in FetchXML it means full-text search, which crmsync does not offer.
    pub(crate) fn from_fetchxml(name: &str) -> Option<OpKind> {
        match name {
            "neq" => Some(OpKind::Ne),
            "contains" => None,
            _ => NAMES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    pub(crate) fn of(op: &Operator) -> OpKind {
        use Operator as O;
        match op {
            O::Eq(_) => OpKind::Eq,
            O::Ne(_) => OpKind::Ne,
            O::Gt(_) => OpKind::Gt,
            O::Ge(_) => OpKind::Ge,
            O::Lt(_) => OpKind::Lt,
            O::Le(_) => OpKind::Le,
            O::Like(_) => OpKind::Like,
            O::NotLike(_) => OpKind::NotLike,
            O::BeginsWith(_) => OpKind::BeginsWith,
            O::NotBeginWith(_) => OpKind::NotBeginWith,
            O::EndsWith(_) => OpKind::EndsWith,
            O::NotEndWith(_) => OpKind::NotEndWith,
            O::Contains(_) => OpKind::Contains,
            O::In(_) => OpKind::In,
            O::NotIn(_) => OpKind::NotIn,
            O::Between(..) => OpKind::Between,
            O::NotBetween(..) => OpKind::NotBetween,
            O::Null => OpKind::Null,
            O::NotNull => OpKind::NotNull,
            O::On(_) => OpKind::On,
            O::OnOrBefore(_) => OpKind::OnOrBefore,
            O::OnOrAfter(_) => OpKind::OnOrAfter,
            O::Today => OpKind::Today,
            O::Yesterday => OpKind::Yesterday,
            O::Tomorrow => OpKind::Tomorrow,
            O::LastXDays(_) => OpKind::LastXDays,
            O::NextXDays(_) => OpKind::NextXDays,
            O::LastXHours(_) => OpKind::LastXHours,
            O::NextXHours(_) => OpKind::NextXHours,
            O::OlderThanXMinutes(_) => OpKind::OlderThanXMinutes,
            O::OlderThanXHours(_) => OpKind::OlderThanXHours,
            O::OlderThanXDays(_) => OpKind::OlderThanXDays,
            O::EqUserId => OpKind::EqUserId,
            O::NeUserId => OpKind::NeUserId,
        }
    }

    fn allows(self, c: Category) -> bool {
        use Category as C;
        use OpKind as K;
        match self {
            K::Eq | K::Ne | K::In | K::NotIn | K::Null | K::NotNull => true,
            K::Gt | K::Ge | K::Lt | K::Le | K::Between | K::NotBetween => {
                matches!(c, C::Text | C::Number | C::DateTime | C::Option)
            }
            K::Like | K::NotLike | K::BeginsWith | K::NotBeginWith | K::EndsWith | K::NotEndWith => {
                c == C::Text
            }
            K::Contains => c == C::Text,
            K::EqUserId | K::NeUserId => matches!(c, C::Lookup | C::Guid),
            _ => c == C::DateTime,
        }
    }

    /// (smallest, largest) number of operands.
    fn arity(self) -> (usize, usize, &'static str) {
        use OpKind as K;
        match self {
            K::Null | K::NotNull | K::Today | K::Yesterday | K::Tomorrow | K::EqUserId | K::NeUserId => {
                (0, 0, "no value")
            }
            K::In | K::NotIn => (1, usize::MAX, "at least one value"),
            K::Between | K::NotBetween => (2, 2, "exactly two values"),
            _ => (1, 1, "exactly one value"),
        }
    }
}

/// How many values an operator takes, for editors that build conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperandCount {
    None,
    One,
    /// `between` and `not-between`.
    Two,
    /// `in` and `not-in`: one or more.
    Many,
}

/// The FetchXML operators an attribute of type `ty` accepts, in the table's order, with how
/// many values each takes. The same table the parser checks conditions against.
pub fn fetchxml_operators(ty: &AttributeType) -> Vec<(&'static str, OperandCount)> {
    let c = category(ty);
    NAMES
        .iter()
        .filter(|(name, kind)| *name != "contains" && kind.allows(c))
        .map(|(name, kind)| {
            let count = match kind.arity() {
                (0, 0, _) => OperandCount::None,
                (2, 2, _) => OperandCount::Two,
                (_, usize::MAX, _) => OperandCount::Many,
                _ => OperandCount::One,
            };
            (*name, count)
        })
        .collect()
}

/// Checks `kind` against the attribute's type and the number of operands, coerces the
/// operands, and builds the typed operator.
pub(crate) fn build(
    kind: OpKind,
    attribute: &AttributeMetadata,
    operands: Vec<Value>,
) -> Result<Operator, QueryError> {
    let name = attribute.logical_name.as_str();
    let ty = &attribute.attribute_type;
    if !kind.allows(category(ty)) {
        return Err(QueryError::OperatorNotAllowed {
            operator: kind.name().to_owned(),
            attribute: name.to_owned(),
            attribute_type: ty.type_name(),
        });
    }
    let (min, max, expected) = kind.arity();
    if operands.len() < min || operands.len() > max {
        return Err(QueryError::WrongValueCount {
            operator: kind.name().to_owned(),
            attribute: name.to_owned(),
            expected,
            got: operands.len(),
        });
    }
    if matches!(kind, OpKind::In | OpKind::NotIn) {
        let values = operands
            .into_iter()
            .map(|v| operand::coerce(attribute, v))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if kind == OpKind::In {
            Operator::In(values)
        } else {
            Operator::NotIn(values)
        });
    }
    let mut it = operands.into_iter();
    let mut one = || it.next().unwrap_or(Value::Null);
    build_checked(kind, attribute, &mut one)
}

fn build_checked(
    kind: OpKind,
    attribute: &AttributeMetadata,
    next: &mut dyn FnMut() -> Value,
) -> Result<Operator, QueryError> {
    use OpKind as K;
    use Operator as O;
    let name = attribute.logical_name.as_str();
    let mut typed = || operand::coerce(attribute, next());
    Ok(match kind {
        K::Eq => O::Eq(typed()?),
        K::Ne => O::Ne(typed()?),
        K::Gt => O::Gt(typed()?),
        K::Ge => O::Ge(typed()?),
        K::Lt => O::Lt(typed()?),
        K::Le => O::Le(typed()?),
        K::Between => O::Between(typed()?, typed()?),
        K::NotBetween => O::NotBetween(typed()?, typed()?),
        K::Null => O::Null,
        K::NotNull => O::NotNull,
        K::Today => O::Today,
        K::Yesterday => O::Yesterday,
        K::Tomorrow => O::Tomorrow,
        K::EqUserId => O::EqUserId,
        K::NeUserId => O::NeUserId,
        _ => return build_single_raw(kind, name, next()),
    })
}

fn text(name: &str, v: Value) -> Result<String, QueryError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(QueryError::invalid_value(
            name,
            &operand::display(&other),
            "expected text",
        )),
    }
}

fn build_single_raw(kind: OpKind, name: &str, v: Value) -> Result<Operator, QueryError> {
    use OpKind as K;
    use Operator as O;
    Ok(match kind {
        K::Like => O::Like(like_pattern(name, text(name, v)?)?),
        K::NotLike => O::NotLike(like_pattern(name, text(name, v)?)?),
        K::BeginsWith => O::BeginsWith(text(name, v)?),
        K::NotBeginWith => O::NotBeginWith(text(name, v)?),
        K::EndsWith => O::EndsWith(text(name, v)?),
        K::NotEndWith => O::NotEndWith(text(name, v)?),
        K::Contains => O::Contains(text(name, v)?),
        K::On => O::On(operand::date(name, &v)?),
        K::OnOrBefore => O::OnOrBefore(operand::date(name, &v)?),
        K::OnOrAfter => O::OnOrAfter(operand::date(name, &v)?),
        K::LastXDays => O::LastXDays(operand::count(name, &v, MAX_DAYS)?),
        K::NextXDays => O::NextXDays(operand::count(name, &v, MAX_DAYS)?),
        K::OlderThanXDays => O::OlderThanXDays(operand::count(name, &v, MAX_DAYS)?),
        K::LastXHours => O::LastXHours(operand::count(name, &v, MAX_HOURS)?),
        K::NextXHours => O::NextXHours(operand::count(name, &v, MAX_HOURS)?),
        K::OlderThanXHours => O::OlderThanXHours(operand::count(name, &v, MAX_HOURS)?),
        K::OlderThanXMinutes => O::OlderThanXMinutes(operand::count(name, &v, MAX_MINUTES)?),
        other => {
            return Err(QueryError::Unsupported(format!(
                "operator '{}' here",
                other.name()
            )));
        }
    })
}

/// Accepts a Dataverse `LIKE` pattern whose brackets hold exactly one character (`[%]`,
/// `[_]`, `[[]`): sets and ranges (`[a-c]`, `[^x]`) have no portable equivalent.
pub(crate) fn like_pattern(attribute: &str, pattern: String) -> Result<String, QueryError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '[' {
            let ok = chars.get(i + 2) == Some(&']') && chars.get(i + 1).is_some_and(|c| *c != '^');
            if !ok {
                return Err(QueryError::invalid_value(
                    attribute,
                    &pattern,
                    "character sets and ranges such as [a-z] are not supported in like patterns; \
                     write [x] to match the character x literally",
                ));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(pattern)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crmsync_model::OptionSet;

    fn names(ty: &AttributeType) -> Vec<&'static str> {
        fetchxml_operators(ty).into_iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn editors_are_offered_only_operators_the_parser_accepts_for_the_type() {
        let text = names(&AttributeType::String { max_length: 100 });
        assert!(text.contains(&"like") && text.contains(&"begins-with"));
        assert!(!text.contains(&"contains") && !text.contains(&"today"));
        let boolean = names(&AttributeType::Boolean);
        assert_eq!(boolean, ["eq", "ne", "in", "not-in", "null", "not-null"]);
        let date = fetchxml_operators(&AttributeType::DateTime);
        assert!(date.contains(&("last-x-days", OperandCount::One)));
        assert!(date.contains(&("today", OperandCount::None)));
        assert!(date.contains(&("between", OperandCount::Two)));
        let picklist = fetchxml_operators(&AttributeType::Picklist {
            options: OptionSet::new([(1, "A")]),
        });
        assert!(picklist.contains(&("in", OperandCount::Many)));
        assert!(!picklist.iter().any(|(n, _)| *n == "like"));
    }
}
