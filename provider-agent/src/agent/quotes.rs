//! Quotes: which GPUs are free to quote, at what rate, and the signed terms a renter
//! opens a rental with. A quote is stored and its GPUs reserved before it leaves.

use std::collections::BTreeSet;

use alloy::primitives::{Address, U256};
use gpuflow_p2p::PeerId;
use gpuflow_protocol::{Launch, QuoteTerms, RentalRequest, RentalResponse, image_allowed};

use super::{Agent, is_live, nonces, reservations::Reservation};
use crate::store::QuoteRecord;

/// What a renter asks a quote for: a quote request's fields.
pub(super) struct QuoteAsk {
    pub(super) renter: Address,
    pub(super) duration: u64,
    pub(super) gpus: Option<u32>,
    pub(super) image: Option<String>,
    pub(super) ssh_key: Option<String>,
    pub(super) launch: Launch,
}

impl Agent {
    /// GPUs of the inventory no live rental holds, in inventory order.
    pub(super) fn free_gpus(&self) -> Vec<&gpuflow_protocol::GpuInfo> {
        let taken: BTreeSet<&String> =
            self.rentals.values().filter(|r| is_live(r)).flat_map(|r| &r.gpus).collect();
        self.config.inventory.gpus.iter().filter(|g| !taken.contains(&g.uuid)).collect()
    }

    /// Free GPUs no pending quote holds either: what a new quote may name.
    pub(super) fn quotable_gpus(&self) -> Vec<&gpuflow_protocol::GpuInfo> {
        let reserved = self.reservations.reserved_gpus();
        self.free_gpus().into_iter().filter(|g| !reserved.contains(g.uuid.as_str())).collect()
    }

    pub(super) fn rate_of(&self, gpus: &[&gpuflow_protocol::GpuInfo]) -> u128 {
        gpus.iter().map(|g| self.config.gpu_rates.get(&g.uuid).copied().unwrap_or_default()).sum()
    }

    /// Signs terms for `wanted` free GPUs (all of them for `None`), if that many are
    /// free and the duration, image and SSH key are ones the provider accepts. The quote
    /// is stored, with its GPUs, image and key, before it leaves, so the rental it opens
    /// can be matched to it by nonce and run as asked, and its GPUs are reserved until it
    /// is used or expires. The renter's, and the asking peer's, earlier quote releases its
    /// reservation.
    pub(super) async fn quote(&mut self, peer: PeerId, ask: QuoteAsk) -> RentalResponse {
        let QuoteAsk { renter, duration, gpus: wanted, image, ssh_key, launch } = ask;
        let refuse = |message: String| RentalResponse::Error { message };
        let peer = peer.to_string();
        let released = self.reservations.release_holder(renter, Some(&peer));
        if !released.is_empty() {
            tracing::debug!(%renter, %peer, ?released, "an earlier quote's reservation released");
        }
        if self.draining {
            return refuse(
                "this machine is draining for maintenance and takes no new rentals; search for \
                 another offer"
                    .into(),
            );
        }
        if self.free_gpus().is_empty() {
            return refuse("every GPU is rented right now; search for another offer".into());
        }
        let mut free = self.quotable_gpus();
        if free.is_empty() {
            return refuse(format!(
                "every free GPU is held by another renter's pending quote for up to {} s; \
                 try again then, or search for another offer",
                self.config.quote_validity.as_secs()
            ));
        }
        match wanted {
            Some(0) => return refuse("ask for at least one GPU".into()),
            Some(n) if n as usize > free.len() => {
                return refuse(format!(
                    "only {} of this machine's GPUs are free; ask for at most {} with --gpus, \
                     or search for another offer",
                    free.len(),
                    free.len()
                ));
            }
            Some(n) => free.truncate(n as usize),
            None => {}
        }
        let (min, mut max) = (self.config.min_duration, self.config.max_duration);
        if duration < min || duration > max {
            return refuse(format!("this provider rents for {min} to {max} seconds"));
        }
        // No rental, extensions included, may run into an announced maintenance window;
        // the rental may open as late as the quote's deadline.
        if let Some(window) = self.upcoming_maintenance() {
            let opens_by = self.now() + self.config.quote_validity.as_secs();
            let room = window.from.saturating_sub(opens_by);
            if duration > room {
                return refuse(format!(
                    "this machine has maintenance from unix time {} to {}; rent it for at most \
                     {room} s now, or after the maintenance",
                    window.from, window.until
                ));
            }
            max = max.min(room);
        }
        if renter.is_zero() {
            return refuse("the renter address is zero".into());
        }
        if let Some(image) = &image {
            if let Err(e) = RentalRequest::check_image(image) {
                return refuse(e);
            }
            if !image_allowed(&self.config.allowed_images, image) {
                return refuse(format!(
                    "image `{image}` is not allowed on this provider, which runs only {}; \
                     pick one of those with --image, or leave --image out for its default",
                    self.config.allowed_images.join(", ")
                ));
            }
        }
        let ssh_key = match ssh_key.as_deref().map(RentalRequest::check_ssh_public_key) {
            None => None,
            Some(Ok(key)) => Some(key),
            Some(Err(e)) => return refuse(format!("the SSH key: {e}")),
        };
        if let Err(e) = launch.check() {
            return refuse(format!("the container settings: {e}"));
        }
        if !launch.ports.is_empty() && !self.config.publishes_ports {
            return refuse(
                "this provider's runtime publishes no ports (it runs processes, not \
                 containers); rent without --port"
                    .into(),
            );
        }
        if let Some(why) = self.volume_refusal(renter, &launch) {
            return refuse(why);
        }
        let gpus: Vec<String> = free.iter().map(|g| g.uuid.clone()).collect();
        let count = gpus.len();
        let deadline = self.now() + self.config.quote_validity.as_secs();
        let terms = QuoteTerms {
            provider: self.config.payout.address(),
            renter,
            rate_per_second: self.rate_of(&free),
            max_duration: max,
            deadline,
            offer_id: QuoteTerms::machine(self.offer_id(), count as u32),
            nonce: self.next_nonce,
        };
        self.next_nonce += U256::from(1);
        let mut quote =
            match gpuflow_escrow::sign_quote(&self.config.payout, terms, &self.chain.domain) {
                Ok(quote) => quote,
                Err(e) => return refuse(format!("the provider could not sign a quote: {e}")),
            };
        let record = QuoteRecord {
            nonce: quote.terms.nonce,
            renter,
            rate_per_second: quote.terms.rate_per_second,
            max_duration: max,
            deadline: quote.terms.deadline,
            gpus: gpus.clone(),
            image: image.clone(),
            ssh_key,
            launch,
        };
        let next_counter = nonces::counter_of(quote.terms.nonce).saturating_add(1);
        if let Err(e) = self.store.record_quote(record, next_counter, self.processed_time).await {
            tracing::error!(error = %e, "could not store a quote; not issuing it");
            return refuse("the provider cannot issue quotes right now; try again".into());
        }
        quote.share = self.runtime.share(count);
        let held = Reservation { renter, peer: Some(peer), gpus, deadline };
        self.reservations.reserve(quote.terms.nonce, held);
        tracing::info!(%renter, duration, gpus = count, nonce = %quote.terms.nonce, image = image.as_deref().unwrap_or("default"), "quote signed");
        RentalResponse::Quote(quote)
    }
}
