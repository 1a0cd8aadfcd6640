//! Recursive-descent parser of `$filter`, producing a validated [`Filter`].
//!
//! Grammar (precedence `not` > `and` > `or`; `and`/`or` associate left):
//!
//! ```text
//! or    := and ("or" and)*
//! and   := unary ("and" unary)*
//! unary := "not" unary | "(" or ")" | call | operand cmp operand
//! call  := ("contains" | "startswith" | "endswith") "(" property "," string ")"
//!        | "Microsoft.Dynamics.CRM." Name "(" PropertyName=… [, PropertyValue=… | PropertyValues=[…]] ")"
//! cmp   := eq | ne | gt | ge | lt | le
//! ```
//!
//! A comparison has one property and one literal, in either order (`5 lt x` reads as
//! `x gt 5`). `x eq null` is the `null` operator and `x ne null` the `not-null` one. The
//! Dataverse query functions (`Today`, `LastXDays`, `In`, `Between`, `EqualUserId`…) give OData
//! access to every FetchXML operator.

use crmsync_model::{AttributeMetadata, EntityMetadata, Value};

use super::lexer::{Spanned, Tok, syntax, tokenize};
use super::literal;
use crate::QueryError;
use crate::ast::{Condition, Filter};
use crate::operators::{self, OpKind};

/// Nesting limit of parentheses and `not`, so that hostile input cannot exhaust the stack.
const MAX_NESTING: usize = 64;

pub(crate) fn parse_filter(input: &str, entity: &EntityMetadata) -> Result<Filter, QueryError> {
    let tokens = tokenize(input)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        end: input.chars().count(),
        entity,
        depth: 0,
    };
    let filter = p.or()?;
    match p.tokens.get(p.pos) {
        None => Ok(filter),
        Some((tok, at)) => Err(syntax(*at, format!("unexpected {}", describe(tok)))),
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Str(s) => format!("text '{s}'"),
        Tok::Number(s) | Tok::Guid(s) | Tok::DateTime(s) => format!("value {s}"),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::LBracket => "'['".into(),
        Tok::RBracket => "']'".into(),
        Tok::Comma => "','".into(),
        Tok::Equals => "'='".into(),
    }
}

struct Parser<'m> {
    tokens: Vec<Spanned>,
    pos: usize,
    end: usize,
    entity: &'m EntityMetadata,
    depth: usize,
}

