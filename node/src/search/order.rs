//! How results are sorted ([`Order`] on a [`SortKey`]) and where the next page starts
//! ([`Cursor`]).

use std::cmp::Ordering;

use gpuflow_protocol::{OfferId, search::SearchField};

use super::{QueryError, facts::Facts, fields::FieldValues};

/// Most sort keys one order may have (`reliability-,dph,age_days`).
pub const MAX_SORT_KEYS: usize = 3;

/// How search results are sorted: by `key`, ties broken by the keys in `then` in turn,
/// and the ties left by offer id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    /// What to sort on first.
    pub key: SortKey,
    /// Largest first when set.
    pub descending: bool,
    /// The keys that break ties, each with its direction.
    pub then: [Option<(SortKey, bool)>; MAX_SORT_KEYS - 1],
}

/// A field search results can be sorted on: one of [`SearchField::SORTABLE`]. Offers
/// without a value for it (an unknown CUDA version, an undeclared bandwidth) come last
/// either way.
pub type SortKey = SearchField;

/// The sort values of an offer, one per key of an order (`None`: unknown, or no key).
type Values = [Option<i64>; MAX_SORT_KEYS];

/// Where the next page of a search starts: after the offer `id` whose sort values are
/// `values`, for one particular order. Clients see it only as an opaque string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    order: Order,
    values: Values,
    id: OfferId,
}

impl Default for Order {
    fn default() -> Self {
        Self { key: SearchField::Dph, descending: false, then: [None; MAX_SORT_KEYS - 1] }
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
        for (i, (key, descending)) in self.keys().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            write!(f, "{comma}{}{}", key.name(), if descending { "-" } else { "" })?;
        }
        Ok(())
    }
}

impl Order {
    /// Parses `FIELD` (ascending) or `FIELD-` (descending), e.g. `dph` or `gpu_ram-`, or up
    /// to [`MAX_SORT_KEYS`] of them separated by commas (`reliability-,dph`).
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        let unknown = || QueryError::UnknownOrder { order: text.to_owned() };
        let mut keys = Vec::new();
        for part in text.split(',') {
            let trimmed = part.trim();
            let (name, descending) = match trimmed.strip_suffix('-') {
                Some(name) => (name, true),
                None => (trimmed, false),
            };
            let key = SearchField::sortable(&name.to_ascii_lowercase()).ok_or_else(unknown)?;
            if keys.iter().any(|(k, _)| *k == key) {
                return Err(QueryError::BadOrder {
                    order: text.to_owned(),
                    why: format!("`{}` is given twice", key.name()),
                });
            }
            keys.push((key, descending));
        }
        if keys.len() > MAX_SORT_KEYS {
            return Err(QueryError::BadOrder {
                order: text.to_owned(),
                why: format!("at most {MAX_SORT_KEYS} sort keys"),
            });
        }
        let mut then = [None; MAX_SORT_KEYS - 1];
        for (slot, key) in then.iter_mut().zip(keys.iter().skip(1)) {
            *slot = Some(*key);
        }
        let (key, descending) = keys[0];
        Ok(Self { key, descending, then })
    }

    /// The keys in turn, each with its direction.
    fn keys(self) -> impl Iterator<Item = (SortKey, bool)> {
        std::iter::once((self.key, self.descending)).chain(self.then.into_iter().flatten())
    }

    /// The first key alone: how the index keeps offers sorted.
    pub(crate) fn primary(self) -> Self {
        Self { then: [None; MAX_SORT_KEYS - 1], ..self }
    }

    /// The value `offer` is sorted by first, as stored (the age sorts by the first
    /// sighting); `None` when unknown.
    pub(crate) fn value(self, offer: &Facts) -> Option<i64> {
        key_value(self.key, offer)
    }

    /// Every sort value of `offer`, so that a page's last offer can become the next
    /// page's cursor.
    pub(crate) fn values(self, offer: &Facts) -> Values {
        let mut values = [None; MAX_SORT_KEYS];
        for (value, (key, _)) in values.iter_mut().zip(self.keys()) {
            *value = key_value(key, offer);
        }
        values
    }

    /// Where the sort values `a` and `b` go relative to each other, key by key: unknown
    /// values last whatever the direction. Ties are for the offer id to break.
    fn compare_values(self, a: &Values, b: &Values) -> Ordering {
        self.keys()
            .zip(a.iter().zip(b))
            .map(|((key, descending), (a, b))| compare_key(key, descending, *a, *b))
            .find(|ordering| ordering.is_ne())
            .unwrap_or(Ordering::Equal)
    }

    /// Where `a` goes relative to `b` on the first key alone.
    pub(crate) fn compare_primary(self, a: &Facts, b: &Facts) -> Ordering {
        compare_key(self.key, self.descending, self.value(a), self.value(b))
    }

    /// A first-key value ([`Order::value`]) as an unsigned number that sorts as this
    /// order puts the values, so that the index sorts plain integers; `None` for an
    /// unknown value, which goes last.
    pub(crate) fn primary_rank(self, value: Option<i64>) -> Option<u64> {
        let largest_first = self.descending != (self.key == SortKey::AgeDays);
        // Flipping the sign bit keeps the order of `i64`s as `u64`s.
        let rank = value? as u64 ^ (1 << 63);
        Some(if largest_first { !rank } else { rank })
    }

    /// Where `a` goes relative to `b` in this order; ties go by offer id. Called for
    /// every offer a search walks, so it reads only the values it needs.
    pub(crate) fn compare(self, a: &Facts, b: &Facts) -> Ordering {
        let mut ordering = self.compare_primary(a, b);
        for (key, descending) in self.then.into_iter().flatten() {
            if ordering.is_ne() {
                break;
            }
            ordering = compare_key(key, descending, key_value(key, a), key_value(key, b));
        }
        ordering.then_with(|| a.id.to_bytes().cmp(&b.id.to_bytes()))
    }
}

