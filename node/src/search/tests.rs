//! The query language, from text to the offers it selects and the order it sorts them in.

use std::cmp::Ordering;

use gpuflow_protocol::OfferId;

use super::{order::encode_hex, parse::Op, *};

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
        check(Candidate {
            facts: &self.facts,
            text: &text,
            payout: &self.summary.payout,
            images: &self.summary.images,
            allowed_images: &self.summary.allowed_images,
        })
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
            cpu_cores: None,
            cpu_ram_mb: None,
            reliability: 900_000,
            uptime: None,
            rentals: 0,
            completed_rentals: 0,
            sla_credits: 0,
            proven_mtflops: None,
            challenge_ok: false,
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
            cpu_cores: None,
            cpu_ram_mb: None,
            reliability: 0.9,
            uptime: None,
            rentals: 0,
            completed_rentals: 0,
            sla_credits: 0,
            proven_tflops: None,
            challenge_ok: None,
            images: Vec::new(),
            allowed_images: Vec::new(),
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
    assert_eq!(terms("gpu_name=RTX_4090"), [(Field::GpuName, Op::Eq, vec![text(" rtx 4090 ")])]);
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
fn quoted_values_hold_spaces() {
    assert_eq!(terms("region=\"us east 1\""), [(Field::Region, Op::Eq, vec![text("us east 1")])]);
    assert_eq!(terms("region='eu-west' num_gpus>=2").len(), 2);
    assert_eq!(
        terms("region in [\"us east\", 'eu, west']").remove(0).2,
        vec![text("us east"), text("eu, west")]
    );
    let machine = offer(1, |o| o.region = "us east 1".into());
    assert!(selects("gpu_name=\"RTX 4090\" region=\"US East 1\"", &machine));
    assert!(!selects("gpu_name=\"RTX 409\"", &machine));
    assert_eq!(
        err("num_gpus>=1 gpu_name=\"RTX 4090"),
        "unclosed quote in `\"RTX 4090`; close it, e.g. gpu_name=\"RTX 4090\""
    );
    assert_eq!(terms("region=\"\"").remove(0).2, vec![text("")], "an empty quoted value");
}

#[test]
fn vast_field_names_are_aliases() {
    assert_eq!(terms("cuda_vers>=12.2"), [(Field::Cuda, Op::Ge, vec![int(12_200)])]);
    assert_eq!(terms("dph_total<=1").remove(0).0, Field::Dph);
    assert_eq!(terms("geolocation=US").remove(0).0, Field::Region);
    assert_eq!(terms("reliability2>0.9").remove(0).0, Field::Reliability);
    assert_eq!(terms("gpu_total_ram>=48"), [(Field::GpuTotalRam, Op::Ge, vec![int(48_000)])]);
    for vast_only in ["dlperf>10", "compute_cap>=800"] {
        let field = vast_only.split(['>', '=']).next().unwrap();
        assert!(
            err(vast_only).starts_with(&format!(
                "`{field}` in `{vast_only}` is a Vast.ai field for something not available here"
            )),
            "{}",
            err(vast_only)
        );
    }
    assert_eq!(
        Order::parse("dph_total-").unwrap(),
        Order { key: SortKey::Dph, descending: true, ..Order::default() }
    );
    // Two 25.757 GB GPUs hold 51.514 GB together.
    let two = offer(1, |o| o.facts.num_gpus = 2);
    assert!(selects("gpu_total_ram>=51.514", &two) && !selects("gpu_total_ram>51.514", &two));
    assert!(selects("gpu_total_ram<=25.757", &offer(2, |o| o.facts.num_gpus = 1)));
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
    assert_eq!(
        Order::default(),
        Order { key: SortKey::Dph, descending: false, ..Order::default() }
    );
    assert_eq!(Order::parse("dph").unwrap(), Order::default());
    assert_eq!(
        "gpu_ram-".parse::<Order>().unwrap(),
        Order { key: SortKey::GpuRam, descending: true, ..Order::default() }
    );
    assert_eq!(Order::parse("num_gpus").unwrap().key, SortKey::NumGpus);
    assert_eq!(
        Order::parse("region").unwrap_err().to_string(),
        "cannot sort by `region`; sortable fields: dph dph_per_gpu gpu_ram gpu_total_ram num_gpus cuda age_days \
         inet_down inet_up disk_space cpu_cores cpu_ram reliability uptime rentals completed_rentals \
         sla_credits proven_tflops, add `-` for descending (e.g. `dph-`)"
    );
    for text in [
        "dph",
        "gpu_ram-",
        "num_gpus",
        "cuda-",
        "age_days",
        "inet_down-",
        "inet_up",
        "disk_space-",
        "cpu_cores",
        "cpu_ram-",
    ] {
        assert_eq!(Order::parse(text).unwrap().to_string(), text);
    }
    let two = Order::parse("reliability-, dph").unwrap();
    assert_eq!((two.key, two.descending), (SortKey::Reliability, true));
    assert_eq!(two.then, [Some((SortKey::Dph, false)), None]);
    assert_eq!(two.to_string(), "reliability-,dph");
    assert!(Order::parse("dph,dph-").unwrap_err().to_string().contains("`dph` is given twice"));
    assert!(
        Order::parse("dph,cuda,age_days,uptime").unwrap_err().to_string().contains("at most 3")
    );
    assert!(Order::parse("dph,region").is_err());
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
    assert_eq!(sorted("disk_space", disks), ["0001", "0002"]);
    let cpus = || {
        vec![
            offer(1, |o| o.facts.cpu_cores = Some(16)),
            offer(2, |o| o.facts.cpu_cores = Some(64)),
            offer(3, |o| o.facts.cpu_ram_mb = Some(512_000)),
        ]
    };
    assert_eq!(sorted("cpu_cores-", cpus()), ["0002", "0001", "0003"]);
    assert_eq!(sorted("cpu_ram-", cpus()), ["0003", "0001", "0002"]);
}

