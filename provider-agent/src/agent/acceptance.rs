//! Accepting a rental: a `RentalOpened` of this machine is checked against the quote it
//! was opened with, its GPUs allocated and its workload started, or it is refused with a
//! signed refusal that returns the renter's whole deposit.

use gpuflow_escrow::GpuEscrow;
use gpuflow_protocol::WorkloadState;

use super::{Agent, AgentError, is_live};
use crate::store::RentalRecord;

impl Agent {
    /// Checks a rental opened with one of this provider's quotes against the quote it
    /// issued, allocates the quoted GPUs and starts the workload, or refuses it.
    pub(super) async fn on_opened(
        &mut self,
        event: GpuEscrow::RentalOpened,
        block: u64,
    ) -> Result<(), AgentError> {
        let (Ok(id), Ok(start), Ok(ends_at)) =
            (u64::try_from(event.rentalId), u64::try_from(event.start), u64::try_from(event.end))
        else {
            tracing::warn!(rental = %event.rentalId, "rental ids or times out of range; ignored");
            return Ok(());
        };
        let nonce = event.nonce;
        if let Some(known) = self.rentals.get_mut(&id) {
            if known.nonce.is_none_or(|n| n == nonce) {
                // Read again (the tail, or after a restart): already handled. A rental a
                // reorganisation moved to another block keeps running, on its new times.
                if known.opened_block.is_some_and(|b| b != block) {
                    tracing::info!(rental = id, block, "the rental moved to another block");
                    known.opened_block = Some(block);
                    if is_live(known) {
                        known.ends_at = ends_at;
                    }
                    self.store.save_rental(known.clone()).await?;
                }
                return Ok(());
            }
            // The rental this id named left the chain; another rental took the id.
            self.forget(id).await?;
        }
        tracing::info!(rental = id, renter = %event.renter, rate = %event.ratePerSecond, ends_at, "rental opened");
        let mut rental = RentalRecord {
            id,
            renter: event.renter,
            ends_at,
            gpus: Vec::new(),
            state: WorkloadState::Starting.to_string(),
            detail: String::new(),
            started_at: None,
            ended_at: None,
            handle: None,
            // Nothing of a refused rental is the provider's: the renter stops it for a
            // full refund.
            paid_out: false,
            image: None,
            ssh_key: None,
            opened_block: Some(block),
            nonce: Some(nonce),
            refusal: None,
            launch: Default::default(),
            reach: Default::default(),
        };
        // The quote is used: its GPUs are no longer held for it, but (below) for the rental.
        self.reservations.release(event.nonce);
        let quote = self.store.quote(nonce).await?;
        let problem = match &quote {
            None => Some(format!(
                "it was not opened with a quote this provider issued (nonce {})",
                event.nonce
            )),
            Some(q) if q.renter != event.renter => {
                Some(format!("the quote was issued to {}, not {}", q.renter, event.renter))
            }
            Some(q) if u128::try_from(event.ratePerSecond).ok() != Some(q.rate_per_second) => {
                Some(format!(
                    "the rate {} differs from the quoted {}",
                    event.ratePerSecond, q.rate_per_second
                ))
            }
            Some(q) if ends_at.saturating_sub(start) > q.max_duration => Some(format!(
                "its {} s exceed the quoted maximum of {} s",
                ends_at.saturating_sub(start),
                q.max_duration
            )),
            Some(_) if ends_at.saturating_sub(start) < self.config.min_duration => Some(format!(
                "its {} s are shorter than this provider's minimum of {} s",
                ends_at.saturating_sub(start),
                self.config.min_duration
            )),
            Some(_) => None,
        };
        if let Some(problem) = problem {
            return self
                .refuse(rental, format!("the terms differ from the quote: {problem}"))
                .await;
        }
        if let Some(q) = quote {
            rental.gpus = q.gpus;
            rental.image = q.image;
            rental.ssh_key = q.ssh_key;
            rental.launch = q.launch;
        }
        let busy = self.store.open_rental(rental.clone()).await?;
        if !busy.is_empty() {
            rental.gpus.clear();
            let why = format!("GPU {} is already rented", busy.join(", "));
            return self.refuse(rental, why).await;
        }
        self.rentals.insert(id, rental.clone());
        self.start_workload(rental).await;
        // The GPUs are taken: the offer shrinks (or, with none left, lapses).
        self.publish_offer().await;
        Ok(())
    }

    /// Records a refusal and reports it with the provider's signed refusal, which returns
    /// the renter's whole deposit through `GpuEscrow.refuse` and leaves the provider
    /// nothing to withdraw, whoever submits it.
    pub(super) async fn refuse(
        &mut self,
        mut rental: RentalRecord,
        why: String,
    ) -> Result<(), AgentError> {
        tracing::warn!(rental = rental.id, renter = %rental.renter, reason = %why, "rental refused");
        self.mark_refused(&mut rental, &format!("refused: {why}"));
        self.store.save_rental(rental.clone()).await?;
        self.rentals.insert(rental.id, rental);
        Ok(())
    }

    /// Marks `rental` refused for `why` and signs its refusal.
    pub(super) fn mark_refused(&self, rental: &mut RentalRecord, why: &str) {
        rental.state = WorkloadState::Refused.to_string();
        rental.paid_out = true;
        match gpuflow_escrow::sign_refusal(&self.config.payout, rental.id, &self.chain.domain) {
            Ok(signature) => {
                rental.refusal = Some(signature.to_string());
                rental.detail = format!(
                    "{why}; the provider signed a refusal that returns the whole deposit: \
                     `gpuflow stop {}` submits it",
                    rental.id
                );
            }
            Err(e) => {
                tracing::error!(rental = rental.id, error = %e, "could not sign the refusal");
                rental.detail = format!("{why}; stop the rental to get the deposit back");
            }
        }
    }
}
