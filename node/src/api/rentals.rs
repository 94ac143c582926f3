//! `GET /v1/rentals/{id}` and the downtime attestations `POST /v1/rentals/{id}/downtime`
//! signs.

use axum::{
    Json,
    extract::{Path, State},
};
use gpuflow_protocol::{api, unix_now};

use super::{ApiError, ApiState, rental_of};
use crate::{StoreError, reliability::AttestError, store::RentalMachine};

/// A rental as indexed from the escrow's events, `confirmations` blocks behind the head.
#[utoipa::path(
    get,
    path = "/v1/rentals/{id}",
    tag = "rentals",
    params(("id" = u64, Path, description = "Rental id in GpuEscrow")),
    responses(
        (status = 200, description = "The rental", body = api::RentalDetail),
        (status = 400, description = "Not a rental id", body = api::ApiErrorBody),
        (status = 404, description = "No such rental indexed (yet)", body = api::ApiErrorBody),
        (status = 501, description = "This node does not index the chain",
         body = api::ApiErrorBody),
    )
)]
pub(super) async fn rental(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<api::RentalDetail>, ApiError> {
    if !state.rentals_indexed {
        return Err(ApiError::NotImplemented("chain indexing not enabled on this node".into()));
    }
    let id = rental_of(&id)?;
    let rental = state.store.rental(id).await?;
    let r = rental.ok_or_else(|| ApiError::NotFound(format!("no rental {id} is indexed")))?;
    let machine = match state.store.rental_machine(id).await? {
        Some(RentalMachine::Known(peer)) => Some(peer),
        _ => None,
    };
    Ok(Json(api::RentalDetail {
        id: r.id,
        renter: format!("{:#x}", r.renter),
        provider: format!("{:#x}", r.provider),
        rate_per_second: r.rate_per_second.to_string(),
        start: r.start,
        end: r.end,
        stopped_at: r.stopped_at,
        deposit: r.deposit.to_string(),
        refund: r.refund.to_string(),
        withdrawn: r.withdrawn.to_string(),
        fees: r.fees.to_string(),
        credited: r.credited.to_string(),
        credited_seconds: r.credited_seconds,
        refused: r.refused.map(|refund| refund.to_string()),
        opened_block: r.opened_block,
        updated_block: r.updated_block,
        offer_id: format!("{:#x}", r.offer_id),
        machine,
    }))
}

/// Signs an EIP-712 `Downtime` attestation for the downtime this node measured in a rental,
/// from the end of its last credited window (or its start) to its end or, while it runs,
/// the start of the current uptime bucket. Submit it with `creditDowntime` (or
/// `gpuflow claim-sla`); the refund goes to the renter. With a body, the window ends at
/// its `to` (no later than this node could attest), and the downtime is at most its
/// `down_seconds`, so that several attesters can sign identical terms.
#[utoipa::path(
    post,
    path = "/v1/rentals/{id}/downtime",
    tag = "rentals",
    params(("id" = u64, Path, description = "Rental id in GpuEscrow")),
    request_body(content = Option<api::DowntimeRequest>,
                 description = "Optional: the window's end and the most down seconds to sign"),
    responses(
        (status = 200, description = "The signed attestation", body = api::DowntimeAttestation),
        (status = 400, description = "Not a rental id, or a malformed body",
         body = api::ApiErrorBody),
        (status = 404, description = "Rental or its provider unknown here",
         body = api::ApiErrorBody),
        (status = 409, description = "No downtime measured, nothing uncredited has ended, \
         `to` is later than this node can attest, or the rental names no known machine and \
         several share its payout address",
         body = api::ApiErrorBody),
        (status = 501, description = "This node has no attester key", body = api::ApiErrorBody),
    )
)]
pub(super) async fn downtime(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<api::DowntimeAttestation>, ApiError> {
    let attester = state.attester.as_ref().ok_or_else(|| {
        ApiError::NotImplemented(
            "this node signs no downtime attestations (it runs without --attester-keystore); \
             ask a node registered as attester on the escrow"
                .into(),
        )
    })?;
    let id = rental_of(&id)?;
    // Read by hand rather than with `Json`, so that no body (and no content type) is fine.
    let ask = match body.iter().all(u8::is_ascii_whitespace) {
        true => None,
        false => Some(serde_json::from_slice::<api::DowntimeRequest>(&body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body must be {{\"to\": UNIX_SECONDS, \"down_seconds\": SECONDS}} \
                 (down_seconds optional) or empty: {e}"
            ))
        })?),
    };
    match attester.attest(&state.store, state.params, id, unix_now(), ask).await {
        Ok(attestation) => Ok(Json(attestation)),
        Err(error @ (AttestError::UnknownRental(_) | AttestError::UnknownProvider(_))) => {
            Err(ApiError::NotFound(error.to_string()))
        }
        Err(
            error @ (AttestError::NothingToAttest { .. }
            | AttestError::NoDowntime { .. }
            | AttestError::BeyondEvidence { .. }
            | AttestError::AmbiguousProvider { .. }),
        ) => Err(ApiError::Conflict(error.to_string())),
        Err(AttestError::Store(error)) => Err(ApiError::Internal(error)),
        Err(error) => Err(ApiError::Internal(StoreError::Read(error.to_string()))),
    }
}
