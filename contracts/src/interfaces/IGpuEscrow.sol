// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import { IERC20 } from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import { Downtime, Quote, Rental } from "../types/DataTypes.sol";

/// @title IGpuEscrow
/// @notice Escrow for GPU rentals paid by the second, in one ERC-20 stablecoin.
///
/// A provider signs a {Quote} (EIP-712) for one renter; the renter opens a rental on those terms and prepays
/// `ratePerSecond * duration` into escrow. Payment accrues to the provider second by second. The renter may extend
/// the rental within the quote's maximum duration, or stop it early and get the unused remainder back at once. The
/// provider withdraws what it earned, but only for seconds older than the {DISPUTE_WINDOW}, so that downtime
/// attested by registered attesters ({Downtime}, EIP-712) can be credited back to the renter before those seconds
/// are paid. A provider that cannot serve a rental (a machine already rented, terms it did not quote, a workload
/// that fails to start) signs a refusal instead ({refuse}), which refunds the whole deposit to the renter as long as
/// none of it was paid. A platform fee of at most 15 %, snapshotted per rental, is taken from what the provider earns and accrues
/// for the treasury, which pulls it.
///
/// @dev Conventions:
/// - Amounts are in base units of {token}; times are Unix timestamps in seconds; durations are in seconds.
/// - Rental ids are sequential from 1, so 0 never refers to a rental.
/// - The EIP-712 domain is `name = "GpuEscrow"`, `version = "1"`, the chain id and this contract's address (see
///   ERC-5267 `eip712Domain()`). A signature made for another chain or another escrow deployment never verifies.
/// - Signatures are 65-byte `r || s || v` ECDSA signatures (low `s`, `v` of 27 or 28), or anything the signing
///   contract accepts under ERC-1271.
/// - Funds only move between the renter, the provider and the treasury of each rental as described here: no role,
///   the owner included, can move a rental's funds. The owner can pause opening and extending, change the fee and the
///   treasury for future rentals and claims, and manage attesters.
///
/// Supported tokens: plain ERC-20s such as USDC. The escrow assumes that a transfer moves exactly the requested
/// amount and that balances change only through transfers. Fee-on-transfer, rebasing and other tokens with
/// non-standard balance accounting are NOT supported: with them the escrow becomes insolvent and the last parties to
/// withdraw are short-changed. A token blocklist can stop payouts to a blocklisted account, but never a stop, a
/// downtime credit or a refusal: those only ever send tokens to the renter.
interface IGpuEscrow {
    /*//////////////////////////////////////////////////////////////////////////
                                       EVENTS
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Emitted when a rental is opened and its deposit is pulled into escrow.
    /// @param rentalId The id of the new rental.
    /// @param renter The account that funded the rental.
    /// @param provider The account that earns the payment.
    /// @param nonce The provider nonce consumed by the quote.
    /// @param offerId The quote's `offerId`: what is rented, as the provider signed it (gpuflow clients put the 8-byte
    /// offer id of the machine there, then the number of GPUs as a big-endian `uint32`). Indexers map the rental to
    /// the exact machine with it, which the provider's address alone cannot do once a provider runs several.
    /// @param ratePerSecond The price, in token base units per second.
    /// @param start The start time of the rental: the timestamp of the block that opened it.
    /// @param end The scheduled end time of the rental.
    /// @param deposit The amount pulled from the renter, equal to `ratePerSecond * (end - start)`.
    event RentalOpened(
        uint256 indexed rentalId,
        address indexed renter,
        address indexed provider,
        uint256 nonce,
        bytes32 offerId,
        uint256 ratePerSecond,
        uint256 start,
        uint256 end,
        uint256 deposit
    );

    /// @notice Emitted when a renter buys more time on an active rental.
    /// @param rentalId The id of the rental.
    /// @param newEnd The new scheduled end time.
    /// @param cost The amount pulled from the renter, equal to `ratePerSecond * extraSeconds`.
    event RentalExtended(uint256 indexed rentalId, uint256 newEnd, uint256 cost);

    /// @notice Emitted when the renter sets, changes or turns off (`budget` 0) a rental's automatic extension.
    event AutoExtendSet(uint256 indexed rentalId, uint256 budget, uint256 step);

    /// @notice Emitted when a renter stops a rental before its scheduled end.
    /// @param rentalId The id of the stopped rental.
    /// @param renter The account that stopped the rental and received the refund.
    /// @param stoppedAt The time at which the rental was stopped, which becomes its end time.
    /// @param refund The amount sent back to the renter, equal to `ratePerSecond * (oldEnd - stoppedAt)`.
    event RentalStopped(uint256 indexed rentalId, address indexed renter, uint256 stoppedAt, uint256 refund);

    /// @notice Emitted for each rental a provider withdraws earnings from.
    /// @param rentalId The id of the rental.
    /// @param provider The rental's provider, who withdrew. It also received the earnings, unless the withdrawal was a
    /// {withdrawTo}, which emits {EarningsSentTo} naming the recipient after the rentals' events.
    /// @param amount The net amount paid for this rental, after the fee.
    /// @param fee The platform fee accrued to the treasury by this withdrawal.
    event EarningsWithdrawn(uint256 indexed rentalId, address indexed provider, uint256 amount, uint256 fee);

    /// @notice Emitted once by {withdrawTo}, after the {EarningsWithdrawn} event of each rental it settled.
    /// @param provider The provider that withdrew.
    /// @param recipient The account that received the earnings.
    /// @param amount The total net amount sent to `recipient`.
    event EarningsSentTo(address indexed provider, address indexed recipient, uint256 amount);

    /// @notice Emitted when attested downtime is credited back to a renter.
    /// @param rentalId The id of the rental.
    /// @param from The start of the attested window, inclusive.
    /// @param to The end of the attested window, exclusive.
    /// @param downSeconds The seconds actually credited: the attested down seconds, capped at the part of the window
    /// that had not been paid to the provider yet.
    /// @param refund The amount sent to the renter, equal to `ratePerSecond * downSeconds`.
    event DowntimeCredited(uint256 indexed rentalId, uint256 from, uint256 to, uint256 downSeconds, uint256 refund);

    /// @notice Emitted when a rental's provider refuses it and the renter gets back everything the escrow held for it.
    /// @param rentalId The id of the refused rental.
    /// @param renter The rental's renter, who received the refund (whoever submitted the refusal).
    /// @param refund The amount sent to the renter, equal to `ratePerSecond * (end - start - credited)` with the end
    /// before the refusal: the deposit and every extension, less what downtime credits already refunded.
    event RentalRefused(uint256 indexed rentalId, address indexed renter, uint256 refund);

    /// @notice Emitted when the treasury claims the accrued platform fees.
    /// @param treasury The account that received the fees.
    /// @param amount The amount of fees claimed.
    event FeesClaimed(address indexed treasury, uint256 amount);

    /// @notice Emitted when a provider cancels an unused quote nonce.
    /// @param provider The provider that owned the nonce.
    /// @param nonce The nonce that can no longer open a rental.
    event NonceInvalidated(address indexed provider, uint256 nonce);

    /// @notice Emitted when the owner changes the platform fee applied to rentals opened from now on.
    event FeeBpsChanged(uint256 oldFeeBps, uint256 newFeeBps);

    /// @notice Emitted when the owner changes the account that collects platform fees.
    event TreasuryChanged(address indexed oldTreasury, address indexed newTreasury);

    /// @notice Emitted when the owner registers (`allowed = true`) or unregisters an attester.
    event AttesterSet(address indexed attester, bool allowed);

    /// @notice Emitted when the owner changes how many distinct attesters must sign a downtime attestation.
    event AttesterThresholdChanged(uint256 oldThreshold, uint256 newThreshold);

    /*//////////////////////////////////////////////////////////////////////////
                                 CONSTANT FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice The hard cap on the platform fee, in basis points (15 %).
    function MAX_FEE_BPS() external view returns (uint256);

