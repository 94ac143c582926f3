//! How results are sorted ([`Order`] on a [`SortKey`]) and where the next page starts
//! ([`Cursor`]).

use std::cmp::Ordering;

use gpuflow_protocol::{OfferId, search::SearchField};

use super::{QueryError, facts::Facts};

/// How search results are sorted; ties are always broken by offer id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    /// What to sort on.
    pub key: SortKey,
    /// Largest first when set.
    pub descending: bool,
}

/// A field search results can be sorted on: one of [`SearchField::SORTABLE`]. Offers
/// without a value for it (an unknown CUDA version, an undeclared bandwidth) come last
/// either way.
pub type SortKey = SearchField;

/// Where the next page of a search starts: after the offer `id` whose sort value is
/// `value`, for one particular order. Clients see it only as an opaque string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    order: Order,
    value: Option<i64>,
    id: OfferId,
}

impl Default for Order {
    fn default() -> Self {
        Self { key: SearchField::Dph, descending: false }
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
        let name = self.key.name();
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
        let key = SearchField::sortable(&name.to_ascii_lowercase())
            .ok_or_else(|| QueryError::UnknownOrder { order: text.to_owned() })?;
        Ok(Self { key, descending })
    }

    /// The value `offer` is sorted by, as stored (the age sorts by the first sighting), so
    /// that a page's last offer can become the next page's cursor; `None` when unknown.
    pub(crate) fn value(self, offer: &Facts) -> Option<i64> {
        match self.key {
            SortKey::Dph => Some(offer.price_per_hour),
            SortKey::GpuRam => Some(offer.gpu_ram_mb),
            SortKey::GpuTotalRam => Some(offer.gpu_ram_mb.saturating_mul(offer.num_gpus)),
            SortKey::NumGpus => Some(offer.num_gpus),
            SortKey::Cuda => offer.cuda,
            SortKey::AgeDays => Some(offer.first_seen),
            SortKey::InetDown => offer.inet_down_mbps,
            SortKey::InetUp => offer.inet_up_mbps,
            SortKey::Disk => offer.disk_mb,
            SortKey::CpuCores => offer.cpu_cores,
            SortKey::CpuRam => offer.cpu_ram_mb,
            SortKey::Reliability => Some(offer.reliability),
            SortKey::Uptime => offer.uptime,
            SortKey::Rentals => Some(offer.rentals),
            SortKey::CompletedRentals => Some(offer.completed_rentals),
            SortKey::SlaCredits => Some(offer.sla_credits),
            // Not sortable: `parse` never makes such an order.
            _ => None,
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

pub(super) fn encode_hex(bytes: &[u8]) -> String {
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
