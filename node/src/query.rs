//! The search query language: Vast.ai-style `field op value` terms.
//!
//! A query is a list of terms separated by whitespace, all of which must hold:
//!
//! ```text
//! gpu_name=RTX_4090 num_gpus>=2 gpu_ram >= 24 dph<=0.5 region in [eu-west,eu_central]
//! ```
//!
//! * Operators: `=` (or `==`), `!=`, `<`, `<=`, `>`, `>=`, `in`, `notin`. Spaces around an
//!   operator are allowed; `in` and `notin` take a list `[a,b,c]`.
//! * Numbers (`num_gpus`, `gpu_ram`, `dph`, `cuda`, `age_days`, `inet_down`, `inet_up`,
//!   `disk`) take every operator.
//! * Text (`gpu_name`, `driver`, `region`, `payout`) takes `=`, `!=`, `in`, `notin` and
//!   compares without regard to ASCII case; `_` in a value stands for a space.
//! * `verified` and `conflicts` take `true` or `false` with `=` or `!=`.
//! * `gpu_name=X` holds when the words of `X` appear, in order and as whole words, in the
//!   GPU's name. Words are runs of letters and digits; everything else separates them. So
//!   `RTX_4090` matches `NVIDIA GeForce RTX 4090`, `A100` matches `NVIDIA A100-SXM4-80GB`,
//!   but `L40` does not match `NVIDIA L40S`.
//! * `gpu_ram` is GB (10⁹ bytes) per GPU with up to three decimals, compared exactly in MB;
//!   `disk` is GB the same way; `dph` is the whole machine's price in whole tokens (dollars)
//!   per hour, converted exactly to integer token units; `cuda` is a version such as `12.4`;
//!   `age_days` is days since this node first saw the provider (up to three decimals);
//!   `inet_down` and `inet_up` are the bandwidth the provider declares, in Mbit/s.
//! * `conflicts=true` finds offers that share a GPU UUID with another live offer. Such
//!   offers are hidden unless the query mentions `conflicts` or the request asks for
//!   `include_conflicts`.
//! * An offer whose value for a field is unknown (an unreadable CUDA version, an undeclared
//!   bandwidth or disk) matches no condition on that field.
//! * `reliability`, `uptime` and `rentals` belong to the language but need chain and probe
//!   data this node does not have yet; they are refused with a message saying so.
//!
//! Nothing a user types is ever spliced into SQL: values become bound parameters, and the
//! SQL text is assembled only from the fixed column and operator names below. Parameter
//! `?1` is always the current time.

use gpuflow_protocol::{OfferId, parse_units};
use rusqlite::types::Value as SqlValue;

use crate::QueryError;

/// Longest query text accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 4096;

pub(crate) const OPERATORS: &str = "= == != < <= > >= in notin";
pub(crate) const FIELDS: &str = "gpu_name num_gpus gpu_ram dph verified cuda driver region \
    payout age_days inet_down inet_up disk conflicts";
pub(crate) const SORTABLE: &str = "dph gpu_ram num_gpus cuda age_days inet_down inet_up disk";
/// Fields of the query language that need reliability data not tracked yet.
const PLANNED_FIELDS: [&str; 3] = ["reliability", "uptime", "rentals"];

/// Whether an offer shares a GPU UUID with another live offer (`?1` is now). Evaluated per
/// row, so a conflict ends as soon as one of the two offers expires.
/// `CROSS JOIN` fixes the join order (SQLite never reorders it): this offer's few GPUs
/// first, then their UUID index, then the other offer by id. Left to itself the planner
/// may scan every live offer for every row.
pub(crate) const CONFLICT_SQL: &str = "(EXISTS (SELECT 1 FROM offer_gpus mine \
    CROSS JOIN offer_gpus theirs ON theirs.uuid = mine.uuid AND theirs.offer_id <> mine.offer_id \
    CROSS JOIN offers other ON other.id = theirs.offer_id \
    WHERE mine.offer_id = offers.id AND other.expires_at > ?1))";

/// A parsed search query: every condition must hold. The default query matches all offers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    conditions: Vec<Condition>,
}

/// How search results are sorted; ties are always broken by offer id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Order {
    /// What to sort on.
    pub key: SortKey,
    /// Largest first when set.
    pub descending: bool,
}

/// The fields search results can be sorted on. Offers without a value for the key (an
/// unknown CUDA version, an undeclared bandwidth) come last either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Price of the whole machine per hour.
    #[default]
    Dph,
    /// Memory per GPU.
    GpuRam,
    /// Number of GPUs.
    NumGpus,
    /// Highest supported CUDA version.
    Cuda,
    /// Days since this node first saw the provider.
    AgeDays,
    /// Declared download bandwidth.
    InetDown,
    /// Declared upload bandwidth.
    InetUp,
    /// Declared disk space.
    Disk,
}

