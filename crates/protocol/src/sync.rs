use serde::{Deserialize, Serialize};

use crate::SignedEnvelope;

/// Most offers one [`SyncResponse`] carries; at [`crate::MAX_MESSAGE_SIZE`] each, a page
/// stays under [`MAX_SYNC_RESPONSE_SIZE`].
pub const MAX_SYNC_PAGE: u32 = 64;
/// Largest encoded [`SyncResponse`] accepted, in bytes.
pub const MAX_SYNC_RESPONSE_SIZE: usize = 5 * 1024 * 1024;

/// A node's request, over `/gpuflow/sync/1`, for another node's live offers: how a node
/// that joins late learns the market without waiting for every provider to republish.
///
/// Pages go by offer id; the answer's [`SyncResponse::next`] is the `after` of the next
/// request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// Only offers whose id sorts after this one; `None` starts at the beginning.
    pub after: Option<String>,
    /// Most offers wanted; the server caps it at [`MAX_SYNC_PAGE`].
    pub limit: u32,
}

/// One page of a node's live offers, exactly as their providers signed them; the asking
/// node verifies each one as if it had come over gossipsub.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SyncResponse {
    /// Signed offers, in offer id order.
    pub offers: Vec<SignedEnvelope>,
    /// Where the next page starts, or `None` after the last page.
    pub next: Option<String>,
}
