//! GPU inventory: read through NVML, or simulated for development.

use std::path::Path;

use gpuflow_protocol::{GpuHealth, GpuInfo, MAX_TEMPERATURE_C};

/// The GPUs this machine offers.
#[derive(Clone, Debug)]
pub struct Inventory {
    /// The GPUs, in NVML index order.
    pub gpus: Vec<GpuInfo>,
    /// True only when read through NVML; simulated GPUs are never verified.
    pub verified: bool,
    /// Enforced power limit of each GPU in watts, where known (not part of offers).
    pub power_limits_w: Vec<Option<u32>>,
}

impl Inventory {
    /// What `gpuflow-provider gpus --json` prints: everything its table shows.
    pub fn report(&self) -> InventoryReport<'_> {
        InventoryReport {
            verified: self.verified,
            gpus: self
                .gpus
                .iter()
                .enumerate()
                .map(|(index, info)| GpuReport {
                    index,
                    info,
                    power_limit_w: self.power_limits_w.get(index).copied().flatten(),
                })
                .collect(),
        }
    }
}

/// What `gpuflow-provider gpus` shows, and as JSON (`--json`) prints:
///
/// ```json
/// {"verified": true,
///  "gpus": [{"index": 0, "name": "...", "uuid": "GPU-...", "memory_bytes": 85520809984,
///            "pci_bus_id": "...", "compute_capability": "9.0", "driver_version": "...",
///            "cuda_version": "12.4", "power_limit_w": 700}]}
/// ```
#[derive(Debug, serde::Serialize)]
pub struct InventoryReport<'a> {
    /// False for a simulated inventory: its offers say `verified: false`.
    pub verified: bool,
    /// The GPUs, in NVML index order.
    pub gpus: Vec<GpuReport<'a>>,
}

/// One GPU of an [`InventoryReport`].
#[derive(Debug, serde::Serialize)]
pub struct GpuReport<'a> {
    /// NVML index.
    pub index: usize,
    /// What the offer advertises, its fields inlined.
    #[serde(flatten)]
    pub info: &'a GpuInfo,
    /// Enforced power limit in watts; `null` where NVML does not report one (and for a
    /// simulated inventory).
    pub power_limit_w: Option<u32>,
}

/// Why no inventory could be read.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// NVML is missing or failed, and no simulated inventory was given.
    #[error(
        "cannot read the GPUs through NVML ({0}); install the NVIDIA driver (it provides \
         libnvidia-ml.so), or for development pass --simulate-gpus FILE"
    )]
    Nvml(String),
    /// NVML works but reports no GPU.
    #[error("NVML reports no GPU on this machine; nothing to offer")]
    NoGpu,
    /// The GPUs are of more than one model; an offer names one.
    #[error(
        "this machine has both {0} and {1} GPUs, but an offer lists GPUs of one model; \
         choose the GPUs of one model to offer with --offer-gpus (e.g. --offer-gpus 0,1, or \
         `offer_gpus = [0, 1]` in provider.toml; `gpuflow-provider gpus` shows the indices) \
         and run a second agent with its own --data-dir for the others"
    )]
    MixedModels(String, String),
    /// A GPU to offer is not in the inventory.
    #[error(
        "GPU index {index} is not on this machine, which has {count} GPU(s) (indices 0 to \
         {last}); fix --offer-gpus or offer_gpus (`gpuflow-provider gpus` lists them)",
        last = count.saturating_sub(1)
    )]
    UnknownIndex {
        /// The index asked for.
        index: usize,
        /// How many GPUs the inventory has.
        count: usize,
    },
    /// The simulated inventory file is unreadable or malformed.
    #[error("simulated inventory {path}: {reason}")]
    Simulated {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// What NVML reports about one GPU, in NVML's own units, before it becomes an offer's
/// [`GpuInfo`] or a heartbeat's [`GpuHealth`]. Values a device does not support are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceReading {
    /// Marketing name.
    pub name: String,
    /// NVML UUID.
    pub uuid: String,
    /// Total memory, bytes.
    pub memory_total: u64,
    /// Memory in use, bytes.
    pub memory_used: u64,
    /// PCI bus id.
    pub pci_bus_id: String,
    /// CUDA compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// Enforced power limit, milliwatts.
    pub power_limit_mw: Option<u32>,
    /// Core temperature, °C.
    pub temperature_c: Option<u32>,
    /// GPU utilisation, percent.
    pub utilization_pct: Option<u32>,
    /// Uncorrected ECC errors since the driver loaded.
    pub ecc_uncorrected: Option<u64>,
    /// Pages retired for double-bit errors (older GPUs report these instead of ECC).
    pub retired_pages: Option<u64>,
}

