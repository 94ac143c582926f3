//! Reading query text: tokens, `field op value` terms, and their conditions.

use std::cmp::Ordering;

use gpuflow_protocol::search::Alias;

use super::{
    Condition, QueryError, Value,
    fields::{Field, FieldValues, Kind},
};

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
}

impl Op {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "=" | "==" => Self::Eq,
            "!=" => Self::Ne,
            "<" => Self::Lt,
            "<=" => Self::Le,
            ">" => Self::Gt,
            ">=" => Self::Ge,
            _ if text.eq_ignore_ascii_case("in") => Self::In,
            _ if text.eq_ignore_ascii_case("notin") => Self::NotIn,
            _ => return None,
        })
    }

    /// Whether a field of `kind` takes this operator (the table lists them as
    /// [`Kind::operators`]).
    fn allowed_for(self, kind: Kind) -> bool {
        match kind {
            Kind::Number => true,
            Kind::Text | Kind::Words | Kind::Image => {
                matches!(self, Self::Eq | Self::Ne | Self::In | Self::NotIn)
            }
            Kind::Bool => matches!(self, Self::Eq | Self::Ne),
        }
    }

    fn takes_list(self) -> bool {
        matches!(self, Self::In | Self::NotIn)
    }

    /// Whether a found value stands in this relation to the condition's `values`, given how
    /// it compares with each of them.
    pub(super) fn relates(self, values: &[Value], compare: impl Fn(&Value) -> Ordering) -> bool {
        let first = || values.first().map(&compare);
        match self {
            Self::Eq => first() == Some(Ordering::Equal),
            Self::Ne => first().is_some_and(Ordering::is_ne),
            Self::Lt => first().is_some_and(Ordering::is_lt),
            Self::Le => first().is_some_and(Ordering::is_le),
            Self::Gt => first().is_some_and(Ordering::is_gt),
            Self::Ge => first().is_some_and(Ordering::is_ge),
            Self::In => values.iter().any(|v| compare(v).is_eq()),
            Self::NotIn => values.iter().all(|v| compare(v).is_ne()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Word,
    Op,
    Open,
    Close,
    Comma,
}

#[derive(Clone, Copy, Debug)]
struct Token {
    tok: Tok,
    /// Where the token's text starts and ends (inside the quotes of a quoted word).
    start: usize,
    end: usize,
    /// Where it ends as typed: after a quoted word's closing quote.
    outer: usize,
}

fn is_op_char(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>')
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !is_op_char(c) && !matches!(c, '[' | ']' | ',')
}

/// The tokens of `text`; a word may be quoted (`"RTX 4090"` or `'RTX 4090'`) to hold
/// spaces and the characters that separate tokens. An unclosed quote is refused.
fn tokenize(text: &str) -> Result<Vec<Token>, QueryError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c == '"' || c == '\'' {
            let inside = start + 1;
            let Some(close) = text[inside..].find(c).map(|at| inside + at) else {
                return Err(QueryError::UnclosedQuote { text: text[start..].to_owned() });
            };
            while chars.peek().is_some_and(|&(i, _)| i <= close) {
                chars.next();
            }
            tokens.push(Token { tok: Tok::Word, start: inside, end: close, outer: close + 1 });
            continue;
        }
        let tok = match c {
            c if c.is_whitespace() => continue,
            '[' => Tok::Open,
            ']' => Tok::Close,
            ',' => Tok::Comma,
            c if is_op_char(c) => Tok::Op,
            _ => Tok::Word,
        };
        let mut end = start + c.len_utf8();
        if matches!(tok, Tok::Word | Tok::Op) {
            let same = if tok == Tok::Op { is_op_char } else { is_word_char };
            while let Some(&(i, c)) = chars.peek().filter(|&&(_, c)| same(c)) {
                end = i + c.len_utf8();
                chars.next();
            }
        }
        tokens.push(Token { tok, start, end, outer: end });
    }
    Ok(tokens)
}

/// One `field op value` term, split but not yet interpreted.
#[derive(Debug)]
pub(super) struct RawTerm<'a> {
    /// The term as typed, for error messages.
    text: &'a str,
    field: &'a str,
    op: &'a str,
    value: RawValue<'a>,
}

