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
//!   `disk`, `reliability`, `uptime`, `rentals`) take every operator.
//! * Text (`gpu_name`, `driver`, `region`, `payout`) takes `=`, `!=`, `in`, `notin` and
//!   compares without regard to ASCII case, with `_` and a space the same character on
//!   both sides: `region=eu_central` matches a region stored as `eu_central` or
//!   `EU Central`.
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
//! * `reliability` and `uptime` are shares from 0 to 1 (up to six decimals, e.g.
//!   `reliability>0.99`) as this node last scored the provider (see `node/RELIABILITY.md`);
//!   `rentals` counts the rentals of the provider's machine, `completed_rentals` those that
//!   ended without a downtime credit, `sla_credits` the downtime credits paid back to its
//!   renters. An offer whose provider
//!   was never listed long enough to have an uptime matches no `uptime` condition.
//!
//! Queries are evaluated against the store's in-memory index (`store/index.rs`), never
//! turned into SQL, so nothing a user types reaches the database.

use std::cmp::Ordering;

use gpuflow_protocol::{OfferId, parse_units};

use crate::{OfferSummary, QueryError, store::SearchScores};

/// Longest query text accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 4096;

pub(crate) const OPERATORS: &str = "= == != < <= > >= in notin";
pub(crate) const FIELDS: &str = "gpu_name num_gpus gpu_ram dph verified cuda driver region \
    payout age_days inet_down inet_up disk reliability uptime rentals completed_rentals \
    sla_credits conflicts";
pub(crate) const SORTABLE: &str = "dph gpu_ram num_gpus cuda age_days inet_down inet_up disk \
    reliability uptime rentals completed_rentals sla_credits";

/// The numbers of one offer that conditions compare and results are sorted by, as stored in
/// SQLite, packed small so that a search scans little memory. Text that many offers share
/// (region, driver) is interned by the index; [`Candidate`] carries its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Facts {
    pub(crate) id: OfferId,
    pub(crate) price_per_hour: i64,
    pub(crate) gpu_ram_mb: i64,
    pub(crate) num_gpus: i64,
    /// Unix time this node first stored an offer of the provider.
    pub(crate) first_seen: i64,
    pub(crate) expires_at: i64,
    /// The latest expiry of another offer sharing a GPU UUID with this one, 0 when none.
    pub(crate) conflict_until: i64,
    /// CUDA version in thousandths, `None` when unreadable.
    pub(crate) cuda: Option<i64>,
    pub(crate) inet_down_mbps: Option<i64>,
    pub(crate) inet_up_mbps: Option<i64>,
    pub(crate) disk_mb: Option<i64>,
    /// The provider's reliability, in millionths.
    pub(crate) reliability: i64,
    /// The provider's uptime, in millionths; `None` before any listed time was measured.
    pub(crate) uptime: Option<i64>,
    /// Rentals of the provider's machine.
    pub(crate) rentals: i64,
    /// Those that ended without a downtime credit.
    pub(crate) completed_rentals: i64,
    /// Downtime credits paid back to the machine's renters.
    pub(crate) sla_credits: i64,
    /// Interned region and driver (see `store/index.rs`).
    pub(crate) region: u32,
    pub(crate) driver: u32,
    pub(crate) verified: bool,
}

/// A share in [0, 1] in millionths, as conditions compare it.
pub(crate) fn millionths(share: f64) -> i64 {
    (share.clamp(0.0, 1.0) * 1_000_000.0).round() as i64
}

impl Facts {
    /// Sets the provider's scores; answers whether any changed.
    pub(crate) fn set_scores(&mut self, scores: SearchScores) -> bool {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let scores = (
            millionths(scores.reliability),
            scores.uptime.map(millionths),
            count(scores.rentals),
            count(scores.completed_rentals),
            count(scores.sla_credits),
        );
        let changed =
            (self.reliability, self.uptime, self.rentals, self.completed_rentals, self.sla_credits)
                != scores;
        (self.reliability, self.uptime, self.rentals, self.completed_rentals, self.sla_credits) =
            scores;
        changed
    }

    /// Whether the offer shares a GPU UUID with another offer live at `now`.
    pub(crate) fn conflicts(&self, now: i64) -> bool {
        self.conflict_until > now
    }
}

