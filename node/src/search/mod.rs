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
//!   `disk_space`, `cpu_cores`, `cpu_ram`, `reliability`, `uptime`, `rentals`,
//!   `proven_tflops`) take every
//!   operator.
//! * Text (`gpu_name`, `driver`, `region`, `payout`) takes `=`, `!=`, `in`, `notin` and
//!   compares without regard to ASCII case, with `_` and a space the same character on
//!   both sides: `region=eu_central` matches a region stored as `eu_central` or
//!   `EU Central`.
//! * `verified`, `conflicts` and `challenge_ok` take `true` or `false` with `=` or `!=`.
//! * `image` takes an image reference, compared exactly, with `=`, `!=`, `in`, `notin`:
//!   `image=pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime` matches the offers ready to run
//!   it, those that pulled it ahead (`images`) or whose provider allows it
//!   (`allowed_images`: an entry ending in `*` allows what starts with the rest; an empty
//!   list allows any image).
//! * `gpu_name=X` holds when the words of `X` appear, in order and as whole words, in the
//!   GPU's name. Words are runs of letters and digits; everything else separates them. So
//!   `RTX_4090` matches `NVIDIA GeForce RTX 4090`, `A100` matches `NVIDIA A100-SXM4-80GB`,
//!   but `L40` does not match `NVIDIA L40S`.
//! * `gpu_ram` is GB (10⁹ bytes) per GPU with up to three decimals, compared exactly in MB;
//!   `disk_space` (free disk) and `cpu_ram` (the machine's memory) are GB the same way;
//!   `cpu_cores` counts the machine's logical CPUs, which rentals share by their GPUs; `dph` is the whole machine's price in whole tokens (dollars)
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
//! * `proven_tflops` is the dense TFLOP/s per GPU (up to three decimals) this node's latest
//!   matrix-product challenge of the machine proved, and `challenge_ok=true` finds offers
//!   whose latest challenge did not flag them (see `node/CHALLENGE.md`). A machine never
//!   challenged matches no `proven_tflops` condition and has `challenge_ok=false`.
//!
//! Queries are evaluated against the store's in-memory index (`store/index.rs`), never
//! turned into SQL, so nothing a user types reaches the database.

mod error;
mod facts;
mod fields;
mod order;
mod parse;
mod summary;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;

use gpuflow_protocol::image_ready;

pub use error::QueryError;
pub(crate) use facts::{Candidate, Facts, millionths};
use fields::{Field, FieldValues, Kind, same_text};
pub(crate) use fields::{cuda_thousandths, name_words};
pub use order::{Cursor, MAX_SORT_KEYS, Order, SortKey};
use parse::{Op, split_terms};
pub use summary::{OfferSummary, SearchScores};

/// Longest query text accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 4096;

/// A parsed search query: every condition must hold. The default query matches all offers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    conditions: Vec<Condition>,
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
            // A ratio's bounds are not the ratio of the bounds: such a field rules out
            // nothing.
            if c.field.kind() != Kind::Number || c.field == Field::DphPerGpu {
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
            // The offer's image lists stay beside the facts, read only by these terms.
            Kind::Image => {
                let (images, allowed) = (offer.images, offer.allowed_images);
                self.op.relates(&self.values, |v| match v {
                    Value::Text(image) if image_ready(images, allowed, image) => Ordering::Equal,
                    _ => Ordering::Less,
                })
            }
        }
    }
}