#[derive(Debug)]
enum RawValue<'a> {
    One(&'a str),
    List(Vec<&'a str>),
}

pub(super) fn split_terms(text: &str) -> Result<Vec<RawTerm<'_>>, QueryError> {
    let tokens = tokenize(text)?;
    let slice = |t: &Token| &text[t.start..t.end];
    let is_op = |t: &Token| {
        t.tok == Tok::Op
            || (t.tok == Tok::Word && matches!(Op::parse(slice(t)), Some(Op::In | Op::NotIn)))
    };
    // Where a value starting at token `i` ends: after a word, or after a list's `]`.
    let value_end = |i: usize| match tokens.get(i) {
        Some(t) if t.tok == Tok::Open => {
            tokens[i..].iter().find(|t| t.tok == Tok::Close).map_or(text.len(), |t| t.outer)
        }
        Some(t) if t.tok == Tok::Word => t.outer,
        _ => tokens.get(i.wrapping_sub(1)).map_or(text.len(), |t| t.outer),
    };

    let mut terms = Vec::new();
    let mut i = 0;
    while let Some(first) = tokens.get(i) {
        match first.tok {
            Tok::Word => {}
            Tok::Op => {
                let term = text[first.start..value_end(i + 1)].trim_end().to_owned();
                return Err(QueryError::MissingField { term });
            }
            _ => {
                return Err(QueryError::Unexpected { token: slice(first).to_owned() });
            }
        }
        let op = match tokens.get(i + 1) {
            Some(t) if is_op(t) => t,
            _ => {
                return Err(QueryError::MissingOperator { term: slice(first).to_owned() });
            }
        };
        let term_to = |end: usize| text[first.start..end].trim_end().to_owned();
        let (value, end, next) = match tokens.get(i + 2) {
            Some(t) if t.tok == Tok::Word => (RawValue::One(slice(t)), t.outer, i + 3),
            Some(t) if t.tok == Tok::Open => {
                let term = term_to(value_end(i + 2));
                let (items, next) = split_list(&tokens, i + 3, slice, &term)?;
                (RawValue::List(items), tokens[next - 1].outer, next)
            }
            _ => {
                return Err(QueryError::MissingValue { term: term_to(op.outer) });
            }
        };
        terms.push(RawTerm {
            text: &text[first.start..end],
            field: slice(first),
            op: slice(op),
            value,
        });
        i = next;
    }
    Ok(terms)
}

/// Reads list items from token `i` (just after `[`) through the closing `]`, returning the
/// items and the index of the token after `]`.
fn split_list<'a>(
    tokens: &[Token],
    mut i: usize,
    slice: impl Fn(&Token) -> &'a str,
    term: &str,
) -> Result<(Vec<&'a str>, usize), QueryError> {
    let mut items = Vec::new();
    let mut expect_item = true;
    loop {
        let Some(token) = tokens.get(i) else {
            return Err(QueryError::UnclosedList { term: term.to_owned() });
        };
        i += 1;
        match (token.tok, expect_item) {
            (Tok::Word, true) => {
                items.push(slice(token));
                expect_item = false;
            }
            (Tok::Comma, false) => expect_item = true,
            (Tok::Close, _) if items.is_empty() => {
                return Err(QueryError::EmptyList { term: term.to_owned() });
            }
            (Tok::Close, false) => return Ok((items, i)),
            _ => {
                return Err(QueryError::MalformedList { term: term.to_owned() });
            }
        }
    }
}

impl RawTerm<'_> {
    pub(super) fn resolve(self, token_decimals: u8) -> Result<Condition, QueryError> {
        let term = self.text;
        let name = self.field.to_ascii_lowercase();
        let field = match Field::from_name(&name) {
            Some(Alias::Field(field)) => field,
            Some(Alias::Unavailable) => {
                return Err(QueryError::Unavailable {
                    term: term.to_owned(),
                    field: self.field.to_owned(),
                });
            }
            None => {
                return Err(QueryError::UnknownField {
                    term: term.to_owned(),
                    field: self.field.to_owned(),
                });
            }
        };
        let op = Op::parse(self.op).ok_or_else(|| QueryError::UnknownOperator {
            term: term.to_owned(),
            op: self.op.to_owned(),
        })?;
        if !op.allowed_for(field.kind()) {
            return Err(QueryError::UnsupportedOperator {
                term: term.to_owned(),
                field: name,
                op: self.op.to_owned(),
                supported: field.kind().operators(),
            });
        }
        let texts = match (self.value, op.takes_list()) {
            (RawValue::One(value), false) => vec![value],
            (RawValue::List(values), true) => values,
            (RawValue::One(_), true) => {
                return Err(QueryError::ExpectedList { term: term.to_owned(), op: self.op.into() });
            }
            (RawValue::List(_), false) => {
                return Err(QueryError::UnexpectedList {
                    term: term.to_owned(),
                    op: self.op.into(),
                });
            }
        };
        let values = texts
            .into_iter()
            .map(|text| field.parse_value(text, term, token_decimals))
            .collect::<Result<_, _>>()?;
        Ok(Condition { field, op, values })
    }
}