impl<'m> Parser<'m> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(_, at)| *at)
    }

    fn next(&mut self) -> Result<(Tok, usize), QueryError> {
        let t = self
            .tokens
            .get(self.pos)
            .cloned()
            .ok_or_else(|| syntax(self.end, "the expression ends too early"))?;
        self.pos += 1;
        Ok(t)
    }

    fn expect(&mut self, want: Tok) -> Result<(), QueryError> {
        let (tok, at) = self.next()?;
        if tok == want {
            Ok(())
        } else {
            Err(syntax(
                at,
                format!("expected {}, found {}", describe(&want), describe(&tok)),
            ))
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s == word)
    }

    fn or(&mut self) -> Result<Filter, QueryError> {
        let mut parts = vec![self.and()?];
        while self.keyword("or") {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Filter, QueryError> {
        let mut parts = vec![self.unary()?];
        while self.keyword("and") {
            self.pos += 1;
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Filter, QueryError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(syntax(
                self.at(),
                format!("nested more than {MAX_NESTING} levels deep"),
            ));
        }
        let result = self.unary_inner();
        self.depth -= 1;
        result
    }

    fn unary_inner(&mut self) -> Result<Filter, QueryError> {
        if self.keyword("not") && !self.next_is_comparison(1) {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let inner = self.or()?;
            self.expect(Tok::RParen)?;
            return Ok(inner);
        }
        if matches!(self.peek(), Some(Tok::Ident(_)))
            && self.tokens.get(self.pos + 1).map(|t| &t.0) == Some(&Tok::LParen)
        {
            return self.call();
        }
        self.comparison()
    }

    /// True if the token `offset` ahead is a comparison operator (so `not` is a property).
    fn next_is_comparison(&self, offset: usize) -> bool {
        matches!(self.tokens.get(self.pos + offset), Some((Tok::Ident(s), _)) if cmp_kind(s).is_some())
    }

    fn comparison(&mut self) -> Result<Filter, QueryError> {
        let (left, left_at) = self.next()?;
        let (op_tok, op_at) = self.next()?;
        let Tok::Ident(op_name) = &op_tok else {
            return Err(syntax(
                op_at,
                format!("expected a comparison operator, found {}", describe(&op_tok)),
            ));
        };
        let kind = cmp_kind(op_name)
            .ok_or_else(|| syntax(op_at, format!("unknown comparison operator '{op_name}'")))?;
        let (right, right_at) = self.next()?;
        match (left, right) {
            (Tok::Ident(prop), lit) if !is_literal_ident(&prop) => self.condition(&prop, kind, lit, right_at),
            (lit, Tok::Ident(prop)) if !is_literal_ident(&prop) => {
                self.condition(&prop, flip(kind), lit, left_at)
            }
            _ => Err(syntax(
                left_at,
                "a comparison needs a property on one side and a value on the other",
            )),
        }
    }

    fn condition(&self, prop: &str, kind: OpKind, lit: Tok, lit_at: usize) -> Result<Filter, QueryError> {
        let attr = self.property(prop)?;
        let value = literal::value(lit, lit_at)?;
        let (kind, operands) = match (kind, value.is_null()) {
            (OpKind::Eq, true) => (OpKind::Null, vec![]),
            (OpKind::Ne, true) => (OpKind::NotNull, vec![]),
            (_, true) => return Err(syntax(lit_at, "null can only be compared with eq or ne")),
            (k, false) => (k, vec![value]),
        };
        condition(attr, operators::build(kind, attr, operands)?)
    }

    fn property(&self, name: &str) -> Result<&'m AttributeMetadata, QueryError> {
        if name.contains('/') {
            return Err(QueryError::Unsupported(format!(
                "navigation paths in $filter ('{name}')"
            )));
        }
        resolve_property(self.entity, name).ok_or_else(|| QueryError::UnknownAttribute {
            entity: self.entity.logical_name.to_string(),
            attribute: name.to_owned(),
        })
    }

    fn call(&mut self) -> Result<Filter, QueryError> {
        let (Tok::Ident(name), at) = self.next()? else {
            return Err(syntax(self.at(), "expected a function name"));
        };
        self.expect(Tok::LParen)?;
        let kind = match name.as_str() {
            "contains" => OpKind::Contains,
            "startswith" => OpKind::BeginsWith,
            "endswith" => OpKind::EndsWith,
            other => match other.strip_prefix("Microsoft.Dynamics.CRM.") {
                Some(f) => return self.crm_function(f, at),
                None => return Err(syntax(at, format!("unknown function '{other}'"))),
            },
        };
        let (prop, prop_at) = self.next()?;
        let Tok::Ident(prop) = prop else {
            return Err(syntax(prop_at, "the first argument must be a property"));
        };
        self.expect(Tok::Comma)?;
        let (lit, lit_at) = self.next()?;
        self.expect(Tok::RParen)?;
        let attr = self.property(&prop)?;
        let value = literal::value(lit, lit_at)?;
        condition(attr, operators::build(kind, attr, vec![value])?)
    }

    /// `Microsoft.Dynamics.CRM.Name(PropertyName='x'[,PropertyValue=v|PropertyValues=[…]])`.
    fn crm_function(&mut self, name: &str, at: usize) -> Result<Filter, QueryError> {
        let kind = crm_kind(name).ok_or_else(|| syntax(at, format!("unknown query function '{name}'")))?;
        let mut property = None;
        let mut values = Vec::new();
        loop {
            let (tok, tok_at) = self.next()?;
            let Tok::Ident(param) = tok else {
                return Err(syntax(
                    tok_at,
                    format!("expected a parameter name, found {}", describe(&tok)),
                ));
            };
            self.expect(Tok::Equals)?;
            match param.as_str() {
                "PropertyName" => property = Some(self.property_name_param()?),
                "PropertyValue" => {
                    let (lit, lit_at) = self.next()?;
                    values.push(literal::value(lit, lit_at)?);
                }
                "PropertyValues" => values.extend(self.value_array()?),
                other => return Err(syntax(tok_at, format!("unknown parameter '{other}'"))),
            }
            match self.next()? {
                (Tok::Comma, _) => continue,
                (Tok::RParen, _) => break,
                (tok, at) => {
                    return Err(syntax(
                        at,
                        format!("expected ',' or ')', found {}", describe(&tok)),
                    ));
                }
            }
        }
        let (prop, _) = property.ok_or_else(|| syntax(at, format!("{name} needs PropertyName")))?;
        let attr = self.property(&prop)?;
        condition(attr, operators::build(kind, attr, values)?)
    }

    fn property_name_param(&mut self) -> Result<(String, usize), QueryError> {
        match self.next()? {
            (Tok::Str(s), at) => Ok((s, at)),
            (tok, at) => Err(syntax(
                at,
                format!("PropertyName must be quoted text, found {}", describe(&tok)),
            )),
        }
    }

    fn value_array(&mut self) -> Result<Vec<Value>, QueryError> {
        self.expect(Tok::LBracket)?;
        let mut values = Vec::new();
        if self.peek() == Some(&Tok::RBracket) {
            self.pos += 1;
            return Ok(values);
        }
        loop {
            let (lit, at) = self.next()?;
            values.push(literal::value(lit, at)?);
            match self.next()? {
                (Tok::Comma, _) => {}
                (Tok::RBracket, _) => return Ok(values),
                (tok, at) => {
                    return Err(syntax(
                        at,
                        format!("expected ',' or ']', found {}", describe(&tok)),
                    ));
                }
            }
        }
    }
}

