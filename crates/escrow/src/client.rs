//! [`Escrow`]: the calls a renter and a provider make, each waited for and explained.

use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
    rpc::types::{Filter, TransactionReceipt},
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
};

use gpuflow_protocol::SignedQuote;

use crate::{
    EscrowError, GpuEscrow, IERC20, Rental,
    events::{
        AutoExtendSet, Credited, EscrowEvent, Extended, LOG_RANGE, Opened, Party, Refused,
        RentalHistory, Stopped, Withdrawn, block_ranges, find_event,
    },
    explain, rpc_reason,
};

/// How long a permit signed for one open or extension stays valid, in seconds.
const PERMIT_VALIDITY: u64 = 3600;

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

    /// The token's symbol, e.g. `USDC`.
    pub async fn symbol(&self) -> Result<String, EscrowError> {
        self.token.symbol().call().await.map_err(|e| call("reading the token's symbol", e))
    }

    /// The token's decimals.
    pub async fn decimals(&self) -> Result<u8, EscrowError> {
        self.token.decimals().call().await.map_err(|e| call("reading the token's decimals", e))
    }

    /// Locks `rate × duration` tokens and opens a rental on the provider's signed quote.
    ///
    /// Pays with an EIP-2612 permit in the same transaction when the token supports it
    /// (ERC-5267 domain) and the escrow has no standing allowance, else raises the allowance
    /// by the deposit first.
    pub async fn open(
        &self,
        renter: &PrivateKeySigner,
        quote: &SignedQuote,
        duration: u64,
    ) -> Result<Opened, EscrowError> {
        const ACTION: &str = "opening the rental";
        let deposit = crate::quote::cost(quote.terms.rate_per_second, duration)?;
        let terms = crate::quote::to_sol(&quote.terms)?;
        // A permit sets the allowance to exactly the deposit, which would wipe what automatic
        // extensions were allowed to take: with a standing allowance, raise it instead.
        let standing = self.allowance(renter.address()).await?;
        let permit = if standing.is_zero() { self.permit(renter, deposit).await? } else { None };
        let sent = match permit {
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
    ///
    /// Pays as [`Escrow::open`] does: with an EIP-2612 permit in the same transaction
    /// (`extendWithPermit`) when the token supports it and the escrow has no standing
    /// allowance (as after an open paid by permit, which the deposit used up), else raises the
    /// allowance by the cost first, leaving what automatic extensions may take in place.
    pub async fn extend(
        &self,
        renter: &PrivateKeySigner,
        rental_id: u64,
        extra: u64,
    ) -> Result<Extended, EscrowError> {
        const ACTION: &str = "extending the rental";
        let rental = self.rental(rental_id).await?;
        let cost = crate::quote::cost(rental.ratePerSecond, extra)?;
        // A permit sets the allowance to exactly the cost, which would wipe a standing one.
        let standing = self.allowance(renter.address()).await?;
        let permit = if standing.is_zero() { self.permit(renter, cost).await? } else { None };
        let (id, extra) = (U256::from(rental_id), U256::from(extra));
        let sent = match permit {
            Some((deadline, sig)) => {
                let (v, r, s) = (27 + u8::from(sig.v()), sig.r().into(), sig.s().into());
                self.escrow.extendWithPermit(id, extra, deadline, v, r, s).send().await
            }
            None => {
                self.approve(renter.address(), cost).await?;
                self.escrow.extend(id, extra).send().await
            }
        };
        let receipt = confirm(ACTION, sent).await?;
        extended(ACTION, rental_id, &receipt)
    }

    /// Lets anyone extend the rental `step` seconds at a time from the renter's tokens until
    /// `budget` is spent, replacing what was left of an earlier budget (0 turns it off), and
    /// moves the escrow's allowance by the difference so the budget can be pulled.
    pub async fn set_auto_extend(
        &self,
        renter: Address,
        rental_id: u64,
        budget: U256,
        step: u64,
    ) -> Result<AutoExtendSet, EscrowError> {
        const ACTION: &str = "setting the automatic extension";
        let (left, _) = self.auto_extension(rental_id).await?;
        let allowance = self.allowance(renter).await?;
        if allowance != U256::MAX {
            let wanted = allowance.saturating_sub(left).saturating_add(budget);
            if wanted != allowance {
                self.set_allowance(wanted).await?;
            }
        }
        let set = self.escrow.setAutoExtend(U256::from(rental_id), budget, U256::from(step));
        let receipt = confirm(ACTION, set.send().await).await?;
        find_event::<GpuEscrow::AutoExtendSet>(ACTION, &receipt)?;
        Ok(AutoExtendSet { rental_id, budget, step, tx: receipt.transaction_hash })
    }

    /// Whether `provider`'s quote nonce `nonce` opened a rental or was invalidated.
    pub async fn is_nonce_used(&self, provider: Address, nonce: U256) -> Result<bool, EscrowError> {
        self.escrow
            .isNonceUsed(provider, nonce)
            .call()
            .await
            .map_err(|e| call("reading whether a quote nonce is used", e))
    }

    /// What is left of the rental's automatic extension budget, and its step in seconds
    /// (both zero when none is set).
    pub async fn auto_extension(&self, rental_id: u64) -> Result<(U256, u64), EscrowError> {
        let set = self
            .escrow
            .autoExtension(U256::from(rental_id))
            .call()
            .await
            .map_err(|e| call("reading the automatic extension", e))?;
        Ok((set.budget, to_u64(set.step)?))
    }

    /// Extends the rental from its automatic extension budget; anyone may send it in the
    /// rental's last ten minutes.
    pub async fn auto_extend(&self, rental_id: u64) -> Result<Extended, EscrowError> {
        const ACTION: &str = "extending the rental automatically";
        let sent = self.escrow.autoExtend(U256::from(rental_id)).send().await;
        let receipt = confirm(ACTION, sent).await?;
        extended(ACTION, rental_id, &receipt)
    }

    /// What the escrow may still pull from `owner` (the token allowance).
    pub async fn allowance(&self, owner: Address) -> Result<U256, EscrowError> {
        self.token
            .allowance(owner, self.address())
            .call()
            .await
            .map_err(|e| call("reading the token allowance", e))
    }

    /// Raises the escrow's allowance by `amount` for a payment about to be pulled, so the
    /// payment leaves standing what automatic extensions were allowed to take. An unlimited
    /// allowance is left as it is.
    async fn approve(&self, owner: Address, amount: U256) -> Result<(), EscrowError> {
        let allowance = self.allowance(owner).await?;
        if allowance != U256::MAX {
            self.set_allowance(allowance.saturating_add(amount)).await?;
        }
        Ok(())
    }

    async fn set_allowance(&self, value: U256) -> Result<(), EscrowError> {
        let approve = self.token.approve(self.address(), value);
        confirm("approving the escrow", approve.send().await).await?;
        Ok(())
    }

    /// Signs an EIP-2612 permit for the escrow to pull `value`, if the token publishes its
    /// EIP-712 domain (ERC-5267) and has permit nonces.
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

    /// The platform fee taken from new rentals, in basis points.
    pub async fn fee_bps(&self) -> Result<u16, alloy::contract::Error> {
        self.escrow.feeBps().call().await
    }

    /// Gross tokens the rental has earned its provider so far, withdrawn or not.
    pub async fn earned(&self, rental_id: u64) -> Result<U256, alloy::contract::Error> {
        self.escrow.earned(U256::from(rental_id)).call().await
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
                let event = EscrowEvent::decode(log)?;
                Some((log.block_number?, event))
            })
            .collect())
    }

    /// Ids of every rental `party` opened or provided, oldest first, over the escrow's
    /// whole history; `action` names the read in errors.
    pub async fn opened_rentals(
        &self,
        party: Party,
        action: &'static str,
    ) -> Result<Vec<u64>, EscrowError> {
        let filter = Filter::new()
            .address(self.address())
            .event_signature(GpuEscrow::RentalOpened::SIGNATURE_HASH);
        let filter = match party {
            Party::Renter(renter) => filter.topic2(B256::left_padding_from(renter.as_slice())),
            Party::Provider(provider) => {
                filter.topic3(B256::left_padding_from(provider.as_slice()))
            }
        };
        let logs = self.all_logs(&filter, action).await?;
        Ok(logs
            .iter()
            .filter_map(|log| match EscrowEvent::decode(log)? {
                EscrowEvent::Opened(opened) => Some(opened.rentalId.to::<u64>()),
                _ => None,
            })
            .collect())
    }

    /// Refund and payouts of one rental, summed from its events.
    pub async fn history(&self, rental_id: u64) -> Result<RentalHistory, EscrowError> {
        let id = U256::from(rental_id);
        let filter = Filter::new().address(self.address()).topic1(id);
        let logs = self.all_logs(&filter, "reading the rental's events").await?;
        let mut history = RentalHistory::default();
        for event in logs.iter().filter_map(EscrowEvent::decode) {
            history.add(&event);
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

/// The extension `receipt` made, read from its `RentalExtended` event.
fn extended(
    action: &'static str,
    rental_id: u64,
    receipt: &TransactionReceipt,
) -> Result<Extended, EscrowError> {
    let event = find_event::<GpuEscrow::RentalExtended>(action, receipt)?;
    Ok(Extended {
        rental_id,
        new_end: to_u64(event.newEnd)?,
        cost: event.cost,
        tx: receipt.transaction_hash,
    })
}

fn call(action: &'static str, error: alloy::contract::Error) -> EscrowError {
    let missing = matches!(
        error.as_decoded_interface_error::<GpuEscrow::GpuEscrowErrors>(),
        Some(GpuEscrow::GpuEscrowErrors::GpuEscrow_RentalNotFound(_))
    );
    if missing {
        EscrowError::NotFound { action, reason: explain(&error) }
    } else if error.as_revert_data().is_some() {
        EscrowError::Reverted { action, reason: explain(&error) }
    } else {
        rpc(action, error)
    }
}

fn rpc(action: &'static str, error: impl std::fmt::Display + std::fmt::Debug) -> EscrowError {
    EscrowError::Rpc { action, reason: rpc_reason(&error) }
}

fn to_u64(value: U256) -> Result<u64, EscrowError> {
    u64::try_from(value)
        .map_err(|_| EscrowError::OutOfRange(format!("{value} does not fit 64 bits")))
}