/// A source of GPU readings: NVML on a real rig, fixtures in tests.
pub trait GpuSource: Send + Sync {
    /// The driver version, e.g. `550.54.14`.
    fn driver_version(&self) -> Result<String, InventoryError>;
    /// The CUDA driver version as NVML encodes it (`major * 1000 + minor * 10`).
    fn cuda_driver_version(&self) -> Result<i32, InventoryError>;
    /// Every GPU, in NVML index order.
    fn devices(&self) -> Result<Vec<DeviceReading>, InventoryError>;
}

/// The NVIDIA driver, through `libnvidia-ml.so`.
pub struct NvmlSource {
    nvml: nvml_wrapper::Nvml,
}

impl NvmlSource {
    /// Loads NVML; fails with the fix when the driver is missing.
    pub fn init() -> Result<Self, InventoryError> {
        Ok(Self { nvml: nvml_wrapper::Nvml::init().map_err(nvml_err)? })
    }
}

fn nvml_err(e: nvml_wrapper::error::NvmlError) -> InventoryError {
    InventoryError::Nvml(e.to_string())
}

impl GpuSource for NvmlSource {
    fn driver_version(&self) -> Result<String, InventoryError> {
        self.nvml.sys_driver_version().map_err(nvml_err)
    }

    fn cuda_driver_version(&self) -> Result<i32, InventoryError> {
        self.nvml.sys_cuda_driver_version().map_err(nvml_err)
    }

    fn devices(&self) -> Result<Vec<DeviceReading>, InventoryError> {
        use nvml_wrapper::enum_wrappers::device::{
            EccCounter, MemoryError, RetirementCause, TemperatureSensor,
        };
        let mut readings = Vec::new();
        for index in 0..self.nvml.device_count().map_err(nvml_err)? {
            let device = self.nvml.device_by_index(index).map_err(nvml_err)?;
            let capability = device.cuda_compute_capability().map_err(nvml_err)?;
            let memory = device.memory_info().map_err(nvml_err)?;
            readings.push(DeviceReading {
                name: device.name().map_err(nvml_err)?,
                uuid: device.uuid().map_err(nvml_err)?,
                memory_total: memory.total,
                memory_used: memory.used,
                pci_bus_id: device.pci_info().map_err(nvml_err)?.bus_id,
                compute_capability: (capability.major, capability.minor),
                // Optional readings: consumer GPUs lack ECC, some lack power management.
                power_limit_mw: device.enforced_power_limit().ok(),
                temperature_c: device.temperature(TemperatureSensor::Gpu).ok(),
                utilization_pct: device.utilization_rates().ok().map(|u| u.gpu),
                ecc_uncorrected: device
                    .total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)
                    .ok(),
                retired_pages: device
                    .retired_pages(RetirementCause::DoubleBitEccError)
                    .ok()
                    .map(|pages| pages.len() as u64),
            });
        }
        Ok(readings)
    }
}

/// Turns readings into an offer's inventory.
pub fn to_inventory(source: &dyn GpuSource) -> Result<Inventory, InventoryError> {
    let driver_version = source.driver_version()?;
    let cuda = source.cuda_driver_version()?;
    let cuda_version = format!(
        "{}.{}",
        nvml_wrapper::cuda_driver_version_major(cuda),
        nvml_wrapper::cuda_driver_version_minor(cuda)
    );
    let readings = source.devices()?;
    if readings.is_empty() {
        return Err(InventoryError::NoGpu);
    }
    let power_limits_w = readings.iter().map(|d| d.power_limit_mw.map(|mw| mw / 1000)).collect();
    let gpus = readings
        .into_iter()
        .map(|d| GpuInfo {
            name: d.name,
            uuid: d.uuid,
            memory_bytes: d.memory_total,
            pci_bus_id: d.pci_bus_id,
            compute_capability: format!("{}.{}", d.compute_capability.0, d.compute_capability.1),
            driver_version: driver_version.clone(),
            cuda_version: cuda_version.clone(),
        })
        .collect();
    Ok(Inventory { gpus, verified: true, power_limits_w })
}

