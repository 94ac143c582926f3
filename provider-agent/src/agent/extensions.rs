//! Automatic extensions: a renter may let the escrow extend a rental from a capped budget
//! (`GpuEscrow.setAutoExtend`), and anyone may trigger it in the rental's last ten minutes.
//! The agent does, for its own running rentals, so a rental outlives its end while the
//! renter's laptop is off. It checks each such rental's budget in a task of its own, at
//! most every [`RECHECK`], and sends `autoExtend` only when the budget buys a second.

use std::time::{Duration, Instant};

use gpuflow_escrow::{AUTO_EXTEND_LEAD, EscrowError, Extended};

use super::{Agent, WorkloadState, chain, state_of};

/// How long after a check that found no budget (or failed) the same rental is checked
/// again: the renter may set a budget at any time.
const RECHECK: Duration = Duration::from_secs(15);

impl Agent {
    /// Starts a task that extends, from their budgets, the running rentals in their last
    /// ten minutes by the chain's clock (one such task at a time).
    pub(super) fn auto_extend_due(&mut self) {
        let Some(now) = self.clock.map(|clock| clock.now()) else { return };
        if self.auto_extending {
            return;
        }
        let checked_now = Instant::now();
        let due: Vec<u64> = self
            .rentals
            .values()
            .filter(|r| {
                state_of(r) == WorkloadState::Running
                    && r.ends_at > now
                    && r.ends_at <= now + AUTO_EXTEND_LEAD
                    && self.next_auto_check.get(&r.id).is_none_or(|at| *at <= checked_now)
            })
            .map(|r| r.id)
            .collect();
        if due.is_empty() {
            return;
        }
        for id in &due {
            self.next_auto_check.insert(*id, checked_now + RECHECK);
        }
        self.auto_extending = true;
        let (escrow, done) = (self.escrow.clone(), self.chain_tx.clone());
        tokio::spawn(async move {
            let mut results = Vec::with_capacity(due.len());
            for id in due {
                results.push((id, chain::auto_extend(escrow.clone(), id).await));
            }
            let _ = done.send(chain::ChainDone::AutoExtended { results }).await;
        });
    }

    /// Takes in what the extension task did. The new end itself is taken from the
    /// `RentalExtended` event, as for an extension the renter bought.
    pub(super) fn on_auto_extended(
        &mut self,
        results: Vec<(u64, Result<Option<Extended>, EscrowError>)>,
    ) {
        self.auto_extending = false;
        for (id, result) in results {
            match result {
                Ok(Some(extended)) => {
                    // The rental may need another step at once (a step shorter than the lead).
                    self.next_auto_check.remove(&id);
                    tracing::info!(rental = id, new_end = extended.new_end, cost = %extended.cost, tx = %extended.tx, "rental extended from the renter's budget");
                }
                Ok(None) => tracing::debug!(rental = id, "no automatic extension budget"),
                Err(e) => tracing::warn!(rental = id, error = %e, "automatic extension failed"),
            }
        }
        self.next_auto_check.retain(|id, _| {
            self.rentals.get(id).is_some_and(|r| state_of(r) == WorkloadState::Running)
        });
    }
}
