//! The GPU path of the matrix challenge: each GPU a challenge names generates its factors
//! with an NVRTC-compiled kernel ([`KERNEL`], the generator of
//! [`gpuflow_protocol::challenge::matrix`]), multiplies them with cuBLAS (`cublasGemmEx`,
//! bf16 in, fp32 accumulation and out), and the host hashes the rows of each product into
//! its Merkle tree while the GPU computes the next one.
//!
//! The CUDA driver, cuBLAS and NVRTC are loaded at run time (`cudarc` with dynamic loading),
//! like NVML: the agent builds and runs on machines without them, and [`Cuda::load`] says
//! which one is missing. Nothing here needs a CUDA toolkit at build time.
//!
//! A GPU's context, cuBLAS handle and buffers live only for one challenge, so that an idle
//! agent holds no memory on GPUs it may rent out; their setup is inside the time a node
//! measures. The GPUs of one challenge compute concurrently, one thread each.

use std::{
    ops::Range,
    panic::{self, AssertUnwindSafe},
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use alloy::primitives::B256;
use cudarc::{
    cublas::{CudaBlas, result as cublas_result, sys as cublas_sys},
    driver::{
        CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, LaunchConfig,
        PushKernelArg, result as driver_result, sys as driver_sys,
    },
    nvrtc::{self, Ptx},
};
use gpuflow_protocol::challenge::{
    Answer, Backend, Challenge,
    matrix::{self, Factor},
    merkle::{self, RowTree},
};

/// The generator kernel, CUDA C, compiled by NVRTC when CUDA is loaded.
pub const KERNEL: &str = include_str!("kernel.cu");
/// Threads per block of the generator kernel.
const BLOCK: u32 = 256;

/// Why the GPU path cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    /// A shared library of CUDA is not installed (or not on the loader's path).
    #[error("{0} is not installed or not on the library path (LD_LIBRARY_PATH)")]
    Missing(&'static str),
    /// The driver reports no CUDA device.
    #[error("the CUDA driver reports no device")]
    NoDevice,
    /// A GPU the challenge names is not a CUDA device of this machine.
    #[error("GPU {0} is not among the CUDA devices (CUDA_VISIBLE_DEVICES may hide it)")]
    UnknownGpu(String),
    /// A call into CUDA failed.
    #[error("{what} failed: {reason}")]
    Call {
        /// What was being done.
        what: &'static str,
        /// The error CUDA returned.
        reason: String,
    },
    /// NVRTC refused the generator kernel.
    #[error("NVRTC could not compile the generator kernel: {0}")]
    Compile(String),
    /// The GPU's product has an entry that is not an exact integer: a broken GPU or library.
    #[error("entry ({row}, {col}) of product {product} is {value}, not an exact integer")]
    NotIntegral {
        /// The product.
        product: u32,
        /// Row of the entry.
        row: usize,
        /// Column of the entry.
        col: usize,
        /// What the GPU computed.
        value: f32,
    },
    /// A CUDA binding panicked (a symbol missing from an old driver, for one).
    #[error("the CUDA bindings panicked: {0}")]
    Panicked(String),
}

/// `result.map_err` naming what failed.
fn call<T, E: std::fmt::Display>(what: &'static str, result: Result<T, E>) -> Result<T, CudaError> {
    result.map_err(|e| CudaError::Call { what, reason: e.to_string() })
}

/// Runs `f`, turning a panic of the bindings into [`CudaError::Panicked`].
fn unpanicked<T>(f: impl FnOnce() -> Result<T, CudaError>) -> Result<T, CudaError> {
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let reason = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
            .unwrap_or_else(|| "no message".into());
        Err(CudaError::Panicked(reason))
    })
}

/// A CUDA device as NVML names it.
#[derive(Clone, Debug)]
pub struct Device {
    /// CUDA ordinal (what `CUDA_VISIBLE_DEVICES` leaves visible, renumbered).
    pub ordinal: usize,
    /// `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, as NVML and offers write it.
    pub uuid: String,
    /// The device's name.
    pub name: String,
}