/// One offer as a query sees it.
#[derive(Clone, Copy)]
pub(crate) struct Candidate<'a> {
    pub(crate) facts: &'a Facts,
    /// The text of an interned region or driver.
    pub(crate) text: &'a dyn Fn(u32) -> &'a str,
    /// Read only by `payout` conditions, which are rare: the rest of a search stays in
    /// [`Facts`].
    pub(crate) summary: &'a OfferSummary,
}

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
    /// The provider's reliability score.
    Reliability,
    /// The provider's uptime.
    Uptime,
    /// Rentals of the provider.
    Rentals,
    /// Rentals of the provider that ended without a downtime credit.
    CompletedRentals,
    /// Downtime credits paid back to the provider's renters.
    SlaCredits,
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
    Reliability,
    Uptime,
    Rentals,
    CompletedRentals,
    SlaCredits,
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

    /// Whether the `gpu_name` conditions hold for a GPU name's padded word list (see
    /// [`name_words`]); the index tests them once per name, not per offer.
    pub(crate) fn matches_name(&self, words: &str) -> bool {
        self.conditions.iter().filter(|c| c.field.kind() == Kind::Words).all(|c| {
            let any = c.values.iter().any(|v| matches!(v, Value::Text(v) if words.contains(v)));
            any == matches!(c.op, Op::Eq | Op::In)
        })
    }

    /// Whether no offer whose numbers lie between `low` and `high` (each field's smallest
    /// and largest known value, `None` when none is known) can match at `now`, so that a
    /// whole group of offers can be skipped: a GPU model without 48 GB, say.
    pub(crate) fn rules_out(&self, low: &Facts, high: &Facts, now: i64) -> bool {
        self.conditions.iter().any(|c| {
            if c.field.kind() != Kind::Number {
                return false;
            }
            let (a, b) = (c.field.number(low, now), c.field.number(high, now));
            let (Some(a), Some(b)) = (a, b) else {
                // Nothing known: an unknown value matches no condition.
                return true;
            };
            // The age runs against the first sighting.
            let (least, most) = (a.min(b), a.max(b));
            let beyond = |v: &Value| match v {
                Value::Int(v) => *v < least || *v > most,
                _ => false,
            };
            let first = c.values.first();
            match c.op {
                Op::Eq => first.is_some_and(beyond),
                Op::In => c.values.iter().all(beyond),
                Op::Lt => first.is_some_and(|v| matches!(v, Value::Int(v) if least >= *v)),
                Op::Le => first.is_some_and(|v| matches!(v, Value::Int(v) if least > *v)),
                Op::Gt => first.is_some_and(|v| matches!(v, Value::Int(v) if most <= *v)),
                Op::Ge => first.is_some_and(|v| matches!(v, Value::Int(v) if most < *v)),
                Op::Ne | Op::NotIn => false,
            }
        })
    }

    /// Whether every condition but the `gpu_name` ones holds for `offer` at `now`.
    pub(crate) fn matches(&self, offer: Candidate<'_>, now: i64) -> bool {
        self.conditions.iter().all(|c| c.holds(offer, now))
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
            SortKey::Reliability => "reliability",
            SortKey::Uptime => "uptime",
            SortKey::Rentals => "rentals",
            SortKey::CompletedRentals => "completed_rentals",
            SortKey::SlaCredits => "sla_credits",
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
            "reliability" => SortKey::Reliability,
            "uptime" => SortKey::Uptime,
            "rentals" => SortKey::Rentals,
            "completed_rentals" => SortKey::CompletedRentals,
            "sla_credits" => SortKey::SlaCredits,
            _ => {
                return Err(QueryError::UnknownOrder { order: text.to_owned() });
            }
        };
        Ok(Self { key, descending })
    }

    /// The value `offer` is sorted by, as stored (the age sorts by the first sighting), so
    /// that a page's last offer can become the next page's cursor; `None` when unknown.
    pub(crate) fn value(self, offer: &Facts) -> Option<i64> {
        match self.key {
            SortKey::Dph => Some(offer.price_per_hour),
            SortKey::GpuRam => Some(offer.gpu_ram_mb),
            SortKey::NumGpus => Some(offer.num_gpus),
            SortKey::Cuda => offer.cuda,
            SortKey::AgeDays => Some(offer.first_seen),
            SortKey::InetDown => offer.inet_down_mbps,
            SortKey::InetUp => offer.inet_up_mbps,
            SortKey::Disk => offer.disk_mb,
            SortKey::Reliability => Some(offer.reliability),
            SortKey::Uptime => offer.uptime,
            SortKey::Rentals => Some(offer.rentals),
            SortKey::CompletedRentals => Some(offer.completed_rentals),
            SortKey::SlaCredits => Some(offer.sla_credits),
        }
    }

    /// Whether the stored value runs largest first (a larger age is an earlier sighting).
    fn value_descending(self) -> bool {
        self.descending != (self.key == SortKey::AgeDays)
    }

    /// Where the sort values `a` and `b` go relative to each other: unknown values last
    /// whatever the direction. Ties are for the offer id to break.
    fn compare_values(self, a: Option<i64>, b: Option<i64>) -> Ordering {
        match (a, b) {
            (Some(a), Some(b)) if self.value_descending() => b.cmp(&a),
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }

    /// Where `a` goes relative to `b` in this order; ties go by offer id.
    pub(crate) fn compare(self, a: &Facts, b: &Facts) -> Ordering {
        self.compare_values(self.value(a), self.value(b))
            .then_with(|| a.id.to_bytes().cmp(&b.id.to_bytes()))
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

    /// Whether `offer` sorts after the cursor, so belongs to a later page.
    pub(crate) fn precedes(&self, offer: &Facts) -> bool {
        let order = self.order;
        order
            .compare_values(self.value, order.value(offer))
            .then_with(|| self.id.to_bytes().cmp(&offer.id.to_bytes()))
            .is_lt()
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

/// Whether two texts are equal without regard to ASCII case, reading `_` as a space in
/// both (a query cannot contain a space, and a stored value may use either).
fn same_text(a: &str, b: &str) -> bool {
    let fold = |byte: u8| if byte == b'_' { b' ' } else { byte.to_ascii_lowercase() };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
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
            "reliability" => Self::Reliability,
            "uptime" => Self::Uptime,
            "rentals" => Self::Rentals,
            "completed_rentals" => Self::CompletedRentals,
            "sla_credits" => Self::SlaCredits,
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
            | Self::Disk
            | Self::Reliability
            | Self::Uptime
            | Self::Rentals
            | Self::CompletedRentals
            | Self::SlaCredits => Kind::Number,
            Self::Driver | Self::Region | Self::Payout => Kind::Text,
            Self::GpuName => Kind::Words,
            Self::Verified | Self::Conflicts => Kind::Bool,
        }
    }

    /// The SQL the field is compared against; text columns are declared `COLLATE NOCASE`.
    /// The number `offer` holds for a numeric field, `None` when unknown. The age is in
    /// thousandths of seconds at `now`, so that fractional days compare exactly.
    fn number(self, offer: &Facts, now: i64) -> Option<i64> {
        match self {
            Self::NumGpus => Some(offer.num_gpus),
            Self::GpuRam => Some(offer.gpu_ram_mb),
            Self::Dph => Some(offer.price_per_hour),
            Self::Cuda => offer.cuda,
            // Stored times are small enough for this not to overflow; saturating anyway.
            Self::AgeDays => Some(now.saturating_sub(offer.first_seen).saturating_mul(1000)),
            Self::InetDown => offer.inet_down_mbps,
            Self::InetUp => offer.inet_up_mbps,
            Self::Disk => offer.disk_mb,
            Self::Reliability => Some(offer.reliability),
            Self::Uptime => offer.uptime,
            Self::Rentals => Some(offer.rentals),
            Self::CompletedRentals => Some(offer.completed_rentals),
            Self::SlaCredits => Some(offer.sla_credits),
            _ => None,
        }
    }

    /// The text `offer` holds for a text field, compared without regard to ASCII case.
    fn text(self, offer: Candidate<'_>) -> &str {
        match self {
            Self::Driver => (offer.text)(offer.facts.driver),
            Self::Region => (offer.text)(offer.facts.region),
            Self::Payout => &offer.summary.payout,
            _ => "",
        }
    }

    /// The truth `offer` holds for a boolean field at `now`.
    fn flag(self, offer: &Facts, now: i64) -> bool {
        match self {
            Self::Verified => offer.verified,
            Self::Conflicts => offer.conflicts(now),
            _ => false,
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
            Self::Reliability | Self::Uptime => {
                let share = number(6, "a share from 0 to 1 such as 0.99 (at most 6 decimals)")?;
                if share > 1_000_000 {
                    return Err(
                        bad("a share from 0 to 1 such as 0.99 (at most 6 decimals)".into()),
                    );
                }
                Ok(Value::Int(share))
            }
            Self::Rentals | Self::CompletedRentals | Self::SlaCredits => {
                number(0, "a whole number such as 3").map(Value::Int)
            }
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

    /// Whether a found value stands in this relation to the condition's `values`, given how
    /// it compares with each of them.
    fn relates(self, values: &[Value], compare: impl Fn(&Value) -> Ordering) -> bool {
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

impl Condition {
    /// Whether the condition holds for `offer` at `now`. A field whose value is unknown
    /// matches no condition, not even a negative one; `gpu_name` conditions are tested per
    /// name by [`Query::matches_name`].
    fn holds(&self, offer: Candidate<'_>, now: i64) -> bool {
        match self.field.kind() {
            Kind::Words => true,
            Kind::Number => self.field.number(offer.facts, now).is_some_and(|found| {
                self.op.relates(&self.values, |v| match v {
                    Value::Int(v) => found.cmp(v),
                    _ => Ordering::Less,
                })
            }),
            Kind::Text => {
                let found = self.field.text(offer);
                self.op.relates(&self.values, |v| match v {
                    Value::Text(v) if same_text(found, v) => Ordering::Equal,
                    _ => Ordering::Less,
                })
            }
            Kind::Bool => {
                let found = self.field.flag(offer.facts, now);
                self.op.relates(&self.values, |v| match v {
                    Value::Bool(v) if *v == found => Ordering::Equal,
                    _ => Ordering::Less,
                })
            }
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
        let field = Field::from_name(&name).ok_or_else(|| QueryError::UnknownField {
            term: term.to_owned(),
            field: self.field.to_owned(),
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

    /// The conditions a query compiles to: field, operator and values.
    fn terms(text: &str) -> Vec<(Field, Op, Vec<Value>)> {
        let query = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        query.conditions.into_iter().map(|c| (c.field, c.op, c.values)).collect()
    }

    fn err(text: &str) -> String {
        parse(text).expect_err(text).to_string()
    }

    fn int(v: i64) -> Value {
        Value::Int(v)
    }

    fn text(v: &str) -> Value {
        Value::Text(v.into())
    }

    /// An offer as a query sees it, with its texts.
    struct TestOffer {
        facts: Facts,
        region: String,
        driver: String,
        summary: crate::OfferSummary,
    }

    impl TestOffer {
        /// Its candidate, handed to `check`.
        fn check<T>(&self, check: impl FnOnce(Candidate<'_>) -> T) -> T {
            let text = |id: u32| if id == 0 { self.region.as_str() } else { self.driver.as_str() };
            check(Candidate { facts: &self.facts, text: &text, summary: &self.summary })
        }
    }

    /// An offer with id `id` (as 16 hex digits) of two RTX 4090, after `edit`.
    fn offer(id: u64, edit: impl FnOnce(&mut TestOffer)) -> TestOffer {
        let id = format!("{id:016x}").parse().unwrap();
        let mut offer = TestOffer {
            facts: Facts {
                id,
                price_per_hour: 360_000,
                gpu_ram_mb: 25_757,
                num_gpus: 2,
                first_seen: 1_000,
                expires_at: 2_000,
                conflict_until: 0,
                cuda: Some(12_400),
                inet_down_mbps: Some(1_000),
                inet_up_mbps: None,
                disk_mb: Some(500_000),
                reliability: 900_000,
                uptime: None,
                rentals: 0,
                completed_rentals: 0,
                sla_credits: 0,
                region: 0,
                driver: 1,
                verified: false,
            },
            region: "EU-West".into(),
            driver: "550.54.14".into(),
            summary: crate::OfferSummary {
                id,
                peer_id: "peer".into(),
                payout: format!("0x{}", "ab".repeat(20)),
                gpu_name: "NVIDIA GeForce RTX 4090".into(),
                num_gpus: 2,
                gpu_ram_mb: 25_757,
                price_per_second: 100,
                price_per_hour: 360_000,
                verified: false,
                region: "EU-West".into(),
                cuda: "12.4".into(),
                driver: "550.54.14".into(),
                listen_addrs: Vec::new(),
                seq: 1,
                issued_at: 1_000,
                expires_at: 2_000,
                first_seen: 1_000,
                conflicts: false,
                inet_down_mbps: Some(1_000),
                inet_up_mbps: None,
                disk_mb: Some(500_000),
                reliability: 0.9,
                uptime: None,
                rentals: 0,
                completed_rentals: 0,
                sla_credits: 0,
            },
        };
        edit(&mut offer);
        offer
    }

    /// Whether `query` selects `offer` at time 1 500.
    fn selects(query: &str, offer: &TestOffer) -> bool {
        let query = parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        query.matches_name(&name_words(&offer.summary.gpu_name))
            && offer.check(|candidate| query.matches(candidate, 1_500))
    }

    #[test]
    fn empty_query_matches_everything() {
        assert_eq!(parse("").unwrap(), Query::default());
        assert_eq!(parse("   \t ").unwrap(), Query::default());
        assert!(terms("").is_empty());
        assert!(selects("", &offer(1, |_| {})));
    }

    #[test]
    fn every_comparison_operator() {
        for (op, parsed, holds) in [
            ("=", Op::Eq, [false, true, false]),
            ("==", Op::Eq, [false, true, false]),
            ("!=", Op::Ne, [true, false, true]),
            ("<", Op::Lt, [true, false, false]),
            ("<=", Op::Le, [true, true, false]),
            (">", Op::Gt, [false, false, true]),
            (">=", Op::Ge, [false, true, true]),
        ] {
            let query = format!("num_gpus{op}2");
            assert_eq!(terms(&query), [(Field::NumGpus, parsed, vec![int(2)])], "{op}");
            for (gpus, holds) in [1, 2, 3].into_iter().zip(holds) {
                assert_eq!(selects(&query, &offer(1, |o| o.facts.num_gpus = gpus)), holds);
            }
        }
    }

    #[test]
    fn spaces_around_operators_are_allowed() {
        assert_eq!(terms("gpu_ram >= 24"), terms("gpu_ram>=24"));
        assert_eq!(terms("num_gpus in [ 1 , 2 ]"), terms("num_gpus in [1,2]"));
        assert_eq!(terms("num_gpus in[1,2]"), terms("num_gpus in [1,2]"));
    }

    #[test]
    fn in_and_notin_take_lists() {
        assert_eq!(
            terms("num_gpus in [1,2,4]"),
            [(Field::NumGpus, Op::In, vec![int(1), int(2), int(4)])]
        );
        assert_eq!(
            terms("region notin [eu-west,US_East]"),
            [(Field::Region, Op::NotIn, vec![text("eu-west"), text("US East")])]
        );
        assert_eq!(terms("num_gpus IN [1]"), terms("num_gpus in [1]"));
        let two = offer(1, |_| {});
        assert!(selects("num_gpus in [1,2,4]", &two));
        assert!(!selects("num_gpus in [1,4]", &two));
        assert!(selects("num_gpus notin [1,4]", &two));
        assert!(!selects("num_gpus notin [2]", &two));
        assert!(!selects("region notin [eu-west,US_East]", &two));
        assert!(selects("region in [us_east,eu-west]", &two));
    }

    #[test]
    fn terms_are_joined_with_and() {
        assert_eq!(
            terms("num_gpus>=2 verified=true dph<=0.5"),
            [
                (Field::NumGpus, Op::Ge, vec![int(2)]),
                (Field::Verified, Op::Eq, vec![Value::Bool(true)]),
                (Field::Dph, Op::Le, vec![int(500_000)]),
            ]
        );
        let verified = offer(1, |o| o.facts.verified = true);
        assert!(selects("num_gpus>=2 verified=true dph<=0.5", &verified));
        assert!(!selects("num_gpus>=2 verified=true dph<=0.35", &verified));
        assert!(!selects("num_gpus>=2 verified=true dph<=0.5", &offer(1, |_| {})));
    }

    #[test]
    fn gpu_name_matches_whole_words() {
        assert_eq!(
            terms("gpu_name=RTX_4090"),
            [(Field::GpuName, Op::Eq, vec![text(" rtx 4090 ")])]
        );
        assert_eq!(
            terms("gpu_name in [A100-SXM4-80GB,H100]"),
            [(Field::GpuName, Op::In, vec![text(" a100 sxm4 80gb "), text(" h100 ")])]
        );
        let words = name_words("NVIDIA GeForce RTX 4090");
        let name = |query: &str| parse(query).unwrap().matches_name(&words);
        assert!(name("gpu_name=RTX_4090"));
        assert!(!name("gpu_name!=rtx_4090"));
        assert!(name("gpu_name in [A100-SXM4-80GB,geforce_rtx]"));
        assert!(!name("gpu_name in [A100-SXM4-80GB,H100]"));
        assert!(name("gpu_name notin [H100]"));
        assert!(!name("gpu_name notin [H100,4090]"));
        assert!(name("gpu_name=nvidia gpu_name!=RTX_3090"));
        assert!(!name("gpu_name=nvidia gpu_name!=RTX_4090"));
        assert_eq!(name_words("NVIDIA GeForce RTX 4090"), " nvidia geforce rtx 4090 ");
        assert!(name_words("NVIDIA GeForce RTX 4090").contains(&name_words("RTX_4090")));
        assert!(name_words("NVIDIA A100-SXM4-80GB").contains(&name_words("a100")));
        assert!(!name_words("NVIDIA L40S").contains(&name_words("L40")));
        assert!(!name_words("NVIDIA GeForce RTX 4090").contains(&name_words("RTX_409")));
    }

    #[test]
    fn numbers_convert_exactly() {
        let values = |query: &str| terms(query).remove(0).2;
        assert_eq!(values("gpu_ram>=24"), vec![int(24_000)]);
        assert_eq!(values("gpu_ram>=79.5"), vec![int(79_500)]);
        assert_eq!(values("gpu_ram<25.757"), vec![int(25_757)]);
        assert_eq!(values("dph<=0.35"), vec![int(350_000)]);
        assert_eq!(values("dph<=0.000001"), vec![int(1)]);
        assert_eq!(Query::parse("dph<=2", 18).unwrap(), Query::parse("dph<=2.0", 18).unwrap());
        assert_eq!(values("dph<=2"), vec![int(2_000_000)]);
        assert_eq!(values("cuda>=12.4"), vec![int(12_400)]);
        assert_eq!(values("cuda>=12"), vec![int(12_000)]);
        assert_eq!(cuda_thousandths("12.4"), Some(12_400));
        assert_eq!(cuda_thousandths("N/A"), None);
        let machine = offer(1, |_| {});
        assert!(selects("gpu_ram>=25.757 gpu_ram<=25.757 dph<=0.36 cuda>=12.4", &machine));
        assert!(!selects("gpu_ram>25.757", &machine));
        assert!(!selects("dph<0.36", &machine));
    }

    #[test]
    fn text_values_read_underscores_as_spaces() {
        assert_eq!(terms("region=us_east_1").remove(0).2, vec![text("us east 1")]);
        assert_eq!(terms("driver=550.54.14").remove(0).2, vec![text("550.54.14")]);
        assert_eq!(terms("region==EU-West"), [(Field::Region, Op::Eq, vec![text("EU-West")])]);
        let machine = offer(1, |o| o.region = "us east 1".into());
        assert!(selects("region=US_EAST_1 driver=550.54.14", &machine));
        assert!(!selects("region!=us_east_1", &machine));
    }

    #[test]
    fn underscores_and_spaces_are_the_same_in_stored_and_queried_text() {
        let underscored = offer(1, |o| o.region = "eu_central".into());
        let spaced = offer(2, |o| o.region = "EU Central".into());
        for machine in [&underscored, &spaced] {
            assert!(selects("region=eu_central", machine));
            assert!(selects("region=EU_CENTRAL gpu_name=RTX_4090", machine));
            assert!(selects("region in [eu-west,eu_central]", machine));
            assert!(!selects("region!=eu_central", machine));
            assert!(!selects("region=eu_centra", machine));
        }
        assert!(!selects("region=eu-central", &underscored));
        assert!(selects("gpu_name=rtx_4090 gpu_name=GeForce_RTX", &underscored));
        assert!(!selects("gpu_name=RTX_409", &underscored));
    }

    #[test]
    fn booleans_and_addresses() {
        assert_eq!(terms("verified=TRUE").remove(0).2, vec![Value::Bool(true)]);
        assert_eq!(terms("verified!=false"), [(Field::Verified, Op::Ne, vec![Value::Bool(false)])]);
        let address = format!("0x{}", "AB".repeat(20));
        assert_eq!(
            terms(&format!("payout={address}")),
            [(Field::Payout, Op::Eq, vec![text(&format!("0x{}", "ab".repeat(20)))])]
        );
        let machine = offer(1, |_| {});
        assert!(selects(&format!("payout={address} verified=false"), &machine));
        assert!(!selects("verified!=false", &machine));
    }

    #[test]
    fn field_names_ignore_case() {
        assert_eq!(terms("NUM_GPUS>=2"), terms("num_gpus>=2"));
    }

    /// Ids of `offers` sorted by `order`.
    fn sorted(order: &str, mut offers: Vec<TestOffer>) -> Vec<String> {
        let order = Order::parse(order).unwrap();
        offers.sort_by(|a, b| order.compare(&a.facts, &b.facts));
        offers.iter().map(|o| o.facts.id.to_string()[12..].to_owned()).collect()
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
        assert_eq!(
            Order::parse("region").unwrap_err().to_string(),
            "cannot sort by `region`; sortable fields: dph gpu_ram num_gpus cuda age_days \
             inet_down inet_up disk reliability uptime rentals completed_rentals sla_credits, \
             add `-` for descending (e.g. `dph-`)"
        );
        for text in
            ["dph", "gpu_ram-", "num_gpus", "cuda-", "age_days", "inet_down-", "inet_up", "disk-"]
        {
            assert_eq!(Order::parse(text).unwrap().to_string(), text);
        }
        assert!(Order::parse("").is_err());
        assert!(Order::parse("-dph").is_err());

        // Unknown values last either way, ties by id; the youngest first for `age_days`.
        let machines = || {
            vec![
                offer(4, |o| o.facts.cuda = Some(12_200)),
                offer(3, |o| o.facts.cuda = None),
                offer(2, |o| o.facts.cuda = Some(12_800)),
                offer(1, |o| o.facts.cuda = Some(12_200)),
            ]
        };
        assert_eq!(sorted("cuda", machines()), ["0001", "0004", "0002", "0003"]);
        assert_eq!(sorted("cuda-", machines()), ["0002", "0001", "0004", "0003"]);
        let seen = || {
            vec![
                offer(1, |o| o.facts.first_seen = 30),
                offer(2, |o| o.facts.first_seen = 10),
                offer(3, |o| o.facts.first_seen = 20),
            ]
        };
        assert_eq!(sorted("age_days", seen()), ["0001", "0003", "0002"]);
        assert_eq!(sorted("age_days-", seen()), ["0002", "0003", "0001"]);
        let disks = vec![offer(2, |o| o.facts.disk_mb = None), offer(1, |_| {})];
        assert_eq!(sorted("disk", disks), ["0001", "0002"]);
    }

    #[test]
    fn unknown_fields_and_bad_scores_are_named() {
        assert_eq!(
            err("num_gpus>=1 gpu_nam=RTX_4090"),
            "unknown field `gpu_nam` in `gpu_nam=RTX_4090`; known fields: gpu_name num_gpus \
             gpu_ram dph verified cuda driver region payout age_days inet_down inet_up disk \
             reliability uptime rentals completed_rentals sla_credits conflicts"
        );
        assert_eq!(
            err("reliability>1.5"),
            "`reliability>1.5`: expected a share from 0 to 1 such as 0.99 (at most 6 decimals), \
             found `1.5`"
        );
        assert_eq!(
            err("rentals>=two"),
            "`rentals>=two`: expected a whole number such as 3, found `two`"
        );
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
    fn scores_compare_in_millionths() {
        assert_eq!(terms("reliability>0.99"), [(Field::Reliability, Op::Gt, vec![int(990_000)])]);
        assert_eq!(terms("uptime>=0.9995"), [(Field::Uptime, Op::Ge, vec![int(999_500)])]);
        assert_eq!(terms("rentals>=3"), [(Field::Rentals, Op::Ge, vec![int(3)])]);
        assert_eq!(
            terms("completed_rentals>=2 sla_credits=0"),
            [
                (Field::CompletedRentals, Op::Ge, vec![int(2)]),
                (Field::SlaCredits, Op::Eq, vec![int(0)])
            ]
        );
        let mut scored = offer(1, |_| {});
        let scores = SearchScores {
            reliability: 0.991_234_4,
            uptime: Some(0.95),
            rentals: 4,
            completed_rentals: 3,
            sla_credits: 1,
        };
        assert!(scored.facts.set_scores(scores));
        assert!(!scored.facts.set_scores(scores), "nothing changed");
        assert!(scored.facts.set_scores(SearchScores { sla_credits: 2, ..scores }));
        assert!(scored.facts.set_scores(scores), "a credit is a change");
        assert_eq!((scored.facts.reliability, scored.facts.uptime), (991_234, Some(950_000)));
        assert!(selects("reliability>0.99 uptime>=0.95 rentals>=4", &scored));
        assert!(!selects("reliability>0.991235", &scored));
        assert!(!selects("rentals>4", &scored));
        assert!(selects("completed_rentals=3 sla_credits>=1 sla_credits in [1,2]", &scored));
        assert!(!selects("completed_rentals>3", &scored));
        assert!(!selects("sla_credits=0", &scored));
        // A provider never listed long enough has no uptime: no uptime condition holds.
        let newcomer = offer(2, |_| {});
        assert!(selects("reliability=0.9 rentals=0 completed_rentals=0 sla_credits<1", &newcomer));
        assert!(!selects("uptime>=0", &newcomer));
        assert!(!selects("uptime<1", &newcomer));
        // Sorting: the most reliable first, unknown uptime last either way.
        let order = |text: &str| Order::parse(text).unwrap();
        assert_eq!(order("reliability-").compare(&scored.facts, &newcomer.facts), Ordering::Less);
        assert_eq!(order("uptime").compare(&scored.facts, &newcomer.facts), Ordering::Less);
        assert_eq!(order("uptime-").compare(&scored.facts, &newcomer.facts), Ordering::Less);
        assert_eq!(order("rentals").compare(&newcomer.facts, &scored.facts), Ordering::Less);
        assert_eq!(
            order("completed_rentals-").compare(&scored.facts, &newcomer.facts),
            Ordering::Less
        );
        assert_eq!(order("sla_credits").compare(&newcomer.facts, &scored.facts), Ordering::Less);
        assert!(matches!(err("sla_credits>=one"), e if e.contains("a whole number")));
    }

    #[test]
    fn machine_facts_and_age_convert_exactly() {
        assert_eq!(terms("inet_down>=1000"), [(Field::InetDown, Op::Ge, vec![int(1000)])]);
        assert_eq!(terms("inet_up<100"), [(Field::InetUp, Op::Lt, vec![int(100)])]);
        assert_eq!(terms("disk>=500.5"), [(Field::Disk, Op::Ge, vec![int(500_500)])]);
        // Age compares thousandths of seconds: 1.5 days is 129 600 s.
        assert_eq!(terms("age_days>=1.5"), [(Field::AgeDays, Op::Ge, vec![int(129_600_000)])]);
        let now = 1_000_000;
        let aged = |secs: i64| offer(1, |o| o.facts.first_seen = now - secs);
        let age = |query: &str, secs| {
            let query = parse(query).unwrap();
            aged(secs).check(|candidate| query.matches(candidate, now))
        };
        assert!(age("age_days>=1.5", 129_600));
        assert!(!age("age_days>=1.5", 129_599));
        assert!(age("age_days<0.001", 86));
        assert!(!age("age_days<0.001", 87));
        // Undeclared facts match no condition, not even a negative one.
        let machine = offer(1, |_| {});
        assert!(selects("inet_down>=1000 disk>=500", &machine));
        assert!(!selects("inet_up<100", &machine));
        assert!(!selects("inet_up!=100", &machine));
        assert!(!selects("inet_up notin [100]", &machine));
        assert!(!selects("cuda!=12.4", &offer(1, |o| o.facts.cuda = None)));
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
        assert_eq!(terms("conflicts=true"), [(Field::Conflicts, Op::Eq, vec![Value::Bool(true)])]);
        // A conflict lasts while the other offer lives: until 1 600 here, and `selects`
        // looks at 1 500.
        let disputed = offer(1, |o| o.facts.conflict_until = 1_600);
        assert!(selects("conflicts=true", &disputed));
        assert!(!selects("conflicts=false", &disputed));
        assert!(!disputed.check(|candidate| query.matches(candidate, 1_600)));
        assert!(selects("conflicts!=true", &offer(1, |_| {})));
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
        let id: OfferId = format!("{:016x}", 5).parse().unwrap();
        // Whether an offer with `value` and id `other` comes after the cursor.
        let after = |order: &str, cursor: Option<i64>, value: Option<i64>, other: u64| {
            let order = Order::parse(order).unwrap();
            let candidate = offer(other, |o| {
                o.facts.cuda = value;
                o.facts.price_per_hour = value.unwrap_or_default();
                o.facts.first_seen = value.unwrap_or_default();
            });
            Cursor::after(order, cursor, id).precedes(&candidate.facts)
        };
        for (order, cursor, value, other, expected) in [
            ("dph", Some(5), Some(6), 1, true),
            ("dph", Some(5), Some(4), 9, false),
            ("dph", Some(5), Some(5), 6, true),
            ("dph", Some(5), Some(5), 5, false),
            ("dph", Some(5), Some(5), 4, false),
            ("dph-", Some(5), Some(4), 1, true),
            ("dph-", Some(5), Some(6), 9, false),
            ("dph-", Some(5), Some(5), 6, true),
            // The oldest first: an earlier first sighting comes later in `age_days-`.
            ("age_days", Some(5), Some(4), 1, true),
            ("age_days-", Some(5), Some(6), 1, true),
            // Unknown values come last either way, so after an unknown only unknowns.
            ("cuda", Some(12_400), None, 1, true),
            ("cuda-", Some(12_400), None, 1, true),
            ("cuda", Some(12_400), Some(12_500), 1, true),
            ("cuda-", Some(12_400), Some(12_500), 9, false),
            ("cuda-", None, Some(12_500), 9, false),
            ("cuda-", None, None, 6, true),
            ("cuda-", None, None, 4, false),
        ] {
            assert_eq!(
                after(order, cursor, value, other),
                expected,
                "{order} after {cursor:?}: {value:?} of {other}"
            );
        }
    }

    #[test]
    fn ranges_rule_out_groups_that_cannot_match() {
        let low = offer(1, |o| o.facts.inet_up_mbps = None).facts;
        let high = offer(2, |o| {
            o.facts.gpu_ram_mb = 48_000;
            o.facts.price_per_hour = 720_000;
            o.facts.inet_up_mbps = None;
        })
        .facts;
        let out = |query: &str| parse(query).unwrap().rules_out(&low, &high, 1_500);
        for query in
            ["gpu_ram>48", "gpu_ram<25.757", "dph>0.72", "gpu_ram in [24,80]", "inet_up>=0"]
        {
            assert!(out(query), "{query}");
        }
        for query in [
            "",
            "gpu_ram>=48",
            "gpu_ram<=25.757",
            "gpu_ram=30",
            "gpu_ram in [24,30]",
            "gpu_ram!=30",
            "gpu_ram notin [25.757,48]",
            "region=nowhere",
            "age_days<0.006",
        ] {
            assert!(!out(query), "{query}");
        }
        // First seen at 1 000, so 0.5 s old at 1 500: between 0.005 and 0.006 days.
        assert!(out("age_days>0.006"));
        assert!(out("age_days<0.005"));
    }

    #[test]
    fn overlong_queries_are_refused() {
        let long = "num_gpus>=1 ".repeat(MAX_QUERY_LEN / 12 + 1);
        assert!(matches!(parse(&long), Err(QueryError::TooLong { .. })));
    }
}