fn condition(attr: &AttributeMetadata, operator: crate::ast::Operator) -> Result<Filter, QueryError> {
    Ok(Filter::Condition(Condition {
        alias: None,
        attribute: attr.logical_name.clone(),
        operator,
    }))
}

fn is_literal_ident(s: &str) -> bool {
    matches!(s, "null" | "true" | "false")
}

fn cmp_kind(s: &str) -> Option<OpKind> {
    Some(match s {
        "eq" => OpKind::Eq,
        "ne" => OpKind::Ne,
        "gt" => OpKind::Gt,
        "ge" => OpKind::Ge,
        "lt" => OpKind::Lt,
        "le" => OpKind::Le,
        _ => return None,
    })
}

/// The operator that gives the same result with the operands swapped.
fn flip(kind: OpKind) -> OpKind {
    match kind {
        OpKind::Gt => OpKind::Lt,
        OpKind::Ge => OpKind::Le,
        OpKind::Lt => OpKind::Gt,
        OpKind::Le => OpKind::Ge,
        k => k,
    }
}

fn crm_kind(name: &str) -> Option<OpKind> {
    use OpKind as K;
    Some(match name {
        "Today" => K::Today,
        "Yesterday" => K::Yesterday,
        "Tomorrow" => K::Tomorrow,
        "LastXDays" => K::LastXDays,
        "NextXDays" => K::NextXDays,
        "LastXHours" => K::LastXHours,
        "NextXHours" => K::NextXHours,
        "OlderThanXMinutes" => K::OlderThanXMinutes,
        "OlderThanXHours" => K::OlderThanXHours,
        "OlderThanXDays" => K::OlderThanXDays,
        "On" => K::On,
        "OnOrBefore" => K::OnOrBefore,
        "OnOrAfter" => K::OnOrAfter,
        "In" => K::In,
        "NotIn" => K::NotIn,
        "Between" => K::Between,
        "NotBetween" => K::NotBetween,
        "EqualUserId" => K::EqUserId,
        "NotEqualUserId" => K::NeUserId,
        _ => return None,
    })
}

/// An OData property name: an attribute's logical name, or `_x_value` for lookup `x`.
pub(crate) fn resolve_property<'m>(entity: &'m EntityMetadata, name: &str) -> Option<&'m AttributeMetadata> {
    if let Some(inner) = name.strip_prefix('_').and_then(|n| n.strip_suffix("_value")) {
        return entity
            .attribute(inner)
            .filter(|a| matches!(a.attribute_type, crmsync_model::AttributeType::Lookup { .. }));
    }
    entity.attribute(name)
}
