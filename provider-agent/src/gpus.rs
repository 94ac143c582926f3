//! GPU inventory: read through NVML, or simulated for development.

use std::path::Path;

use gpuflow_protocol::GpuInfo;

/// The GPUs this machine offers.
#[derive(Clone, Debug)]
pub struct Inventory {
    /// The GPUs, in NVML index order.
    pub gpus: Vec<GpuInfo>,
    /// True only when read through NVML; simulated GPUs are never verified.
    pub verified: bool,
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
    /// The simulated inventory file is unreadable or malformed.
    #[error("simulated inventory {path}: {reason}")]
    Simulated {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Reads the real GPUs through NVML.
pub fn read_nvml() -> Result<Inventory, InventoryError> {
    let err = |e: nvml_wrapper::error::NvmlError| InventoryError::Nvml(e.to_string());
    let nvml = nvml_wrapper::Nvml::init().map_err(err)?;
    let driver_version = nvml.sys_driver_version().map_err(err)?;
    let cuda = nvml.sys_cuda_driver_version().map_err(err)?;
    let cuda_version = format!(
        "{}.{}",
        nvml_wrapper::cuda_driver_version_major(cuda),
        nvml_wrapper::cuda_driver_version_minor(cuda)
    );
    let mut gpus = Vec::new();
    for index in 0..nvml.device_count().map_err(err)? {
        let device = nvml.device_by_index(index).map_err(err)?;
        let capability = device.cuda_compute_capability().map_err(err)?;
        gpus.push(GpuInfo {
            name: device.name().map_err(err)?,
            uuid: device.uuid().map_err(err)?,
            memory_bytes: device.memory_info().map_err(err)?.total,
            pci_bus_id: device.pci_info().map_err(err)?.bus_id,
            compute_capability: format!("{}.{}", capability.major, capability.minor),
            driver_version: driver_version.clone(),
            cuda_version: cuda_version.clone(),
        });
    }
    if gpus.is_empty() {
        return Err(InventoryError::NoGpu);
    }
    Ok(Inventory { gpus, verified: true })
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
    Ok(Inventory { gpus, verified: false })
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

    #[test]
    fn bad_simulated_inventory_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gpus.json");
        std::fs::write(&path, "[]").unwrap();
        let err = read_simulated(&path).unwrap_err().to_string();
        assert!(err.contains("gpus.json") && err.contains("no GPU"), "{err}");
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
