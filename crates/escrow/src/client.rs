use std::time::Duration;

use alloy::{
    network::EthereumWallet,
    primitives::{Address, TxHash, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::{
        client::ClientBuilder,
        types::{Filter, TransactionReceipt},
    },
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
    transports::http::reqwest,
};

use gpuflow_protocol::SignedQuote;

use crate::{EscrowError, GpuEscrow, IERC20, Rental, explain};

/// How long a permit signed for one open stays valid, in seconds.
const PERMIT_VALIDITY: u64 = 3600;

/// Longest one RPC request may take before it fails, unless [`RPC_TIMEOUT_ENV`] says
/// otherwise: a frozen RPC must never hold up its caller for good.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(20);

/// Environment variable that sets the RPC request timeout, in seconds.
pub const RPC_TIMEOUT_ENV: &str = "GPUFLOW_RPC_TIMEOUT_SECS";

/// The RPC request timeout: [`RPC_TIMEOUT_ENV`] if set to a positive number of seconds,
/// else [`RPC_TIMEOUT`].
pub fn rpc_timeout() -> Duration {
    std::env::var(RPC_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|secs| *secs > 0)
        .map_or(RPC_TIMEOUT, Duration::from_secs)
}

/// Connects to the chain at `rpc_url`, signing with `signer` when given.
///
/// Every request times out after [`rpc_timeout`]. Nonces are read from the chain for
/// every transaction instead of counted locally, so a transaction that fails before it is
/// sent (its gas estimate reverts) never leaves a gap that would hold up the next one.
pub fn connect(
    rpc_url: &str,
    signer: Option<PrivateKeySigner>,
) -> Result<DynProvider, EscrowError> {
    let url = rpc_url.parse().map_err(|e| EscrowError::Rpc {
        action: "parsing the RPC URL",
        reason: format!("`{rpc_url}` is not a URL: {e}"),
    })?;
    let http = reqwest::Client::builder().timeout(rpc_timeout()).build().map_err(|e| {
        EscrowError::Rpc { action: "setting up the RPC client", reason: e.to_string() }
    })?;
    let client = ClientBuilder::default().http_with_client(http, url);
    let builder = ProviderBuilder::default()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id();
    Ok(match signer {
        Some(signer) => {
            builder.wallet(EthereumWallet::from(signer)).connect_client(client).erased()
        }
        None => builder.connect_client(client).erased(),
    })
}

/// A rental just opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// Rental id.
    pub rental_id: u64,
    /// Start, unix seconds (the block's timestamp).
    pub start: u64,
    /// Scheduled end, unix seconds.
    pub end: u64,
    /// Tokens locked, `rate × duration`.
    pub deposit: U256,
    /// The transaction.
    pub tx: TxHash,
}

/// A rental just stopped early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// Rental id.
    pub rental_id: u64,
    /// When it stopped, unix seconds.
    pub stopped_at: u64,
    /// Tokens returned to the renter.
    pub refund: U256,
    /// The transaction.
    pub tx: TxHash,
}

/// A rental its provider refused: everything the escrow held for it went back to the
/// renter, and the provider can never be paid for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Rental id.
    pub rental_id: u64,
    /// The renter, who received the refund (whoever submitted the refusal).
    pub renter: Address,
    /// Tokens returned to the renter.
    pub refund: U256,
    /// The transaction.
    pub tx: TxHash,
}

/// A rental just extended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extended {
    /// Rental id.
    pub rental_id: u64,
    /// The new end, unix seconds.
    pub new_end: u64,
    /// Tokens paid for the extra time.
    pub cost: U256,
    /// The transaction.
    pub tx: TxHash,
}

/// Earnings just paid to a provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Withdrawn {
    /// Rental id.
    pub rental_id: u64,
    /// Net tokens paid to the provider.
    pub amount: U256,
    /// Platform fee kept for the treasury.
    pub fee: U256,
    /// The transaction.
    pub tx: TxHash,
}

