//! `gpuflow-provider challenge`: answers a matrix-product challenge on this machine the way
//! the agent answers a node's, and checks it the way a node does; the GPU check of
//! `tests/gpu/challenge.sh`.

use std::time::Instant;

use alloy::primitives::B256;
use anyhow::{Context, bail};
use gpuflow_protocol::challenge::{
    Answer, Challenge,
    check::{self, CheckError},
    matrix::{self, Factor},
    verdict,
};

use crate::{cuda::Cuda, opts::ChallengeArgs};

pub(super) fn run(args: ChallengeArgs) -> anyhow::Result<()> {
    let ChallengeArgs { n, rounds, cpu, rows } = args;
    let seed = B256::from(rand::random::<[u8; 32]>());
    let (answer, gpu_name, elapsed) = if cpu {
        let challenge = Challenge { seed, n, rounds, gpus: vec!["cpu".into()] };
        challenge.validate()?;
        println!("backend cpu: n = {n}, {rounds} round(s)");
        let started = Instant::now();
        let answer = Answer::compute_cpu(&challenge);
        (answer, "the CPU".to_string(), started.elapsed())
    } else {
        let cuda = Cuda::load().context("the GPU path cannot run")?;
        let devices = cuda.devices();
        let gpus = devices.iter().map(|device| device.uuid.clone()).collect();
        let challenge = Challenge { seed, n, rounds, gpus };
        challenge.validate()?;
        println!("backend cuda: n = {n}, {rounds} round(s) on each of {} GPU(s)", devices.len());
        for (slot, device) in devices.iter().enumerate() {
            let product = slot as u32 * rounds;
            let started = Instant::now();
            let generated =
                cuda.generated_factor(&device.uuid, seed, product, Factor::A, n as usize)?;
            let expected = matrix::factor(seed, product, Factor::A, n as usize);
            if let Some(at) = generated.iter().zip(&expected).position(|(g, e)| g != e) {
                bail!(
                    "{} {}: the kernel's generator differs from the protocol's at entry {at} of \
                     factor A of product {product} ({} instead of {})",
                    device.name,
                    device.uuid,
                    generated[at],
                    expected[at]
                );
            }
            println!(
                "  {} {} (CUDA {}): generated factor A of product {product} equals the \
                 protocol's ({} ms, untimed)",
                device.name,
                device.uuid,
                device.ordinal,
                started.elapsed().as_millis()
            );
        }
        let started = Instant::now();
        let (answer, timings) = cuda.answer(&challenge)?;
        let elapsed = started.elapsed();
        for (device, timings) in devices.iter().zip(&timings) {
            println!(
                "  {}: setup {} ms, waiting for the GPU {} ms, hashing rows on the host {} ms",
                device.uuid,
                timings.setup.as_millis(),
                timings.device.as_millis(),
                timings.hashing.as_millis()
            );
        }
        (answer, devices[0].name.clone(), elapsed)
    };
    let challenge = answer.challenge().clone();
    let elapsed_ms = elapsed.as_millis() as u64;
    let proven = verdict::proven_tflops(n, rounds, elapsed_ms);
    let expected = verdict::expected_tflops(&gpu_name);
    let (outcome, reason) = verdict::judge(&gpu_name, expected, proven);
    println!(
        "answered in {elapsed_ms} ms: {proven:.3} TFLOP/s per GPU by the node's formula, the \
         network round trip excluded; a node would say {} ({reason})",
        outcome.as_str()
    );

    // The node's side: draw rows from a secret and the commitment, open them, check them.
    let commitment = answer.commitment();
    check::check_commitment(&challenge, &commitment)?;
    let secret = B256::from(rand::random::<[u8; 32]>());
    let started = Instant::now();
    let asked = check::choose_rows(&challenge, &commitment, secret, rows);
    let drawn = started.elapsed();
    let opened_at = Instant::now();
    let opening = answer.open(&asked)?;
    let opened = opened_at.elapsed();
    let checked_at = Instant::now();
    let checked = check::check_opening(&challenge, &commitment, &asked, &opening, secret);
    let check_cost = drawn + checked_at.elapsed();
    println!(
        "opened {} row(s) in {} ms (provider); the node's check took {} ms (drawing the rows, \
         B·x, Merkle paths, Freivalds)",
        asked.len(),
        opened.as_millis(),
        check_cost.as_millis()
    );
    match checked {
        Ok(()) => println!("check: passed"),
        Err(e @ (CheckError::WrongRow(_) | CheckError::CommitmentMismatch(_))) => {
            bail!("check: the answer is wrong: {e}")
        }
        Err(e) => bail!("check: {e}"),
    }
    Ok(())
}