/// Where the next page of a search starts: after the offer `id` whose sort value is
/// `value`, for one particular order. Clients see it only as an opaque string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    order: Order,
    value: Option<i64>,
    id: OfferId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    GpuName,
    NumGpus,
    GpuRam,
    Dph,
    Verified,
    Cuda,
    Driver,
    Region,
    Payout,
    AgeDays,
    InetDown,
    InetUp,
    Disk,
    Conflicts,
}

/// How a field's values compare, which decides the operators it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Number,
    Text,
    Words,
    Bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Condition {
    field: Field,
    op: Op,
    /// One value for comparisons, one or more for `in` and `notin`.
    values: Vec<Value>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Int(i64),
    Text(String),
    Bool(bool),
}

impl Query {
    /// Parses `text`; `token_decimals` is the payment token's decimals, used to convert
    /// `dph` exactly into token units.
    pub fn parse(text: &str, token_decimals: u8) -> Result<Self, QueryError> {
        if text.len() > MAX_QUERY_LEN {
            return Err(QueryError::TooLong { len: text.len(), max: MAX_QUERY_LEN });
        }
        let conditions = split_terms(text)?
            .into_iter()
            .map(|term| term.resolve(token_decimals))
            .collect::<Result<_, _>>()?;
        Ok(Self { conditions })
    }

    /// Whether a condition names `conflicts`, which lifts the default hiding of conflicts.
    pub(crate) fn mentions_conflicts(&self) -> bool {
        self.conditions.iter().any(|c| c.field == Field::Conflicts)
    }

    /// Appends ` AND (condition)` for every condition to `sql`, and its values to `params`.
    pub(crate) fn push_sql(&self, sql: &mut String, params: &mut Vec<SqlValue>) {
        for condition in &self.conditions {
            sql.push_str(" AND (");
            condition.push_sql(sql, params);
            sql.push(')');
        }
    }
}

impl std::str::FromStr for Order {
    type Err = QueryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl std::fmt::Display for Order {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.key {
            SortKey::Dph => "dph",
            SortKey::GpuRam => "gpu_ram",
            SortKey::NumGpus => "num_gpus",
            SortKey::Cuda => "cuda",
            SortKey::AgeDays => "age_days",
            SortKey::InetDown => "inet_down",
            SortKey::InetUp => "inet_up",
            SortKey::Disk => "disk",
        };
        write!(f, "{name}{}", if self.descending { "-" } else { "" })
    }
}

impl Order {
    /// Parses `FIELD` (ascending) or `FIELD-` (descending), e.g. `dph` or `gpu_ram-`.
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        let trimmed = text.trim();
        let (name, descending) = match trimmed.strip_suffix('-') {
            Some(name) => (name, true),
            None => (trimmed, false),
        };
        let key = match name.to_ascii_lowercase().as_str() {
            "dph" => SortKey::Dph,
            "gpu_ram" => SortKey::GpuRam,
            "num_gpus" => SortKey::NumGpus,
            "cuda" => SortKey::Cuda,
            "age_days" => SortKey::AgeDays,
            "inet_down" => SortKey::InetDown,
            "inet_up" => SortKey::InetUp,
            "disk" => SortKey::Disk,
            _ => {
                return Err(QueryError::UnknownOrder { order: text.to_owned() });
            }
        };
        Ok(Self { key, descending })
    }

    /// The column sorted on, whether it can be NULL, and whether its SQL order is the
    /// reverse of the field's (a larger age is an earlier first sighting).
    fn column(self) -> (&'static str, bool, bool) {
        match self.key {
            SortKey::Dph => ("price_per_hour", false, false),
            SortKey::GpuRam => ("gpu_ram_mb", false, false),
            SortKey::NumGpus => ("num_gpus", false, false),
            SortKey::Cuda => ("cuda", true, false),
            SortKey::AgeDays => ("first_seen", false, true),
            SortKey::InetDown => ("inet_down_mbps", true, false),
            SortKey::InetUp => ("inet_up_mbps", true, false),
            SortKey::Disk => ("disk_mb", true, false),
        }
    }

    /// The SQL expression of the sort value, selected so that a page's last row can become
    /// the next page's cursor.
    pub(crate) fn value_sql(self) -> &'static str {
        self.column().0
    }

    /// Whether the column runs largest first.
    fn sql_descending(self) -> bool {
        let (_, _, inverted) = self.column();
        self.descending != inverted
    }

    /// The `ORDER BY` clause, without the keywords.
    pub(crate) fn sql(self) -> String {
        let (column, nullable, _) = self.column();
        let direction = if self.sql_descending() { "DESC" } else { "ASC" };
        let nulls = if nullable { " NULLS LAST" } else { "" };
        format!("{column} {direction}{nulls}, id ASC")
    }
}