/// Turns readings into a heartbeat's health report. Missing sensors read as zero; an
/// error count is reported when the device keeps one (ECC, or else retired pages).
pub fn to_health(readings: &[DeviceReading]) -> Vec<GpuHealth> {
    readings
        .iter()
        .map(|d| GpuHealth {
            uuid: d.uuid.clone(),
            temperature_c: d.temperature_c.unwrap_or(0).min(MAX_TEMPERATURE_C),
            utilization_pct: d.utilization_pct.unwrap_or(0).min(100) as u8,
            memory_used_bytes: d.memory_used,
            ecc_errors: d.ecc_uncorrected.or(d.retired_pages),
        })
        .collect()
}

/// Health of a simulated inventory: fixed, idle values, so heartbeats stay deterministic.
pub fn simulated_health(inventory: &Inventory) -> Vec<GpuHealth> {
    inventory
        .gpus
        .iter()
        .map(|g| GpuHealth {
            uuid: g.uuid.clone(),
            temperature_c: 40,
            utilization_pct: 0,
            memory_used_bytes: 0,
            ecc_errors: None,
        })
        .collect()
}

/// Keeps the latest GPU health in a watch channel. For NVML a dedicated thread owns the
/// handle and reads every `interval`; a simulated inventory reports fixed values.
pub fn watch_health(
    inventory: &Inventory,
    interval: std::time::Duration,
) -> tokio::sync::watch::Receiver<Vec<GpuHealth>> {
    let (tx, rx) = tokio::sync::watch::channel(simulated_health(inventory));
    if !inventory.verified {
        return rx;
    }
    // Heartbeats speak of the offered GPUs only.
    let offered: Vec<String> = inventory.gpus.iter().map(|g| g.uuid.clone()).collect();
    let spawned = std::thread::Builder::new().name("nvml".into()).spawn(move || {
        let source = match NvmlSource::init() {
            Ok(source) => source,
            Err(e) => return tracing::error!(error = %e, "GPU health unavailable"),
        };
        while !tx.is_closed() {
            match source.devices() {
                Ok(mut readings) => {
                    readings.retain(|d| offered.contains(&d.uuid));
                    let _ = tx.send(to_health(&readings));
                }
                Err(e) => tracing::warn!(error = %e, "could not read GPU health"),
            }
            std::thread::sleep(interval);
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the GPU health reader");
    }
    rx
}

/// Reads the real GPUs through NVML.
pub fn read_nvml() -> Result<Inventory, InventoryError> {
    to_inventory(&NvmlSource::init()?)
}

/// Loads a simulated inventory: a JSON array of GPUs in the offer's format.
pub fn read_simulated(path: &Path) -> Result<Inventory, InventoryError> {
    let fail =
        |reason: String| InventoryError::Simulated { path: path.display().to_string(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let gpus: Vec<GpuInfo> = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
    if gpus.is_empty() {
        return Err(fail("lists no GPU".into()));
    }
    Ok(Inventory { power_limits_w: vec![None; gpus.len()], gpus, verified: false })
}

impl Inventory {
    /// The part of the inventory at `indices` (NVML index order kept, duplicates ignored),
    /// for a machine that offers only some of its GPUs.
    pub fn select(self, indices: &[usize]) -> Result<Self, InventoryError> {
        let count = self.gpus.len();
        if let Some(&index) = indices.iter().find(|&&i| i >= count) {
            return Err(InventoryError::UnknownIndex { index, count });
        }
        let keep = |i: &usize| indices.contains(i);
        let Self { gpus, verified, power_limits_w } = self;
        Ok(Self {
            gpus: gpus.into_iter().enumerate().filter(|(i, _)| keep(i)).map(|(_, g)| g).collect(),
            power_limits_w: power_limits_w
                .into_iter()
                .enumerate()
                .filter(|(i, _)| keep(i))
                .map(|(_, p)| p)
                .collect(),
            verified,
        })
    }

    /// Checks that the inventory can be advertised: every GPU of one model, as offers are.
    pub fn check_offerable(&self) -> Result<(), InventoryError> {
        let first = self.gpus.first().ok_or(InventoryError::NoGpu)?;
        match self.gpus.iter().find(|g| g.name != first.name) {
            Some(other) => Err(InventoryError::MixedModels(first.name.clone(), other.name.clone())),
            None => Ok(()),
        }
    }
}

/// The inventory to advertise: simulated only when explicitly asked for.
pub fn inventory(simulate: Option<&Path>) -> Result<Inventory, InventoryError> {
    match simulate {
        Some(path) => read_simulated(path),
        None => read_nvml(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_inventory_is_never_verified() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gpus.json");
        std::fs::write(
            &path,
            r#"[{"name":"NVIDIA GeForce RTX 4090","uuid":"GPU-1","memory_bytes":25757220864,
                "pci_bus_id":"00000000:01:00.0","compute_capability":"8.9",
                "driver_version":"550.54.14","cuda_version":"12.4"}]"#,
        )
        .unwrap();
        let inventory = read_simulated(&path).unwrap();
        assert!(!inventory.verified);
        assert_eq!(inventory.gpus[0].uuid, "GPU-1");
    }

    fn gpu(name: &str, uuid: &str) -> GpuInfo {
        GpuInfo {
            name: name.into(),
            uuid: uuid.into(),
            memory_bytes: 1,
            pci_bus_id: String::new(),
            compute_capability: "8.9".into(),
            driver_version: "550.54.14".into(),
            cuda_version: "12.4".into(),
        }
    }

    #[test]
    fn a_machine_of_two_models_is_not_advertised() {
        let mut inventory = Inventory {
            gpus: vec![
                gpu("NVIDIA GeForce RTX 4090", "GPU-1"),
                gpu("NVIDIA GeForce RTX 4090", "GPU-2"),
            ],
            verified: true,
            power_limits_w: vec![None, None],
        };
        assert!(inventory.check_offerable().is_ok());
        inventory.gpus.push(gpu("NVIDIA GeForce RTX 3090", "GPU-3"));
        let err = inventory.check_offerable().unwrap_err().to_string();
        assert!(err.contains("RTX 4090") && err.contains("RTX 3090"), "{err}");
    }

    #[test]
    fn a_machine_offers_the_gpus_it_selects() {
        let inventory = Inventory {
            gpus: vec![
                gpu("NVIDIA GeForce RTX 4090", "GPU-0"),
                gpu("NVIDIA GeForce RTX 3090", "GPU-1"),
                gpu("NVIDIA GeForce RTX 4090", "GPU-2"),
            ],
            verified: true,
            power_limits_w: vec![Some(450), Some(350), Some(400)],
        };
        let mixed = inventory.check_offerable().unwrap_err().to_string();
        assert!(mixed.contains("--offer-gpus"), "{mixed}");
        let chosen = inventory.clone().select(&[2, 0, 2]).unwrap();
        let uuids: Vec<&str> = chosen.gpus.iter().map(|g| g.uuid.as_str()).collect();
        assert_eq!(uuids, ["GPU-0", "GPU-2"]);
        assert_eq!(chosen.power_limits_w, [Some(450), Some(400)]);
        assert!(chosen.verified);
        assert!(chosen.check_offerable().is_ok());
        let err = inventory.select(&[1, 3]).unwrap_err().to_string();
        assert!(err.contains("index 3") && err.contains("indices 0 to 2"), "{err}");
    }

    #[test]
    fn bad_simulated_inventory_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gpus.json");
        std::fs::write(&path, "[]").unwrap();
        let err = read_simulated(&path).unwrap_err().to_string();
        assert!(err.contains("gpus.json") && err.contains("no GPU"), "{err}");
    }

    struct Fixture(Vec<DeviceReading>);

    impl GpuSource for Fixture {
        fn driver_version(&self) -> Result<String, InventoryError> {
            Ok("550.54.14".into())
        }
        fn cuda_driver_version(&self) -> Result<i32, InventoryError> {
            Ok(12040)
        }
        fn devices(&self) -> Result<Vec<DeviceReading>, InventoryError> {
            Ok(self.0.clone())
        }
    }

    fn h100() -> DeviceReading {
        DeviceReading {
            name: "NVIDIA H100 80GB HBM3".into(),
            uuid: "GPU-h100".into(),
            memory_total: 85_520_809_984,
            memory_used: 1_000_000,
            pci_bus_id: "00000000:18:00.0".into(),
            compute_capability: (9, 0),
            power_limit_mw: Some(700_000),
            temperature_c: Some(35),
            utilization_pct: Some(12),
            ecc_uncorrected: Some(0),
            retired_pages: Some(3),
        }
    }

    #[test]
    fn nvml_readings_map_to_offer_and_health() {
        let consumer = DeviceReading {
            uuid: "GPU-4090".into(),
            name: "NVIDIA GeForce RTX 4090".into(),
            compute_capability: (8, 9),
            power_limit_mw: None,
            temperature_c: Some(250),
            utilization_pct: Some(100),
            ecc_uncorrected: None,
            retired_pages: None,
            ..h100()
        };
        let inventory = to_inventory(&Fixture(vec![h100(), consumer.clone()])).unwrap();
        assert!(inventory.verified);
        assert_eq!(inventory.power_limits_w, vec![Some(700), None]);
        let gpu = &inventory.gpus[0];
        assert_eq!(
            (gpu.compute_capability.as_str(), gpu.cuda_version.as_str(), gpu.memory_bytes),
            ("9.0", "12.4", 85_520_809_984)
        );
        assert_eq!(gpu.driver_version, "550.54.14");
        assert_eq!(gpu.pci_bus_id, "00000000:18:00.0");

        let health = to_health(&[h100(), consumer]);
        assert_eq!(health[0].ecc_errors, Some(0), "ECC counter preferred over retired pages");
        assert_eq!((health[0].temperature_c, health[0].utilization_pct), (35, 12));
        assert_eq!(health[1].ecc_errors, None, "no counter on consumer GPUs");
        assert_eq!(health[1].temperature_c, MAX_TEMPERATURE_C, "broken sensor clamped");
    }

    #[test]
    fn the_json_report_shows_what_the_table_shows() {
        let consumer = DeviceReading { uuid: "GPU-4090".into(), power_limit_mw: None, ..h100() };
        let inventory = to_inventory(&Fixture(vec![h100(), consumer])).unwrap();
        let json = serde_json::to_value(inventory.report()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "verified": true,
                "gpus": [
                    {
                        "index": 0,
                        "name": "NVIDIA H100 80GB HBM3",
                        "uuid": "GPU-h100",
                        "memory_bytes": 85_520_809_984_u64,
                        "pci_bus_id": "00000000:18:00.0",
                        "compute_capability": "9.0",
                        "driver_version": "550.54.14",
                        "cuda_version": "12.4",
                        "power_limit_w": 700,
                    },
                    {
                        "index": 1,
                        "name": "NVIDIA H100 80GB HBM3",
                        "uuid": "GPU-4090",
                        "memory_bytes": 85_520_809_984_u64,
                        "pci_bus_id": "00000000:18:00.0",
                        "compute_capability": "9.0",
                        "driver_version": "550.54.14",
                        "cuda_version": "12.4",
                        "power_limit_w": null,
                    },
                ],
            })
        );
        let simulated = Inventory { verified: false, ..inventory };
        assert_eq!(serde_json::to_value(simulated.report()).unwrap()["verified"], false);
    }

    #[test]
    fn no_device_is_an_error() {
        assert!(matches!(to_inventory(&Fixture(Vec::new())), Err(InventoryError::NoGpu)));
    }

    #[test]
    fn without_a_driver_nvml_fails_with_the_fix() {
        // Machines with the NVIDIA driver read real GPUs instead; nothing to check there.
        if let Err(err) = read_nvml() {
            let text = err.to_string();
            assert!(text.contains("--simulate-gpus") || text.contains("no GPU"), "{text}");
        }
    }
}