/// A confirmed downtime credit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credited {
    /// The rental.
    pub rental_id: u64,
    /// Start of the credited window.
    pub from: u64,
    /// End of the credited window.
    pub to: u64,
    /// Seconds credited (at most those attested: paid seconds are never clawed back).
    pub down_seconds: u64,
    /// Tokens refunded to the renter.
    pub refund: U256,
    /// The transaction.
    pub tx: TxHash,
}

/// An escrow event a provider or renter reacts to.
#[derive(Clone, Debug)]
pub enum EscrowEvent {
    /// A rental was opened.
    Opened(GpuEscrow::RentalOpened),
    /// A rental was stopped early.
    Stopped(GpuEscrow::RentalStopped),
    /// A provider withdrew earnings.
    Withdrawn(GpuEscrow::EarningsWithdrawn),
    /// A renter bought more time.
    Extended(GpuEscrow::RentalExtended),
    /// Downtime was credited back to the renter.
    Credited(GpuEscrow::DowntimeCredited),
    /// The provider refused the rental and the renter got its deposit back.
    Refused(GpuEscrow::RentalRefused),
}

/// Everything that happened to one rental, from its events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RentalHistory {
    /// Refund paid when the renter stopped it, if stopped.
    pub refund: Option<U256>,
    /// Net tokens paid to the provider so far.
    pub provider_paid: U256,
    /// Fees kept for the treasury so far.
    pub fees: U256,
    /// Downtime refunds credited to the renter so far.
    pub credited: U256,
    /// Refund paid when the provider refused it, if refused.
    pub refused: Option<U256>,
}

/// The escrow and its token, as seen by one wallet (or read-only).
#[derive(Clone, Debug)]
pub struct Escrow {
    provider: DynProvider,
    escrow: GpuEscrow::GpuEscrowInstance<DynProvider>,
    token: IERC20::IERC20Instance<DynProvider>,
    /// No event of the escrow is older than this block (its deployment block, or 0).
    from_block: u64,
}

/// How long a sent transaction may take to be mined before it is reported as unconfirmed,
/// with its hash, instead of waiting forever.
const RECEIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

/// Most blocks read by one `eth_getLogs` call; public RPCs refuse wider ranges.
pub const LOG_RANGE: u64 = 2_000;

/// Inclusive block ranges of at most `step` blocks that cover `from..=to` in order; none
/// when `from` is past `to`.
pub fn block_ranges(from: u64, to: u64, step: u64) -> impl Iterator<Item = (u64, u64)> {
    let step = step.max(1);
    let mut next = (from <= to).then_some(from);
    std::iter::from_fn(move || {
        let first = next?;
        let last = first.saturating_add(step - 1).min(to);
        next = last.checked_add(1).filter(|n| *n <= to);
        Some((first, last))
    })
}

impl Escrow {
    /// Binds to the escrow at `address`, reading its token.
    pub async fn new(provider: DynProvider, address: Address) -> Result<Self, EscrowError> {
        let escrow = GpuEscrow::new(address, provider.clone());
        let code = provider.get_code_at(address).await.map_err(|e| rpc("reading the escrow", e))?;
        if code.is_empty() {
            return Err(EscrowError::Rpc {
                action: "reading the escrow",
                reason: format!("no contract at {address} on this chain; check --escrow and --rpc"),
            });
        }
        let token =
            escrow.token().call().await.map_err(|e| call("reading the escrow's token", e))?;
        Ok(Self { token: IERC20::new(token, provider.clone()), escrow, provider, from_block: 0 })
    }

    /// Reads the escrow's history from `block` on (its deployment block) instead of from
    /// genesis.
    pub fn with_from_block(mut self, block: u64) -> Self {
        self.from_block = block;
        self
    }