impl Cursor {
    /// The cursor that continues `order` after the offer `id` with sort value `value`.
    pub(crate) fn after(order: Order, value: Option<i64>, id: OfferId) -> Self {
        Self { order, value, id }
    }

    /// Reads a cursor that this node issued for a search sorted by `order`.
    pub fn decode(text: &str, order: Order) -> Result<Self, QueryError> {
        let bad = |reason: &str| QueryError::BadCursor { reason: reason.to_owned() };
        let bytes = decode_hex(text).ok_or_else(|| bad("it is not a cursor from this API"))?;
        let plain =
            String::from_utf8(bytes).map_err(|_| bad("it is not a cursor from this API"))?;
        let mut parts = plain.splitn(3, '|');
        let (Some(issued), Some(value), Some(id)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("it is not a cursor from this API"));
        };
        if issued != order.to_string() {
            return Err(bad(&format!(
                "it continues a search sorted by `{issued}`, not `{order}`; repeat that order"
            )));
        }
        let value = match value {
            "" => None,
            v => Some(v.parse().map_err(|_| bad("it is not a cursor from this API"))?),
        };
        let id = id.parse().map_err(|_| bad("it is not a cursor from this API"))?;
        Ok(Self { order, value, id })
    }

    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        let value = self.value.map(|v| v.to_string()).unwrap_or_default();
        encode_hex(format!("{}|{value}|{}", self.order, self.id).as_bytes())
    }

    /// Appends the keyset condition "sorts after the cursor" to `sql`.
    pub(crate) fn push_sql(&self, sql: &mut String, params: &mut Vec<SqlValue>) {
        let (column, nullable, _) = self.order.column();
        let id = SqlValue::Text(self.id.to_string());
        let beyond = if self.order.sql_descending() { "<" } else { ">" };
        match self.value {
            // NULLs sort last whatever the direction, so after a NULL come only NULLs.
            None => {
                sql.push_str(&format!(" AND ({column} IS NULL AND id > ?)"));
                params.push(id);
            }
            Some(value) => {
                let nulls = if nullable { format!("{column} IS NULL OR ") } else { String::new() };
                sql.push_str(&format!(
                    " AND ({nulls}{column} {beyond} ? OR ({column} = ? AND id > ?))"
                ));
                params.extend([SqlValue::Integer(value), SqlValue::Integer(value), id]);
            }
        }
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 512 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

/// The padded, lower-case word list of a GPU name (`" nvidia geforce rtx 4090 "`), stored
/// beside the name so that whole-word containment is a plain substring search.
pub(crate) fn name_words(name: &str) -> String {
    let mut words = String::from(" ");
    for word in name.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        words.push_str(&word.to_lowercase());
        words.push(' ');
    }
    words
}

/// CUDA version text (`12.4`) as integer thousandths (`12400`); `None` when unreadable.
pub(crate) fn cuda_thousandths(version: &str) -> Option<i64> {
    parse_units(version, 3).ok().and_then(|v| i64::try_from(v).ok())
}

