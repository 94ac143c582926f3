//! Why a query, a sort order or a cursor was refused.

use gpuflow_protocol::search::{OPERATORS, SearchField};

/// Why a search query or sort order was refused. Every message names the offending term
/// and says what was expected, so it can be shown to the user as is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The query text is longer than [`super::MAX_QUERY_LEN`] bytes.
    #[error("query is {len} bytes long, more than the {max} allowed")]
    TooLong {
        /// Length of the refused query.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A term has a field name but no operator after it.
    #[error("missing operator in `{term}`; expected one of {}", OPERATORS)]
    MissingOperator {
        /// The term as typed.
        term: String,
    },
    /// A quote that is not closed.
    #[error("unclosed quote in `{text}`; close it, e.g. gpu_name=\"RTX 4090\"")]
    UnclosedQuote {
        /// The query from the quote on.
        text: String,
    },
    /// A term starts with an operator instead of a field name.
    #[error("missing field name before the operator in `{term}`")]
    MissingField {
        /// The term as typed.
        term: String,
    },
    /// A term ends after its operator.
    #[error("missing value after the operator in `{term}`")]
    MissingValue {
        /// The term as typed.
        term: String,
    },
    /// A run of operator characters that is not one of the known operators.
    #[error("unknown operator `{op}` in `{term}`; expected one of {}", OPERATORS)]
    UnknownOperator {
        /// The term as typed.
        term: String,
        /// The operator as typed.
        op: String,
    },
    /// The field is not one the query language knows.
    #[error("unknown field `{field}` in `{term}`; known fields: {}", SearchField::names())]
    UnknownField {
        /// The term as typed.
        term: String,
        /// The field name as typed.
        field: String,
    },
    /// A Vast.ai field for a measure gpuflow does not have.
    #[error(
        "`{field}` in `{term}` is a Vast.ai field for something not available here; known \
         fields: {}",
        SearchField::names()
    )]
    Unavailable {
        /// The term as typed.
        term: String,
        /// The field name as typed.
        field: String,
    },
    /// The operator makes no sense for the field's type (ordering text, for instance).
    #[error("`{field}` does not support `{op}` (in `{term}`); use one of {supported}")]
    UnsupportedOperator {
        /// The term as typed.
        term: String,
        /// The field name.
        field: String,
        /// The refused operator.
        op: String,
        /// The operators the field accepts, space separated.
        supported: &'static str,
    },
    /// `in` or `notin` was given a single value instead of a list.
    #[error("`{term}`: `{op}` takes a list such as [a,b,c]")]
    ExpectedList {
        /// The term as typed.
        term: String,
        /// The operator.
        op: String,
    },
    /// A comparison operator was given a list.
    #[error("`{term}`: `{op}` takes a single value; use `in` or `notin` for a list")]
    UnexpectedList {
        /// The term as typed.
        term: String,
        /// The operator.
        op: String,
    },
    /// A list is opened with `[` but never closed.
    #[error("unclosed list in `{term}`: expected `]`")]
    UnclosedList {
        /// The term as typed.
        term: String,
    },
    /// A list has no items.
    #[error("empty list in `{term}`")]
    EmptyList {
        /// The term as typed.
        term: String,
    },
    /// A list's items are not separated by single commas.
    #[error("`{term}`: list items must be separated by commas, as in [a,b,c]")]
    MalformedList {
        /// The term as typed.
        term: String,
    },
    /// A bracket or comma where a term should start.
    #[error("unexpected `{token}` where a term should start; terms look like `num_gpus>=2`")]
    Unexpected {
        /// The stray token.
        token: String,
    },
    /// A value that cannot be read as the field's type.
    #[error("`{term}`: expected {expected}, found `{value}`")]
    BadValue {
        /// The term as typed.
        term: String,
        /// The offending value.
        value: String,
        /// What the field takes, with an example.
        expected: String,
    },
    /// A well-formed number too large to compare with any stored value.
    #[error("`{term}`: `{value}` is out of range")]
    OutOfRange {
        /// The term as typed.
        term: String,
        /// The offending value.
        value: String,
    },
    /// The sort order names a field that cannot be sorted on.
    #[error(
        "cannot sort by `{order}`; sortable fields: {}, add `-` for descending (e.g. `dph-`)",
        SearchField::sortable_names()
    )]
    UnknownOrder {
        /// The order as typed.
        order: String,
    },
    /// Sort keys that cannot be combined as given.
    #[error("cannot sort by `{order}`: {why}")]
    BadOrder {
        /// The order as typed.
        order: String,
        /// What is wrong with it.
        why: String,
    },
    /// The pagination cursor was not issued by this API for this sort order.
    #[error("invalid `cursor`: {reason}, or start again without a cursor")]
    BadCursor {
        /// What is wrong with it.
        reason: String,
    },
}