/// The value of `offer` for `key`, as stored; `None` when unknown. Conditions read the
/// same numbers, but the age as the time since the first sighting, which is not stored:
/// the age sorts by the first sighting itself.
fn key_value(key: SortKey, offer: &Facts) -> Option<i64> {
    match key {
        SortKey::AgeDays => Some(offer.first_seen),
        _ => key.number(offer, 0),
    }
}

/// Where two stored values of `key` go in its direction: unknown values last either way;
/// a larger stored age is an earlier sighting, so the age runs the other way round.
fn compare_key(key: SortKey, descending: bool, a: Option<i64>, b: Option<i64>) -> Ordering {
    let largest_first = descending != (key == SortKey::AgeDays);
    match (a, b) {
        (Some(a), Some(b)) if largest_first => b.cmp(&a),
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

impl Cursor {
    /// The cursor that continues `order` after `offer`.
    pub(crate) fn after(order: Order, offer: &Facts) -> Self {
        Self { order, values: order.values(offer), id: offer.id }
    }

    /// The cursor after the offer `id` whose first sort value is `value` (an order of one
    /// key).
    #[cfg(test)]
    pub(crate) fn with_value(order: Order, value: Option<i64>, id: OfferId) -> Self {
        let mut values = [None; MAX_SORT_KEYS];
        values[0] = value;
        Self { order, values, id }
    }

    /// Reads a cursor that this node issued for a search sorted by `order`.
    pub fn decode(text: &str, order: Order) -> Result<Self, QueryError> {
        let bad = |reason: &str| QueryError::BadCursor { reason: reason.to_owned() };
        let foreign = || bad("it is not a cursor from this API");
        let bytes = decode_hex(text).ok_or_else(foreign)?;
        let plain = String::from_utf8(bytes).map_err(|_| foreign())?;
        let mut parts = plain.splitn(3, '|');
        let (Some(issued), Some(values), Some(id)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(foreign());
        };
        if issued != order.to_string() {
            return Err(bad(&format!(
                "it continues a search sorted by `{issued}`, not `{order}`; repeat that order"
            )));
        }
        let texts: Vec<&str> = values.split(';').collect();
        if texts.len() != order.keys().count() {
            return Err(foreign());
        }
        let mut parsed = [None; MAX_SORT_KEYS];
        for (slot, text) in parsed.iter_mut().zip(texts) {
            *slot = match text {
                "" => None,
                v => Some(v.parse().map_err(|_| foreign())?),
            };
        }
        let id = id.parse().map_err(|_| foreign())?;
        Ok(Self { order, values: parsed, id })
    }

    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        let values: Vec<String> = self.values[..self.order.keys().count()]
            .iter()
            .map(|v| v.map(|v| v.to_string()).unwrap_or_default())
            .collect();
        encode_hex(format!("{}|{}|{}", self.order, values.join(";"), self.id).as_bytes())
    }

    /// Whether `offer` sorts after the cursor, so belongs to a later page.
    pub(crate) fn precedes(&self, offer: &Facts) -> bool {
        let order = self.order;
        order
            .compare_values(&self.values, &order.values(offer))
            .then_with(|| self.id.to_bytes().cmp(&offer.id.to_bytes()))
            .is_lt()
    }

    /// Whether `offer` sorts before the cursor on the first key alone: such offers were
    /// all on earlier pages, whatever the other keys say.
    pub(crate) fn passed(&self, offer: &Facts) -> bool {
        let order = self.order;
        compare_key(order.key, order.descending, self.values[0], order.value(offer)).is_gt()
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
