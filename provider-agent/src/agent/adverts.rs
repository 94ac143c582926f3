//! What the agent gossips: the signed offer for its free GPUs, with the images pulled
//! ahead, and the heartbeat.

use alloy::signers::SignerSync;
use gpuflow_protocol::{
    Heartbeat, Maintenance, Offer, SignedEnvelope, payout_binding_message, unix_now,
};

use tokio::sync::mpsc;

use super::{Agent, is_live, unix_millis};
use crate::runtime::RuntimeError;

/// Lifetime of the offer that replaces a fully rented machine's, in seconds: long enough
/// to cross gossipsub, short enough that searches stop listing the machine at once.
const LAPSE_SECS: u64 = 5;

impl Agent {
    /// Pulls the images of [`super::AgentConfig::pull_ahead`] one after the other in a task
    /// of its own (a pull may take minutes; quotes and rentals must not wait); each
    /// outcome comes back to [`Agent::on_pulled`].
    pub(super) fn pull_images_ahead(&self) -> mpsc::Receiver<(String, Result<(), RuntimeError>)> {
        let (done, pulled) = mpsc::channel(1);
        let (runtime, images) = (self.runtime.clone(), self.config.pull_ahead.clone());
        tokio::spawn(async move {
            for image in images {
                tracing::info!(image, "pulling an image ahead of rentals");
                let result = runtime.pull_ahead(&image).await;
                if done.send((image, result)).await.is_err() {
                    return;
                }
            }
        });
        pulled
    }

    /// Lists an image pulled ahead in the offer, and republishes it.
    pub(super) async fn on_pulled(&mut self, image: String, result: Result<(), RuntimeError>) {
        match result {
            Ok(()) if !self.ready_images.contains(&image) => {
                tracing::info!(image, "image ready; listed in the offer");
                self.ready_images.push(image);
                self.publish_offer().await;
            }
            Ok(()) => {}
            Err(e) => tracing::warn!(
                image, error = %e,
                "could not pull an image ahead; rentals of it pull it when they start"
            ),
        }
    }

    /// Signs and publishes the offer for the free GPUs. With none free, the live offer is
    /// replaced by one that lapses within [`LAPSE_SECS`], so searches stop listing a
    /// machine that is fully rented (an offer must name at least one GPU).
    pub(super) async fn publish_offer(&mut self) {
        if self.listen_addrs.is_empty() {
            return;
        }
        // A draining machine offers nothing: its live offer lapses as a fully rented one's.
        let now = unix_now();
        let in_maintenance = self.upcoming_maintenance().is_some_and(|w| w.from <= now + 60);
        let free: Vec<gpuflow_protocol::GpuInfo> = match self.draining || in_maintenance {
            true => Vec::new(),
            false => self.free_gpus().into_iter().cloned().collect(),
        };
        // An offer never lists the machine into an announced maintenance window.
        let ttl = match self.upcoming_maintenance() {
            Some(window) => self.config.offer_ttl.as_secs().min(window.from.saturating_sub(now)),
            None => self.config.offer_ttl.as_secs(),
        };
        let (gpus, ttl, lapsing) = if !free.is_empty() {
            (free, ttl, false)
        } else if !self.advertised.is_empty() {
            (self.advertised.clone(), LAPSE_SECS, true)
        } else {
            return;
        };
        let peer_id = self.config.identity.peer_id();
        let payout_proof =
            match self.config.payout.sign_message_sync(payout_binding_message(&peer_id).as_bytes())
            {
                Ok(sig) => sig,
                Err(e) => return tracing::error!(error = %e, "could not sign the payout binding"),
            };
        let rate = self.rate_of(&gpus.iter().collect::<Vec<_>>());
        let offer = Offer {
            seq: unix_millis(),
            issued_at: now,
            expires_at: now + ttl,
            chain_id: self.chain.chain_id,
            escrow: self.escrow.address(),
            payout: self.config.payout.address(),
            payout_proof,
            price_per_second: rate,
            gpus,
            verified: self.config.inventory.verified,
            region: self.config.region.clone(),
            listen_addrs: self.listen_addrs.clone(),
            inet_down_mbps: self.config.inet_down_mbps,
            inet_up_mbps: self.config.inet_up_mbps,
            disk_bytes: self.config.host.disk_free_bytes,
            cpu_cores: Some(self.config.host.cpus),
            cpu_ram_bytes: (self.config.host.memory_bytes > 0)
                .then_some(self.config.host.memory_bytes),
            images: self.ready_images.clone(),
            volume_grace_secs: self.config.volume_grace.as_secs(),
            allowed_images: self.config.allowed_images.clone(),
        };
        if !lapsing {
            self.advertised = offer.gpus.clone();
        }
        let envelope = SignedEnvelope::seal(&self.config.identity, &offer);
        match self.network.publish_offer(&envelope).await {
            Ok(()) if lapsing => {
                // Withdrawn: nothing to publish until a GPU is free again.
                self.advertised.clear();
                tracing::info!(offer = %self.offer_id(), seq = offer.seq, "every GPU is rented: offer withdrawn");
            }
            Ok(()) => {
                tracing::info!(offer = %self.offer_id(), seq = offer.seq, gpus = offer.gpus.len(), "offer published")
            }
            // Alone on the network: the next subscriber triggers a republish.
            Err(e) => tracing::debug!(error = %e, "offer not published"),
        }
    }

