//! Tokens of an OData `$filter` expression.
//!
//! Literals follow the OData URL conventions as Dataverse accepts them: strings in single
//! quotes with `''` for a quote (double quotes inside `PropertyValues=[…]` arrays, where
//! Dataverse uses JSON-like strings), GUIDs, date/times and dates unquoted, numbers with an
//! optional sign, fraction and exponent. Keywords (`and`, `eq`, `true`…) are identifiers.

use crate::QueryError;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// Property, keyword or function name (dots allowed: `Microsoft.Dynamics.CRM.Today`).
    Ident(String),
    Str(String),
    Number(String),
    Guid(String),
    /// A date (`2026-01-31`) or date/time (`2026-01-31T10:00:00Z`).
    DateTime(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Equals,
}

/// A token and the character position where it starts.
pub(crate) type Spanned = (Tok, usize);

pub(crate) fn syntax(position: usize, message: impl Into<String>) -> QueryError {
    QueryError::Syntax {
        part: "$filter",
        position,
        message: message.into(),
    }
}

pub(crate) fn tokenize(input: &str) -> Result<Vec<Spanned>, QueryError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            ',' => Some(Tok::Comma),
            '=' => Some(Tok::Equals),
            _ => None,
        };
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = if let Some(t) = single {
            i += 1;
            t
        } else if c == '\'' || c == '"' {
            let (s, next) = quoted(&chars, i, c)?;
            i = next;
            Tok::Str(s)
        } else if let Some(len) = guid_len(&chars[i..]) {
            i += len;
            Tok::Guid(chars[start..i].iter().collect())
        } else if let Some(len) = datetime_len(&chars[i..]) {
            i += len;
            Tok::DateTime(chars[start..i].iter().collect())
        } else if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            i += number_len(&chars[i..]);
            Tok::Number(chars[start..i].iter().collect())
        } else if c.is_ascii_alphabetic() || c == '_' {
            i += chars[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/'))
                .count();
            Tok::Ident(chars[start..i].iter().collect())
        } else {
            return Err(syntax(start, format!("unexpected character '{c}'")));
        };
        out.push((tok, start));
    }
    Ok(out)
}

/// A quoted string starting at `chars[i] == quote`; a doubled quote stands for one quote.
fn quoted(chars: &[char], i: usize, quote: char) -> Result<(String, usize), QueryError> {
    let mut s = String::new();
    let mut j = i + 1;
    loop {
        match chars.get(j) {
            None => return Err(syntax(i, "text literal is not closed")),
            Some(c) if *c == quote && chars.get(j + 1) == Some(&quote) => {
                s.push(quote);
                j += 2;
            }
            Some(c) if *c == quote => return Ok((s, j + 1)),
            Some('\\') if quote == '"' && chars.get(j + 1).is_some() => {
                s.push(chars[j + 1]);
                j += 2;
            }
            Some(c) => {
                s.push(*c);
                j += 1;
            }
        }
    }
}

fn ends_word(rest: &[char]) -> bool {
    rest.first()
        .is_none_or(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':')))
}

/// Length of an unquoted GUID (`8-4-4-4-12` hex digits) at the start of `s`.
fn guid_len(s: &[char]) -> Option<usize> {
    let groups = [8, 4, 4, 4, 12];
    let mut i = 0;
    for (n, len) in groups.iter().enumerate() {
        if n > 0 {
            if s.get(i) != Some(&'-') {
                return None;
            }
            i += 1;
        }
        if s.len() < i + len || !s[i..i + len].iter().all(char::is_ascii_hexdigit) {
            return None;
        }
        i += len;
    }
    ends_word(&s[i..]).then_some(i)
}

/// Length of a date (`yyyy-mm-dd`) or date/time (`yyyy-mm-ddThh:mm[:ss[.f]][Z|±hh:mm]`).
fn datetime_len(s: &[char]) -> Option<usize> {
    let digits =
        |from: usize, n: usize| s.len() >= from + n && s[from..from + n].iter().all(char::is_ascii_digit);
    if !(digits(0, 4) && s.get(4) == Some(&'-') && digits(5, 2) && s.get(7) == Some(&'-') && digits(8, 2)) {
        return None;
    }
    if s.get(10) != Some(&'T') {
        return ends_word(&s[10..]).then_some(10);
    }
    let len = 10
        + s[10..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '+' | '-'))
            .count();
    Some(len)
}

fn number_len(s: &[char]) -> usize {
    let mut i = usize::from(s.first() == Some(&'-'));
    let digits = |from: usize| s[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    i += digits(i);
    if s.get(i) == Some(&'.') && s.get(i + 1).is_some_and(char::is_ascii_digit) {
        i += 1 + digits(i + 1);
    }
    if matches!(s.get(i), Some('e' | 'E')) {
        let sign = usize::from(matches!(s.get(i + 1), Some('+' | '-')));
        if s.get(i + 1 + sign).is_some_and(char::is_ascii_digit) {
            i += 1 + sign + digits(i + 1 + sign);
        }
    }
    if matches!(s.get(i), Some('m' | 'M' | 'd' | 'D' | 'f' | 'F' | 'l' | 'L')) && ends_word(&s[i + 1..]) {
        i += 1;
    }
    i
}
