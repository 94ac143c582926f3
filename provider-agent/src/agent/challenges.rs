//! Nodes' matrix-product challenges (`/gpuflow/challenge/1`, see
//! [`gpuflow_protocol::challenge`]): the agent computes the products of a challenge on the
//! GPUs it names, answers with a signed commitment, and later opens the rows the node asks
//! for. Only free GPUs are challenged: a GPU a live rental or a pending quote holds is
//! refused, so a challenge never disturbs a renter.
//!
//! The products are computed on the GPUs through CUDA ([`crate::cuda`]), up to
//! [`gpuflow_protocol::challenge::MAX_N`], off the agent's loop and one challenge at a
//! time. Where CUDA is missing (no driver, cuBLAS or NVRTC, no device, or a challenged
//! GPU that is not a CUDA device), or fails, the agent says why in its log and computes on
//! the CPU ([`Answer::compute_cpu`]), only up to [`CPU_MAX_N`]: a larger challenge is then
//! refused rather than answered slowly. The answers are kept, a few, for their openings;
//! they hold Merkle trees, not products.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
};

use gpuflow_p2p::{PeerId, ResponseChannel};
use gpuflow_protocol::{
    SignedEnvelope,
    challenge::{Answer, Challenge, ChallengeRequest, ChallengeResponse},
};

use crate::cuda::{Cuda, CudaError};

use super::Agent;

/// Largest matrix the CPU path computes; a larger challenge that CUDA cannot compute is
/// refused, which leaves the offer unproven rather than flagged.
pub(super) const CPU_MAX_N: u32 = 1024;
/// Answers kept for their openings; the oldest goes first.
const KEPT_ANSWERS: usize = 4;

/// The answers kept and whether one is being computed, shared with the tasks that compute
/// and open them (an opening may arrive before the loop would hear that its commitment
/// went out), and CUDA, loaded by the first challenge.
#[derive(Clone, Debug, Default)]
pub(super) struct Challenges {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    computing: Arc<AtomicBool>,
    cuda: Arc<OnceLock<Result<Cuda, CudaError>>>,
}

impl Challenges {
    fn keep(&self, answer: Answer) {
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        if answers.len() == KEPT_ANSWERS {
            answers.pop_front();
        }
        answers.push_back(answer);
    }

    fn find(&self, seed: alloy::primitives::B256) -> Option<Answer> {
        let answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        answers.iter().find(|answer| answer.challenge().seed == seed).cloned()
    }

    /// Computes `challenge` on its GPUs, or on the CPU where CUDA cannot and the CPU may;
    /// the reason it is not computed otherwise. Blocking: CUDA is loaded on first use.
    fn compute(&self, challenge: &Challenge) -> Result<Answer, String> {
        let cuda = self.cuda.get_or_init(|| {
            let loaded = Cuda::load();
            match &loaded {
                Ok(cuda) => tracing::info!(devices = cuda.devices().len(), "CUDA loaded for challenges"),
                Err(e) => tracing::warn!(error = %e, "CUDA is unavailable; challenges are computed on the CPU, up to n = {CPU_MAX_N}"),
            }
            loaded
        });
        let why_not_cuda = match cuda {
            Ok(cuda) => match cuda.answer(challenge) {
                Ok((answer, timings)) => {
                    tracing::info!(
                        n = challenge.n,
                        rounds = challenge.rounds,
                        ?timings,
                        "challenge computed on the GPUs"
                    );
                    return Ok(answer);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the GPUs could not compute a challenge");
                    e
                }
            },
            Err(e) => return cpu_fallback(challenge, e),
        };
        cpu_fallback(challenge, &why_not_cuda)
    }
}

/// The CPU's answer to `challenge`, which CUDA could not compute because of `why`, or why
/// the CPU does not either.
fn cpu_fallback(challenge: &Challenge, why: &CudaError) -> Result<Answer, String> {
    if challenge.n > CPU_MAX_N {
        tracing::warn!(n = challenge.n, error = %why, "challenge refused: not computed on the GPUs, and too large for the CPU");
        return Err(format!(
            "this agent cannot compute on its GPUs ({why}) and computes on the CPU only up to \
             n = {CPU_MAX_N}; n = {} was asked",
            challenge.n
        ));
    }
    tracing::info!(n = challenge.n, reason = %why, "computing a challenge on the CPU");
    Ok(Answer::compute_cpu(challenge))
}