    /// The logs matching `filter` (its block range aside) in blocks `from..=to`, read
    /// [`LOG_RANGE`] blocks at a time.
    pub async fn logs(
        &self,
        filter: &Filter,
        from: u64,
        to: u64,
        action: &'static str,
    ) -> Result<Vec<alloy::rpc::types::Log>, EscrowError> {
        let mut logs = Vec::new();
        for (first, last) in block_ranges(from, to, LOG_RANGE) {
            let range = filter.clone().from_block(first).to_block(last);
            logs.extend(self.provider.get_logs(&range).await.map_err(|e| EscrowError::Rpc {
                action,
                reason: format!("blocks {first}..={last}: {}", rpc_reason(&e)),
            })?);
        }
        Ok(logs)
    }

    /// The logs matching `filter` over the escrow's whole history.
    pub async fn all_logs(
        &self,
        filter: &Filter,
        action: &'static str,
    ) -> Result<Vec<alloy::rpc::types::Log>, EscrowError> {
        let latest = self.block_number().await?;
        self.logs(filter, self.from_block, latest, action).await
    }

    /// The escrow's address.
    pub fn address(&self) -> Address {
        *self.escrow.address()
    }

    /// The payment token's address.
    pub fn token(&self) -> Address {
        *self.token.address()
    }

    /// The chain provider this escrow talks through.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// Token balance of `account`, in token units.
    pub async fn balance_of(&self, account: Address) -> Result<U256, EscrowError> {
        self.token.balanceOf(account).call().await.map_err(|e| call("reading a token balance", e))
    }

    /// The token's decimals.
    pub async fn decimals(&self) -> Result<u8, EscrowError> {
        self.token.decimals().call().await.map_err(|e| call("reading the token's decimals", e))
    }

    /// Locks `rate × duration` tokens and opens a rental on the provider's signed quote.
    ///
    /// Pays with an EIP-2612 permit in the same transaction when the token supports it
    /// (ERC-5267 domain), else approves first when the allowance is short.
    pub async fn open(
        &self,
        renter: &PrivateKeySigner,
        quote: &SignedQuote,
        duration: u64,
    ) -> Result<Opened, EscrowError> {
        const ACTION: &str = "opening the rental";
        let deposit = crate::quote::cost(quote.terms.rate_per_second, duration)?;
        let terms = crate::quote::to_sol(&quote.terms)?;
        let sent = match self.permit(renter, deposit).await? {
            Some((deadline, sig)) => {
                self.escrow
                    .openWithPermit(
                        terms,
                        U256::from(duration),
                        quote.signature.clone(),
                        deadline,
                        27 + u8::from(sig.v()),
                        sig.r().into(),
                        sig.s().into(),
                    )
                    .send()
                    .await
            }
            None => {
                self.approve(renter.address(), deposit).await?;
                self.escrow.open(terms, U256::from(duration), quote.signature.clone()).send().await
            }
        };
        let receipt = confirm(ACTION, sent).await?;
        let event = find_event::<GpuEscrow::RentalOpened>(ACTION, &receipt)?;
        Ok(Opened {
            rental_id: to_u64(event.rentalId)?,
            start: to_u64(event.start)?,
            end: to_u64(event.end)?,
            deposit: event.deposit,
            tx: receipt.transaction_hash,
        })
    }

    /// Buys `extra` more seconds at the rental's rate.
    pub async fn extend(
        &self,
        renter: Address,
        rental_id: u64,
        extra: u64,
    ) -> Result<Extended, EscrowError> {
        const ACTION: &str = "extending the rental";
        let rental = self.rental(rental_id).await?;
        self.approve(renter, crate::quote::cost(rental.ratePerSecond, extra)?).await?;
        let sent = self.escrow.extend(U256::from(rental_id), U256::from(extra)).send().await;
        let receipt = confirm(ACTION, sent).await?;
        let event = find_event::<GpuEscrow::RentalExtended>(ACTION, &receipt)?;
        Ok(Extended {
            rental_id,
            new_end: to_u64(event.newEnd)?,
            cost: event.cost,
            tx: receipt.transaction_hash,
        })
    }