    /// @notice The longest dispute window the escrow can be deployed with (30 days), so that a misconfiguration cannot
    /// hold back payouts indefinitely.
    function MAX_DISPUTE_WINDOW() external view returns (uint256);

    /// @notice How long before a rental's end, in seconds, its automatic extension can be triggered (10 minutes).
    function AUTO_EXTEND_LEAD() external view returns (uint256);

    /// @notice The shortest step an automatic extension may buy at a time (1 minute).
    function MIN_AUTO_EXTEND_STEP() external view returns (uint256);

    /// @notice The largest budget an automatic extension may have, `2^96 - 1` token units.
    function MAX_AUTO_EXTEND_BUDGET() external view returns (uint256);

    /// @notice How long, in seconds, earned seconds stay unpayable so that downtime can be credited first. Fixed at
    /// deployment.
    function DISPUTE_WINDOW() external view returns (uint40);

    /// @notice The ERC-20 token in which rentals are paid.
    function token() external view returns (IERC20);

    /// @notice The account that may claim the accrued platform fees.
    function treasury() external view returns (address);

    /// @notice The platform fee, in basis points of the provider's gross earnings, snapshotted by rentals opened from
    /// now on.
    function feeBps() external view returns (uint16);

    /// @notice The platform fees withheld from providers and not yet claimed by the treasury.
    function feesAccrued() external view returns (uint256);