/// Clears the computing flag when the task that set it ends, however it ends.
struct Computing(Arc<AtomicBool>);

impl Drop for Computing {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Agent {
    /// Answers a node's challenge request; the work runs in tasks of its own.
    pub(super) async fn on_challenge(
        &mut self,
        peer: PeerId,
        request: ChallengeRequest,
        channel: ResponseChannel<ChallengeResponse>,
    ) {
        match request {
            ChallengeRequest::Challenge(challenge) => {
                if let Some(reason) = self.challenge_refusal(&challenge) {
                    tracing::info!(%peer, reason, "challenge refused");
                    self.refuse_challenge(channel, reason).await;
                    return;
                }
                let computing = Computing(Arc::clone(&self.challenges.computing));
                tracing::info!(%peer, n = challenge.n, rounds = challenge.rounds, gpus = challenge.gpus.len(), "computing a challenge");
                let (network, identity, challenges) =
                    (self.network.clone(), self.config.identity.clone(), self.challenges.clone());
                tokio::spawn(async move {
                    let computer = challenges.clone();
                    let answer =
                        tokio::task::spawn_blocking(move || computer.compute(&challenge)).await;
                    // Free before the answer leaves: the node may send the next at once.
                    drop(computing);
                    let response = match answer {
                        Ok(Ok(answer)) => {
                            let envelope = SignedEnvelope::seal(&identity, &answer.commitment());
                            challenges.keep(answer);
                            ChallengeResponse::Commitment { envelope }
                        }
                        Ok(Err(reason)) => ChallengeResponse::Refused { reason },
                        Err(e) => ChallengeResponse::Refused {
                            reason: format!("the computation failed: {e}"),
                        },
                    };
                    if let Err(e) = network.respond_challenge(channel, response).await {
                        tracing::warn!(error = %e, "could not answer a challenge");
                    }
                });
            }
            ChallengeRequest::Open { seed, rows } => {
                let Some(answer) = self.challenges.find(seed) else {
                    let reason = format!(
                        "no answer to challenge {seed} is kept here (only the last \
                         {KEPT_ANSWERS}); send the challenge first"
                    );
                    self.refuse_challenge(channel, reason).await;
                    return;
                };
                let (network, identity) = (self.network.clone(), self.config.identity.clone());
                tokio::spawn(async move {
                    let opened = tokio::task::spawn_blocking(move || answer.open(&rows)).await;
                    let response = match opened {
                        Ok(Ok(opening)) => ChallengeResponse::Opening {
                            envelope: SignedEnvelope::seal(&identity, &opening),
                        },
                        Ok(Err(e)) => ChallengeResponse::Refused { reason: e.to_string() },
                        Err(e) => ChallengeResponse::Refused {
                            reason: format!("the opening failed: {e}"),
                        },
                    };
                    if let Err(e) = network.respond_challenge(channel, response).await {
                        tracing::warn!(error = %e, "could not answer an opening");
                    }
                });
            }
        }
    }

    async fn refuse_challenge(&self, channel: ResponseChannel<ChallengeResponse>, reason: String) {
        let response = ChallengeResponse::Refused { reason };
        if let Err(e) = self.network.respond_challenge(channel, response).await {
            tracing::warn!(error = %e, "could not refuse a challenge");
        }
    }

    /// Why `challenge` is not computed now, if it is not; claims the computation otherwise.
    fn challenge_refusal(&self, challenge: &Challenge) -> Option<String> {
        if let Err(e) = challenge.validate() {
            return Some(e.to_string());
        }
        let quotable = self.quotable_gpus();
        if let Some(busy) =
            challenge.gpus.iter().find(|uuid| !quotable.iter().any(|gpu| &gpu.uuid == *uuid))
        {
            let known = self.config.inventory.gpus.iter().any(|gpu| &gpu.uuid == busy);
            return Some(match known {
                true => format!("GPU {busy} is rented or held by a quote; it is not challenged"),
                false => format!("GPU {busy} is not a GPU of this machine"),
            });
        }
        if self.challenges.computing.swap(true, Ordering::AcqRel) {
            return Some("another challenge is being computed; try again later".into());
        }
        None
    }
}