    /// Approves the escrow for `amount` when the allowance is short.
    async fn approve(&self, owner: Address, amount: U256) -> Result<(), EscrowError> {
        let allowance = self
            .token
            .allowance(owner, self.address())
            .call()
            .await
            .map_err(|e| call("reading the token allowance", e))?;
        if allowance < amount {
            let approve = self.token.approve(self.address(), amount);
            confirm("approving the deposit", approve.send().await).await?;
        }
        Ok(())
    }

    /// Signs an EIP-2612 permit for the escrow, if the token publishes its EIP-712
    /// domain (ERC-5267) and has permit nonces.
    async fn permit(
        &self,
        owner: &PrivateKeySigner,
        value: U256,
    ) -> Result<Option<(U256, alloy::primitives::Signature)>, EscrowError> {
        let (Ok(domain), Ok(nonce)) = (
            self.token.eip712Domain().call().await,
            self.token.nonces(owner.address()).call().await,
        ) else {
            return Ok(None);
        };
        let domain = alloy::sol_types::Eip712Domain::new(
            Some(domain.name.into()),
            Some(domain.version.into()),
            Some(domain.chainId),
            Some(domain.verifyingContract),
            None,
        );
        let deadline = U256::from(gpuflow_protocol::unix_now() + PERMIT_VALIDITY);
        let permit = crate::bindings::Permit {
            owner: owner.address(),
            spender: self.address(),
            value,
            nonce,
            deadline,
        };
        let hash = alloy::sol_types::SolStruct::eip712_signing_hash(&permit, &domain);
        let signature = alloy::signers::SignerSync::sign_hash_sync(owner, &hash)
            .map_err(|e| EscrowError::OutOfRange(format!("signing the permit: {e}")))?;
        Ok(Some((deadline, signature)))
    }

    /// Stops a rental early; the unused remainder goes back to the renter at once.
    pub async fn stop(&self, rental_id: u64) -> Result<Stopped, EscrowError> {
        let stop = self.escrow.stop(U256::from(rental_id));
        let receipt = confirm("stopping the rental", stop.send().await).await?;
        let event = find_event::<GpuEscrow::RentalStopped>("stopping the rental", &receipt)?;
        Ok(Stopped {
            rental_id,
            stopped_at: to_u64(event.stoppedAt)?,
            refund: event.refund,
            tx: receipt.transaction_hash,
        })
    }

    /// Submits the provider's signed refusal of a rental ([`crate::sign_refusal`]): the
    /// renter gets back everything the escrow holds for it, whoever sends it, and the
    /// provider can never be paid for it.
    pub async fn refuse(
        &self,
        rental_id: u64,
        signature: alloy::primitives::Bytes,
    ) -> Result<Refused, EscrowError> {
        const ACTION: &str = "refusing the rental";
        let refuse = self.escrow.refuse(U256::from(rental_id), signature);
        let receipt = confirm(ACTION, refuse.send().await).await?;
        let event = find_event::<GpuEscrow::RentalRefused>(ACTION, &receipt)?;
        Ok(Refused {
            rental_id,
            renter: event.renter,
            refund: event.refund,
            tx: receipt.transaction_hash,
        })
    }

    /// Withdraws what the provider has earned on a rental so far; `None` when there is
    /// nothing left to withdraw. The transaction's block time decides what is earned, so
    /// this is right even when the latest block is older than the wall clock.
    pub async fn withdraw(&self, rental_id: u64) -> Result<Option<Withdrawn>, EscrowError> {
        const ACTION: &str = "withdrawing earnings";
        let sent = match self.escrow.withdraw(U256::from(rental_id)).send().await {
            Err(e)
                if matches!(
                    e.as_decoded_interface_error::<GpuEscrow::GpuEscrowErrors>(),
                    Some(GpuEscrow::GpuEscrowErrors::GpuEscrow_NothingToWithdraw(_))
                ) =>
            {
                return Ok(None);
            }
            sent => sent,
        };
        let receipt = confirm(ACTION, sent).await?;
        let event = find_event::<GpuEscrow::EarningsWithdrawn>(ACTION, &receipt)?;
        Ok(Some(Withdrawn {
            rental_id,
            amount: event.amount,
            fee: event.fee,
            tx: receipt.transaction_hash,
        }))
    }