    /// @notice How many distinct registered attesters must sign a downtime attestation.
    function attesterThreshold() external view returns (uint8);

    /// @notice Whether `account` is a registered attester.
    function isAttester(address account) external view returns (bool);

    /// @notice The id that the next opened rental will receive.
    function nextRentalId() external view returns (uint256);

    /// @notice Whether `nonce` of `provider` has been used to open a rental or was invalidated.
    function isNonceUsed(address provider, uint256 nonce) external view returns (bool);

    /// @notice The EIP-712 digest a provider signs to issue `quote`.
    function hashQuote(Quote calldata quote) external view returns (bytes32 digest);

    /// @notice The EIP-712 digest attesters sign to attest `downtime`.
    function hashDowntime(Downtime calldata downtime) external view returns (bytes32 digest);

    /// @notice The EIP-712 digest a provider signs to refuse rental `rentalId`: the typed struct `Refusal(uint256
    /// rentalId)` under this escrow's domain.
    function hashRefusal(uint256 rentalId) external view returns (bytes32 digest);

    /// @notice Returns a rental.
    /// @dev Reverts with {Errors.GpuEscrow_RentalNotFound} if `rentalId` was never opened.
    function getRental(uint256 rentalId) external view returns (Rental memory);

    /// @notice A rental's automatic extension: what is left of the budget the renter set, and the seconds bought at a
    /// time. Both are zero when none is set.
    /// @dev Reverts with {Errors.GpuEscrow_RentalNotFound} if `rentalId` was never opened.
    function autoExtension(uint256 rentalId) external view returns (uint256 budget, uint256 step);

    /// @notice The gross amount the provider has earned so far on a rental, fee included, withdrawals not deducted.
    /// @dev Equals `ratePerSecond * (min(block.timestamp, end) - start - credited)`, or zero if that is negative.
    /// Reverts with {Errors.GpuEscrow_RentalNotFound} if `rentalId` was never opened.
    function earned(uint256 rentalId) external view returns (uint256);

    /// @notice The gross amount, fee included, that {withdraw} would settle now.
    /// @dev Equals `ratePerSecond * (min(block.timestamp - DISPUTE_WINDOW, end) - start - credited) - withdrawn`,
    /// or zero if that is negative. The provider receives this amount less the fee.
    /// Reverts with {Errors.GpuEscrow_RentalNotFound} if `rentalId` was never opened.
    function withdrawable(uint256 rentalId) external view returns (uint256 gross);

