//! Workloads: starting a rental's workload in a task of its own, recording how the start
//! went, ending it when its rental runs out, and answering status and log requests.

use alloy::primitives::Signature;
use gpuflow_protocol::{
    RentalResponse, WorkloadState, WorkloadStatus, logs_request_message, unix_now,
};

use super::{Agent, AgentError, is_live, state_of};
use crate::{
    runtime::{Reach, RuntimeError, Started, WorkloadSpec},
    store::RentalRecord,
};

/// How long past a rental's end by the chain's clock its workload is kept when the blocks
/// up to the end could not be read (a failing RPC), in seconds.
const UNREAD_END_GRACE: u64 = 120;

/// Whether a rental ending at `ends_at` is over: the agent has read every block mined
/// before its end (`read`, the chain time at which the latest poll that reached the head
/// began), so no extension bought before the end can still be unread; or, with the chain
/// unreadable,
/// its end is [`UNREAD_END_GRACE`] behind the chain's clock `now`. A rental extended in
/// its last block is never ended by a poll that has not reached that block yet.
fn past_end(now: u64, read: u64, ends_at: u64) -> bool {
    (now >= ends_at && read >= ends_at) || now >= ends_at + UNREAD_END_GRACE
}

/// How far a signed request's timestamp (logs, volumes) may be from the provider's clock,
/// in seconds.
const REQUEST_MAX_SKEW: u64 = 300;

/// The refusal of a signed request (logs, volumes) signed at `issued_at`, more than
/// [`REQUEST_MAX_SKEW`] from the provider's clock; none when it is fresh.
pub(super) fn stale_request(issued_at: u64) -> Option<RentalResponse> {
    (unix_now().abs_diff(issued_at) > REQUEST_MAX_SKEW).then(|| RentalResponse::Error {
        message: format!(
            "the request was signed at {issued_at}, more than {REQUEST_MAX_SKEW} s from the \
             provider's clock; sign a fresh one"
        ),
    })
}

impl Agent {
    /// Starts the rental's workload in a task of its own: pulling an image may take
    /// minutes, during which quotes, heartbeats and other rentals must not wait. The
    /// outcome comes back to [`Agent::on_started`].
    pub(super) async fn start_workload(&mut self, mut rental: RentalRecord) {
        if !self.starting.insert(rental.id) {
            return;
        }
        let spec = WorkloadSpec {
            rental_id: rental.id,
            gpus: rental.gpus.clone(),
            ends_at: rental.ends_at,
            image: rental.image.clone(),
            ssh_key: rental.ssh_key.clone(),
            launch: rental.launch.clone(),
            volume: self.attach_volume(&rental).await,
        };
        rental.detail = "starting the workload".into();
        self.rentals.insert(rental.id, rental);
        let (runtime, done) = (self.runtime.clone(), self.started_tx.clone());
        tokio::spawn(async move {
            let result = runtime.start(&spec).await;
            // Without a receiver the agent has stopped; its next start resumes the rental.
            let _ = done.send((spec.rental_id, result)).await;
        });
    }

    /// Records how a workload's start went. A workload whose rental ended or was stopped
    /// while it started is stopped at once; one that failed to start frees its GPUs.
    pub(super) async fn on_started(&mut self, id: u64, result: Result<Started, RuntimeError>) {
        self.starting.remove(&id);
        let Some(mut rental) = self.rentals.get(&id).cloned() else { return };
        match result {
            Ok(started) if !is_live(&rental) => {
                tracing::info!(rental = id, "workload started after its rental ended; stopping it");
                self.runtime.stop(id, &started.handle).await;
                return;
            }
            Ok(started) => {
                rental.state = WorkloadState::Running.to_string();
                rental.started_at.get_or_insert(unix_now());
                rental.detail = started.detail;
                rental.handle = Some(started.handle);
                rental.reach = started.reach;
            }
            Err(_) if !is_live(&rental) => return,
            Err(e) if rental.started_at.is_some() => {
                // It ran before (a restart failed): the seconds it ran were served, so it is
                // not refused in full; the renter stops it and claims the downtime.
                tracing::error!(rental = id, error = %e, "workload did not start again");
                rental.state = WorkloadState::Refused.to_string();
                rental.detail = format!(
                    "the workload could not start again ({e}); stop the rental to get the \
                     unused deposit back, and claim the downtime with `gpuflow claim-sla {id}`"
                );
                rental.paid_out = true;
            }
            Err(e) => {
                tracing::error!(rental = id, error = %e, "workload did not start");
                self.mark_refused(&mut rental, &format!("the workload could not start ({e})"));
            }
        }
        tracing::info!(rental = id, state = %rental.state, gpus = ?rental.gpus, detail = %rental.detail, "rental handled");
        if let Err(e) = self.store.save_rental(rental.clone()).await {
            tracing::error!(rental = id, error = %e, "could not record the rental");
        }
        let freed = !is_live(&rental);
        if freed {
            self.release_volume(&rental).await;
        }
        self.rentals.insert(id, rental);
        if freed {
            self.publish_offer().await;
        }
    }