#[test]
fn unknown_fields_and_bad_scores_are_named() {
    assert_eq!(
        err("num_gpus>=1 gpu_nam=RTX_4090"),
        "unknown field `gpu_nam` in `gpu_nam=RTX_4090`; known fields: gpu_name num_gpus \
         gpu_ram gpu_total_ram dph dph_per_gpu verified cuda driver region payout age_days inet_down inet_up disk_space \
         cpu_cores cpu_ram reliability uptime rentals completed_rentals sla_credits conflicts \
         proven_tflops challenge_ok image"
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
        ("] num_gpus=1", "unexpected `]` where a term should start; terms look like `num_gpus>=2`"),
        ("num_gpus=1 ,", "unexpected `,` where a term should start; terms look like `num_gpus>=2`"),
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
        ("num_gpus in [1,x]", "`num_gpus in [1,x]`: expected a whole number such as 2, found `x`"),
        (
            "dph<=1e3",
            "`dph<=1e3`: expected dollars per hour such as 0.5 (at most 6 decimals), found `1e3`",
        ),
        (
            "dph<=0.0000001",
            "`dph<=0.0000001`: expected dollars per hour such as 0.5 (at most 6 decimals), found `0.0000001`",
        ),
        ("cuda>=12.4.1", "`cuda>=12.4.1`: expected a CUDA version such as 12.4, found `12.4.1`"),
        ("verified=yes", "`verified=yes`: expected true or false, found `yes`"),
        ("gpu_name=-", "`gpu_name=-`: expected a GPU name such as RTX_4090, found `-`"),
        ("payout=0x12", "`payout=0x12`: expected an address of 0x and 40 hex digits, found `0x12`"),
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
    assert_eq!(order("completed_rentals-").compare(&scored.facts, &newcomer.facts), Ordering::Less);
    assert_eq!(order("sla_credits").compare(&newcomer.facts, &scored.facts), Ordering::Less);
    assert!(matches!(err("sla_credits>=one"), e if e.contains("a whole number")));
}

#[test]
fn machine_facts_and_age_convert_exactly() {
    assert_eq!(terms("inet_down>=1000"), [(Field::InetDown, Op::Ge, vec![int(1000)])]);
    assert_eq!(terms("inet_up<100"), [(Field::InetUp, Op::Lt, vec![int(100)])]);
    assert_eq!(terms("disk_space>=500.5"), [(Field::Disk, Op::Ge, vec![int(500_500)])]);
    assert_eq!(terms("cpu_cores>=16"), [(Field::CpuCores, Op::Ge, vec![int(16)])]);
    assert_eq!(terms("cpu_ram>=128.5"), [(Field::CpuRam, Op::Ge, vec![int(128_500)])]);
    assert!(matches!(err("cpu_cores>=1.5"), e if e.contains("a whole number of CPUs")));
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
    assert!(selects("inet_down>=1000 disk_space>=500", &machine));
    assert!(!selects("cpu_cores>=1", &machine) && !selects("cpu_ram<1", &machine));
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
fn image_matches_offers_ready_to_run_it() {
    const PYTORCH: &str = "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime";
    assert_eq!(terms(&format!("image={PYTORCH}")), [(Field::Image, Op::Eq, vec![text(PYTORCH)])]);
    assert_eq!(
        terms("image in [ubuntu:22.04,registry:5000/team/img@sha256:abc]").remove(0).2,
        vec![text("ubuntu:22.04"), text("registry:5000/team/img@sha256:abc")],
        "compared exactly: no case folding, no underscores read as spaces"
    );
    let with = |images: &[&str], allowed: &[&str]| {
        let list = |items: &[&str]| items.iter().map(|item| (*item).to_owned()).collect();
        offer(1, |o| {
            o.summary.images = list(images);
            o.summary.allowed_images = list(allowed);
        })
    };
    let by_pattern = with(&[], &["pytorch/pytorch:*", "ubuntu:22.04"]);
    let any = with(&[], &[]);
    let pulled_not_listed = with(&[PYTORCH], &["ubuntu:22.04"]);
    let not_allowed = with(&[], &["ubuntu:22.04", "nvidia/cuda:*"]);
    let query = format!("image={PYTORCH}");
    assert!(selects(&query, &by_pattern), "allowed by a pattern");
    assert!(selects(&query, &any), "an empty allow-list allows any image");
    assert!(selects(&query, &pulled_not_listed), "pulled ahead");
    assert!(!selects(&query, &not_allowed), "neither pulled nor allowed");
    assert!(!selects(&format!("image!={PYTORCH}"), &by_pattern));
    assert!(selects(&format!("image!={PYTORCH}"), &not_allowed));
    assert!(selects("image=ubuntu:22.04", &not_allowed), "an exact entry");
    assert!(!selects("image=ubuntu:22.04.1", &not_allowed), "is not a prefix");
    assert!(!selects("image=Ubuntu:22.04", &not_allowed), "tags compare exactly");
    assert!(selects(&format!("image in [ubuntu:24.04,{PYTORCH}]"), &pulled_not_listed));
    assert!(!selects("image in [ubuntu:24.04,vllm/vllm-openai:v0.6.3]", &not_allowed));
    assert!(selects("image notin [ubuntu:24.04]", &not_allowed));
    assert!(!selects("image notin [ubuntu:24.04]", &any));
    // With the other terms, all of which must hold.
    assert!(selects(&format!("image={PYTORCH} gpu_ram>=24 dph<=0.36"), &by_pattern));
    assert!(!selects(&format!("gpu_ram>=24 image={PYTORCH} dph<0.36"), &by_pattern));
    assert!(!selects(&format!("image={PYTORCH} num_gpus>=2"), &not_allowed));

    assert_eq!(
        err("image=pytorch/pytorch:*"),
        "`image=pytorch/pytorch:*`: expected one image reference such as \
         nvidia/cuda:12.4.1-base-ubuntu22.04 (no pattern), found `pytorch/pytorch:*`"
    );
    assert!(err("num_gpus>=1 image=\"not an image\"").starts_with("`image=\"not an image\"`:"));
    assert!(err("image=-v").starts_with("`image=-v`: expected one image reference"));
    assert_eq!(
        err("image>=ubuntu:22.04"),
        "`image` does not support `>=` (in `image>=ubuntu:22.04`); use one of = != in notin"
    );
}

#[test]
fn cursors_round_trip_and_belong_to_one_order() {
    let id: OfferId = "0011223344556677".parse().unwrap();
    for (order, value) in [("dph", Some(360_000)), ("cuda-", None), ("age_days", Some(-5))] {
        let order = Order::parse(order).unwrap();
        let cursor = Cursor::with_value(order, value, id);
        let text = cursor.encode();
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
        assert_eq!(Cursor::decode(&text, order).unwrap(), cursor);
    }
    let text = Cursor::with_value(Order::default(), Some(1), id).encode();
    assert_eq!(
        Cursor::decode(&text, Order::parse("gpu_ram").unwrap()).unwrap_err().to_string(),
        "invalid `cursor`: it continues a search sorted by `dph`, not `gpu_ram`; repeat \
         that order, or start again without a cursor"
    );
    for junk in ["", "xyz", "00", &encode_hex(b"dph|1"), &encode_hex(b"dph|x|0011223344556677")] {
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
        Cursor::with_value(order, cursor, id).precedes(&candidate.facts)
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
    for query in ["gpu_ram>48", "gpu_ram<25.757", "dph>0.72", "gpu_ram in [24,80]", "inet_up>=0"] {
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

#[test]
fn the_price_per_gpu_divides_the_machines_price_as_dph_per_gpu_shows_it() {
    // 0.36 per hour for two GPUs is 0.18 per GPU; 0.36 for three is 0.12 exactly, and
    // 1 unit more rounds down to the same.
    let two = offer(1, |o| o.facts.num_gpus = 2);
    assert!(selects("dph_per_gpu<=0.18", &two) && !selects("dph_per_gpu<0.18", &two));
    assert!(selects("dph_per_gpu=0.18 dph=0.36", &two));
    let three = offer(2, |o| {
        o.facts.num_gpus = 3;
        o.facts.price_per_hour = 360_001;
    });
    assert!(selects("dph_per_gpu=0.12", &three));
    // The largest machine is not the dearest GPU.
    let eight = offer(3, |o| {
        o.facts.num_gpus = 8;
        o.facts.price_per_hour = 800_000;
    });
    assert_eq!(sorted("dph_per_gpu", vec![two, three, eight]), ["0003", "0002", "0001"]);
    assert!(
        err("dph_per_gpu<=cheap").contains("dollars per hour such as 0.5"),
        "{}",
        err("dph_per_gpu<=cheap")
    );
}