    /// Withdraws the earnings of several rentals in one transaction, to the provider's own
    /// address or, with `to`, to another (`withdrawTo`: for a provider whose address the
    /// token blocklists); empty when none had anything to withdraw.
    pub async fn withdraw_many(
        &self,
        rental_ids: &[u64],
        to: Option<Address>,
    ) -> Result<Vec<Withdrawn>, EscrowError> {
        const ACTION: &str = "withdrawing earnings";
        let ids: Vec<U256> = rental_ids.iter().map(|id| U256::from(*id)).collect();
        let sent = match to {
            None => self.escrow.withdrawMany(ids).send().await,
            Some(recipient) => self.escrow.withdrawTo(ids, recipient).send().await,
        };
        let sent = match sent {
            Err(e)
                if matches!(
                    e.as_decoded_interface_error::<GpuEscrow::GpuEscrowErrors>(),
                    Some(GpuEscrow::GpuEscrowErrors::GpuEscrow_BatchNothingToWithdraw(_))
                ) =>
            {
                return Ok(Vec::new());
            }
            sent => sent,
        };
        let receipt = confirm(ACTION, sent).await?;
        receipt
            .inner
            .logs()
            .iter()
            .filter_map(|log| log.log_decode::<GpuEscrow::EarningsWithdrawn>().ok())
            .map(|log| {
                let e = log.inner.data;
                Ok(Withdrawn {
                    rental_id: to_u64(e.rentalId)?,
                    amount: e.amount,
                    fee: e.fee,
                    tx: receipt.transaction_hash,
                })
            })
            .collect()
    }

    /// Gross earnings of an ended rental not yet paid out: its used seconds, less the
    /// credited downtime, times the rate, less what was withdrawn.
    pub async fn outstanding(&self, rental_id: u64) -> Result<U256, EscrowError> {
        let r = self.rental(rental_id).await?;
        let seconds = r
            .end
            .to::<u64>()
            .saturating_sub(r.start.to::<u64>())
            .saturating_sub(r.credited.to::<u64>());
        Ok(crate::quote::cost(r.ratePerSecond, seconds)?.saturating_sub(r.withdrawn))
    }

    /// Gross tokens the provider could withdraw from the rental now (by the latest block's
    /// time): earned seconds past the dispute window, less credits and withdrawals.
    pub async fn withdrawable(&self, rental_id: u64) -> Result<U256, EscrowError> {
        self.escrow
            .withdrawable(U256::from(rental_id))
            .call()
            .await
            .map_err(|e| call("reading what is withdrawable", e))
    }

    /// The dispute window: seconds before earned seconds can be withdrawn.
    pub async fn dispute_window(&self) -> Result<u64, EscrowError> {
        let window = self
            .escrow
            .DISPUTE_WINDOW()
            .call()
            .await
            .map_err(|e| call("reading the dispute window", e))?;
        Ok(window.to::<u64>())
    }

    /// How many distinct attesters must sign a downtime attestation.
    pub async fn attester_threshold(&self) -> Result<u8, EscrowError> {
        self.escrow
            .attesterThreshold()
            .call()
            .await
            .map_err(|e| call("reading the attester threshold", e))
    }

    /// The EIP-712 domain quotes, attestations and refusals are signed in.
    pub async fn domain(&self) -> Result<alloy::sol_types::Eip712Domain, EscrowError> {
        let chain_id =
            self.provider.get_chain_id().await.map_err(|e| rpc("reading the chain id", e))?;
        Ok(crate::quote::domain(chain_id, self.address()))
    }

    /// The rental's on-chain record.
    pub async fn rental(&self, rental_id: u64) -> Result<Rental, EscrowError> {
        self.escrow
            .getRental(U256::from(rental_id))
            .call()
            .await
            .map_err(|e| call("reading the rental", e))
    }

    /// Latest block number.
    pub async fn block_number(&self) -> Result<u64, EscrowError> {
        self.provider.get_block_number().await.map_err(|e| rpc("reading the block number", e))
    }