    /// Ends workloads whose rental ran out or that exited on their own.
    pub(super) async fn end_due_rentals(&mut self) {
        // Rentals end by the chain's clock, never the machine's: one running ahead would end
        // a renter's workload early.
        let Some(now) = self.clock.map(|clock| clock.now()) else { return };
        let running: Vec<(u64, u64, Option<String>)> = self
            .rentals
            .values()
            .filter(|r| is_live(r))
            .map(|r| (r.id, r.ends_at, r.handle.clone()))
            .collect();
        for (id, ends_at, handle) in running {
            let exited = match &handle {
                Some(handle) => !self.runtime.is_running(id, handle).await,
                None => false,
            };
            if let Some(handle) = handle.as_deref().filter(|_| !exited) {
                self.follow_reach(id, handle).await;
            }
            if past_end(now, self.read_until, ends_at) || exited {
                let why = if exited { "the workload exited" } else { "the rental ended" };
                if let Err(e) = self.finish(id, why).await {
                    tracing::error!(rental = id, error = %e, "could not record the rental's end");
                }
            }
        }
    }

    /// Keeps the rental's SSH endpoint and ports what the runtime says now: a container
    /// its engine restarted gets new host ports, and `status` must give the renter those.
    async fn follow_reach(&mut self, id: u64, handle: &str) {
        let Some(rental) = self.rentals.get(&id).filter(|r| r.reach != Reach::default()) else {
            return;
        };
        let Some(now) = self.runtime.reach(id, handle).await else { return };
        if rental.reach != now {
            tracing::info!(rental = id, ssh = ?now.ssh, ports = ?now.ports, "the workload's ports moved");
            if let Some(rental) = self.rentals.get_mut(&id) {
                if let Some(ssh) = &now.ssh {
                    rental.detail = ssh.to_string();
                }
                rental.reach = now;
            }
        }
    }

    /// Tells a running workload that its rental was extended to `ends_at`.
    pub(super) async fn tell_extension(&self, id: u64, ends_at: u64) {
        let Some(handle) = self.rentals.get(&id).and_then(|r| r.handle.clone()) else { return };
        if let Err(e) = self.runtime.extend(id, &handle, ends_at).await {
            tracing::warn!(rental = id, error = %e, "could not tell the workload its new end");
        }
    }

    /// Stops the rental's workload and frees its GPUs; it is paid after the dispute window.
    pub(super) async fn finish(&mut self, id: u64, why: &str) -> Result<(), AgentError> {
        let Some(mut rental) = self.rentals.get(&id).cloned() else { return Ok(()) };
        if let Some(handle) = &rental.handle {
            self.runtime.stop(id, handle).await;
            tracing::info!(rental = id, why, "workload stopped");
        }
        let was_live = is_live(&rental);
        if was_live {
            rental.state = WorkloadState::Ended.to_string();
            rental.ended_at = Some(unix_now());
            rental.detail = why.to_owned();
        }
        self.store.save_rental(rental.clone()).await?;
        if was_live {
            self.release_volume(&rental).await;
        }
        self.rentals.insert(id, rental);
        self.publish_offer().await;
        Ok(())
    }

    pub(super) fn status(&self, rental_id: u64) -> WorkloadStatus {
        match self.rentals.get(&rental_id) {
            Some(r) => WorkloadStatus {
                rental_id,
                state: state_of(r),
                gpus: r.gpus.clone(),
                started_at: r.started_at,
                ended_at: r.ended_at,
                detail: r.detail.clone(),
                refusal: r.refusal.as_deref().and_then(|sig| sig.parse().ok()),
                ssh: r.reach.ssh.clone().filter(|_| is_live(r)),
                ports: if is_live(r) { r.reach.ports.clone() } else { Vec::new() },
            },
            None => WorkloadStatus {
                rental_id,
                state: WorkloadState::Unknown,
                gpus: Vec::new(),
                started_at: None,
                ended_at: None,
                detail: "this provider has not seen the rental on chain (yet)".into(),
                refusal: None,
                ssh: None,
                ports: Vec::new(),
            },
        }
    }

    /// Serves a rental's logs to its renter only, as recorded on chain.
    pub(super) async fn logs(
        &self,
        rental_id: u64,
        issued_at: u64,
        signature: Signature,
    ) -> RentalResponse {
        if let Some(refusal) = stale_request(issued_at) {
            return refusal;
        }
        let refuse = |message: String| RentalResponse::Error { message };
        let Some(rental) = self.rentals.get(&rental_id) else {
            return refuse(format!("this provider has no rental {rental_id}"));
        };
        let message =
            logs_request_message(self.chain.chain_id, self.escrow.address(), rental_id, issued_at);
        let Ok(signer) = signature.recover_address_from_msg(message.as_bytes()) else {
            return refuse("the signature does not verify".into());
        };
        // The renter as the chain's `RentalOpened` named it; no chain call, so logs are
        // served even while the RPC is slow.
        if rental.renter != signer {
            return refuse("only the rental's renter may read its logs".into());
        }
        let handle = rental.handle.clone().unwrap_or_default();
        match self.runtime.logs(rental_id, &handle).await {
            Ok(lines) => RentalResponse::Logs { lines },
            Err(e) => refuse(format!("the logs are unavailable: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{UNREAD_END_GRACE, past_end};

    #[test]
    fn a_rental_ends_once_the_blocks_up_to_its_end_are_read() {
        let end = 1_000;
        assert!(!past_end(end - 1, end - 1, end), "still running");
        // The clock passed the end, but an extension may sit in a block not read yet.
        assert!(!past_end(end, end - 1, end));
        assert!(!past_end(end + 30, end - 1, end));
        assert!(past_end(end, end, end), "every block up to the end is read");
        // A chain that cannot be read does not keep a workload forever.
        assert!(past_end(end + UNREAD_END_GRACE, end - 1, end));
    }
}
