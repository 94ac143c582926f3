//! Chain events: polling the escrow in a task of its own, handling what a poll read range
//! by range, and forgetting rentals a chain reorganisation took away.

use std::collections::BTreeSet;

use alloy::primitives::U256;
use gpuflow_escrow::{EscrowError, EscrowEvent};

use super::{
    Agent, AgentError,
    chain::{self, ChainClock, ChainDone, Polled},
    is_live,
};

/// Blocks read again on every poll: the newest blocks may still be replaced by a chain
/// reorganisation, so the agent's cursor stays this far behind the head. A rental opened in
/// them that is gone from the chain is forgotten (its workload stopped, its GPUs freed); one
/// that moved to another block is followed.
const REORG_TAIL: u64 = 64;

impl Agent {
    /// Starts a poll of the chain in a task of its own, unless one is in flight or a
    /// failing RPC is being backed off from. Its result comes back to [`Agent::on_chain`].
    pub(super) fn start_poll(&mut self) {
        if self.polling || !self.backoff.ready(std::time::Instant::now()) {
            return;
        }
        self.polling = true;
        let (escrow, from, done) =
            (self.escrow.clone(), self.chain.next_block, self.chain_tx.clone());
        let observed = self.now();
        tokio::spawn(async move {
            let result = chain::poll(escrow, from, REORG_TAIL).await;
            // Without a receiver the agent has stopped; its next start reads the chain again.
            let _ = done.send(ChainDone::Polled { observed, result }).await;
        });
    }

    /// Takes in what a poll read: its events, or the RPC failure to back off from.
    pub(super) async fn on_poll_done(
        &mut self,
        observed: u64,
        result: Result<Polled, EscrowError>,
    ) {
        self.polling = false;
        match result {
            Ok(polled) => {
                let failures = self.backoff.succeeded();
                if failures > 0 {
                    tracing::info!(failures, "the chain answers again");
                }
                if let Err(e) = self.on_polled(polled, observed).await {
                    tracing::warn!(error = %e, "could not handle the chain's events; retrying");
                }
            }
            Err(e) => {
                let (wait, first) = self.backoff.failed(std::time::Instant::now());
                if first {
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "could not read the chain; retrying with backoff");
                } else {
                    tracing::debug!(error = %e, retry_in_ms = wait.as_millis() as u64, "the chain is still unreachable");
                }
            }
        }
    }

    /// Handles the events a poll read, range by range, recording progress after each. The
    /// last [`REORG_TAIL`] blocks are read on every poll; rentals opened in them that the
    /// chain no longer has are forgotten. Once the poll reached the head, quotes whose
    /// deadline passed before it began can open nothing more: their GPUs are freed.
    pub(super) async fn on_polled(
        &mut self,
        polled: Polled,
        observed: u64,
    ) -> Result<(), AgentError> {
        let Polled { latest_time, tail, ranges, reached } = polled;
        // Before the chain was first read, `observed` is the machine's clock, not the chain's.
        let observed_on_chain = self.clock.is_some();
        match &mut self.clock {
            Some(clock) => clock.advance(latest_time),
            None => self.clock = Some(ChainClock::at(latest_time)),
        }
        // This provider's rentals opened in the tail, as the chain has them now.
        let mut in_tail = BTreeSet::new();
        for range in ranges {
            self.handle_events(range.last, range.events, tail, &mut in_tail).await?;
        }
        if !reached {
            return Ok(());
        }
        self.processed_time = self.processed_time.max(latest_time);
        if observed_on_chain {
            self.read_until = self.read_until.max(observed);
        }
        let vanished: Vec<u64> = self
            .rentals
            .values()
            .filter(|r| r.opened_block.is_some_and(|block| block >= tail))
            .filter(|r| !in_tail.contains(&(r.id, r.nonce)))
            .map(|r| r.id)
            .collect();
        for id in vanished {
            self.forget(id).await?;
        }
        let expired = self.reservations.expire(observed);
        if expired > 0 {
            tracing::debug!(expired, "quotes past their deadline no longer hold GPUs");
            self.publish_offer().await;
        }
        Ok(())
    }

    /// Handles the escrow's events of a range of blocks ending at `to`, then records them as handled,
    /// up to `tail` (exclusive): later blocks are read again by the next poll. Rentals of
    /// this machine opened at or after `tail` are added to `in_tail`; rentals of other
    /// machines, even under the same payout address, are not this agent's to handle.
    pub(super) async fn handle_events(
        &mut self,
        to: u64,
        events: Vec<(u64, EscrowEvent)>,
        tail: u64,
        in_tail: &mut BTreeSet<(u64, Option<U256>)>,
    ) -> Result<(), AgentError> {
        for (block, event) in events {
            match event {
                EscrowEvent::Opened(e) if e.provider == self.config.payout.address() => {
                    if !self.owns(e.offerId) {
                        tracing::debug!(rental = %e.rentalId, offer = %e.offerId, "a rental of another machine under this payout address; not this agent's");
                        continue;
                    }
                    if block >= tail
                        && let Ok(id) = u64::try_from(e.rentalId)
                    {
                        in_tail.insert((id, Some(e.nonce)));
                    }
                    self.on_opened(e, block).await?
                }
                EscrowEvent::Stopped(e) => {
                    if let (Ok(id), Ok(at)) =
                        (u64::try_from(e.rentalId), u64::try_from(e.stoppedAt))
                        && let Some(rental) = self.rentals.get_mut(&id)
                        && is_live(rental)
                    {
                        tracing::info!(rental = id, refund = %e.refund, "renter stopped the rental");
                        rental.ends_at = at;
                        self.finish(id, "stopped by the renter").await?;
                    }
                }
                EscrowEvent::Extended(e) => {
                    if let (Ok(id), Ok(end)) = (u64::try_from(e.rentalId), u64::try_from(e.newEnd))
                        && let Some(rental) = self.rentals.get_mut(&id)
                        && rental.ends_at != end
                    {
                        tracing::info!(rental = id, new_end = end, "renter extended the rental");
                        rental.ends_at = end;
                        self.store.save_rental(rental.clone()).await?;
                        self.tell_extension(id, end).await;
                    }
                }
                _ => {}
            }
        }
        // Only now: every event up to `to` is reflected in the store. The tail stays
        // unrecorded, to be read again.
        let settled = to.min(tail.saturating_sub(1));
        self.store.set_last_block(settled).await?;
        self.chain.next_block = settled + 1;
        Ok(())
    }

    /// Forgets a rental a chain reorganisation took away, as it never happened on the chain
    /// that counts: its workload stops, its GPUs are freed and its record is deleted. A
    /// workload still starting is waited for (the poll fails and is retried, the cursor
    /// unmoved), so it is never left running.
    pub(super) async fn forget(&mut self, id: u64) -> Result<(), AgentError> {
        if self.starting.contains(&id) {
            return Err(AgentError::ForgottenWhileStarting(id));
        }
        let Some(rental) = self.rentals.remove(&id) else { return Ok(()) };
        if let Some(handle) = &rental.handle
            && is_live(&rental)
        {
            self.runtime.stop(id, handle).await;
        }
        tracing::warn!(rental = id, renter = %rental.renter, "the rental left the chain in a reorganisation: workload stopped, GPUs freed");
        self.store.delete_rental(id).await?;
        self.publish_offer().await;
        Ok(())
    }
}
