//! The fields of the node's search language (`GET /v1/offers?q=...&order=...`), written
//! once: the node's parser, its index and its OpenAPI text, and the renter CLI's help all
//! read this table, so a field cannot be known to one and missing from another.

/// The operators of the query language.
pub const OPERATORS: &str = "= == != < <= > >= in notin";

/// How a field's values compare, which decides the operators it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// A number: every operator.
    Number,
    /// Text compared without regard to ASCII case, `_` read as a space.
    Text,
    /// A GPU name, matched by whole words.
    Words,
    /// `true` or `false`.
    Bool,
    /// A container image reference, compared exactly: an offer matches when it is ready to
    /// run the image (see [`crate::image_ready`]).
    Image,
}

impl FieldKind {
    /// The operators a field of this kind takes, space separated.
    pub const fn operators(self) -> &'static str {
        match self {
            Self::Number => OPERATORS,
            Self::Text | Self::Words | Self::Image => "= != in notin",
            Self::Bool => "= !=",
        }
    }
}

/// A field a search query may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SearchField {
    /// GPU model, matched by whole words.
    GpuName,
    /// Number of GPUs.
    NumGpus,
    /// Memory per GPU, GB.
    GpuRam,
    /// Memory of all the offered GPUs together, GB.
    GpuTotalRam,
    /// Price of the whole machine, whole tokens per hour.
    Dph,
    /// Price of one of its GPUs, whole tokens per hour: `dph` divided by `num_gpus`,
    /// rounded down to a token unit, as `rent --gpus 1` pays it.
    DphPerGpu,
    /// Whether the GPUs were read through NVML.
    Verified,
    /// Highest supported CUDA version.
    Cuda,
    /// NVIDIA driver version.
    Driver,
    /// Region label.
    Region,
    /// Payout address.
    Payout,
    /// Days since the node first saw the provider.
    AgeDays,
    /// Declared download bandwidth, Mbit/s.
    InetDown,
    /// Declared upload bandwidth, Mbit/s.
    InetUp,
    /// Free disk space on the machine, GB.
    Disk,
    /// The machine's logical CPUs.
    CpuCores,
    /// The machine's memory, GB.
    CpuRam,
    /// The provider's reliability score.
    Reliability,
    /// The provider's uptime.
    Uptime,
    /// Rentals of the provider's machine.
    Rentals,
    /// Those that ended without a downtime credit.
    CompletedRentals,
    /// Downtime credits paid back to the machine's renters.
    SlaCredits,
    /// Whether another live offer lists one of the same GPU UUIDs.
    Conflicts,
    /// Dense TFLOP/s per GPU the node's latest matrix-product challenge proved.
    ProvenTflops,
    /// Whether that challenge left the offer unflagged (false also when never challenged).
    ChallengeOk,
    /// A container image the machine is ready to run: pulled ahead, or allowed by the
    /// provider's allow-list (an empty list allows any).
    Image,
}

impl SearchField {
    /// Every field, in the order help and errors list them.
    pub const ALL: [Self; 26] = [
        Self::GpuName,
        Self::NumGpus,
        Self::GpuRam,
        Self::GpuTotalRam,
        Self::Dph,
        Self::DphPerGpu,
        Self::Verified,
        Self::Cuda,
        Self::Driver,
        Self::Region,
        Self::Payout,
        Self::AgeDays,
        Self::InetDown,
        Self::InetUp,
        Self::Disk,
        Self::CpuCores,
        Self::CpuRam,
        Self::Reliability,
        Self::Uptime,
        Self::Rentals,
        Self::CompletedRentals,
        Self::SlaCredits,
        Self::Conflicts,
        Self::ProvenTflops,
        Self::ChallengeOk,
        Self::Image,
    ];

    /// The fields results can be sorted on, in the order help and errors list them.
    pub const SORTABLE: [Self; 18] = [
        Self::Dph,
        Self::DphPerGpu,
        Self::GpuRam,
        Self::GpuTotalRam,
        Self::NumGpus,
        Self::Cuda,
        Self::AgeDays,
        Self::InetDown,
        Self::InetUp,
        Self::Disk,
        Self::CpuCores,
        Self::CpuRam,
        Self::Reliability,
        Self::Uptime,
        Self::Rentals,
        Self::CompletedRentals,
        Self::SlaCredits,
        Self::ProvenTflops,
    ];

