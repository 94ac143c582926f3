use crate::{GpuEscrow::GpuEscrowErrors as E, IERC20::IERC20Errors as T};

/// Turns a failed contract call into a sentence a renter or provider understands.
pub fn explain(error: &alloy::contract::Error) -> String {
    if let Some(e) = error.as_decoded_interface_error::<E>() {
        return explain_escrow(&e);
    }
    if let Some(e) = error.as_decoded_interface_error::<T>() {
        return explain_token(&e);
    }
    if let Some(data) = error.as_revert_data() {
        return format!("the contract reverted with unrecognised data {data}");
    }
    error.to_string()
}

fn explain_escrow(error: &E) -> String {
    match error {
        E::GpuEscrow_TokenZeroAddress(_) => "the payment token address is zero".into(),
        E::GpuEscrow_TreasuryZeroAddress(_) => "the treasury address is zero".into(),
        E::GpuEscrow_FeeTooHigh(e) => {
            format!("a fee of {} basis points is above the maximum of {}", e.feeBps, e.max)
        }
        E::GpuEscrow_ProviderZeroAddress(_) => "the offer has no payout address".into(),
        E::GpuEscrow_ProviderIsRenter(e) => {
            format!("{} cannot rent its own machine", e.account)
        }
        E::GpuEscrow_RateZero(_) => "the price per second is zero".into(),
        E::GpuEscrow_RateTooHigh(e) => {
            format!(
                "the price of {} units per second is above the maximum of {}",
                e.ratePerSecond, e.max
            )
        }
        E::GpuEscrow_DurationZero(_) => {
            "the rental duration is zero; ask for at least one second".into()
        }
        E::GpuEscrow_DurationTooLong(e) => {
            format!("a duration of {} s is longer than the maximum of {} s", e.duration, e.max)
        }
        E::GpuEscrow_DepositTooLarge(e) => {
            format!(
                "the deposit of {} units is above the maximum of {}; rent for less time",
                e.deposit, e.max
            )
        }
        E::GpuEscrow_RentalNotFound(e) => {
            format!(
                "rental {} does not exist on this escrow; check the id and the --escrow address",
                e.rentalId
            )
        }
        E::GpuEscrow_CallerNotRenter(e) => {
            format!("rental {} belongs to another renter, not {}", e.rentalId, e.caller)
        }
        E::GpuEscrow_CallerNotProvider(e) => {
            format!("rental {} pays another provider, not {}", e.rentalId, e.caller)
        }
        E::GpuEscrow_RentalAlreadyStopped(e) => {
            format!("rental {} is already stopped; its remainder was refunded then", e.rentalId)
        }
        E::GpuEscrow_RentalAlreadyEnded(e) => {
            format!("rental {} already ended at {}; nothing is left to refund", e.rentalId, e.end)
        }
        E::GpuEscrow_NothingToWithdraw(e) => {
            format!("rental {} has no earnings left to withdraw yet", e.rentalId)
        }
        E::GpuEscrow_CallerNotTreasury(e) => format!("{} is not the treasury", e.caller),
        E::GpuEscrow_NoFeesToClaim(_) => "there are no fees to claim".into(),
        E::SafeERC20FailedOperation(e) => {
            format!("the token {} refused the transfer", e.token)
        }
    }
}

fn explain_token(error: &T) -> String {
    match error {
        T::ERC20InsufficientBalance(e) => format!(
            "{} holds {} token units but {} are needed; fund the wallet and try again",
            e.sender, e.balance, e.needed
        ),
        T::ERC20InsufficientAllowance(e) => format!(
            "the escrow {} may spend only {} token units of the needed {}; approve more",
            e.spender, e.allowance, e.needed
        ),
        T::ERC20InvalidSender(e) => format!("the token refuses to send from {}", e.sender),
        T::ERC20InvalidReceiver(e) => format!("the token refuses to pay {}", e.receiver),
    }
}
