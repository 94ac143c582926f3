// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice An admin upgradeability proxy shaped like the one in front of Circle's USDC: every call that is not the
/// admin's reads the admin slot, reads the implementation slot and delegates. Written for gas measurement
/// (`script/measure-gas.sh`), not taken from Circle's sources; it only has to cost what theirs costs.
contract FiatTokenLikeProxy {
    /// @dev The slots Circle's proxy uses, `keccak256("org.zeppelinos.proxy.admin")` and
    /// `keccak256("org.zeppelinos.proxy.implementation")`, so that nothing in the implementation's layout collides.
    bytes32 private constant ADMIN_SLOT = 0x10d6a54a4754c8869d6886b5f5d7fbfa5b4522237ea5c60d11bc4e7a1ff9390b;
    bytes32 private constant IMPLEMENTATION_SLOT = 0x7050c9e0f4ca769c69bd3a8ef740bc37934f8e2c036e5a723fd8ee048ed3f8c3;

    constructor(address implementation, address admin) {
        assembly ("memory-safe") {
            sstore(IMPLEMENTATION_SLOT, implementation)
            sstore(ADMIN_SLOT, admin)
        }
    }

    fallback() external payable {
        assembly {
            // The admin may only upgrade, never use the token, as in Circle's proxy.
            if eq(caller(), sload(ADMIN_SLOT)) { revert(0, 0) }
            let implementation := sload(IMPLEMENTATION_SLOT)
            calldatacopy(0, 0, calldatasize())
            let success := delegatecall(gas(), implementation, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch success
            case 0 { revert(0, returndatasize()) }
            default { return(0, returndatasize()) }
        }
    }
}

/// @notice A 6-decimal token that costs what Circle's FiatTokenV2_2 (USDC) costs behind {FiatTokenLikeProxy}: a pause
/// flag read on every transfer, approval and permit; blocklist checks of the caller, the sender and the recipient, with
/// the flag in the high bit of each account's balance slot; an allowance written on every `transferFrom`, even an
/// unlimited one; and an EIP-2612 permit whose domain separator is computed from the stored name on every call.
/// @dev FOR GAS MEASUREMENT AND TESTS ONLY. Written for `script/measure-gas.sh` as an equivalent of FiatTokenV2_2,
/// which is not published on a package registry reachable here; it is not Circle's code. Anyone can mint, blocklist
/// and pause.
contract FiatTokenLike {
    /*//////////////////////////////////////////////////////////////////////////
                                      STORAGE
    //////////////////////////////////////////////////////////////////////////*/

    // The order follows FiatTokenV2_2's, so that the slots that share a word there share one here.
    address public owner;
    address public pauser;
    bool public paused;
    address public blacklister;
    /// @dev An account's balance in the low 255 bits, and its blocklist flag in the high bit.
    mapping(address account => uint256) internal balanceAndBlocklistState;
    string public name;
    string public symbol;
    uint8 public decimals;
    string public currency;
    address public masterMinter;
    bool internal initialized;
    mapping(address owner => mapping(address spender => uint256)) internal allowed;
    uint256 public totalSupply;
    mapping(address account => uint256) private _permitNonces;

    uint256 private constant BLOCKLISTED = 1 << 255;
    uint256 private constant BALANCE_MASK = BLOCKLISTED - 1;

    bytes32 private constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /*//////////////////////////////////////////////////////////////////////////
                                     MODIFIERS
    //////////////////////////////////////////////////////////////////////////*/

    modifier whenNotPaused() {
        require(!paused, "Pausable: paused");
        _;
    }

    modifier notBlocklisted(address account) {
        require(balanceAndBlocklistState[account] & BLOCKLISTED == 0, "Blacklistable: account is blacklisted");
        _;
    }

    /*//////////////////////////////////////////////////////////////////////////
                                   SET-UP AND ADMIN
    //////////////////////////////////////////////////////////////////////////*/

    /// @notice Sets the metadata once, through the proxy.
    function initialize(string calldata name_, string calldata symbol_, address owner_) external {
        require(!initialized, "already initialized");
        initialized = true;
        name = name_;
        symbol = symbol_;
        currency = "USD";
        decimals = 6;
        owner = owner_;
        pauser = owner_;
        blacklister = owner_;
        masterMinter = owner_;
    }

    /// @notice Mints `amount` to `to`; unrestricted, for measurement only.
    function mint(address to, uint256 amount) external whenNotPaused notBlocklisted(to) {
        totalSupply += amount;
        _setBalance(to, _balanceOf(to) + amount);
        emit Transfer(address(0), to, amount);
    }

    /// @notice Sets or clears the blocklist flag of `account`; unrestricted, for tests only.
    function setBlocklisted(address account, bool blocked) external {
        uint256 state = balanceAndBlocklistState[account];
        balanceAndBlocklistState[account] = blocked ? state | BLOCKLISTED : state & BALANCE_MASK;
    }

    /// @notice Pauses or unpauses every transfer, approval and permit; unrestricted, for tests only.
    function setPaused(bool paused_) external {
        paused = paused_;
    }

    /*//////////////////////////////////////////////////////////////////////////
                                       ERC-20
    //////////////////////////////////////////////////////////////////////////*/

    function balanceOf(address account) external view returns (uint256) {
        return _balanceOf(account);
    }

    function isBlocklisted(address account) external view returns (bool) {
        return balanceAndBlocklistState[account] & BLOCKLISTED != 0;
    }

    function allowance(address owner_, address spender) external view returns (uint256) {
        return allowed[owner_][spender];
    }

    function approve(address spender, uint256 value) external whenNotPaused returns (bool) {
        _approve(msg.sender, spender, value);
        return true;
    }

    function transfer(address to, uint256 value)
        external
        whenNotPaused
        notBlocklisted(msg.sender)
        notBlocklisted(to)
        returns (bool)
    {
        _transfer(msg.sender, to, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value)
        external
        whenNotPaused
        notBlocklisted(msg.sender)
        notBlocklisted(from)
        notBlocklisted(to)
        returns (bool)
    {
        uint256 current = allowed[from][msg.sender];
        require(value <= current, "ERC20: transfer amount exceeds allowance");
        _transfer(from, to, value);
        // Written even when unlimited: FiatTokenV2_2 has no infinite-approval shortcut.
        allowed[from][msg.sender] = current - value;
        return true;
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      EIP-2612
    //////////////////////////////////////////////////////////////////////////*/

    function nonces(address owner_) external view returns (uint256) {
        return _permitNonces[owner_];
    }

    // forge-lint: disable-next-line(mixed-case-function)
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparator();
    }

    function permit(address owner_, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        whenNotPaused
    {
        require(deadline >= block.timestamp, "FiatTokenV2: permit is expired");
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TYPEHASH, owner_, spender, value, _permitNonces[owner_]++, deadline));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", _domainSeparator(), structHash));
        // Like Circle's signature checker: an account with code would be asked through ERC-1271; the renters measured
        // here are EOAs, so the check of the code size and the ECDSA recovery are what it costs them.
        require(owner_.code.length == 0, "contract signers are not modelled");
        require(
            uint256(s) <= 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0, "ECRecover: invalid s"
        );
        require(v == 27 || v == 28, "ECRecover: invalid v");
        address recovered = ecrecover(digest, v, r, s);
        require(recovered != address(0) && recovered == owner_, "EIP2612: invalid signature");
        _approve(owner_, spender, value);
    }

    /*//////////////////////////////////////////////////////////////////////////
                                      INTERNALS
    //////////////////////////////////////////////////////////////////////////*/

    /// @dev Computed on every call from the stored name, version "2", as FiatTokenV2_2 does.
    function _domainSeparator() private view returns (bytes32) {
        return
            keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256(bytes(name)), keccak256("2"), block.chainid, address(this)));
    }

    function _approve(address owner_, address spender, uint256 value) private {
        require(owner_ != address(0), "ERC20: approve from the zero address");
        require(spender != address(0), "ERC20: approve to the zero address");
        allowed[owner_][spender] = value;
        emit Approval(owner_, spender, value);
    }

    function _transfer(address from, address to, uint256 value) private {
        require(from != address(0), "ERC20: transfer from the zero address");
        require(to != address(0), "ERC20: transfer to the zero address");
        uint256 fromBalance = _balanceOf(from);
        require(value <= fromBalance, "ERC20: transfer amount exceeds balance");
        _setBalance(from, fromBalance - value);
        _setBalance(to, _balanceOf(to) + value);
        emit Transfer(from, to, value);
    }

    function _balanceOf(address account) private view returns (uint256) {
        return balanceAndBlocklistState[account] & BALANCE_MASK;
    }

    /// @dev Checks the blocklist flag again and that the balance fits in 255 bits, as FiatTokenV2_2 does.
    function _setBalance(address account, uint256 balance) private {
        require(balance <= BALANCE_MASK, "FiatTokenV2_2: Balance exceeds (2^255 - 1)");
        require(balanceAndBlocklistState[account] & BLOCKLISTED == 0, "FiatTokenV2_2: Account is blacklisted");
        balanceAndBlocklistState[account] = balance;
    }
}