    /// The latest block's number and timestamp: the chain's clock, which a devnet may run
    /// ahead of the wall clock and which decides when a rental ends.
    pub async fn latest_block(&self) -> Result<(u64, u64), EscrowError> {
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(|e| rpc("reading the latest block", e))?
            .ok_or_else(|| rpc("reading the latest block", "the node has no latest block"))?;
        Ok((block.header.number, block.header.timestamp))
    }

    /// Escrow events in blocks `from..=to`, in chain order, each with its block number.
    pub async fn events(&self, from: u64, to: u64) -> Result<Vec<(u64, EscrowEvent)>, EscrowError> {
        let filter = Filter::new().address(self.address());
        let logs = self.logs(&filter, from, to, "reading escrow events").await?;
        Ok(logs
            .iter()
            .filter_map(|log| {
                let topic = log.topic0()?;
                let event = match *topic {
                    GpuEscrow::RentalOpened::SIGNATURE_HASH => {
                        EscrowEvent::Opened(log.log_decode().ok()?.inner.data)
                    }
                    GpuEscrow::RentalStopped::SIGNATURE_HASH => {
                        EscrowEvent::Stopped(log.log_decode().ok()?.inner.data)
                    }
                    GpuEscrow::EarningsWithdrawn::SIGNATURE_HASH => {
                        EscrowEvent::Withdrawn(log.log_decode().ok()?.inner.data)
                    }
                    GpuEscrow::RentalExtended::SIGNATURE_HASH => {
                        EscrowEvent::Extended(log.log_decode().ok()?.inner.data)
                    }
                    GpuEscrow::DowntimeCredited::SIGNATURE_HASH => {
                        EscrowEvent::Credited(log.log_decode().ok()?.inner.data)
                    }
                    GpuEscrow::RentalRefused::SIGNATURE_HASH => {
                        EscrowEvent::Refused(log.log_decode().ok()?.inner.data)
                    }
                    _ => return None,
                };
                Some((log.block_number?, event))
            })
            .collect())
    }

    /// Refund and payouts of one rental, summed from its events.
    pub async fn history(&self, rental_id: u64) -> Result<RentalHistory, EscrowError> {
        let id = U256::from(rental_id);
        let filter = Filter::new().address(self.address()).topic1(id);
        let logs = self.all_logs(&filter, "reading the rental's events").await?;
        let mut history = RentalHistory::default();
        for log in &logs {
            if let Ok(stopped) = log.log_decode::<GpuEscrow::RentalStopped>() {
                history.refund = Some(stopped.inner.data.refund);
            } else if let Ok(paid) = log.log_decode::<GpuEscrow::EarningsWithdrawn>() {
                history.provider_paid += paid.inner.data.amount;
                history.fees += paid.inner.data.fee;
            } else if let Ok(credit) = log.log_decode::<GpuEscrow::DowntimeCredited>() {
                history.credited += credit.inner.data.refund;
            } else if let Ok(refused) = log.log_decode::<GpuEscrow::RentalRefused>() {
                history.refused = Some(refused.inner.data.refund);
            }
        }
        Ok(history)
    }

    /// Submits a downtime attestation with its attesters' signatures, packed with
    /// [`crate::pack_signatures`]; the refund goes to the renter, whoever sends it.
    pub async fn credit_downtime(
        &self,
        terms: &crate::DowntimeTerms,
        signatures: alloy::primitives::Bytes,
    ) -> Result<Credited, EscrowError> {
        const ACTION: &str = "crediting the downtime";
        let credit = self.escrow.creditDowntime(terms.packed()?, signatures);
        let receipt = confirm(ACTION, credit.send().await).await?;
        let event = find_event::<GpuEscrow::DowntimeCredited>(ACTION, &receipt)?;
        Ok(Credited {
            rental_id: terms.rental_id,
            from: to_u64(event.from)?,
            to: to_u64(event.to)?,
            down_seconds: to_u64(event.downSeconds)?,
            refund: event.refund,
            tx: receipt.transaction_hash,
        })
    }
}