/// CUDA, loaded: the devices and the compiled generator.
#[derive(Debug)]
pub struct Cuda {
    devices: Vec<Device>,
    ptx: Ptx,
}

/// How long the parts of one GPU's work took, for logs and `gpuflow-provider challenge`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    /// Context, cuBLAS handle, module and buffers.
    pub setup: Duration,
    /// Waiting for the GPU: generating, multiplying and copying back, where hashing did not
    /// hide it.
    pub device: Duration,
    /// Converting and hashing the rows on the host.
    pub hashing: Duration,
}

impl Cuda {
    /// Loads the driver, cuBLAS and NVRTC, lists the devices and compiles the generator;
    /// names what is missing otherwise. Blocking (`cuInit`, NVRTC): call it off the runtime.
    pub fn load() -> Result<Self, CudaError> {
        unpanicked(|| {
            // SAFETY: each only tries to open a shared library by its usual names; loading
            // runs the library's initialisers, which are NVIDIA's own.
            let (driver, cublas, nvrtc) = unsafe {
                (
                    driver_sys::is_culib_present(),
                    cublas_sys::is_culib_present(),
                    nvrtc::sys::is_culib_present(),
                )
            };
            if !driver {
                return Err(CudaError::Missing("the CUDA driver (libcuda.so.1)"));
            }
            if !cublas {
                return Err(CudaError::Missing("cuBLAS (libcublas.so.12)"));
            }
            if !nvrtc {
                return Err(CudaError::Missing("NVRTC (libnvrtc.so.12)"));
            }
            call("cuInit", driver_result::init())?;
            let count = call("cuDeviceGetCount", driver_result::device::get_count())?;
            if count <= 0 {
                return Err(CudaError::NoDevice);
            }
            let devices = (0..count)
                .map(|ordinal| {
                    let device = call("cuDeviceGet", driver_result::device::get(ordinal))?;
                    let uuid = call("cuDeviceGetUuid", driver_result::device::get_uuid(device))?;
                    Ok(Device {
                        ordinal: ordinal as usize,
                        uuid: nvml_uuid(&uuid.bytes.map(|b| b as u8)),
                        name: call("cuDeviceGetName", driver_result::device::get_name(device))?,
                    })
                })
                .collect::<Result<Vec<_>, CudaError>>()?;
            let ptx = nvrtc::compile_ptx(KERNEL).map_err(|e| CudaError::Compile(e.to_string()))?;
            Ok(Self { devices, ptx })
        })
    }

    /// The CUDA devices, in ordinal order.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// The device with NVML UUID `uuid`.
    fn device(&self, uuid: &str) -> Result<&Device, CudaError> {
        self.devices
            .iter()
            .find(|device| device.uuid.eq_ignore_ascii_case(uuid))
            .ok_or_else(|| CudaError::UnknownGpu(uuid.to_string()))
    }