impl Field {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "gpu_name" => Self::GpuName,
            "num_gpus" => Self::NumGpus,
            "gpu_ram" => Self::GpuRam,
            "dph" => Self::Dph,
            "verified" => Self::Verified,
            "cuda" => Self::Cuda,
            "driver" => Self::Driver,
            "region" => Self::Region,
            "payout" => Self::Payout,
            "age_days" => Self::AgeDays,
            "inet_down" => Self::InetDown,
            "inet_up" => Self::InetUp,
            "disk" => Self::Disk,
            "conflicts" => Self::Conflicts,
            _ => return None,
        })
    }

    fn kind(self) -> Kind {
        match self {
            Self::NumGpus
            | Self::GpuRam
            | Self::Dph
            | Self::Cuda
            | Self::AgeDays
            | Self::InetDown
            | Self::InetUp
            | Self::Disk => Kind::Number,
            Self::Driver | Self::Region | Self::Payout => Kind::Text,
            Self::GpuName => Kind::Words,
            Self::Verified | Self::Conflicts => Kind::Bool,
        }
    }

    /// The SQL the field is compared against; text columns are declared `COLLATE NOCASE`.
    fn column(self) -> &'static str {
        match self {
            Self::GpuName => "gpu_name_words",
            Self::NumGpus => "num_gpus",
            Self::GpuRam => "gpu_ram_mb",
            Self::Dph => "price_per_hour",
            Self::Verified => "verified",
            Self::Cuda => "cuda",
            Self::Driver => "driver",
            Self::Region => "region",
            Self::Payout => "payout",
            // Age in thousandths of seconds, so that fractional days compare exactly.
            Self::AgeDays => "((?1 - first_seen) * 1000)",
            Self::InetDown => "inet_down_mbps",
            Self::InetUp => "inet_up_mbps",
            Self::Disk => "disk_mb",
            Self::Conflicts => CONFLICT_SQL,
        }
    }

    fn parse_value(self, text: &str, term: &str, token_decimals: u8) -> Result<Value, QueryError> {
        let bad = |expected: String| QueryError::BadValue {
            term: term.to_owned(),
            value: text.to_owned(),
            expected,
        };
        let out_of_range =
            || QueryError::OutOfRange { term: term.to_owned(), value: text.to_owned() };
        let number = |decimals: u8, expected: &str| {
            let units = parse_units(text, decimals).map_err(|_| bad(expected.to_owned()))?;
            i64::try_from(units).map_err(|_| out_of_range())
        };
        match self {
            Self::NumGpus => number(0, "a whole number such as 2").map(Value::Int),
            Self::GpuRam => {
                number(3, "GB per GPU such as 24 or 79.5 (at most 3 decimals)").map(Value::Int)
            }
            Self::Dph => number(
                token_decimals,
                &format!("dollars per hour such as 0.5 (at most {token_decimals} decimals)"),
            )
            .map(Value::Int),
            Self::Cuda => number(3, "a CUDA version such as 12.4").map(Value::Int),
            Self::AgeDays => {
                let thousandths = number(3, "days such as 30 or 0.5 (at most 3 decimals)")?;
                // Compared with the age in thousandths of seconds: days × 86 400 × 1000 / 1000.
                thousandths.checked_mul(86_400).map(Value::Int).ok_or_else(out_of_range)
            }
            Self::InetDown | Self::InetUp => number(0, "whole Mbit/s such as 1000").map(Value::Int),
            Self::Disk => number(3, "GB such as 500 (at most 3 decimals)").map(Value::Int),
            Self::Verified | Self::Conflicts => match text.to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(bad("true or false".into())),
            },
            Self::GpuName => {
                let words = name_words(text);
                if words.trim().is_empty() {
                    return Err(bad("a GPU name such as RTX_4090".into()));
                }
                Ok(Value::Text(words))
            }
            Self::Driver | Self::Region => Ok(Value::Text(text.replace('_', " "))),
            Self::Payout => {
                let hex = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"));
                match hex {
                    Some(hex) if hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                        Ok(Value::Text(format!("0x{}", hex.to_ascii_lowercase())))
                    }
                    _ => Err(bad("an address of 0x and 40 hex digits".into())),
                }
            }
        }
    }
}

impl Kind {
    fn supported(self) -> &'static str {
        match self {
            Self::Number => OPERATORS,
            Self::Text | Self::Words => "= != in notin",
            Self::Bool => "= !=",
        }
    }

    fn supports(self, op: Op) -> bool {
        match self {
            Self::Number => true,
            Self::Text | Self::Words => matches!(op, Op::Eq | Op::Ne | Op::In | Op::NotIn),
            Self::Bool => matches!(op, Op::Eq | Op::Ne),
        }
    }
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

    fn takes_list(self) -> bool {
        matches!(self, Self::In | Self::NotIn)
    }

    fn sql(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::In => "IN",
            Self::NotIn => "NOT IN",
        }
    }
}

impl Value {
    fn to_sql(&self) -> SqlValue {
        match self {
            Self::Int(v) => SqlValue::Integer(*v),
            Self::Text(v) => SqlValue::Text(v.clone()),
            Self::Bool(v) => SqlValue::Integer(i64::from(*v)),
        }
    }
}

impl Condition {
    fn push_sql(&self, sql: &mut String, params: &mut Vec<SqlValue>) {
        let column = self.field.column();
        let placeholders = vec!["?"; self.values.len()].join(", ");
        let clause = if self.field.kind() == Kind::Words {
            // The padded word lists make whole-word containment a substring test.
            let any = vec![format!("instr({column}, ?) > 0"); self.values.len()].join(" OR ");
            match self.op {
                Op::Eq | Op::In => any,
                _ => format!("NOT ({any})"),
            }
        } else if self.op.takes_list() {
            format!("{column} {} ({placeholders})", self.op.sql())
        } else {
            format!("{column} {} ?", self.op.sql())
        };
        sql.push_str(&clause);
        params.extend(self.values.iter().map(Value::to_sql));
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
    start: usize,
    end: usize,
}

fn is_op_char(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>')
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !is_op_char(c) && !matches!(c, '[' | ']' | ',')
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
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
        tokens.push(Token { tok, start, end });
    }
    tokens
}

/// One `field op value` term, split but not yet interpreted.
#[derive(Debug)]
struct RawTerm<'a> {
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

