//! Why the agent stopped, or could not handle a chain event (the poll is then retried).

use crate::store::StoreError;

/// What went wrong in the agent's loop.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The provider database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The libp2p event loop ended, so the agent can no longer be reached.
    #[error("the network stopped")]
    NetworkStopped,
    /// A rental left the chain in a reorganisation while its workload was starting; the
    /// poll is retried once the start ends, so the workload is never left running.
    #[error(
        "rental {0} left the chain in a reorganisation while its workload starts; \
         it is forgotten once the start ends"
    )]
    ForgottenWhileStarting(u64),
}
