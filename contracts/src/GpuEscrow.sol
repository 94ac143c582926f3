// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import { SafeERC20 } from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import { IGpuEscrow } from "./interfaces/IGpuEscrow.sol";
import { Errors } from "./libraries/Errors.sol";
import { Rental } from "./types/DataTypes.sol";

/// @title GpuEscrow
/// @notice See the documentation in {IGpuEscrow}.
/// @dev Every rental is fully prefunded, so the contract is solvent by construction as long as {token} behaves like
/// a plain ERC-20: the balance it holds always equals the sum over rentals of `deposit - refunded - withdrawn` plus
/// {feesAccrued}. Every state-changing function follows checks-effects-interactions and the token is only called
/// at the very end, which is why no reentrancy guard is needed.
contract GpuEscrow is IGpuEscrow {
    using SafeERC20 for IERC20;

    /*//////////////////////////////////////////////////////////////////////////
                                     CONSTANTS
    //////////////////////////////////////////////////////////////////////////*/

    /// @inheritdoc IGpuEscrow
    uint256 public constant override MAX_FEE_BPS = 1500;

    /// @dev The denominator of basis-point fees.
    uint256 private constant BPS_DENOMINATOR = 10_000;

    /*//////////////////////////////////////////////////////////////////////////
                                     IMMUTABLES
    //////////////////////////////////////////////////////////////////////////*/

    /// @inheritdoc IGpuEscrow
    IERC20 public immutable override token;

    /// @inheritdoc IGpuEscrow
    address public immutable override treasury;

    /// @inheritdoc IGpuEscrow
    uint16 public immutable override feeBps;

    /*//////////////////////////////////////////////////////////////////////////
                                   STORAGE
    //////////////////////////////////////////////////////////////////////////*/

    /// @inheritdoc IGpuEscrow
    uint256 public override feesAccrued;

    /// @inheritdoc IGpuEscrow
    uint256 public override nextRentalId;

    /// @dev Rentals by id. An entry whose renter is the zero address was never opened.
    mapping(uint256 rentalId => Rental) private _rentals;

    /*//////////////////////////////////////////////////////////////////////////
                                    CONSTRUCTOR
    //////////////////////////////////////////////////////////////////////////*/

    /// @param token_ The ERC-20 token in which rentals are paid. Must not charge fees on transfer or rebase.
    /// @param treasury_ The account that collects protocol fees.
    /// @param feeBps_ The protocol fee, in basis points of provider earnings; at most {MAX_FEE_BPS}.
    constructor(IERC20 token_, address treasury_, uint16 feeBps_) {
        if (address(token_) == address(0)) {
            revert Errors.GpuEscrow_TokenZeroAddress();
        }
        if (treasury_ == address(0)) {
            revert Errors.GpuEscrow_TreasuryZeroAddress();
        }
        if (feeBps_ > MAX_FEE_BPS) {
            revert Errors.GpuEscrow_FeeTooHigh(feeBps_, MAX_FEE_BPS);
        }

        token = token_;
        treasury = treasury_;
        feeBps = feeBps_;
        // Starting at 1 keeps id 0 free to mean "no rental" in off-chain indexes.
        nextRentalId = 1;
    }

    /*//////////////////////////////////////////////////////////////////////////
                                 CONSTANT FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @inheritdoc IGpuEscrow
    function getRental(uint256 rentalId) external view override returns (Rental memory) {
        return _getExistingRental(rentalId);
    }

    /// @inheritdoc IGpuEscrow
    function earned(uint256 rentalId) external view override returns (uint256) {
        return _earned(_getExistingRental(rentalId));
    }

    /// @inheritdoc IGpuEscrow
    function withdrawable(uint256 rentalId) external view override returns (uint256 gross) {
        Rental storage rental = _getExistingRental(rentalId);
        // `withdrawn` only ever catches up with `earned`, so this cannot underflow.
        gross = _earned(rental) - rental.withdrawn;
    }

    /*//////////////////////////////////////////////////////////////////////////
                               NON-CONSTANT FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @inheritdoc IGpuEscrow
    function open(address provider, uint256 ratePerSecond, uint256 duration)
        external
        override
        returns (uint256 rentalId)
    {
        // Checks: the parties and the bounds that let the rental fit its packed storage layout.
        if (provider == address(0)) {
            revert Errors.GpuEscrow_ProviderZeroAddress();
        }
        if (provider == msg.sender) {
            revert Errors.GpuEscrow_ProviderIsRenter(msg.sender);
        }
        if (ratePerSecond == 0) {
            revert Errors.GpuEscrow_RateZero();
        }
        if (ratePerSecond > type(uint128).max) {
            revert Errors.GpuEscrow_RateTooHigh(ratePerSecond, type(uint128).max);
        }
        if (duration == 0) {
            revert Errors.GpuEscrow_DurationZero();
        }
        uint256 maxDuration = type(uint40).max - block.timestamp;
        if (duration > maxDuration) {
            revert Errors.GpuEscrow_DurationTooLong(duration, maxDuration);
        }
        // The rate fits in 128 bits and the duration in 40, so the product cannot overflow 256 bits.
        uint256 deposit = ratePerSecond * duration;
        // Bounding the deposit bounds every later amount on the rental, which lets `withdrawn` be a uint128.
        if (deposit > type(uint128).max) {
            revert Errors.GpuEscrow_DepositTooLarge(deposit, type(uint128).max);
        }

        // Effects: record the rental.
        rentalId = nextRentalId;
        unchecked {
            // Cannot realistically overflow: each increment costs a transaction.
            nextRentalId = rentalId + 1;
        }
        // Both casts are safe because `block.timestamp + duration <= type(uint40).max` was checked above.
        // forge-lint: disable-next-line(unsafe-typecast)
        uint40 start = uint40(block.timestamp);
        // forge-lint: disable-next-line(unsafe-typecast)
        uint40 end = uint40(block.timestamp + duration);
        _rentals[rentalId] = Rental({
            renter: msg.sender,
            start: start,
            end: end,
            stopped: false,
            provider: provider,
            feeBps: feeBps,
            // forge-lint: disable-next-line(unsafe-typecast)
            ratePerSecond: uint128(ratePerSecond), // checked to fit in 128 bits above
            withdrawn: 0
        });
        emit RentalOpened(rentalId, msg.sender, provider, ratePerSecond, start, end, deposit);

        // Interactions: pull the deposit last, so a token callback only ever sees a consistent rental.
        token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// @inheritdoc IGpuEscrow
    function stop(uint256 rentalId) external override returns (uint256 refund) {
        // Checks: only the renter may stop, and only a rental that is still running.
        Rental storage rental = _getExistingRental(rentalId);
        if (msg.sender != rental.renter) {
            revert Errors.GpuEscrow_CallerNotRenter(rentalId, msg.sender);
        }
        if (rental.stopped) {
            revert Errors.GpuEscrow_RentalAlreadyStopped(rentalId);
        }
        uint256 end = rental.end;
        if (block.timestamp >= end) {
            revert Errors.GpuEscrow_RentalAlreadyEnded(rentalId, end);
        }

        // Effects: moving the end time to now freezes the provider's earnings at what has streamed so far, so the
        // remainder of the deposit is exactly what is refunded.
        unchecked {
            // `block.timestamp < end` was checked above, and the product is bounded by the deposit.
            refund = uint256(rental.ratePerSecond) * (end - block.timestamp);
        }
        // Safe because `block.timestamp < end`, which fits in 40 bits.
        // forge-lint: disable-next-line(unsafe-typecast)
        rental.end = uint40(block.timestamp);
        rental.stopped = true;
        emit RentalStopped(rentalId, msg.sender, block.timestamp, refund);

        // Interactions: send the refund.
        token.safeTransfer(msg.sender, refund);
    }

    /// @inheritdoc IGpuEscrow
    function withdraw(uint256 rentalId) external override returns (uint256 paid) {
        // Checks: only the provider may withdraw, and only when something new has streamed.
        Rental storage rental = _getExistingRental(rentalId);
        address provider = rental.provider;
        if (msg.sender != provider) {
            revert Errors.GpuEscrow_CallerNotProvider(rentalId, msg.sender);
        }
        uint256 earnedGross = _earned(rental);
        uint256 withdrawnGross = rental.withdrawn;
        uint256 amount = earnedGross - withdrawnGross;
        if (amount == 0) {
            revert Errors.GpuEscrow_NothingToWithdraw(rentalId);
        }

        // Taking the fee as the difference of cumulative fees, instead of a fee on `amount`, makes the rounding
        // error non-accumulating: the total fee is `fee(earned)` no matter how the withdrawals were split.
        uint256 rentalFeeBps = rental.feeBps;
        uint256 fee = _fee(earnedGross, rentalFeeBps) - _fee(withdrawnGross, rentalFeeBps);
        unchecked {
            // `fee <= amount`, since fee(x) grows by at most the growth of x when the rate is below 100%.
            paid = amount - fee;
        }

        // Effects: settle the rental up to now and set the fee aside for the treasury.
        // `earnedGross` is bounded by the deposit, which was checked to fit in 128 bits at open.
        // forge-lint: disable-next-line(unsafe-typecast)
        rental.withdrawn = uint128(earnedGross);
        feesAccrued += fee;
        emit EarningsWithdrawn(rentalId, provider, paid, fee);

        // Interactions: pay the provider.
        token.safeTransfer(provider, paid);
    }

    /// @inheritdoc IGpuEscrow
    function claimFees() external override returns (uint256 amount) {
        // Checks: only the treasury may claim, and only when there is something to claim.
        if (msg.sender != treasury) {
            revert Errors.GpuEscrow_CallerNotTreasury(msg.sender);
        }
        amount = feesAccrued;
        if (amount == 0) {
            revert Errors.GpuEscrow_NoFeesToClaim();
        }

        // Effects: reset the accrued fees.
        feesAccrued = 0;
        emit FeesClaimed(msg.sender, amount);

        // Interactions: send the fees.
        token.safeTransfer(msg.sender, amount);
    }

    /*//////////////////////////////////////////////////////////////////////////
                             PRIVATE CONSTANT FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev Loads a rental, reverting if it was never opened. Opened rentals always have a non-zero renter, since
    /// the renter is the caller of {open}.
    function _getExistingRental(uint256 rentalId) private view returns (Rental storage rental) {
        rental = _rentals[rentalId];
        if (rental.renter == address(0)) {
            revert Errors.GpuEscrow_RentalNotFound(rentalId);
        }
    }

    /// @dev The gross amount streamed to the provider up to now, capped at the rental's (possibly moved) end time.
    function _earned(Rental storage rental) private view returns (uint256) {
        uint256 start = rental.start;
        uint256 end = rental.end;
        uint256 until = block.timestamp < end ? block.timestamp : end;
        // A rental always starts at the timestamp of its opening block, so `until >= start`.
        unchecked {
            return uint256(rental.ratePerSecond) * (until - start);
        }
    }

    /// @dev The cumulative protocol fee owed on `gross` earnings, rounded down in favour of the provider.
    function _fee(uint256 gross, uint256 bps) private pure returns (uint256) {
        return gross * bps / BPS_DENOMINATOR;
    }
}