fn split_terms(text: &str) -> Result<Vec<RawTerm<'_>>, QueryError> {
    let tokens = tokenize(text);
    let slice = |t: &Token| &text[t.start..t.end];
    let is_op = |t: &Token| {
        t.tok == Tok::Op
            || (t.tok == Tok::Word && matches!(Op::parse(slice(t)), Some(Op::In | Op::NotIn)))
    };
    // Where a value starting at token `i` ends: after a word, or after a list's `]`.
    let value_end = |i: usize| match tokens.get(i) {
        Some(t) if t.tok == Tok::Open => {
            tokens[i..].iter().find(|t| t.tok == Tok::Close).map_or(text.len(), |t| t.end)
        }
        Some(t) if t.tok == Tok::Word => t.end,
        _ => tokens.get(i.wrapping_sub(1)).map_or(text.len(), |t| t.end),
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
            Some(t) if t.tok == Tok::Word => (RawValue::One(slice(t)), t.end, i + 3),
            Some(t) if t.tok == Tok::Open => {
                let term = term_to(value_end(i + 2));
                let (items, next) = split_list(&tokens, i + 3, slice, &term)?;
                (RawValue::List(items), tokens[next - 1].end, next)
            }
            _ => {
                return Err(QueryError::MissingValue { term: term_to(op.end) });
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
    fn resolve(self, token_decimals: u8) -> Result<Condition, QueryError> {
        let term = self.text;
        let name = self.field.to_ascii_lowercase();
        let field = Field::from_name(&name).ok_or_else(|| {
            if PLANNED_FIELDS.contains(&name.as_str()) {
                QueryError::UnsupportedField { term: term.to_owned(), field: name.clone() }
            } else {
                QueryError::UnknownField { term: term.to_owned(), field: self.field.to_owned() }
            }
        })?;
        let op = Op::parse(self.op).ok_or_else(|| QueryError::UnknownOperator {
            term: term.to_owned(),
            op: self.op.to_owned(),
        })?;
        if !field.kind().supports(op) {
            return Err(QueryError::UnsupportedOperator {
                term: term.to_owned(),
                field: name,
                op: self.op.to_owned(),
                supported: field.kind().supported(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Query, QueryError> {
        Query::parse(text, 6)
    }

    /// The SQL and parameters a query compiles to.
    fn sql(text: &str) -> (String, Vec<SqlValue>) {
        let (mut sql, mut params) = (String::new(), Vec::new());
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}")).push_sql(&mut sql, &mut params);
        (sql, params)
    }

    fn err(text: &str) -> String {
        parse(text).expect_err(text).to_string()
    }

    fn int(v: i64) -> SqlValue {
        SqlValue::Integer(v)
    }

    fn text(v: &str) -> SqlValue {
        SqlValue::Text(v.into())
    }

    #[test]
    fn empty_query_matches_everything() {
        assert_eq!(parse("").unwrap(), Query::default());
        assert_eq!(parse("   \t ").unwrap(), Query::default());
        assert_eq!(sql(""), (String::new(), vec![]));
    }

    #[test]
    fn every_comparison_operator() {
        for (op, sql_op) in [
            ("=", "="),
            ("==", "="),
            ("!=", "<>"),
            ("<", "<"),
            ("<=", "<="),
            (">", ">"),
            (">=", ">="),
        ] {
            assert_eq!(
                sql(&format!("num_gpus{op}2")),
                (format!(" AND (num_gpus {sql_op} ?)"), vec![int(2)]),
                "{op}"
            );
        }
    }

    #[test]
    fn spaces_around_operators_are_allowed() {
        assert_eq!(sql("gpu_ram >= 24"), sql("gpu_ram>=24"));
        assert_eq!(sql("num_gpus in [ 1 , 2 ]"), sql("num_gpus in [1,2]"));
        assert_eq!(sql("num_gpus in[1,2]"), sql("num_gpus in [1,2]"));
    }

    #[test]
    fn in_and_notin_take_lists() {
        assert_eq!(
            sql("num_gpus in [1,2,4]"),
            (" AND (num_gpus IN (?, ?, ?))".into(), vec![int(1), int(2), int(4)])
        );
        assert_eq!(
            sql("region notin [eu-west,US_East]"),
            (" AND (region NOT IN (?, ?))".into(), vec![text("eu-west"), text("US East")])
        );
        assert_eq!(sql("num_gpus IN [1]"), sql("num_gpus in [1]"));
    }

    #[test]
    fn terms_are_joined_with_and() {
        let (sql, params) = sql("num_gpus>=2 verified=true dph<=0.5");
        assert_eq!(sql, " AND (num_gpus >= ?) AND (verified = ?) AND (price_per_hour <= ?)");
        assert_eq!(params, vec![int(2), int(1), int(500_000)]);
    }

    #[test]
    fn gpu_name_matches_whole_words() {
        assert_eq!(
            sql("gpu_name=RTX_4090"),
            (" AND (instr(gpu_name_words, ?) > 0)".into(), vec![text(" rtx 4090 ")])
        );
        assert_eq!(
            sql("gpu_name!=rtx_4090"),
            (" AND (NOT (instr(gpu_name_words, ?) > 0))".into(), vec![text(" rtx 4090 ")])
        );
        assert_eq!(
            sql("gpu_name in [A100-SXM4-80GB,H100]"),
            (
                " AND (instr(gpu_name_words, ?) > 0 OR instr(gpu_name_words, ?) > 0)".into(),
                vec![text(" a100 sxm4 80gb "), text(" h100 ")]
            )
        );
        assert_eq!(sql("gpu_name notin [H100]").0, " AND (NOT (instr(gpu_name_words, ?) > 0))");
        assert_eq!(name_words("NVIDIA GeForce RTX 4090"), " nvidia geforce rtx 4090 ");
        assert!(name_words("NVIDIA GeForce RTX 4090").contains(&name_words("RTX_4090")));
        assert!(name_words("NVIDIA A100-SXM4-80GB").contains(&name_words("a100")));
        assert!(!name_words("NVIDIA L40S").contains(&name_words("L40")));
        assert!(!name_words("NVIDIA GeForce RTX 4090").contains(&name_words("RTX_409")));
    }

    #[test]
    fn numbers_convert_exactly() {
        assert_eq!(sql("gpu_ram>=24").1, vec![int(24_000)]);
        assert_eq!(sql("gpu_ram>=79.5").1, vec![int(79_500)]);
        assert_eq!(sql("gpu_ram<25.757").1, vec![int(25_757)]);
        assert_eq!(sql("dph<=0.35").1, vec![int(350_000)]);
        assert_eq!(sql("dph<=0.000001").1, vec![int(1)]);
        assert_eq!(Query::parse("dph<=2", 18).unwrap(), Query::parse("dph<=2.0", 18).unwrap());
        assert_eq!(sql("dph<=2").1, vec![int(2_000_000)]);
        assert_eq!(sql("cuda>=12.4").1, vec![int(12_400)]);
        assert_eq!(sql("cuda>=12").1, vec![int(12_000)]);
        assert_eq!(cuda_thousandths("12.4"), Some(12_400));
        assert_eq!(cuda_thousandths("N/A"), None);
    }

    #[test]
    fn text_values_read_underscores_as_spaces() {
        assert_eq!(sql("region=us_east_1").1, vec![text("us east 1")]);
        assert_eq!(sql("driver=550.54.14").1, vec![text("550.54.14")]);
        assert_eq!(sql("region==EU-West"), (" AND (region = ?)".into(), vec![text("EU-West")]));
    }

    #[test]
    fn booleans_and_addresses() {
        assert_eq!(sql("verified=TRUE").1, vec![int(1)]);
        assert_eq!(sql("verified!=false"), (" AND (verified <> ?)".into(), vec![int(0)]));
        let address = format!("0x{}", "AB".repeat(20));
        assert_eq!(
            sql(&format!("payout={address}")),
            (" AND (payout = ?)".into(), vec![text(&format!("0x{}", "ab".repeat(20)))])
        );
    }

    #[test]
    fn field_names_ignore_case() {
        assert_eq!(sql("NUM_GPUS>=2"), sql("num_gpus>=2"));
    }

    #[test]
    fn orders_parse() {
        assert_eq!(Order::default(), Order { key: SortKey::Dph, descending: false });
        assert_eq!(Order::parse("dph").unwrap(), Order::default());
        assert_eq!(
            "gpu_ram-".parse::<Order>().unwrap(),
            Order { key: SortKey::GpuRam, descending: true }
        );
        assert_eq!(Order::parse("num_gpus").unwrap().key, SortKey::NumGpus);
        assert_eq!(Order::parse("cuda-").unwrap().sql(), "cuda DESC NULLS LAST, id ASC");
        assert_eq!(
            Order::parse("region").unwrap_err().to_string(),
            "cannot sort by `region`; sortable fields: dph gpu_ram num_gpus cuda age_days \
             inet_down inet_up disk, add `-` for descending (e.g. `dph-`)"
        );
        assert_eq!(Order::parse("age_days").unwrap().sql(), "first_seen DESC, id ASC");
        assert_eq!(Order::parse("age_days-").unwrap().sql(), "first_seen ASC, id ASC");
        assert_eq!(Order::parse("disk").unwrap().sql(), "disk_mb ASC NULLS LAST, id ASC");
        for text in
            ["dph", "gpu_ram-", "num_gpus", "cuda-", "age_days", "inet_down-", "inet_up", "disk-"]
        {
            assert_eq!(Order::parse(text).unwrap().to_string(), text);
        }
        assert!(Order::parse("").is_err());
        assert!(Order::parse("-dph").is_err());
    }

    #[test]
    fn unknown_and_planned_fields_are_named() {
        assert_eq!(
            err("num_gpus>=1 gpu_nam=RTX_4090"),
            "unknown field `gpu_nam` in `gpu_nam=RTX_4090`; known fields: gpu_name num_gpus \
             gpu_ram dph verified cuda driver region payout age_days inet_down inet_up disk \
             conflicts"
        );
        for field in ["reliability", "uptime", "rentals"] {
            assert_eq!(
                err(&format!("{field}>0.99")),
                format!(
                    "field `{field}` in `{field}>0.99` is not available on this node yet; \
                     available fields: {FIELDS}"
                )
            );
        }
    }

    #[test]
    fn malformed_terms_are_named() {
        let cases = [
            ("foo", "missing operator in `foo`; expected one of = == != < <= > >= in notin"),
            (
                "gpu_name RTX_4090",
                "missing operator in `gpu_name`; expected one of = == != < <= > >= in notin",
            ),
            (">=24", "missing field name before the operator in `>=24`"),
            ("num_gpus>=2 >= [1,2]", "missing field name before the operator in `>= [1,2]`"),
            ("gpu_ram>=", "missing value after the operator in `gpu_ram>=`"),
            ("gpu_ram >= ", "missing value after the operator in `gpu_ram >=`"),
            ("num_gpus in", "missing value after the operator in `num_gpus in`"),
            (
                "gpu_ram=>24",
                "unknown operator `=>` in `gpu_ram=>24`; expected one of = == != < <= > >= in notin",
            ),
            (
                "num_gpus!2",
                "unknown operator `!` in `num_gpus!2`; expected one of = == != < <= > >= in notin",
            ),
            (
                "] num_gpus=1",
                "unexpected `]` where a term should start; terms look like `num_gpus>=2`",
            ),
            (
                "num_gpus=1 ,",
                "unexpected `,` where a term should start; terms look like `num_gpus>=2`",
            ),
        ];
        for (query, message) in cases {
            assert_eq!(err(query), message, "{query}");
        }
    }

    #[test]
    fn operators_a_field_cannot_take() {
        assert_eq!(
            err("gpu_name<RTX_4090"),
            "`gpu_name` does not support `<` (in `gpu_name<RTX_4090`); use one of = != in notin"
        );
        assert_eq!(
            err("verified in [true]"),
            "`verified` does not support `in` (in `verified in [true]`); use one of = !="
        );
        assert_eq!(
            err("region>=eu"),
            "`region` does not support `>=` (in `region>=eu`); use one of = != in notin"
        );
    }

    #[test]
    fn list_shape_errors() {
        let cases = [
            ("num_gpus in 2", "`num_gpus in 2`: `in` takes a list such as [a,b,c]"),
            ("num_gpus notin 2", "`num_gpus notin 2`: `notin` takes a list such as [a,b,c]"),
            (
                "num_gpus=[1,2]",
                "`num_gpus=[1,2]`: `=` takes a single value; use `in` or `notin` for a list",
            ),
            ("num_gpus in [1,2", "unclosed list in `num_gpus in [1,2`: expected `]`"),
            ("num_gpus in []", "empty list in `num_gpus in []`"),
            (
                "num_gpus in [1 2]",
                "`num_gpus in [1 2]`: list items must be separated by commas, as in [a,b,c]",
            ),
            (
                "num_gpus in [1,,2]",
                "`num_gpus in [1,,2]`: list items must be separated by commas, as in [a,b,c]",
            ),
            (
                "num_gpus in [1,]",
                "`num_gpus in [1,]`: list items must be separated by commas, as in [a,b,c]",
            ),
            (
                "num_gpus in [[1]]",
                "`num_gpus in [[1]`: list items must be separated by commas, as in [a,b,c]",
            ),
        ];
        for (query, message) in cases {
            assert_eq!(err(query), message, "{query}");
        }
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        let cases = [
            (
                "gpu_ram>=abc",
                "`gpu_ram>=abc`: expected GB per GPU such as 24 or 79.5 (at most 3 decimals), found `abc`",
            ),
            (
                "gpu_ram>=0.0001",
                "`gpu_ram>=0.0001`: expected GB per GPU such as 24 or 79.5 (at most 3 decimals), found `0.0001`",
            ),
            ("num_gpus>=2.5", "`num_gpus>=2.5`: expected a whole number such as 2, found `2.5`"),
            ("num_gpus>=-1", "`num_gpus>=-1`: expected a whole number such as 2, found `-1`"),
            (
                "num_gpus in [1,x]",
                "`num_gpus in [1,x]`: expected a whole number such as 2, found `x`",
            ),
            (
                "dph<=1e3",
                "`dph<=1e3`: expected dollars per hour such as 0.5 (at most 6 decimals), found `1e3`",
            ),
            (
                "dph<=0.0000001",
                "`dph<=0.0000001`: expected dollars per hour such as 0.5 (at most 6 decimals), found `0.0000001`",
            ),
            (
                "cuda>=12.4.1",
                "`cuda>=12.4.1`: expected a CUDA version such as 12.4, found `12.4.1`",
            ),
            ("verified=yes", "`verified=yes`: expected true or false, found `yes`"),
            ("gpu_name=-", "`gpu_name=-`: expected a GPU name such as RTX_4090, found `-`"),
            (
                "payout=0x12",
                "`payout=0x12`: expected an address of 0x and 40 hex digits, found `0x12`",
            ),
            ("dph<=10000000000000", "`dph<=10000000000000`: `10000000000000` is out of range"),
        ];
        for (query, message) in cases {
            assert_eq!(err(query), message, "{query}");
        }
    }

    #[test]
    fn machine_facts_and_age_convert_exactly() {
        assert_eq!(sql("inet_down>=1000"), (" AND (inet_down_mbps >= ?)".into(), vec![int(1000)]));
        assert_eq!(sql("inet_up<100").0, " AND (inet_up_mbps < ?)");
        assert_eq!(sql("disk>=500.5"), (" AND (disk_mb >= ?)".into(), vec![int(500_500)]));
        // Age compares thousandths of seconds: 1.5 days is 129 600 s.
        assert_eq!(
            sql("age_days>=1.5"),
            (" AND (((?1 - first_seen) * 1000) >= ?)".into(), vec![int(129_600_000)])
        );
        assert_eq!(
            err("age_days>=old"),
            "`age_days>=old`: expected days such as 30 or 0.5 (at most 3 decimals), found `old`"
        );
        assert_eq!(
            err("age_days>=999999999999999"),
            "`age_days>=999999999999999`: `999999999999999` is out of range"
        );
        assert_eq!(
            err("inet_down>=1.5"),
            "`inet_down>=1.5`: expected whole Mbit/s such as 1000, found `1.5`"
        );
    }

    #[test]
    fn conflicts_is_a_boolean_that_lifts_the_default() {
        let query = parse("conflicts=true").unwrap();
        assert!(query.mentions_conflicts());
        assert!(!parse("num_gpus>=1").unwrap().mentions_conflicts());
        assert_eq!(sql("conflicts=true"), (format!(" AND ({CONFLICT_SQL} = ?)"), vec![int(1)]));
        assert_eq!(
            err("conflicts>true"),
            "`conflicts` does not support `>` (in `conflicts>true`); use one of = !="
        );
    }

    #[test]
    fn cursors_round_trip_and_belong_to_one_order() {
        let id: OfferId = "0011223344556677".parse().unwrap();
        for (order, value) in [("dph", Some(360_000)), ("cuda-", None), ("age_days", Some(-5))] {
            let order = Order::parse(order).unwrap();
            let cursor = Cursor::after(order, value, id);
            let text = cursor.encode();
            assert!(text.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
            assert_eq!(Cursor::decode(&text, order).unwrap(), cursor);
        }
        let text = Cursor::after(Order::default(), Some(1), id).encode();
        assert_eq!(
            Cursor::decode(&text, Order::parse("gpu_ram").unwrap()).unwrap_err().to_string(),
            "invalid `cursor`: it continues a search sorted by `dph`, not `gpu_ram`; repeat \
             that order, or start again without a cursor"
        );
        for junk in ["", "xyz", "00", &encode_hex(b"dph|1"), &encode_hex(b"dph|x|0011223344556677")]
        {
            assert_eq!(
                Cursor::decode(junk, Order::default()).unwrap_err().to_string(),
                "invalid `cursor`: it is not a cursor from this API, or start again without a \
                 cursor",
                "{junk}"
            );
        }
    }

    #[test]
    fn keyset_conditions_follow_the_order() {
        let id: OfferId = "0011223344556677".parse().unwrap();
        let keyset = |order: &str, value| {
            let (mut sql, mut params) = (String::new(), Vec::new());
            Cursor::after(Order::parse(order).unwrap(), value, id).push_sql(&mut sql, &mut params);
            (sql, params)
        };
        let id = text("0011223344556677");
        assert_eq!(
            keyset("dph", Some(5)),
            (
                " AND (price_per_hour > ? OR (price_per_hour = ? AND id > ?))".into(),
                vec![int(5), int(5), id.clone()]
            )
        );
        assert_eq!(
            keyset("dph-", Some(5)).0,
            " AND (price_per_hour < ? OR (price_per_hour = ? AND id > ?))"
        );
        assert_eq!(
            keyset("age_days", Some(5)).0,
            " AND (first_seen < ? OR (first_seen = ? AND id > ?))"
        );
        assert_eq!(
            keyset("cuda", Some(12_400)).0,
            " AND (cuda IS NULL OR cuda > ? OR (cuda = ? AND id > ?))"
        );
        assert_eq!(keyset("cuda-", None), (" AND (cuda IS NULL AND id > ?)".into(), vec![id]));
    }

    #[test]
    fn overlong_queries_are_refused() {
        let long = "num_gpus>=1 ".repeat(MAX_QUERY_LEN / 12 + 1);
        assert!(matches!(parse(&long), Err(QueryError::TooLong { .. })));
    }
}