    /// Computes every product of `challenge`, each GPU its own, all GPUs at once. Blocking:
    /// run it off the async runtime. Returns the answer and each GPU's timings.
    pub fn answer(&self, challenge: &Challenge) -> Result<(Answer, Vec<Timings>), CudaError> {
        let devices =
            challenge.gpus.iter().map(|uuid| self.device(uuid)).collect::<Result<Vec<_>, _>>()?;
        let n = challenge.n as usize;
        let threads = hashing_threads(devices.len());
        let results: Vec<Result<(Vec<RowTree>, Timings), CudaError>> = thread::scope(|scope| {
            let workers: Vec<_> = devices
                .iter()
                .enumerate()
                .map(|(slot, device)| {
                    let first = slot as u32 * challenge.rounds;
                    let products = first..first + challenge.rounds;
                    let (ptx, seed) = (&self.ptx, challenge.seed);
                    scope.spawn(move || {
                        unpanicked(|| {
                            let started = Instant::now();
                            let gpu = Gpu::open(device.ordinal, ptx, n)?;
                            let setup = started.elapsed();
                            let (trees, timings) = gpu.products(seed, products, threads)?;
                            Ok((trees, Timings { setup, ..timings }))
                        })
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| {
                    worker.join().unwrap_or_else(|_| {
                        Err(CudaError::Panicked("a GPU's thread panicked".into()))
                    })
                })
                .collect()
        });
        let mut trees = Vec::with_capacity(challenge.products() as usize);
        let mut timings = Vec::with_capacity(devices.len());
        for result in results {
            let (gpu_trees, gpu_timings) = result?;
            trees.extend(gpu_trees);
            timings.push(gpu_timings);
        }
        Ok((Answer::from_trees(challenge, Backend::Cuda, trees), timings))
    }

    /// Factor `which` of `product` as the GPU with `uuid` generates it, read back as
    /// integers: what `gpuflow-provider challenge` compares with the protocol's generator.
    pub fn generated_factor(
        &self,
        uuid: &str,
        seed: B256,
        product: u32,
        which: Factor,
        n: usize,
    ) -> Result<Vec<i8>, CudaError> {
        let device = self.device(uuid)?;
        unpanicked(|| {
            let mut gpu = Gpu::open(device.ordinal, &self.ptx, n)?;
            gpu.generate(matrix::key(seed, product, which), which)?;
            let out = match which {
                Factor::A => &gpu.a,
                Factor::B => &gpu.b,
            };
            let bits = call("cuMemcpyDtoH", gpu.stream.clone_dtoh(out))?;
            call("cuStreamSynchronize", gpu.stream.synchronize())?;
            Ok(bits.into_iter().map(bf16_integer).collect())
        })
    }
}

/// The integer a bf16 bit pattern of the generator stands for (`i8::MIN` for any other).
fn bf16_integer(bits: u16) -> i8 {
    match bits {
        0xc000 => -2,
        0xbf80 => -1,
        0x0000 => 0,
        0x3f80 => 1,
        0x4000 => 2,
        _ => i8::MIN,
    }
}

/// NVML's spelling of a CUDA UUID: `GPU-` and the 16 bytes in hex, grouped 4-2-2-2-6.
fn nvml_uuid(bytes: &[u8; 16]) -> String {
    let hex =
        |range: Range<usize>| bytes[range].iter().map(|b| format!("{b:02x}")).collect::<String>();
    format!("GPU-{}-{}-{}-{}-{}", hex(0..4), hex(4..6), hex(6..8), hex(8..10), hex(10..16))
}

/// Threads each GPU's worker hashes with: the machine's cores shared among the GPUs.
fn hashing_threads(gpus: usize) -> usize {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    (cores / gpus.max(1)).max(1)
}

/// One GPU set up for one challenge: its context's stream, cuBLAS handle, the generator
/// and the buffers of one product.
struct Gpu {
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    generator: CudaFunction,
    n: usize,
    /// The factors of the product being computed, bf16 bits.
    a: CudaSlice<u16>,
    b: CudaSlice<u16>,
    /// The product, fp32.
    c: CudaSlice<f32>,
}

impl Gpu {
    fn open(ordinal: usize, ptx: &Ptx, n: usize) -> Result<Self, CudaError> {
        let context = call("creating a CUDA context", CudaContext::new(ordinal))?;
        let stream = context.default_stream();
        let module = call("loading the generator", context.load_module(ptx.clone()))?;
        let generator = call("finding the generator", module.load_function("gpuflow_factor"))?;
        let blas = call("creating a cuBLAS handle", CudaBlas::new(Arc::clone(&stream)))?;
        let a = call("cuMemAlloc", stream.alloc_zeros::<u16>(n * n))?;
        let b = call("cuMemAlloc", stream.alloc_zeros::<u16>(n * n))?;
        let c = call("cuMemAlloc", stream.alloc_zeros::<f32>(n * n))?;
        Ok(Self { stream, blas, generator, n, a, b, c })
    }

    /// Queues product `product`: both factors, then their product into `c`.
    fn enqueue(&mut self, seed: B256, product: u32) -> Result<(), CudaError> {
        for (which, key) in [Factor::A, Factor::B].map(|w| (w, matrix::key(seed, product, w))) {
            self.generate(key, which)?;
        }
        self.multiply()
    }

    /// Queues the generation of the factor with `key` into buffer `which`.
    fn generate(&mut self, key: u64, which: Factor) -> Result<(), CudaError> {
        let words = (self.n * self.n / matrix::PER_WORD) as u64;
        let config = LaunchConfig {
            grid_dim: (words.div_ceil(u64::from(BLOCK)) as u32, 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let out = match which {
            Factor::A => &mut self.a,
            Factor::B => &mut self.b,
        };
        let mut launch = self.stream.launch_builder(&self.generator);
        launch.arg(&key).arg(&words).arg(out);
        // SAFETY: the kernel takes (u64 key, u64 words, u64 *out) and writes 2 · words u64s,
        // which `out` holds: n² u16 entries are n² / 4 u64s, and words = n² / 8.
        call("launching the generator", unsafe { launch.launch(config) })?;
        Ok(())
    }

    /// Queues `c = a · b`, all `n × n` and row-major: in cuBLAS's column-major terms
    /// `cᵀ = bᵀ · aᵀ`, so `b` goes first and nothing is transposed.
    fn multiply(&mut self) -> Result<(), CudaError> {
        let n = self.n as i32;
        let (alpha, beta) = (1.0f32, 0.0f32);
        let (a, _a) = self.a.device_ptr(&self.stream);
        let (b, _b) = self.b.device_ptr(&self.stream);
        let (c, _c) = self.c.device_ptr_mut(&self.stream);
        // SAFETY: the three buffers hold n² entries of the types named (bf16 as u16 bits,
        // fp32), stay alive until the guards drop after the call is queued, and the handle
        // runs on the stream they are used on.
        let result = unsafe {
            cublas_result::gemm_ex(
                *self.blas.handle(),
                cublas_sys::cublasOperation_t::CUBLAS_OP_N,
                cublas_sys::cublasOperation_t::CUBLAS_OP_N,
                n,
                n,
                n,
                (&raw const alpha).cast(),
                b as *const _,
                cublas_sys::cudaDataType_t::CUDA_R_16BF,
                n,
                a as *const _,
                cublas_sys::cudaDataType_t::CUDA_R_16BF,
                n,
                (&raw const beta).cast(),
                c as *mut _,
                cublas_sys::cudaDataType_t::CUDA_R_32F,
                n,
                cublas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                cublas_sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        };
        call("cublasGemmEx", result)
    }

    /// Computes `products` one after the other, the host hashing each one's rows with
    /// `threads` threads while the GPU computes the next.
    fn products(
        mut self,
        seed: B256,
        products: Range<u32>,
        threads: usize,
    ) -> Result<(Vec<RowTree>, Timings), CudaError> {
        let n = self.n;
        let stream = Arc::clone(&self.stream);
        // Page-locked, and not write-combined: the host reads it back.
        // SAFETY: the memory is uninitialised until the first copy, and nothing reads it
        // before.
        let mut host = call("cuMemHostAlloc", unsafe {
            stream.context().alloc_pinned_with_flags::<f32>(n * n, 0)
        })?;
        let mut timings = Timings::default();
        let mut trees = Vec::with_capacity(products.len());
        if !products.is_empty() {
            self.enqueue(seed, products.start)?;
        }
        for product in products.clone() {
            let waited = Instant::now();
            call("cuMemcpyDtoH", stream.memcpy_dtoh(&self.c, &mut host))?;
            let values = call("waiting for the GPU", host.as_slice())?;
            timings.device += waited.elapsed();
            // The copy is done, so the GPU may overwrite a, b and c with the next product.
            if product + 1 < products.end {
                self.enqueue(seed, product + 1)?;
            }
            let hashing = Instant::now();
            trees.push(tree(seed, product, n, values, threads)?);
            timings.hashing += hashing.elapsed();
        }
        Ok((trees, timings))
    }
}

/// The Merkle tree of `product` from the GPU's fp32 entries, rows hashed by `threads`
/// threads; refuses any entry that is not an exact integer.
fn tree(
    seed: B256,
    product: u32,
    n: usize,
    values: &[f32],
    threads: usize,
) -> Result<RowTree, CudaError> {
    let rows_per_thread = n.div_ceil(threads.max(1));
    let chunks: Vec<Result<Vec<B256>, CudaError>> = thread::scope(|scope| {
        let workers: Vec<_> = values
            .chunks(rows_per_thread * n)
            .enumerate()
            .map(|(chunk, values)| {
                scope.spawn(move || {
                    let mut integers = vec![0i32; n];
                    values
                        .chunks_exact(n)
                        .enumerate()
                        .map(|(i, row)| {
                            let row_index = chunk * rows_per_thread + i;
                            to_integers(row, &mut integers).map_err(|(col, value)| {
                                CudaError::NotIntegral { product, row: row_index, col, value }
                            })?;
                            Ok(merkle::leaf(seed, product, row_index as u32, &integers))
                        })
                        .collect()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker.join().unwrap_or_else(|_| {
                    Err(CudaError::Panicked("a hashing thread panicked".into()))
                })
            })
            .collect()
    });
    let mut leaves = Vec::with_capacity(n);
    for chunk in chunks {
        leaves.extend(chunk?);
    }
    Ok(RowTree::new(leaves))
}

/// Writes `row`'s entries into `out` as integers, or names the first that is not one.
fn to_integers(row: &[f32], out: &mut [i32]) -> Result<(), (usize, f32)> {
    for (col, (&value, out)) in row.iter().zip(out.iter_mut()).enumerate() {
        let integer = value as i32;
        if integer as f32 != value {
            return Err((col, value));
        }
        *out = integer;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_spelled_as_nvml_spells_them() {
        let bytes = [
            0x2b, 0x1c, 0x6a, 0x3e, 0x9f, 0x01, 0x4d, 0x5e, 0x8a, 0x7b, 0x00, 0x11, 0x22, 0x33,
            0x44, 0xff,
        ];
        assert_eq!(nvml_uuid(&bytes), "GPU-2b1c6a3e-9f01-4d5e-8a7b-0011223344ff");
    }

    #[test]
    fn the_kernels_bf16_table_is_the_generators_entries() {
        for (bits, value) in [(0xc000, -2), (0xbf80, -1), (0, 0), (0x3f80, 1), (0x4000, 2)] {
            assert_eq!(bf16_integer(bits), value);
            // bf16 is the upper half of fp32.
            assert_eq!(u32::from(bits) << 16, (value as f32).to_bits());
            assert!(KERNEL.contains(&format!("0x{bits:04x}")));
        }
        assert!(KERNEL.contains(&format!("0x{:x}ULL", matrix::GAMMA)));
    }

    #[test]
    fn rows_of_exact_integers_hash_like_the_cpu_path_and_others_are_refused() {
        let (seed, n) = (B256::repeat_byte(4), 64);
        let c = matrix::product(seed, 2, n);
        let floats: Vec<f32> = c.iter().map(|&v| v as f32).collect();
        for threads in [1, 3, 64] {
            let tree = tree(seed, 2, n, &floats, threads).expect("integers");
            assert_eq!(tree.root(), RowTree::of_product(seed, 2, n, &c).root());
        }
        let mut broken = floats.clone();
        broken[5 * n + 7] = 0.5;
        assert!(matches!(
            tree(seed, 2, n, &broken, 2),
            Err(CudaError::NotIntegral { product: 2, row: 5, col: 7, .. })
        ));
        broken[5 * n + 7] = f32::NAN;
        assert!(tree(seed, 2, n, &broken, 2).is_err());
    }

    #[test]
    fn without_cuda_loading_names_what_is_missing() {
        // Machines that run the tests have no GPU; where one has CUDA, loading must work.
        match Cuda::load() {
            Ok(cuda) => assert!(!cuda.devices().is_empty()),
            Err(e) => assert!(
                matches!(e, CudaError::Missing(_) | CudaError::NoDevice | CudaError::Call { .. }),
                "{e}"
            ),
        }
    }
}
