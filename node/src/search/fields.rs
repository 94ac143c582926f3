//! The fields of the query language as the node reads them: the table itself is
//! [`gpuflow_protocol::search`]; this reads a field's value from an offer and a typed value
//! from the query text.

use gpuflow_protocol::parse_units;
pub(crate) use gpuflow_protocol::search::{FieldKind as Kind, SearchField as Field};

use super::{
    QueryError, Value,
    facts::{Candidate, Facts},
};

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
pub(super) fn same_text(a: &str, b: &str) -> bool {
    let fold = |byte: u8| if byte == b'_' { b' ' } else { byte.to_ascii_lowercase() };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
}

/// CUDA version text (`12.4`) as integer thousandths (`12400`); `None` when unreadable.
pub(crate) fn cuda_thousandths(version: &str) -> Option<i64> {
    parse_units(version, 3).ok().and_then(|v| i64::try_from(v).ok())
}

/// What the node reads for a field: its value in an offer, and a value in query text.
pub(super) trait FieldValues {
    /// The number `offer` holds for a numeric field, `None` when unknown. The age is in
    /// thousandths of seconds at `now`, so that fractional days compare exactly.
    fn number(self, offer: &Facts, now: i64) -> Option<i64>;
    fn text(self, offer: Candidate<'_>) -> &str;
    fn flag(self, offer: &Facts, now: i64) -> bool;
    /// `text`, a value of the field in `term`, as conditions compare it.
    fn parse_value(self, text: &str, term: &str, token_decimals: u8) -> Result<Value, QueryError>;
}

impl FieldValues for Field {
    fn number(self, offer: &Facts, now: i64) -> Option<i64> {
        match self {
            Self::NumGpus => Some(offer.num_gpus),
            Self::GpuRam => Some(offer.gpu_ram_mb),
            Self::GpuTotalRam => Some(offer.gpu_ram_mb.saturating_mul(offer.num_gpus)),
            Self::Dph => Some(offer.price_per_hour),
            // As the offer's `dph_per_gpu` shows it: rounded down to a token unit.
            Self::DphPerGpu => (offer.num_gpus > 0).then(|| offer.price_per_hour / offer.num_gpus),
            Self::Cuda => offer.cuda,
            // Stored times are small enough for this not to overflow; saturating anyway.
            Self::AgeDays => Some(now.saturating_sub(offer.first_seen).saturating_mul(1000)),
            Self::InetDown => offer.inet_down_mbps,
            Self::InetUp => offer.inet_up_mbps,
            Self::Disk => offer.disk_mb,
            Self::CpuCores => offer.cpu_cores,
            Self::CpuRam => offer.cpu_ram_mb,
            Self::Reliability => Some(offer.reliability),
            Self::Uptime => offer.uptime,
            Self::Rentals => Some(offer.rentals),
            Self::CompletedRentals => Some(offer.completed_rentals),
            Self::SlaCredits => Some(offer.sla_credits),
            Self::ProvenTflops => offer.proven_mtflops,
            _ => None,
        }
    }

    fn text(self, offer: Candidate<'_>) -> &str {
        match self {
            Self::Driver => (offer.text)(offer.facts.driver),
            Self::Region => (offer.text)(offer.facts.region),
            Self::Payout => offer.payout,
            _ => "",
        }
    }

    fn flag(self, offer: &Facts, now: i64) -> bool {
        match self {
            Self::Verified => offer.verified,
            Self::Conflicts => offer.conflicts(now),
            Self::ChallengeOk => offer.challenge_ok,
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
            Self::GpuTotalRam => {
                number(3, "GB of all the GPUs such as 160 (at most 3 decimals)").map(Value::Int)
            }
            Self::Dph | Self::DphPerGpu => number(
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
            Self::Disk | Self::CpuRam => {
                number(3, "GB such as 500 (at most 3 decimals)").map(Value::Int)
            }
            Self::CpuCores => number(0, "a whole number of CPUs such as 16").map(Value::Int),
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
            Self::ProvenTflops => {
                number(3, "TFLOP/s per GPU such as 400 (at most 3 decimals)").map(Value::Int)
            }
            Self::Verified | Self::Conflicts | Self::ChallengeOk => {
                match text.to_ascii_lowercase().as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    _ => Err(bad("true or false".into())),
                }
            }
            Self::GpuName => {
                let words = name_words(text);
                if words.trim().is_empty() {
                    return Err(bad("a GPU name such as RTX_4090".into()));
                }
                Ok(Value::Text(words))
            }
            Self::Driver | Self::Region => Ok(Value::Text(text.replace('_', " "))),
            Self::Image => {
                let expected = "one image reference such as nvidia/cuda:12.4.1-base-ubuntu22.04 \
                                (no pattern)";
                gpuflow_protocol::RentalRequest::check_image(text)
                    .map_err(|_| bad(expected.into()))?;
                Ok(Value::Text(text.to_owned()))
            }
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