async fn confirm<T>(
    action: &'static str,
    sent: Result<alloy::providers::PendingTransactionBuilder<T>, alloy::contract::Error>,
) -> Result<TransactionReceipt, EscrowError>
where
    T: alloy::network::Network<ReceiptResponse = TransactionReceipt>,
{
    let pending = sent.map_err(|e| call(action, e))?;
    let tx = *pending.tx_hash();
    let receipt = pending
        .with_timeout(Some(RECEIPT_TIMEOUT))
        .get_receipt()
        .await
        .map_err(|e| EscrowError::Unconfirmed { action, tx, reason: rpc_reason(&e) })?;
    if !receipt.status() {
        return Err(EscrowError::Failed { action, tx: receipt.transaction_hash });
    }
    Ok(receipt)
}

fn find_event<E: SolEvent>(
    action: &'static str,
    receipt: &TransactionReceipt,
) -> Result<E, EscrowError> {
    receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| log.log_decode::<E>().ok())
        .map(|log| log.inner.data)
        .ok_or(EscrowError::MissingEvent {
            action,
            tx: receipt.transaction_hash,
            event: E::SIGNATURE,
        })
}

fn call(action: &'static str, error: alloy::contract::Error) -> EscrowError {
    if error.as_revert_data().is_some() {
        EscrowError::Reverted { action, reason: explain(&error) }
    } else {
        rpc(action, error)
    }
}

fn rpc(action: &'static str, error: impl std::fmt::Display + std::fmt::Debug) -> EscrowError {
    EscrowError::Rpc { action, reason: rpc_reason(&error) }
}

/// The error's text, or, for a request that ran out of time, what that means and what to do.
pub fn rpc_reason(error: &(impl std::fmt::Display + std::fmt::Debug)) -> String {
    let text = error.to_string();
    let debug = format!("{error:?}");
    if [&text, &debug].iter().any(|t| t.contains("timed out") || t.contains("TimedOut")) {
        format!(
            "the RPC did not answer within {} s: it is frozen or overloaded; try again, or use \
             another RPC URL (the timeout is set by {RPC_TIMEOUT_ENV})",
            rpc_timeout().as_secs()
        )
    } else {
        text
    }
}

fn to_u64(value: U256) -> Result<u64, EscrowError> {
    u64::try_from(value)
        .map_err(|_| EscrowError::OutOfRange(format!("{value} does not fit 64 bits")))
}

#[cfg(test)]
mod tests {
    use super::block_ranges;

    #[test]
    fn ranges_cover_every_block_once_and_stay_bounded() {
        let ranges = |from, to, step| block_ranges(from, to, step).collect::<Vec<_>>();
        assert_eq!(ranges(0, 0, 10_000), [(0, 0)]);
        assert_eq!(ranges(0, 9_999, 10_000), [(0, 9_999)]);
        assert_eq!(ranges(0, 10_000, 10_000), [(0, 9_999), (10_000, 10_000)]);
        assert_eq!(
            ranges(5_200_000, 5_225_000, 10_000),
            [(5_200_000, 5_209_999), (5_210_000, 5_219_999), (5_220_000, 5_225_000)]
        );
        assert_eq!(ranges(7, 6, 10_000), []);
        assert_eq!(ranges(u64::MAX - 1, u64::MAX, 10_000), [(u64::MAX - 1, u64::MAX)]);
        assert_eq!(ranges(3, 5, 1), [(3, 3), (4, 4), (5, 5)]);
        // Contiguous and bounded for odd sizes too.
        for (from, to, step) in [(1, 99_999, 10_000), (17, 123_456, 777), (0, 50, 7)] {
            let all = ranges(from, to, step);
            assert_eq!(all.first().unwrap().0, from);
            assert_eq!(all.last().unwrap().1, to);
            assert!(all.iter().all(|(a, b)| a <= b && b - a < step));
            assert!(all.windows(2).all(|w| w[1].0 == w[0].1 + 1));
        }
    }
}
