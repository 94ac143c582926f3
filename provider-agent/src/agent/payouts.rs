//! Payouts: withdrawing ended rentals once their dispute window passed, and running ones
//! once what they hold passes the threshold, each in a task of its own.

use gpuflow_escrow::{EscrowError, Withdrawn};

use super::{Agent, WorkloadState, chain, state_of};

impl Agent {
    /// Takes in how a payout went, and records the rentals that owe nothing more.
    pub(super) async fn on_paid(
        &mut self,
        result: Result<Vec<Withdrawn>, EscrowError>,
        settled: Vec<u64>,
    ) {
        self.paying = false;
        match result {
            Ok(paid) => {
                for w in &paid {
                    tracing::info!(rental = w.rental_id, amount = %w.amount, fee = %w.fee, tx = %w.tx, "earnings withdrawn");
                }
            }
            Err(e) => tracing::warn!(error = %e, "withdrawal failed; retrying"),
        }
        for id in settled {
            if let Some(rental) = self.rentals.get_mut(&id) {
                rental.paid_out = true;
                if let Err(e) = self.store.save_rental(rental.clone()).await {
                    tracing::error!(rental = id, error = %e, "could not record the payout");
                }
            }
        }
    }

    /// Withdraws, in one transaction in a task of its own, every ended rental whose
    /// dispute window passed by the chain's clock.
    pub(super) fn withdraw_due(&mut self) {
        let Some(clock) = self.clock else { return };
        if self.paying {
            return;
        }
        let (now, window) = (clock.now(), self.chain.dispute_window);
        let due: Vec<u64> = self
            .rentals
            .values()
            .filter(|r| {
                !r.paid_out && state_of(r) == WorkloadState::Ended && r.ends_at + window <= now
            })
            .map(|r| r.id)
            .collect();
        if due.is_empty() {
            return;
        }
        self.paying = true;
        let (escrow, done) = (self.escrow.clone(), self.chain_tx.clone());
        tokio::spawn(async move {
            let _ = done.send(chain::pay_out(escrow, due).await).await;
        });
    }

    /// Withdraws from every rental not yet paid out once what they hold together passes
    /// the configured threshold, so long rentals pay the provider as they go.
    pub(super) fn withdraw_over_threshold(&mut self) {
        let threshold = self.config.withdraw_threshold;
        if threshold.is_zero() || self.paying {
            return;
        }
        let ids: Vec<u64> = self.rentals.values().filter(|r| !r.paid_out).map(|r| r.id).collect();
        if ids.is_empty() {
            return;
        }
        self.paying = true;
        let (escrow, done) = (self.escrow.clone(), self.chain_tx.clone());
        tokio::spawn(async move {
            let _ = done.send(chain::pay_out_over(escrow, ids, threshold).await).await;
        });
    }
}