    /// The maintenance window announced in the data directory ([`super::MAINTENANCE_FILE`]),
    /// while it has not ended.
    pub(super) fn upcoming_maintenance(&self) -> Option<Maintenance> {
        self.maintenance.filter(|window| window.until > unix_now())
    }

    /// Drains or takes rentals again as the drain file says, and announces the maintenance
    /// window the maintenance file holds, republishing the offer on a change.
    pub(super) async fn follow_drain(&mut self) {
        let draining = self.config.data_dir.join(super::DRAIN_FILE).exists();
        let maintenance = super::read_maintenance(&self.config.data_dir);
        let in_maintenance = |window: Option<Maintenance>| {
            window.is_some_and(|w| (w.from..w.until).contains(&(unix_now() + 60)))
        };
        let was_in = in_maintenance(self.maintenance);
        if maintenance != self.maintenance {
            match maintenance {
                Some(w) => {
                    tracing::info!(from = w.from, until = w.until, "maintenance window announced")
                }
                None => tracing::info!("no maintenance window"),
            }
            self.maintenance = maintenance;
        }
        if was_in != in_maintenance(self.maintenance) {
            self.publish_offer().await;
        }
        if draining == self.draining {
            return;
        }
        self.draining = draining;
        match draining {
            true => tracing::info!("draining: no new rentals, running ones go on to their end"),
            false => tracing::info!("taking rentals again"),
        }
        self.publish_offer().await;
    }

    pub(super) async fn publish_heartbeat(&mut self) {
        // Unix milliseconds stay monotonic across restarts; the max guards a clock step.
        self.heartbeat_seq = unix_millis().max(self.heartbeat_seq + 1);
        let heartbeat = Heartbeat {
            seq: self.heartbeat_seq,
            issued_at: unix_now(),
            gpus: self.health.borrow().clone(),
            active_rentals: self.rentals.values().filter(|r| is_live(r)).count() as u32,
            listen_addrs: self.listen_addrs.clone(),
            maintenance: self.upcoming_maintenance(),
        };
        let envelope = SignedEnvelope::seal(&self.config.identity, &heartbeat);
        match self.network.publish_heartbeat(&envelope).await {
            Ok(()) => tracing::debug!(seq = heartbeat.seq, "heartbeat published"),
            Err(e) => tracing::debug!(error = %e, "heartbeat not published"),
        }
    }
}