    /*//////////////////////////////////////////////////////////////////////////
                               NON-CONSTANT FUNCTIONS
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Opens a rental on the terms of a provider-signed quote. The rental starts now and lasts `duration`
    /// seconds; `quote.ratePerSecond * duration` is pulled from the caller, who must have approved it beforehand.
    ///
    /// @dev Emits a {RentalOpened} event. The rental snapshots the current {feeBps}.
    ///
    /// Requirements:
    /// - The contract must not be paused.
    /// - `block.timestamp` must be at most `quote.deadline`.
    /// - The caller must be `quote.renter`, and `quote.provider` must be neither the zero address nor the caller.
    /// - `quote.ratePerSecond` must be non-zero and fit in 44 bits (at most `2^44 - 1`, about 17.6 million USDC per
    ///   second), else it reverts with {Errors.GpuEscrow_RateTooHigh}.
    /// - `duration` must be non-zero and at most `quote.maxDuration`, capped at `type(uint32).max` seconds (about 136
    ///   years) and at the end `type(uint40).max`; the same cap bounds `maxEnd`, and so every extension.
    /// - `quote.nonce` must not have been used or invalidated by the provider; it is consumed.
    /// - `signature` must be the provider's signature of {hashQuote}: ECDSA from the provider's key or, if that does
    ///   not match, valid under ERC-1271 `isValidSignature` of the provider contract.
    ///
    /// @param quote The provider-signed terms.
    /// @param duration The length of the rental, in seconds.
    /// @param signature The provider's signature of the quote.
    /// @return rentalId The id of the new rental.
    function open(Quote calldata quote, uint256 duration, bytes calldata signature) external returns (uint256 rentalId);

    /// @notice Same as {open}, with an EIP-2612 permit for the deposit in the same transaction.
    ///
    /// @dev The permit must be signed by the caller for spender = this contract and value =
    /// `quote.ratePerSecond * duration`. It is tried and its failure ignored, so that a permit front-run by someone
    /// else does not block the open: the rental opens as long as the allowance covers the deposit, and otherwise the
    /// call reverts with {Errors.GpuEscrow_PermitFailed}.
    ///
    /// @param permitDeadline The deadline of the permit.
    /// @param v The `v` of the permit signature.
    /// @param r The `r` of the permit signature.
    /// @param s The `s` of the permit signature.
    /// @return rentalId The id of the new rental.
    function openWithPermit(
        Quote calldata quote,
        uint256 duration,
        bytes calldata signature,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256 rentalId);

    /// @notice Buys `extraSeconds` more of an active rental at its rate, pulling `ratePerSecond * extraSeconds` from
    /// the caller, who must have approved it beforehand.
    ///
    /// @dev Emits a {RentalExtended} event.
    ///
    /// Requirements:
    /// - The contract must not be paused.
    /// - The caller must be the rental's renter.
    /// - The rental must be active: not stopped and `block.timestamp < end`.
    /// - `extraSeconds` must be non-zero, and `end + extraSeconds` at most the rental's `maxEnd`, i.e. the total
    ///   duration stays within `quote.maxDuration`.
    ///
    /// @return cost The amount pulled from the renter.
    function extend(uint256 rentalId, uint256 extraSeconds) external returns (uint256 cost);

    /// @notice Same as {extend}, with an EIP-2612 permit for the cost in the same transaction: a renter who opened
    /// with {openWithPermit} has no allowance left, and extends without a separate `approve`.
    ///
    /// @dev The permit must be signed by the caller for spender = this contract and value =
    /// `ratePerSecond * extraSeconds`. As in {openWithPermit}, it is tried and its failure ignored, so that a permit
    /// front-run by someone else does not block the extension: the rental is extended as long as the allowance covers
    /// the cost, and otherwise the call reverts with {Errors.GpuEscrow_PermitFailed}. The rental's checks come first,
    /// so an extension that would revert never uses the permit. A successful permit replaces whatever allowance the
    /// caller had given this contract (a standing approval for {autoExtend} included) with the cost, which the
    /// extension then uses up; a renter whose allowance already covers the cost should call {extend}.
    ///
    /// @param rentalId The rental to extend.
    /// @param extraSeconds How many seconds to add.
    /// @param permitDeadline The deadline of the permit.
    /// @param v The `v` of the permit signature.
    /// @param r The `r` of the permit signature.
    /// @param s The `s` of the permit signature.
    /// @return cost The amount pulled from the renter.
    function extendWithPermit(
        uint256 rentalId,
        uint256 extraSeconds,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256 cost);

    /// @notice Lets anyone extend an active rental, `step` seconds at a time at its rate, from the renter's tokens,
    /// until `budget` token units are spent: the rental outlives its end while the renter is offline, and never costs
    /// the renter more than `budget` through this. Replaces whatever was left of an earlier budget; a zero `budget`
    /// turns it off. The renter must also allow the escrow to pull the budget (ERC-20 allowance); this function pulls
    /// nothing.
    ///
    /// @dev Emits an {AutoExtendSet} event.
    ///
    /// Requirements:
    /// - The caller must be the rental's renter.
    /// - The rental must be active: not stopped and `block.timestamp < end`.
    /// - `budget` must be at most {MAX_AUTO_EXTEND_BUDGET}; unless it is zero, `step` must be at least
    ///   {MIN_AUTO_EXTEND_STEP} and at most `2^32 - 1`.
    function setAutoExtend(uint256 rentalId, uint256 budget, uint256 step) external;

    /// @notice Extends an active rental by its automatic extension's step, or by what is left of the budget or of the
    /// quote's maximum duration if either is shorter, pulling the cost from the renter. Anyone may call it (the
    /// provider, a node, a bot) within the last {AUTO_EXTEND_LEAD} seconds of the rental.
    ///
    /// @dev Emits a {RentalExtended} event, as {extend} does. Every extension's cost comes out of the budget set by
    /// {setAutoExtend}, so the renter never pays more than that budget through this function.
    ///
    /// Requirements:
    /// - The contract must not be paused.
    /// - The rental must be active: not stopped and `block.timestamp < end`.
    /// - `block.timestamp + AUTO_EXTEND_LEAD >= end`.
    /// - The budget must buy at least one second, and the rental must last less than the quote's maximum duration.
    /// - The renter must hold and have approved the cost.
    ///
    /// @return cost The amount pulled from the renter.
    function autoExtend(uint256 rentalId) external returns (uint256 cost);

    /// @notice Stops an active rental now and sends the unused remainder back to the renter in the same transaction.
    ///
    /// @dev Emits a {RentalStopped} event.
    ///
    /// The rental's end becomes `block.timestamp`; what the provider earned up to then stays withdrawable by the
    /// provider later. Works while paused, and never transfers anything to the provider, so a provider that the
    /// token blocklists cannot block it.
    ///
    /// Requirements:
    /// - The caller must be the rental's renter.
    /// - The rental must be active: not stopped and `block.timestamp < end`.
    ///
    /// @return refund The amount sent to the renter: `ratePerSecond * (end - block.timestamp)`.
    function stop(uint256 rentalId) external returns (uint256 refund);

    /// @notice Pays the provider what it earned on a rental for seconds older than the {DISPUTE_WINDOW}, less the
    /// platform fee.
    ///
    /// @dev Emits an {EarningsWithdrawn} event.
    ///
    /// The gross amount is {withdrawable}. The fee is taken on the provider's cumulative gross as
    /// `fee(withdrawn + gross) - fee(withdrawn)`, with `fee(x) = x * rental.feeBps / 10_000` rounded down, so the
    /// total fee on a rental does not depend on how often the provider withdraws.
    ///
    /// Requirements:
    /// - The caller must be the rental's provider.
    /// - Something must be withdrawable, else it reverts with {Errors.GpuEscrow_NothingToWithdraw}.
    ///
    /// @return paid The net amount sent to the provider.
    function withdraw(uint256 rentalId) external returns (uint256 paid);

    /// @notice Same as {withdraw} over many rentals of the caller, with a single token transfer.
    ///
    /// @dev Emits an {EarningsWithdrawn} event for each rental with something withdrawable. Rentals with nothing
    /// withdrawable (or repeated ids) are skipped.
    ///
    /// Requirements:
    /// - The caller must be the provider of every listed rental.
    /// - The total must be non-zero, else it reverts with {Errors.GpuEscrow_BatchNothingToWithdraw}.
    ///
    /// @return paid The total net amount sent to the provider.
    function withdrawMany(uint256[] calldata rentalIds) external returns (uint256 paid);

    /// @notice Same as {withdrawMany}, but sends the earnings to `recipient` instead of the caller, e.g. when the
    /// token blocklists the provider's own address, which would otherwise leave its earnings stuck.
    ///
    /// @dev Emits an {EarningsWithdrawn} event for each rental with something withdrawable, then an {EarningsSentTo}
    /// event. The accounting is exactly that of {withdrawMany}.
    ///
    /// Requirements:
    /// - `recipient` must not be the zero address, else it reverts with {Errors.GpuEscrow_RecipientZeroAddress}.
    /// - The caller must be the provider of every listed rental.
    /// - The total must be non-zero, else it reverts with {Errors.GpuEscrow_BatchNothingToWithdraw}.
    ///
    /// @return paid The total net amount sent to `recipient`.
    function withdrawTo(uint256[] calldata rentalIds, address recipient) external returns (uint256 paid);

    /// @notice Sends the accrued platform fees to the treasury, all but one token unit, which stays accrued so that
    /// the next fee does not pay to set a zero storage slot again.
    ///
    /// @dev Emits a {FeesClaimed} event.
    ///
    /// Requirements:
    /// - The caller must be the treasury.
    /// - More than one unit of fees must be accrued.
    ///
    /// @return amount The amount sent to the treasury.
    function claimFees() external returns (uint256 amount);

    /// @notice Credits attested downtime back to the renter. Anyone may submit the attestation; the refund always
    /// goes to the renter, and the credited seconds can never be paid to the provider.
    ///
    /// @dev Emits a {DowntimeCredited} event.
    ///
    /// Only seconds not yet paid to the provider can be credited: the provider is paid in time order, so the credit
    /// is `min(downSeconds, to - max(from, settledUntil))`, where `settledUntil = start + (withdrawn / ratePerSecond)
    /// + credited` is the point up to which every second of the rental is paid or credited. Nothing is ever clawed
    /// back from the provider.
    ///
    /// The attestation is the {Downtime} that attesters sign, passed as one word to keep the calldata short:
    /// `abi.encodePacked(uint96(rentalId), from, to, downSeconds, deadline)`, i.e. the rental id in the top 96 bits,
    /// then the four `uint40` members, the deadline in the lowest 40 bits. Rental ids never exceed 64 bits, so every
    /// attestation of an existing rental can be passed this way, and the signed digest is {hashDowntime} of the
    /// unpacked members.
    ///
    /// `signatures` holds the entries back to back, one per attester, each the attester's address, the length of its
    /// signature as two bytes (big-endian) and its signature of {hashDowntime}: `abi.encodePacked(attester,
    /// uint16(signature.length), signature)`. Entries must be sorted by strictly ascending attester address, which
    /// proves that the attesters are distinct; an attester may be a contract (ERC-1271), e.g. a multisig, whose
    /// signature may have any length. Entries are checked in order (well-formed, ascending, registered, valid
    /// signature), and their count against {attesterThreshold} after the last one.
    ///
    /// Works while paused.
    ///
    /// Requirements:
    /// - `block.timestamp` must be at most the attestation's `deadline`.
    /// - The rental must exist, and `[from, to)` must be a non-empty window inside `[start, end)` that has ended
    ///   (`to <= block.timestamp`) and starts at or after the rental's `creditedUntil`, so windows never overlap.
    /// - `downSeconds` must be non-zero and at most `to - from`.
    /// - `signatures` must consist of whole entries, else it reverts with {Errors.GpuEscrow_AttestationMalformed}.
    /// - At least {attesterThreshold} entries, each a valid signature of a distinct registered attester; an entry
    ///   whose signature does not verify reverts with {Errors.GpuEscrow_InvalidAttestation}, naming its index.
    /// - Some of the window must still be unpaid, else it reverts with {Errors.GpuEscrow_NothingToCredit}.
    ///
    /// @param downtime The packed attestation.
    /// @param signatures The attesters' entries.
    /// @return refund The amount sent to the renter.
    function creditDowntime(uint256 downtime, bytes calldata signatures) external returns (uint256 refund);

    /// @notice Refunds a rental that its provider refuses to serve: the renter gets back everything the escrow still
    /// holds for it, and the provider can never withdraw any of it. Anyone may submit the provider's signed refusal;
    /// the refund always goes to the renter.
    ///
    /// @dev Emits a {RentalRefused} event.
    ///
    /// The refund is `ratePerSecond * (end - start - credited)`: the deposit and every extension, less what downtime
    /// credits already refunded. Afterwards the rental is stopped and its `end` is `start + credited`, so {earned} and
    /// {withdrawable} stay zero forever, {stop} and {extend} revert as for a stopped rental, and no downtime can be
    /// credited any more. A refused rental is recognisable as a stopped one with `end - start == credited` and nothing
    /// withdrawn.
    ///
    /// A refusal names only the rental and has no deadline: a provider signs one only for a rental it does not serve,
    /// and it stops being usable once the provider has withdrawn anything from the rental. Works while paused, and
    /// never transfers anything to the provider, so a provider that the token blocklists cannot block it.
    ///
    /// Requirements:
    /// - The rental must exist.
    /// - Nothing may have been withdrawn from it, else it reverts with {Errors.GpuEscrow_RefusalAfterWithdrawal}.
    /// - The escrow must still hold something for it, else it reverts with {Errors.GpuEscrow_NothingToRefund}: it
    ///   was refused already, or every second of it was credited.
    /// - `signature` must be the rental's provider's signature of {hashRefusal}: ECDSA from the provider's key or, if
    ///   that does not match, valid under ERC-1271 `isValidSignature` of the provider contract; else it reverts with
    ///   {Errors.GpuEscrow_InvalidRefusal}.
    ///
    /// @param rentalId The id of the refused rental.
    /// @param signature The provider's signature of {hashRefusal}.
    /// @return refund The amount sent to the renter.
    function refuse(uint256 rentalId, bytes calldata signature) external returns (uint256 refund);

    /// @notice Cancels one of the caller's unused quote nonces, so the quote that carries it can no longer open a
    /// rental.
    ///
    /// @dev Emits a {NonceInvalidated} event. Reverts with {Errors.GpuEscrow_NonceAlreadyUsed} if it is already used.
    function invalidateNonce(uint256 nonce) external;

    /// @notice Sets the platform fee that rentals opened from now on snapshot. Existing rentals keep theirs.
    /// @dev Emits a {FeeBpsChanged} event. Only the owner; at most {MAX_FEE_BPS}.
    function setFeeBps(uint16 newFeeBps) external;

    /// @notice Sets the account that may claim platform fees, including those already accrued.
    /// @dev Emits a {TreasuryChanged} event. Only the owner; not the zero address.
    function setTreasury(address newTreasury) external;

    /// @notice Registers or unregisters an attester. Credits already made are unaffected; attestations not yet
    /// submitted are checked against the attesters registered when they are submitted.
    /// @dev Emits an {AttesterSet} event. Only the owner; not the zero address. Unregistering reverts with
    /// {Errors.GpuEscrow_AttestersBelowThreshold} if it would leave fewer registered attesters than
    /// {attesterThreshold}, so at least one attester always stays registered once one was: to replace the last one,
    /// register its successor first.
    function setAttester(address attester, bool allowed) external;

    /// @notice Sets how many distinct registered attesters must sign a downtime attestation.
    /// @dev Emits an {AttesterThresholdChanged} event. Only the owner; not zero, and at most the number of registered
    /// attesters, else it reverts with {Errors.GpuEscrow_ThresholdAboveAttesters}. Every attester registration carries a
    /// copy of the threshold (so that a credit reads both at once), so this costs gas linear in the number of
    /// accounts ever registered as attesters.
    function setAttesterThreshold(uint8 newThreshold) external;

    /// @notice Pauses opening and extending rentals. Stopping, withdrawing, crediting downtime and claiming fees
    /// keep working.
    /// @dev Emits a `Paused` event. Only the owner; reverts if already paused.
    function pause() external;

    /// @notice Lifts a pause.
    /// @dev Emits an `Unpaused` event. Only the owner; reverts if not paused.
    function unpause() external;
}
