//! Refuses to build the bindings from artifacts compiled from other sources than the
//! ones in `contracts/src`: a stale ABI would compile and then fail at run time. The
//! Solidity metadata in each artifact records the keccak256 of every source it was
//! compiled from; this compares them with the files on disk.

use std::path::Path;

use sha3::{Digest, Keccak256};

const ARTIFACTS: [&str; 2] = ["out/GpuEscrow.sol/GpuEscrow.json", "out/MockUSDC.sol/MockUSDC.json"];

fn main() {
    // Read at run time: a build script compiled for one checkout may be reused by another
    // sharing the target directory.
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let contracts = Path::new(&manifest_dir).join("../../contracts");
    println!("cargo:rerun-if-changed={}", contracts.join("src").display());
    for artifact in ARTIFACTS {
        let path = contracts.join(artifact);
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!("{} is missing: run `make contracts` before cargo", path.display())
        });
        let json: serde_json::Value =
            serde_json::from_str(&text).expect("forge artifacts are JSON");
        let sources = json["metadata"]["sources"].as_object().expect("artifact has metadata");
        for (name, source) in sources.iter().filter(|(name, _)| name.starts_with("src/")) {
            let recorded = source["keccak256"].as_str().unwrap_or_default();
            let current = std::fs::read(contracts.join(name))
                .map(|bytes| format!("0x{:x}", Keccak256::digest(bytes)))
                .unwrap_or_default();
            assert!(
                recorded == current,
                "contracts/{name} differs from what {artifact} was compiled from: \
                 run `make contracts` before cargo"
            );
        }
    }
}
