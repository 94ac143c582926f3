// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import { Ownable } from "@openzeppelin/contracts/access/Ownable.sol";
import { Ownable2Step } from "@openzeppelin/contracts/access/Ownable2Step.sol";
import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import { IERC20Permit } from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import { SafeERC20 } from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import { ECDSA } from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import { EIP712 } from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import { SignatureChecker } from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import { Pausable } from "@openzeppelin/contracts/utils/Pausable.sol";

import { IGpuEscrow } from "./interfaces/IGpuEscrow.sol";
import { Errors } from "./libraries/Errors.sol";
import { Downtime, Quote, Rental } from "./types/DataTypes.sol";

/// @title GpuEscrow
/// @notice See the documentation in {IGpuEscrow}.
/// @dev Accounting is kept in seconds, not amounts: a rental stores how many seconds were paid to the provider
/// (`paidSeconds`) and credited to the renter (`credited`), and every amount is `ratePerSecond * seconds`. With
/// `settled = paidSeconds + credited`, the escrow holds for each rental exactly
/// `ratePerSecond * (end - start - settled)`, plus {feesAccrued} overall, and the following keeps that non-negative:
/// every second in `[start, start + settled)` is paid or credited, `start + settled <= max(last withdrawal cutoff,
/// creditedUntil) <= block.timestamp`, and a stop never moves `end` below `block.timestamp`. A refusal, only possible
/// while nothing is paid, moves `end` to `start + credited`, which leaves exactly nothing held for the rental.
///
/// Every state-changing function follows checks-effects-interactions and only calls the token at the very end (the
/// permits of {openWithPermit} and {extendWithPermit} aside, which only set an allowance), so no reentrancy guard is
/// needed. Signature checks are static calls.
contract GpuEscrow is IGpuEscrow, EIP712, Ownable2Step, Pausable {
    using SafeERC20 for IERC20;

    /*//////////////////////////////////////////////////////////////////////////
                                       TYPES
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev A rental as stored. Opening writes exactly one slot, `terms`, which also holds everything that stopping,
    /// extending and withdrawing change, so none of them ever writes a fresh slot. The second slot is only written by
    /// a downtime credit.
    ///
    /// `terms`, from the lowest bit up (the `*_OFFSET` constants): renter id (32 bits), provider id (32), start (40),
    /// duration `end - start` (32), maximum duration `maxEnd - start` (32), paid seconds (32), fee in basis points (11),
    /// stopped flag (1), rate per second (44). The renter and the provider are compact account ids (see {_accountIds});
    /// every duration is at most {MAX_RENTAL_DURATION}, and the paid seconds never exceed the duration.
    ///
    /// `credits`: credited seconds (32 bits), then the end of the last credited window (40), then the automatic
    /// extension's remaining budget (96) and step (32), see {setAutoExtend}. A downtime credit keeps the upper two.
    struct StoredRental {
        // slot 0
        uint256 terms;
        // slot 1
        uint256 credits;
    }

    /*//////////////////////////////////////////////////////////////////////////
                                     CONSTANTS
    //////////////////////////////////////////////////////////////////////////*/

    /// @inheritdoc IGpuEscrow
    uint256 public constant override MAX_FEE_BPS = 1500;

    /// @inheritdoc IGpuEscrow
    uint256 public constant override MAX_DISPUTE_WINDOW = 30 days;

    /// @inheritdoc IGpuEscrow
    uint256 public constant override AUTO_EXTEND_LEAD = 10 minutes;

    /// @inheritdoc IGpuEscrow
    uint256 public constant override MIN_AUTO_EXTEND_STEP = 1 minutes;

    /// @inheritdoc IGpuEscrow
    uint256 public constant override MAX_AUTO_EXTEND_BUDGET = (1 << 96) - 1;

    /// @dev The highest rate per second a rental can have, `2^44 - 1`: about 17.6 million USDC per second.
    uint256 private constant MAX_RATE = (1 << 44) - 1;

    /// @dev The longest a rental can last in total, extensions included: `2^32 - 1` seconds, about 136 years.
    uint256 private constant MAX_RENTAL_DURATION = type(uint32).max;

    /// @dev Bit offsets of the fields of {StoredRental.terms} (the renter id is at bit 0), and its stopped flag.
    uint256 private constant PROVIDER_ID_OFFSET = 32;
    uint256 private constant START_OFFSET = 64;
    uint256 private constant DURATION_OFFSET = 104;
    uint256 private constant MAX_DURATION_OFFSET = 136;
    uint256 private constant PAID_OFFSET = 168;
    uint256 private constant FEE_OFFSET = 200;
    uint256 private constant STOPPED_FLAG = 1 << 211;
    uint256 private constant RATE_OFFSET = 212;

    /// @dev Bit offsets of the members of a packed downtime attestation (see {creditDowntime}); the deadline is at
    /// bit 0.
    uint256 private constant RENTAL_ID_OFFSET = 160;
    uint256 private constant FROM_OFFSET = 120;
    uint256 private constant TO_OFFSET = 80;
    uint256 private constant DOWN_SECONDS_OFFSET = 40;

    /// @dev Bit offset of the end of the last credited window in {StoredRental.credits}.
    uint256 private constant CREDITED_UNTIL_OFFSET = 32;

    /// @dev Bit offsets of the automatic extension's remaining budget and step in {StoredRental.credits}, and the
    /// mask of the two downtime fields below them.
    uint256 private constant AUTO_BUDGET_OFFSET = 72;
    uint256 private constant AUTO_STEP_OFFSET = 168;
    uint256 private constant MASK_CREDIT_FIELDS = (1 << 72) - 1;
    uint256 private constant MASK_96 = (1 << 96) - 1;

    uint256 private constant MASK_32 = (1 << 32) - 1;
    uint256 private constant MASK_40 = (1 << 40) - 1;
    uint256 private constant MASK_FEE = (1 << 11) - 1;

    /// @dev How many nonces share a word of {_nonceWords}; the remaining 32 bits hold the provider id.
    uint256 private constant NONCES_PER_WORD = 224;

    /// @dev In an entry of {_attesters}, the bits that hold the attester threshold while the account is registered.
    uint256 private constant ATTESTER_THRESHOLD_MASK = 0xff;

    /// @dev In an entry of {_attesters}, the bit that marks an account listed in {_attesterList}.
    uint256 private constant ATTESTER_LISTED = 1 << 8;

    /// @dev The fee units {claimFees} leaves accrued, so that the fee slot is never zero again once written.
    uint256 internal constant FEE_DUST = 1;

    /// @dev The denominator of basis-point fees.
    uint256 private constant BPS_DENOMINATOR = 10_000;

    /// @dev `keccak256("Quote(address provider,address renter,uint128 ratePerSecond,uint40 maxDuration,uint40
    /// deadline,bytes32 offerId,uint256 nonce)")`.
    bytes32 private constant QUOTE_TYPEHASH = keccak256(
        "Quote(address provider,address renter,uint128 ratePerSecond,uint40 maxDuration,uint40 deadline,bytes32 offerId,uint256 nonce)"
    );

    /// @dev `keccak256("Downtime(uint256 rentalId,uint40 from,uint40 to,uint40 downSeconds,uint40 deadline)")`.
    bytes32 private constant DOWNTIME_TYPEHASH =
        keccak256("Downtime(uint256 rentalId,uint40 from,uint40 to,uint40 downSeconds,uint40 deadline)");

    /// @dev `keccak256("Refusal(uint256 rentalId)")`.
    bytes32 private constant REFUSAL_TYPEHASH = keccak256("Refusal(uint256 rentalId)");

    /*//////////////////////////////////////////////////////////////////////////
                                     IMMUTABLES
    //////////////////////////////////////////////////////////////////////////*/

    /// @inheritdoc IGpuEscrow
    IERC20 public immutable override token;

    /// @inheritdoc IGpuEscrow
    uint40 public immutable override DISPUTE_WINDOW;

    /*//////////////////////////////////////////////////////////////////////////
                                      STORAGE
    //////////////////////////////////////////////////////////////////////////*/

    // The first two variables share a slot with Ownable2Step's pending owner and Pausable's flag, so opening a rental
    // reads the pause flag and the fee and bumps the id counter with a single cold storage access.

    /// @inheritdoc IGpuEscrow
    uint16 public override feeBps;

    /// @dev The id of the next rental. Starts at 1.
    uint64 private _nextRentalId;

    /// @inheritdoc IGpuEscrow
    address public override treasury;

    /// @inheritdoc IGpuEscrow
    uint8 public override attesterThreshold;

    /// @dev How many accounts have an id. Ids start at 1, so 0 means "no id".
    uint32 private _accountCount;

    /// @dev How many accounts are registered attesters now; never below {attesterThreshold} once one is registered.
    uint16 private _attesterCount;

    /// @inheritdoc IGpuEscrow
    uint256 public override feesAccrued;

    /// @dev Rentals by id.
    mapping(uint256 rentalId => StoredRental) private _rentals;

    /// @dev Compact ids of renters and providers, assigned on their first rental, and the reverse lookup.
    mapping(address account => uint32 accountId) private _accountIds;
    mapping(uint32 accountId => address account) private _accounts;

    /// @dev Used nonces per provider, as a bitmap of 224 nonces per word: nonce `n` is bit `n % 224` of word
    /// `n / 224`. The top 32 bits of a word cache the provider's id once a rental was opened through it, so that
    /// opening a rental reads the nonce bit and the provider id with one storage access.
    mapping(address provider => mapping(uint256 wordPos => uint256 word)) private _nonceWords;

    /// @dev One entry per account ever registered as an attester: the attester threshold while the account is
    /// registered (0 while it is not), and the {ATTESTER_LISTED} bit. Keeping a copy of the threshold in every
    /// registration lets a downtime credit read both with the one storage access of its attester.
    mapping(address account => uint256 entry) private _attesters;

    /// @dev Every account ever registered as an attester, so that {setAttesterThreshold} can update their entries.
    address[] private _attesterList;

    /*//////////////////////////////////////////////////////////////////////////
                                    CONSTRUCTOR
    //////////////////////////////////////////////////////////////////////////*/

    /// @param token_ The ERC-20 in which rentals are paid. Must not charge fees on transfer or rebase.
    /// @param treasury_ The account that may claim platform fees.
    /// @param feeBps_ The initial platform fee, in basis points; at most {MAX_FEE_BPS}.
    /// @param disputeWindow How long earned seconds stay unpayable, in seconds; at most {MAX_DISPUTE_WINDOW}.
    /// @param owner_ The admin account (two-step ownership transfer).
    constructor(IERC20 token_, address treasury_, uint16 feeBps_, uint40 disputeWindow, address owner_)
        EIP712("GpuEscrow", "1")
        Ownable(owner_)
    {
        if (address(token_) == address(0)) {
            revert Errors.GpuEscrow_TokenZeroAddress();
        }
        if (treasury_ == address(0)) {
            revert Errors.GpuEscrow_TreasuryZeroAddress();
        }
        if (feeBps_ > MAX_FEE_BPS) {
            revert Errors.GpuEscrow_FeeTooHigh(feeBps_, MAX_FEE_BPS);
        }
        if (disputeWindow > MAX_DISPUTE_WINDOW) {
            revert Errors.GpuEscrow_DisputeWindowTooLong(disputeWindow, MAX_DISPUTE_WINDOW);
        }

        token = token_;
        DISPUTE_WINDOW = disputeWindow;
        treasury = treasury_;
        feeBps = feeBps_;
        attesterThreshold = 1;
        _nextRentalId = 1;
        emit TreasuryChanged(address(0), treasury_);
        emit FeeBpsChanged(0, feeBps_);
        emit AttesterThresholdChanged(0, 1);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                 CONSTANT FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @inheritdoc IGpuEscrow
    function isAttester(address account) external view override returns (bool) {
        return _attesters[account] & ATTESTER_THRESHOLD_MASK != 0;
    }

    /// @inheritdoc IGpuEscrow
    function nextRentalId() external view override returns (uint256) {
        return _nextRentalId;
    }

    /// @inheritdoc IGpuEscrow
    function isNonceUsed(address provider, uint256 nonce) external view override returns (bool) {
        // forge-lint: disable-next-line(incorrect-shift)
        return _nonceWords[provider][nonce / NONCES_PER_WORD] & (1 << (nonce % NONCES_PER_WORD)) != 0;
    }

    /// @inheritdoc IGpuEscrow
    function hashQuote(Quote calldata quote) external view override returns (bytes32 digest) {
        digest = _hashQuote(quote);
    }

    /// @inheritdoc IGpuEscrow
    function hashDowntime(Downtime calldata downtime) external view override returns (bytes32 digest) {
        digest = _hashDowntime(downtime.rentalId, downtime.from, downtime.to, downtime.downSeconds, downtime.deadline);
    }

    /// @inheritdoc IGpuEscrow
    function hashRefusal(uint256 rentalId) external view override returns (bytes32 digest) {
        digest = _hashRefusal(rentalId);
    }

    /// @inheritdoc IGpuEscrow
    function getRental(uint256 rentalId) external view override returns (Rental memory rental) {
        StoredRental storage stored = _rentals[rentalId];
        uint256 terms = _existingTerms(stored, rentalId);
        uint256 start = _start(terms);
        uint256 rate = _rate(terms);
        // All casts are safe: the times are at most `type(uint40).max` (see {_open}) and the rate fits in 44 bits.
        // forge-lint: disable-start(unsafe-typecast)
        rental = Rental({
            renter: _accounts[_renterId(terms)],
            provider: _accounts[_providerId(terms)],
            start: uint40(start),
            end: uint40(start + _duration(terms)),
            maxEnd: uint40(start + (terms >> MAX_DURATION_OFFSET & MASK_32)),
            stopped: terms & STOPPED_FLAG != 0,
            ratePerSecond: uint128(rate),
            feeBps: uint16(terms >> FEE_OFFSET & MASK_FEE),
            withdrawn: rate * _paidSeconds(terms),
            credited: uint40(stored.credits & MASK_32),
            creditedUntil: uint40(stored.credits >> CREDITED_UNTIL_OFFSET & MASK_40)
        });
        // forge-lint: disable-end(unsafe-typecast)
    }

    /// @inheritdoc IGpuEscrow
    function autoExtension(uint256 rentalId) external view override returns (uint256 budget, uint256 step) {
        StoredRental storage stored = _rentals[rentalId];
        _existingTerms(stored, rentalId);
        uint256 credits = stored.credits;
        budget = credits >> AUTO_BUDGET_OFFSET & MASK_96;
        step = credits >> AUTO_STEP_OFFSET & MASK_32;
    }

    /// @inheritdoc IGpuEscrow
    function earned(uint256 rentalId) external view override returns (uint256) {
        StoredRental storage stored = _rentals[rentalId];
        uint256 terms = _existingTerms(stored, rentalId);
        uint256 end = _end(terms);
        uint256 until = block.timestamp < end ? block.timestamp : end;
        uint256 earnedUntil = _start(terms) + (stored.credits & MASK_32);
        return until > earnedUntil ? _rate(terms) * (until - earnedUntil) : 0;
    }

    /// @inheritdoc IGpuEscrow
    function withdrawable(uint256 rentalId) external view override returns (uint256 gross) {
        StoredRental storage stored = _rentals[rentalId];
        uint256 terms = _existingTerms(stored, rentalId);
        gross = _rate(terms) * _payableSeconds(terms, stored.credits & MASK_32);
    }

    /*//////////////////////////////////////////////////////////////////////////
                               NON-CONSTANT FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @inheritdoc IGpuEscrow
    function open(Quote calldata quote, uint256 duration, bytes calldata signature)
        external
        override
        returns (uint256 rentalId)
    {
        uint256 deposit;
        (rentalId, deposit) = _open(quote, duration, signature);

        // Interactions: pull the deposit last, so a token callback only ever sees a consistent rental.
        token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// @inheritdoc IGpuEscrow
    function openWithPermit(
        Quote calldata quote,
        uint256 duration,
        bytes calldata signature,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external override returns (uint256 rentalId) {
        uint256 deposit;
        (rentalId, deposit) = _open(quote, duration, signature);

        // Interactions: take the permit, then pull the deposit.
        _permit(deposit, permitDeadline, v, r, s);
        token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// @inheritdoc IGpuEscrow
    function extend(uint256 rentalId, uint256 extraSeconds) external override returns (uint256 cost) {
        cost = _extend(rentalId, extraSeconds);

        // Interactions: pull the cost.
        token.safeTransferFrom(msg.sender, address(this), cost);
    }

    /// @inheritdoc IGpuEscrow
    function extendWithPermit(
        uint256 rentalId,
        uint256 extraSeconds,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external override returns (uint256 cost) {
        cost = _extend(rentalId, extraSeconds);

        // Interactions: as in {openWithPermit}, a permit front-run from the mempool only matters if the allowance it
        // left falls short of the cost.
        _permit(cost, permitDeadline, v, r, s);
        token.safeTransferFrom(msg.sender, address(this), cost);
    }

    /// @inheritdoc IGpuEscrow
    function setAutoExtend(uint256 rentalId, uint256 budget, uint256 step) external override {
        // Checks: only the renter, only an active rental, a budget that fits its field and a step long enough that
        // extensions stay few. A zero budget turns the automatic extension off, whatever the step.
        StoredRental storage stored = _rentals[rentalId];
        uint256 terms = _existingTerms(stored, rentalId);
        _requireRenter(terms, rentalId);
        _requireActive(terms, rentalId);
        if (budget > MAX_AUTO_EXTEND_BUDGET) {
            revert Errors.GpuEscrow_AutoExtendBudgetTooLarge(budget, MAX_AUTO_EXTEND_BUDGET);
        }
        if (budget == 0) {
            step = 0;
        } else if (step < MIN_AUTO_EXTEND_STEP || step > MAX_RENTAL_DURATION) {
            revert Errors.GpuEscrow_AutoExtendStepOutOfRange(step, MIN_AUTO_EXTEND_STEP, MAX_RENTAL_DURATION);
        }

        // Effects: replace the budget and the step, whatever was left of the previous ones.
        stored.credits = (stored.credits & MASK_CREDIT_FIELDS) | budget << AUTO_BUDGET_OFFSET | step << AUTO_STEP_OFFSET;
        emit AutoExtendSet(rentalId, budget, step);
    }

    /// @inheritdoc IGpuEscrow
    function autoExtend(uint256 rentalId) external override whenNotPaused returns (uint256 cost) {
        // Checks: an active rental, inside the last {AUTO_EXTEND_LEAD} seconds, with a budget for at least a second
        // and room below the quote's maximum duration.
        StoredRental storage stored = _rentals[rentalId];
        uint256 terms = _existingTerms(stored, rentalId);
        _requireActive(terms, rentalId);
        uint256 end = _end(terms);
        if (block.timestamp + AUTO_EXTEND_LEAD < end) {
            revert Errors.GpuEscrow_AutoExtendTooEarly(rentalId, end - AUTO_EXTEND_LEAD);
        }
        uint256 credits = stored.credits;
        uint256 budget = credits >> AUTO_BUDGET_OFFSET & MASK_96;
        uint256 rate = _rate(terms);
        uint256 extraSeconds = credits >> AUTO_STEP_OFFSET & MASK_32;
        uint256 affordable = budget / rate;
        if (affordable < extraSeconds) {
            extraSeconds = affordable;
        }
        uint256 duration = _duration(terms);
        uint256 maxExtraSeconds = (terms >> MAX_DURATION_OFFSET & MASK_32) - duration;
        if (maxExtraSeconds < extraSeconds) {
            extraSeconds = maxExtraSeconds;
        }
        if (extraSeconds == 0) {
            revert Errors.GpuEscrow_AutoExtendNothingLeft(rentalId, budget, maxExtraSeconds);
        }

        // Effects: move the end and take the cost out of the budget. `cost <= budget`, so the budget cannot go below
        // zero, and the new duration is at most the maximum duration.
        unchecked {
            cost = rate * extraSeconds;
            stored.credits = credits - (cost << AUTO_BUDGET_OFFSET);
        }
        stored.terms = terms + (extraSeconds << DURATION_OFFSET);
        emit RentalExtended(rentalId, end + extraSeconds, cost);

        // Interactions: pull the cost from the renter, who allowed it with {setAutoExtend} and a token allowance.
        token.safeTransferFrom(_accounts[_renterId(terms)], address(this), cost);
    }

    /// @inheritdoc IGpuEscrow
    function stop(uint256 rentalId) external override returns (uint256 refund) {
        // Checks: only the renter, only an active rental.
        StoredRental storage stored = _rentals[rentalId];
        uint256 terms = _existingTerms(stored, rentalId);
        _requireRenter(terms, rentalId);
        _requireActive(terms, rentalId);

        // Effects: moving the end to now freezes the provider's earnings at what has accrued, so the rest of the
        // deposit is exactly the refund. Every paid or credited second lies before now, so none of them is refunded.
        uint256 unusedSeconds;
        unchecked {
            // The rental is active, so `block.timestamp < end`; the unused seconds are part of the 32-bit duration
            // and the refund, a 44-bit rate times them, cannot overflow.
            unusedSeconds = _end(terms) - block.timestamp;
            refund = _rate(terms) * unusedSeconds;
        }
        stored.terms = (terms - (unusedSeconds << DURATION_OFFSET)) | STOPPED_FLAG;
        emit RentalStopped(rentalId, msg.sender, block.timestamp, refund);

        // Interactions: refund the renter. Nothing goes to the provider, so its standing with the token is irrelevant.
        token.safeTransfer(msg.sender, refund);
    }

    /// @inheritdoc IGpuEscrow
    function withdraw(uint256 rentalId) external override returns (uint256 paid) {
        // Checks and effects: settle the rental up to the end of the dispute window.
        (uint256 gross, uint256 fee) = _settle(rentalId, _accountIds[msg.sender]);
        if (gross == 0) {
            revert Errors.GpuEscrow_NothingToWithdraw(rentalId);
        }
        feesAccrued += fee;
        unchecked {
            // `fee <= gross` since the fee rate is below 100 %.
            paid = gross - fee;
        }

        // Interactions: pay the provider.
        token.safeTransfer(msg.sender, paid);
    }

    /// @inheritdoc IGpuEscrow
    function withdrawMany(uint256[] calldata rentalIds) external override returns (uint256 paid) {
        // Checks and effects: settle every rental, adding up what is due.
        paid = _settleMany(rentalIds);

        // Interactions: pay the provider once.
        token.safeTransfer(msg.sender, paid);
    }

    /// @inheritdoc IGpuEscrow
    function withdrawTo(uint256[] calldata rentalIds, address recipient) external override returns (uint256 paid) {
        // Checks and effects: a recipient that can hold tokens, then every rental settled as by {withdrawMany}.
        if (recipient == address(0)) {
            revert Errors.GpuEscrow_RecipientZeroAddress();
        }
        paid = _settleMany(rentalIds);
        emit EarningsSentTo(msg.sender, recipient, paid);

        // Interactions: pay the recipient once.
        token.safeTransfer(recipient, paid);
    }

    /// @inheritdoc IGpuEscrow
    function claimFees() external override returns (uint256 amount) {
        // Checks: only the treasury may claim, and only when there is something to claim.
        if (msg.sender != treasury) {
            revert Errors.GpuEscrow_CallerNotTreasury(msg.sender);
        }
        // One unit stays accrued: the slot never returns to zero, so the next withdrawal's fee rewrites a non-zero
        // slot (about 2.9k gas) instead of setting a zero one (about 20k).
        uint256 accrued = feesAccrued;
        if (accrued <= FEE_DUST) {
            revert Errors.GpuEscrow_NoFeesToClaim();
        }
        amount = accrued - FEE_DUST;

        // Effects: keep only the dust.
        feesAccrued = FEE_DUST;
        emit FeesClaimed(msg.sender, amount);

        // Interactions: send the fees.
        token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IGpuEscrow
    function creditDowntime(uint256 downtime, bytes calldata signatures) external override returns (uint256 refund) {
        // The attestation's members, packed as `rentalId (96 bits) || from || to || downSeconds || deadline (40 bits
        // each)`; each fits its type by construction.
        uint256 rentalId = downtime >> RENTAL_ID_OFFSET;
        uint256 from = downtime >> FROM_OFFSET & MASK_40;
        uint256 to = downtime >> TO_OFFSET & MASK_40;
        uint256 downSeconds = downtime >> DOWN_SECONDS_OFFSET & MASK_40;
        uint256 deadline = downtime & MASK_40;

        // Checks: a fresh, well-formed window of the rental, signed by enough attesters, with something unpaid in it.
        if (block.timestamp > deadline) {
            revert Errors.GpuEscrow_DowntimeExpired(deadline, block.timestamp);
        }
        StoredRental storage stored = _rentals[rentalId];
        uint256 terms = _existingTerms(stored, rentalId);
        uint256 credits = stored.credits;
        _checkDowntimeWindow(terms, credits >> CREDITED_UNTIL_OFFSET & MASK_40, rentalId, from, to, downSeconds);
        _verifyAttestation(_hashDowntime(rentalId, from, to, downSeconds, deadline), signatures);
        uint256 credited = credits & MASK_32;
        uint256 creditSeconds = _creditableSeconds(terms, credited, from, to, downSeconds);
        if (creditSeconds == 0) {
            revert Errors.GpuEscrow_NothingToCredit(rentalId);
        }

        // Effects: record the credit and the window, keeping the automatic extension above them. The credited seconds
        // lie in disjoint windows inside `[start, end)`, so they fit in 32 bits, and the refund is below
        // `2^44 * 2^32`.
        unchecked {
            stored.credits = (credits & ~MASK_CREDIT_FIELDS) | (credited + creditSeconds) | to << CREDITED_UNTIL_OFFSET;
            refund = _rate(terms) * creditSeconds;
        }
        emit DowntimeCredited(rentalId, from, to, creditSeconds, refund);

        // Interactions: refund the renter, whoever submitted the attestation.
        token.safeTransfer(_accounts[_renterId(terms)], refund);
    }

    /// @inheritdoc IGpuEscrow
    /// @dev `signature` is copied to memory on purpose: decoding `(uint256, bytes calldata)` here would share the ABI
    /// decoder of {creditDowntime}, which the optimizer then stops inlining, and every credit would pay 37 gas more.
    /// The refusal pays about 200 gas for the copy and the memory variant of the signature check instead: ECDSA
    /// first, then ERC-1271, as for quotes.
    function refuse(uint256 rentalId, bytes memory signature) external override returns (uint256 refund) {
        // Checks: nothing paid to the provider yet, something still held for the rental, and the provider signed the
        // refusal. The cheap checks on the rental's slots come before the signature's.
        StoredRental storage stored = _rentals[rentalId];
        uint256 terms = _existingTerms(stored, rentalId);
        uint256 paidSeconds = _paidSeconds(terms);
        if (paidSeconds != 0) {
            revert Errors.GpuEscrow_RefusalAfterWithdrawal(rentalId, _rate(terms) * paidSeconds);
        }
        // Every credited second lies inside the rental, so `credited <= duration`.
        uint256 unrefundedSeconds = _duration(terms) - (stored.credits & MASK_32);
        if (unrefundedSeconds == 0) {
            revert Errors.GpuEscrow_NothingToRefund(rentalId);
        }
        address provider = _accounts[_providerId(terms)];
        bytes32 digest = _hashRefusal(rentalId);
        (address recovered,,) = ECDSA.tryRecover(digest, signature);
        if (recovered != provider && !SignatureChecker.isValidERC1271SignatureNow(provider, digest, signature)) {
            revert Errors.GpuEscrow_InvalidRefusal(rentalId, provider);
        }

        // Effects: shorten the rental to its credited seconds and mark it stopped. With nothing paid, that leaves the
        // provider nothing to earn, ever, and the escrow nothing held for the rental, so the refund is the rest of the
        // deposit; stopping and extending then revert as for any stopped rental, and no window fits for a credit.
        unchecked {
            // A 44-bit rate times a 32-bit count of seconds.
            refund = _rate(terms) * unrefundedSeconds;
        }
        stored.terms = (terms - (unrefundedSeconds << DURATION_OFFSET)) | STOPPED_FLAG;
        address renter = _accounts[_renterId(terms)];
        emit RentalRefused(rentalId, renter, refund);

        // Interactions: refund the renter, whoever submitted the refusal. Nothing goes to the provider.
        token.safeTransfer(renter, refund);
    }

    /// @inheritdoc IGpuEscrow
    function invalidateNonce(uint256 nonce) external override {
        _useNonce(msg.sender, nonce);
        emit NonceInvalidated(msg.sender, nonce);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                  ADMIN FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @inheritdoc IGpuEscrow
    function setFeeBps(uint16 newFeeBps) external override onlyOwner {
        if (newFeeBps > MAX_FEE_BPS) {
            revert Errors.GpuEscrow_FeeTooHigh(newFeeBps, MAX_FEE_BPS);
        }
        uint16 oldFeeBps = feeBps;
        feeBps = newFeeBps;
        emit FeeBpsChanged(oldFeeBps, newFeeBps);
    }

    /// @inheritdoc IGpuEscrow
    function setTreasury(address newTreasury) external override onlyOwner {
        if (newTreasury == address(0)) {
            revert Errors.GpuEscrow_TreasuryZeroAddress();
        }
        address oldTreasury = treasury;
        treasury = newTreasury;
        emit TreasuryChanged(oldTreasury, newTreasury);
    }

    /// @inheritdoc IGpuEscrow
    function setAttester(address attester, bool allowed) external override onlyOwner {
        if (attester == address(0)) {
            revert Errors.GpuEscrow_AttesterZeroAddress();
        }
        uint256 previous = _attesters[attester];
        bool registered = previous & ATTESTER_THRESHOLD_MASK != 0;
        uint256 entry = previous & ATTESTER_LISTED;
        if (allowed) {
            if (entry == 0) {
                _attesterList.push(attester);
                entry = ATTESTER_LISTED;
            }
            entry |= attesterThreshold;
            if (!registered) {
                ++_attesterCount;
            }
        } else if (registered) {
            // Leaving fewer attesters than the threshold would make every credit impossible, running rentals' too.
            uint256 remaining = _attesterCount - 1;
            if (remaining < attesterThreshold) {
                revert Errors.GpuEscrow_AttestersBelowThreshold(remaining, attesterThreshold);
            }
            // forge-lint: disable-next-line(unsafe-typecast)
            _attesterCount = uint16(remaining);
        }
        _attesters[attester] = entry;
        emit AttesterSet(attester, allowed);
    }

    /// @inheritdoc IGpuEscrow
    function setAttesterThreshold(uint8 newThreshold) external override onlyOwner {
        if (newThreshold == 0) {
            revert Errors.GpuEscrow_AttesterThresholdZero();
        }
        if (newThreshold > _attesterCount) {
            revert Errors.GpuEscrow_ThresholdAboveAttesters(newThreshold, _attesterCount);
        }
        uint8 oldThreshold = attesterThreshold;
        attesterThreshold = newThreshold;
        // Update the copy of the threshold that every registered attester carries.
        uint256 count = _attesterList.length;
        for (uint256 i = 0; i < count; ++i) {
            address attester = _attesterList[i];
            if (_attesters[attester] & ATTESTER_THRESHOLD_MASK != 0) {
                _attesters[attester] = ATTESTER_LISTED | newThreshold;
            }
        }
        emit AttesterThresholdChanged(oldThreshold, newThreshold);
    }

    /// @notice Always reverts: an escrow without an owner could never register a new attester or lift a pause, which
    /// would strand the downtime credits of running rentals.
    function renounceOwnership() public pure override {
        revert Errors.GpuEscrow_RenounceOwnershipDisabled();
    }

    /// @inheritdoc IGpuEscrow
    function pause() external override onlyOwner {
        _pause();
    }

    /// @inheritdoc IGpuEscrow
    function unpause() external override onlyOwner {
        _unpause();
    }

    /*//////////////////////////////////////////////////////////////////////////
                             PRIVATE CONSTANT FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev Loads the terms of a rental, reverting if it was never opened. Opened rentals always have non-zero
    /// terms, since their renter id and rate are non-zero.
    function _existingTerms(StoredRental storage stored, uint256 rentalId) private view returns (uint256 terms) {
        terms = stored.terms;
        if (terms == 0) {
            revert Errors.GpuEscrow_RentalNotFound(rentalId);
        }
    }

    /// @dev The fields of {StoredRental.terms}.
    function _renterId(uint256 terms) private pure returns (uint32) {
        // Safe: masked to 32 bits.
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint32(terms & MASK_32);
    }

    function _providerId(uint256 terms) private pure returns (uint32) {
        // Safe: masked to 32 bits.
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint32(terms >> PROVIDER_ID_OFFSET & MASK_32);
    }

    function _start(uint256 terms) private pure returns (uint256) {
        return terms >> START_OFFSET & MASK_40;
    }

    function _duration(uint256 terms) private pure returns (uint256) {
        return terms >> DURATION_OFFSET & MASK_32;
    }

    function _end(uint256 terms) private pure returns (uint256) {
        return _unsafeEnd(terms, _start(terms));
    }

    /// @dev `start + duration`, which cannot overflow: a 40-bit time plus a 32-bit duration.
    function _unsafeEnd(uint256 terms, uint256 start) private pure returns (uint256 end) {
        unchecked {
            end = start + _duration(terms);
        }
    }

    function _paidSeconds(uint256 terms) private pure returns (uint256) {
        return terms >> PAID_OFFSET & MASK_32;
    }

    function _rate(uint256 terms) private pure returns (uint256) {
        return terms >> RATE_OFFSET;
    }

    /// @dev Reverts unless the caller is the rental's renter.
    function _requireRenter(uint256 terms, uint256 rentalId) private view {
        if (_accountIds[msg.sender] != terms & MASK_32) {
            revert Errors.GpuEscrow_CallerNotRenter(rentalId, msg.sender);
        }
    }

    /// @dev Reverts unless the rental can still be stopped or extended.
    function _requireActive(uint256 terms, uint256 rentalId) private view {
        if (terms & STOPPED_FLAG != 0) {
            revert Errors.GpuEscrow_RentalAlreadyStopped(rentalId);
        }
        uint256 end = _end(terms);
        if (block.timestamp >= end) {
            revert Errors.GpuEscrow_RentalAlreadyEnded(rentalId, end);
        }
    }

    /// @dev The seconds the provider could be paid for now: those before the dispute window's cutoff that are
    /// neither paid nor credited yet.
    function _payableSeconds(uint256 terms, uint256 credited) private view returns (uint256) {
        uint256 end = _end(terms);
        uint256 window = DISPUTE_WINDOW;
        uint256 cutoff = block.timestamp > window ? block.timestamp - window : 0;
        if (cutoff > end) {
            cutoff = end;
        }
        uint256 settledUntil = _start(terms) + _paidSeconds(terms) + credited;
        return cutoff > settledUntil ? cutoff - settledUntil : 0;
    }

    /// @dev Reverts unless `[from, to)` is a non-empty window inside the rental that has already ended and starts at
    /// or after the last credited window, and `downSeconds` fits in it.
    function _checkDowntimeWindow(
        uint256 terms,
        uint256 creditedUntil,
        uint256 rentalId,
        uint256 from,
        uint256 to,
        uint256 downSeconds
    ) private view {
        if (from >= to) {
            revert Errors.GpuEscrow_DowntimeWindowInvalid(from, to);
        }
        unchecked {
            // `from < to`, so the window length cannot underflow.
            if (downSeconds == 0 || downSeconds > to - from) {
                revert Errors.GpuEscrow_DowntimeSecondsInvalid(downSeconds, to - from);
            }
        }
        if (to > block.timestamp) {
            revert Errors.GpuEscrow_DowntimeInFuture(to, block.timestamp);
        }
        uint256 start = _start(terms);
        // Safe: a 40-bit start plus a 32-bit duration.
        if (from < start || to > _unsafeEnd(terms, start)) {
            revert Errors.GpuEscrow_DowntimeOutsideRental(rentalId, from, to);
        }
        if (from < creditedUntil) {
            revert Errors.GpuEscrow_DowntimeOverlaps(rentalId, from, creditedUntil);
        }
    }

    /// @dev How many of the attested down seconds can be credited. Every second before `settledUntil` is paid or
    /// credited already and the provider is paid in time order, so only the part of the window after it counts.
    function _creditableSeconds(uint256 terms, uint256 credited, uint256 from, uint256 to, uint256 downSeconds)
        private
        pure
        returns (uint256 creditSeconds)
    {
        uint256 unpaidFrom;
        unchecked {
            // A 40-bit start plus two 32-bit counts of seconds.
            unpaidFrom = _start(terms) + _paidSeconds(terms) + credited;
        }
        if (from > unpaidFrom) {
            unpaidFrom = from;
        }
        if (to <= unpaidFrom) {
            return 0;
        }
        unchecked {
            creditSeconds = to - unpaidFrom;
        }
        if (downSeconds < creditSeconds) {
            creditSeconds = downSeconds;
        }
    }

    /// @dev The EIP-712 digest of a quote. Every member is a static 32-byte word, so the struct hash is the hash of
    /// the type hash followed by the quote exactly as it lies in calldata.
    function _hashQuote(Quote calldata quote) private view returns (bytes32 digest) {
        bytes32 typeHash = QUOTE_TYPEHASH;
        bytes32 domainSeparator = _domainSeparatorV4();
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            calldatacopy(add(ptr, 0x20), quote, 0xe0)
            let structHash := keccak256(ptr, 0x100)
            // `keccak256("\x19\x01" || domainSeparator || structHash)`, as `MessageHashUtils.toTypedDataHash`.
            mstore(ptr, hex"1901")
            mstore(add(ptr, 0x02), domainSeparator)
            mstore(add(ptr, 0x22), structHash)
            digest := keccak256(ptr, 0x42)
        }
    }

    /// @dev The EIP-712 digest of a downtime attestation with the given members.
    function _hashDowntime(uint256 rentalId, uint256 from, uint256 to, uint256 downSeconds, uint256 deadline)
        private
        view
        returns (bytes32 digest)
    {
        bytes32 typeHash = DOWNTIME_TYPEHASH;
        bytes32 domainSeparator = _domainSeparatorV4();
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            mstore(add(ptr, 0x20), rentalId)
            mstore(add(ptr, 0x40), from)
            mstore(add(ptr, 0x60), to)
            mstore(add(ptr, 0x80), downSeconds)
            mstore(add(ptr, 0xa0), deadline)
            let structHash := keccak256(ptr, 0xc0)
            mstore(ptr, hex"1901")
            mstore(add(ptr, 0x02), domainSeparator)
            mstore(add(ptr, 0x22), structHash)
            digest := keccak256(ptr, 0x42)
        }
    }

    /// @dev The EIP-712 digest of the refusal of rental `rentalId`.
    function _hashRefusal(uint256 rentalId) private view returns (bytes32 digest) {
        bytes32 typeHash = REFUSAL_TYPEHASH;
        bytes32 domainSeparator = _domainSeparatorV4();
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            mstore(add(ptr, 0x20), rentalId)
            let structHash := keccak256(ptr, 0x40)
            mstore(ptr, hex"1901")
            mstore(add(ptr, 0x02), domainSeparator)
            mstore(add(ptr, 0x22), structHash)
            digest := keccak256(ptr, 0x42)
        }
    }

    /// @dev Whether `signature` is `signer`'s signature of `digest`. The ECDSA check comes first: it is what EOAs
    /// use and it needs no access to the signer's account, which is cold at this point. Only when it fails is the
    /// signer asked through ERC-1271, which covers contract wallets and delegated (EIP-7702) accounts. `signer` is
    /// never the zero address, which is what {_recover} returns for an invalid signature.
    function _isValidSignature(address signer, bytes32 digest, bytes calldata signature) private view returns (bool) {
        return _recover(digest, signature) == signer
            || SignatureChecker.isValidERC1271SignatureNowCalldata(signer, digest, signature);
    }

    /// @dev The signer of a 65-byte `r || s || v` ECDSA signature of `digest`, or the zero address if the signature
    /// is malformed, has a high `s` (malleable), a `v` other than 27 or 28, or does not recover. The same rules as
    /// OpenZeppelin's `ECDSA.tryRecover`, without its error codes, which nothing here needs.
    function _recover(bytes32 digest, bytes calldata signature) private view returns (address recovered) {
        assembly ("memory-safe") {
            let s := calldataload(add(signature.offset, 0x20))
            if and(
                eq(signature.length, 65),
                lt(s, 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a1)
            ) {
                let ptr := mload(0x40)
                mstore(ptr, digest)
                mstore(add(ptr, 0x20), byte(0, calldataload(add(signature.offset, 0x40))))
                mstore(add(ptr, 0x40), calldataload(signature.offset))
                mstore(add(ptr, 0x60), s)
                // The precompile returns nothing for a `v` other than 27 or 28 or a signature that does not recover.
                let success := staticcall(gas(), 0x01, ptr, 0x80, 0x00, 0x20)
                recovered := mul(mload(0x00), and(success, eq(returndatasize(), 0x20)))
            }
        }
    }

    /// @dev Reverts unless at least {attesterThreshold} distinct registered attesters signed `digest`. `signatures`
    /// holds the entries back to back, each `attester (20 bytes) || signature length (2 bytes) || signature`;
    /// strictly ascending attesters prove they are distinct without a set. Entries are checked in order, and the
    /// count against the threshold once all of them passed. The threshold is the copy carried by the registration of
    /// the last attester read, and {attesterThreshold} only when there is no entry.
    function _verifyAttestation(bytes32 digest, bytes calldata signatures) private view {
        uint256 count = 0;
        uint256 registration = 0;
        address previous = address(0);
        uint256 offset = 0;
        while (offset < signatures.length) {
            (address attester, bytes calldata signature, uint256 next) = _attestationEntry(signatures, offset);
            if (next > signatures.length) {
                revert Errors.GpuEscrow_AttestationMalformed(count);
            }
            if (attester <= previous) {
                revert Errors.GpuEscrow_AttestersNotAscending(previous, attester);
            }
            registration = _attesters[attester];
            if (registration & ATTESTER_THRESHOLD_MASK == 0) {
                revert Errors.GpuEscrow_NotAttester(attester);
            }
            if (!_isValidSignature(attester, digest, signature)) {
                revert Errors.GpuEscrow_InvalidAttestation(count, attester);
            }
            previous = attester;
            offset = next;
            unchecked {
                ++count;
            }
        }
        uint256 threshold = registration & ATTESTER_THRESHOLD_MASK;
        if (threshold == 0) {
            threshold = attesterThreshold;
        }
        if (count < threshold) {
            revert Errors.GpuEscrow_AttestationsBelowThreshold(count, threshold);
        }
    }

    /// @dev Splits the entry of `signatures` that starts at `offset` into the attester and its signature, and returns
    /// where the next entry starts; that is past the end of `signatures` if the entry is cut short, and the caller
    /// must check it before using the entry. Reading with `calldataload` past the end of the calldata gives zeros,
    /// and `offset` is below the length that the ABI decoder checked, so nothing here can overflow.
    function _attestationEntry(bytes calldata signatures, uint256 offset)
        private
        pure
        returns (address attester, bytes calldata signature, uint256 next)
    {
        assembly ("memory-safe") {
            let entry := add(signatures.offset, offset)
            let head := calldataload(entry)
            attester := shr(96, head)
            signature.offset := add(entry, 22)
            signature.length := and(shr(80, head), 0xffff)
            next := add(add(offset, 22), signature.length)
        }
    }

    /*//////////////////////////////////////////////////////////////////////////
                           PRIVATE NON-CONSTANT FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev The checks and effects of {open} and {openWithPermit}; the caller pulls the returned deposit.
    function _open(Quote calldata quote, uint256 duration, bytes calldata signature)
        private
        whenNotPaused
        returns (uint256 rentalId, uint256 deposit)
    {
        // Checks: the quote is live, meant for the caller and well-formed, the duration fits, the nonce is fresh and
        // the provider signed it.
        if (block.timestamp > quote.deadline) {
            revert Errors.GpuEscrow_QuoteExpired(quote.deadline, block.timestamp);
        }
        if (msg.sender != quote.renter) {
            revert Errors.GpuEscrow_CallerNotQuoteRenter(quote.renter, msg.sender);
        }
        address provider = quote.provider;
        if (provider == address(0)) {
            revert Errors.GpuEscrow_ProviderZeroAddress();
        }
        if (provider == msg.sender) {
            revert Errors.GpuEscrow_ProviderIsRenter(msg.sender);
        }
        uint256 rate = quote.ratePerSecond;
        if (rate == 0) {
            revert Errors.GpuEscrow_RateZero();
        }
        if (rate > MAX_RATE) {
            revert Errors.GpuEscrow_RateTooHigh(rate, MAX_RATE);
        }
        if (duration == 0) {
            revert Errors.GpuEscrow_DurationZero();
        }
        uint256 maxDuration = quote.maxDuration;
        if (maxDuration > MAX_RENTAL_DURATION) {
            maxDuration = MAX_RENTAL_DURATION;
        }
        if (block.timestamp + maxDuration > type(uint40).max) {
            maxDuration = type(uint40).max - block.timestamp;
        }
        if (duration > maxDuration) {
            revert Errors.GpuEscrow_DurationAboveMax(duration, maxDuration);
        }
        if (!_isValidSignature(provider, _hashQuote(quote), signature)) {
            revert Errors.GpuEscrow_InvalidSignature(provider);
        }

        // Effects: consume the nonce and record the rental.
        uint256 providerId = _useNonce(provider, quote.nonce);
        if (providerId == 0) {
            providerId = _cacheProviderId(provider, quote.nonce);
        }
        uint256 renterId = _accountIds[msg.sender];
        if (renterId == 0) {
            renterId = _registerAccount(msg.sender);
        }
        rentalId = _nextRentalId;
        unchecked {
            // Cannot realistically overflow 64 bits: each increment costs a transaction.
            // forge-lint: disable-next-line(unsafe-typecast)
            _nextRentalId = uint64(rentalId + 1);
        }
        // Every field fits its width: the ids are 32-bit, `block.timestamp + maxDuration <= type(uint40).max`,
        // `duration <= maxDuration <= MAX_RENTAL_DURATION`, the fee is at most 1500 and the rate at most `MAX_RATE`.
        _rentals[rentalId].terms = renterId | providerId << PROVIDER_ID_OFFSET | block.timestamp << START_OFFSET
            | duration << DURATION_OFFSET | maxDuration << MAX_DURATION_OFFSET | uint256(feeBps) << FEE_OFFSET | rate
            << RATE_OFFSET;
        unchecked {
            // At most `MAX_RATE * MAX_RENTAL_DURATION`, below 2^76.
            deposit = rate * duration;
        }
        emit RentalOpened(
            rentalId,
            msg.sender,
            provider,
            quote.nonce,
            quote.offerId,
            rate,
            block.timestamp,
            block.timestamp + duration,
            deposit
        );
    }

    /// @dev The checks and effects of {extend} and {extendWithPermit}; the caller pulls the returned cost.
    function _extend(uint256 rentalId, uint256 extraSeconds) private whenNotPaused returns (uint256 cost) {
        // Checks: only the renter, only an active rental, only within the quote's maximum duration.
        StoredRental storage stored = _rentals[rentalId];
        uint256 terms = _existingTerms(stored, rentalId);
        _requireRenter(terms, rentalId);
        _requireActive(terms, rentalId);
        if (extraSeconds == 0) {
            revert Errors.GpuEscrow_ExtensionZero();
        }
        uint256 duration = _duration(terms);
        uint256 maxExtraSeconds = (terms >> MAX_DURATION_OFFSET & MASK_32) - duration;
        if (extraSeconds > maxExtraSeconds) {
            revert Errors.GpuEscrow_ExtensionAboveMax(rentalId, extraSeconds, maxExtraSeconds);
        }

        // Effects: move the end. The new duration is at most the maximum duration, so the field cannot overflow.
        stored.terms = terms + (extraSeconds << DURATION_OFFSET);
        uint256 newEnd = _start(terms) + duration + extraSeconds;
        cost = _rate(terms) * extraSeconds;
        emit RentalExtended(rentalId, newEnd, cost);
    }

    /// @dev Submits the caller's EIP-2612 permit of exactly `amount` to this contract. Anyone can submit a permit seen
    /// in the mempool first, which consumes it and makes this call fail; the allowance is then already in place, so
    /// the failure is ignored unless the allowance falls short of `amount`. Callers take the permit after their effects
    /// and before pulling `amount`.
    function _permit(uint256 amount, uint256 permitDeadline, uint8 v, bytes32 r, bytes32 s) private {
        try IERC20Permit(address(token)).permit(msg.sender, address(this), amount, permitDeadline, v, r, s) { }
        catch {
            uint256 allowance = token.allowance(msg.sender, address(this));
            if (allowance < amount) {
                revert Errors.GpuEscrow_PermitFailed(allowance, amount);
            }
        }
    }

    /// @dev Marks a provider nonce as used, reverting if it already was, and returns the provider id cached in the
    /// nonce's word (0 if none is cached yet).
    function _useNonce(address provider, uint256 nonce) private returns (uint256 cachedProviderId) {
        mapping(uint256 wordPos => uint256 word) storage words = _nonceWords[provider];
        uint256 wordPos = nonce / NONCES_PER_WORD;
        // forge-lint: disable-next-line(incorrect-shift)
        uint256 bit = 1 << (nonce % NONCES_PER_WORD);
        uint256 word = words[wordPos];
        if (word & bit != 0) {
            revert Errors.GpuEscrow_NonceAlreadyUsed(provider, nonce);
        }
        words[wordPos] = word | bit;
        cachedProviderId = word >> NONCES_PER_WORD;
    }

    /// @dev Returns the provider's id, assigning the next one on its first rental, and caches it in the word of
    /// `nonce`. Only runs the first time a provider opens a rental through a given nonce word.
    function _cacheProviderId(address provider, uint256 nonce) private returns (uint256 providerId) {
        providerId = _accountIds[provider];
        if (providerId == 0) {
            providerId = _registerAccount(provider);
        }
        _nonceWords[provider][nonce / NONCES_PER_WORD] |= providerId << NONCES_PER_WORD;
    }

    /// @dev Assigns the next account id to `account`, which has none yet.
    function _registerAccount(address account) private returns (uint256) {
        uint32 accountId = _accountCount + 1;
        _accountCount = accountId;
        _accountIds[account] = accountId;
        _accounts[accountId] = account;
        return accountId;
    }

    /// @dev Settles what the provider can be paid on a rental and returns the gross amount and the fee. Reverts if
    /// the rental does not exist or `providerId` is not its provider's; returns zeros if nothing is payable.
    function _settle(uint256 rentalId, uint32 providerId) private returns (uint256 gross, uint256 fee) {
        StoredRental storage stored = _rentals[rentalId];
        uint256 terms = _existingTerms(stored, rentalId);
        if (_providerId(terms) != providerId) {
            revert Errors.GpuEscrow_CallerNotProvider(rentalId, msg.sender);
        }
        uint256 payableSeconds = _payableSeconds(terms, stored.credits & MASK_32);
        if (payableSeconds == 0) {
            return (0, 0);
        }

        uint256 rate = _rate(terms);
        uint256 paidSeconds = _paidSeconds(terms);
        gross = rate * payableSeconds;
        // Taking the fee as the difference of cumulative fees, instead of a fee on `gross`, keeps rounding from
        // accumulating: the total fee is `fee(total gross)` no matter how the withdrawals were split.
        uint256 bps = terms >> FEE_OFFSET & MASK_FEE;
        fee = _fee(rate * (paidSeconds + payableSeconds), bps) - _fee(rate * paidSeconds, bps);

        // The paid seconds stay inside the rental's duration, so the field cannot overflow.
        stored.terms = terms + (payableSeconds << PAID_OFFSET);
        emit EarningsWithdrawn(rentalId, msg.sender, gross - fee, fee);
    }

    /// @dev Settles every listed rental of the caller, accrues their fees and returns the total net amount due.
    /// Reverts if the total is zero. Shared by {withdrawMany} and {withdrawTo}, which costs the former about 50 gas
    /// for the call; writing the loop out in both would cost more, since {_settle} would no longer be inlined.
    function _settleMany(uint256[] calldata rentalIds) private returns (uint256 paid) {
        uint32 providerId = _accountIds[msg.sender];
        uint256 totalGross;
        uint256 totalFee;
        uint256 count = rentalIds.length;
        for (uint256 i = 0; i < count; ++i) {
            (uint256 gross, uint256 fee) = _settle(rentalIds[i], providerId);
            totalGross += gross;
            totalFee += fee;
        }
        if (totalGross == 0) {
            revert Errors.GpuEscrow_BatchNothingToWithdraw(count);
        }
        feesAccrued += totalFee;
        unchecked {
            // `totalFee <= totalGross` since the fee rate is below 100 %.
            paid = totalGross - totalFee;
        }
    }

    /// @dev The cumulative platform fee owed on `gross` earnings, rounded down in favour of the provider.
    function _fee(uint256 gross, uint256 bps) private pure returns (uint256) {
        return gross * bps / BPS_DENOMINATOR;
    }
}
