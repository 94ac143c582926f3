//! Renters' volumes: a rental that asks for one (`gpuflow rent --volume NAME`) gets the
//! renter's volume of that name mounted, created empty the first time. When the rental
//! ends, the volume is kept for the grace period the offer shows
//! ([`super::AgentConfig::volume_grace`]), and mounted again if the same renter rents this
//! machine with the same name within it; after that it is deleted. The renter lists its
//! volumes with a signed request, as for logs.

use alloy::primitives::{Address, Signature};
use gpuflow_protocol::{Launch, RentalResponse, VolumeInfo, volumes_request_message};

use super::{Agent, is_live, workloads::stale_request};
use crate::{
    runtime::{VolumeSpec, volume_key},
    store::{RentalRecord, VolumeRecord},
};

/// How the runtime mounts `rental`'s volume, if it asked for one.
fn volume_of(rental: &RentalRecord) -> Option<VolumeSpec> {
    let volume = rental.launch.volume.as_ref()?;
    Some(VolumeSpec { key: volume_key(rental.renter, &volume.name), path: volume.path.clone() })
}

impl Agent {
    /// The live rental that has the volume `key` mounted, if any.
    fn volume_user(&self, key: &str) -> Option<u64> {
        self.rentals
            .values()
            .find(|r| is_live(r) && volume_of(r).is_some_and(|v| v.key == key))
            .map(|r| r.id)
    }

    /// Why a quote for `renter` with `launch` is refused for its volume, if it is: this
    /// machine keeps none, or one of the renter's rentals has it mounted.
    pub(super) fn volume_refusal(&self, renter: Address, launch: &Launch) -> Option<String> {
        let volume = launch.volume.as_ref()?;
        if self.config.volume_grace.is_zero() {
            return Some("this machine keeps no volumes; rent it without --volume".into());
        }
        let user = self.volume_user(&volume_key(renter, &volume.name))?;
        Some(format!(
            "volume {} is mounted in your rental {user}; stop that one first (gpuflow stop \
             {user}) or name another volume",
            volume.name
        ))
    }

    /// Records that `rental` uses its volume (if it asked for one) before its workload
    /// starts, so the volume is never deleted under it; returns how to mount it.
    pub(super) async fn attach_volume(&self, rental: &RentalRecord) -> Option<VolumeSpec> {
        let spec = volume_of(rental)?;
        let record = VolumeRecord {
            key: spec.key.clone(),
            renter: rental.renter,
            name: rental.launch.volume.as_ref()?.name.clone(),
            delete_after: None,
        };
        if let Err(e) = self.store.use_volume(record).await {
            tracing::error!(rental = rental.id, error = %e, "could not record the rental's volume");
        }
        Some(spec)
    }

    /// Once `rental` no longer runs: its volume is kept for the grace period, then deleted
    /// (unless another live rental mounted it meanwhile).
    pub(super) async fn release_volume(&self, rental: &RentalRecord) {
        let Some(spec) = volume_of(rental) else { return };
        if self.volume_user(&spec.key).is_some_and(|user| user != rental.id) {
            return;
        }
        let delete_after = self.now() + self.config.volume_grace.as_secs();
        match self.store.release_volume(spec.key, delete_after).await {
            Ok(()) => {
                tracing::info!(rental = rental.id, delete_after, "the rental's volume is kept")
            }
            Err(e) => {
                tracing::error!(rental = rental.id, error = %e, "could not release the volume")
            }
        }
    }

    /// Deletes the volumes whose grace period passed by the chain's clock.
    pub(super) async fn delete_expired_volumes(&self) {
        let Some(now) = self.clock.map(|clock| clock.now()) else { return };
        let volumes = match self.store.volumes().await {
            Ok(volumes) => volumes,
            Err(e) => return tracing::error!(error = %e, "could not read the volumes"),
        };
        let expired = volumes.into_iter().filter(|v| v.delete_after.is_some_and(|at| at <= now));
        for volume in expired {
            if self.volume_user(&volume.key).is_some() {
                continue;
            }
            match self.runtime.remove_volume(&volume.key).await {
                Ok(()) => {
                    tracing::info!(renter = %volume.renter, name = volume.name, "volume deleted after its grace period");
                    if let Err(e) = self.store.forget_volume(volume.key).await {
                        tracing::error!(error = %e, "could not forget a deleted volume");
                    }
                }
                Err(e) => {
                    tracing::warn!(name = volume.name, error = %e, "could not delete a volume; retrying")
                }
            }
        }
    }

    /// Answers a renter's signed request for its volumes on this machine.
    pub(super) async fn volumes(
        &self,
        renter: Address,
        issued_at: u64,
        signature: Signature,
    ) -> RentalResponse {
        if let Some(refusal) = stale_request(issued_at) {
            return refusal;
        }
        let refuse = |message: String| RentalResponse::Error { message };
        let message =
            volumes_request_message(self.chain.chain_id, self.escrow.address(), renter, issued_at);
        if signature.recover_address_from_msg(message.as_bytes()).ok() != Some(renter) {
            return refuse("only the renter may list its volumes: the signature is not its".into());
        }
        let volumes = match self.store.volumes().await {
            Ok(volumes) => volumes,
            Err(e) => return refuse(format!("the volumes are unavailable: {e}")),
        };
        let volumes = volumes
            .into_iter()
            .filter(|v| v.renter == renter)
            .map(|v| VolumeInfo {
                in_use_by: self.volume_user(&v.key),
                delete_at: v.delete_after,
                name: v.name,
            })
            .collect();
        RentalResponse::Volumes { volumes }
    }
}