    /// The name a query uses.
    pub const fn name(self) -> &'static str {
        match self {
            Self::GpuName => "gpu_name",
            Self::NumGpus => "num_gpus",
            Self::GpuRam => "gpu_ram",
            Self::GpuTotalRam => "gpu_total_ram",
            Self::Dph => "dph",
            Self::DphPerGpu => "dph_per_gpu",
            Self::Verified => "verified",
            Self::Cuda => "cuda",
            Self::Driver => "driver",
            Self::Region => "region",
            Self::Payout => "payout",
            Self::AgeDays => "age_days",
            Self::InetDown => "inet_down",
            Self::InetUp => "inet_up",
            Self::Disk => "disk_space",
            Self::CpuCores => "cpu_cores",
            Self::CpuRam => "cpu_ram",
            Self::Reliability => "reliability",
            Self::Uptime => "uptime",
            Self::Rentals => "rentals",
            Self::CompletedRentals => "completed_rentals",
            Self::SlaCredits => "sla_credits",
            Self::Conflicts => "conflicts",
            Self::ProvenTflops => "proven_tflops",
            Self::ChallengeOk => "challenge_ok",
            Self::Image => "image",
        }
    }

    /// How its values compare.
    pub const fn kind(self) -> FieldKind {
        match self {
            Self::GpuName => FieldKind::Words,
            Self::Driver | Self::Region | Self::Payout => FieldKind::Text,
            Self::Verified | Self::Conflicts | Self::ChallengeOk => FieldKind::Bool,
            Self::Image => FieldKind::Image,
            _ => FieldKind::Number,
        }
    }

    /// The field called `name` (lower case), by its own name or a Vast.ai alias; an
    /// [`Alias::Unavailable`] name is Vast's for something gpuflow does not index.
    pub fn from_name(name: &str) -> Option<Alias> {
        if let Some(field) = Self::ALL.into_iter().find(|field| field.name() == name) {
            return Some(Alias::Field(field));
        }
        ALIASES.iter().find(|(alias, _)| *alias == name).map(|(_, target)| *target)
    }

    /// The sortable field called `name` (lower case, or a Vast.ai alias), if any.
    pub fn sortable(name: &str) -> Option<Self> {
        match Self::from_name(name)? {
            Alias::Field(field) if Self::SORTABLE.contains(&field) => Some(field),
            _ => None,
        }
    }

    /// The names of every field, space separated.
    pub fn names() -> String {
        join(&Self::ALL)
    }

    /// The names of the sortable fields, space separated.
    pub fn sortable_names() -> String {
        join(&Self::SORTABLE)
    }
}

/// What a Vast.ai field name means here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alias {
    /// The same measure under gpuflow's name.
    Field(SearchField),
    /// Vast measures it; gpuflow has no equivalent.
    Unavailable,
}

/// Vast.ai's search field names, so that its users' queries run unchanged where gpuflow
/// has the same measure.
pub const ALIASES: &[(&str, Alias)] = &[
    ("cuda_vers", Alias::Field(SearchField::Cuda)),
    ("cuda_max_good", Alias::Field(SearchField::Cuda)),
    ("driver_version", Alias::Field(SearchField::Driver)),
    ("dph_total", Alias::Field(SearchField::Dph)),
    ("geolocation", Alias::Field(SearchField::Region)),
    ("reliability2", Alias::Field(SearchField::Reliability)),
    ("cpu_cores_effective", Alias::Field(SearchField::CpuCores)),
    ("compute_cap", Alias::Unavailable),
    ("dlperf", Alias::Unavailable),
    ("dlperf_per_dphtotal", Alias::Unavailable),
    ("total_flops", Alias::Unavailable),
    ("pcie_bw", Alias::Unavailable),
    ("gpu_mem_bw", Alias::Unavailable),
    ("direct_port_count", Alias::Unavailable),
];

fn join(fields: &[SearchField]) -> String {
    fields.iter().map(|field| field.name()).collect::<Vec<_>>().join(" ")
}

/// `words` (space separated) as lines of at most `width` characters, each after the first
/// starting on a new line; `first` is what precedes the first word on its line.
pub fn wrap_words(first: &str, words: &str, width: usize) -> String {
    let mut text = first.to_owned();
    let mut line = first.len();
    for (i, word) in words.split(' ').enumerate() {
        let room = usize::from(i > 0 && line > 0);
        if line > 0 && line + room + word.len() > width {
            text.push('\n');
            line = 0;
        } else if room == 1 {
            text.push(' ');
            line += 1;
        }
        text.push_str(word);
        line += word.len();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_sortable_fields_are_numbers() {
        let names: std::collections::HashSet<_> =
            SearchField::ALL.iter().map(|field| field.name()).collect();
        assert_eq!(names.len(), SearchField::ALL.len());
        for field in SearchField::ALL {
            assert_eq!(SearchField::from_name(field.name()), Some(Alias::Field(field)));
        }
        for field in SearchField::SORTABLE {
            assert_eq!(field.kind(), FieldKind::Number, "{field:?}");
            assert_eq!(SearchField::sortable(field.name()), Some(field));
        }
        assert_eq!(SearchField::sortable("region"), None);
    }

    #[test]
    fn words_wrap_at_the_width() {
        assert_eq!(wrap_words("Fields: ", "a bb ccc", 12), "Fields: a bb\nccc");
        assert_eq!(wrap_words("", "a bb ccc", 4), "a bb\nccc");
    }
}
