//! Contract types generated from the forge build output.
#![allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    GpuEscrow,
    "../../contracts/out/GpuEscrow.sol/GpuEscrow.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    MockUSDC,
    "../../contracts/out/MockUSDC.sol/MockUSDC.json"
);

alloy::sol! {
    /// The ERC-20 surface the escrow needs, with the standard (ERC-6093) errors so token
    /// reverts can be explained too.
    #[sol(rpc)]
    #[derive(Debug)]
    interface IERC20 {
        function balanceOf(address account) external view returns (uint256);
        function allowance(address owner, address spender) external view returns (uint256);
        function approve(address spender, uint256 value) external returns (bool);
        function decimals() external view returns (uint8);
        function symbol() external view returns (string memory);
        function nonces(address owner) external view returns (uint256);
        function eip712Domain() external view returns (bytes1 fields, string memory name, string memory version, uint256 chainId, address verifyingContract, bytes32 salt, uint256[] memory extensions);

        error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
        error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
        error ERC20InvalidSender(address sender);
        error ERC20InvalidReceiver(address receiver);
    }
}

alloy::sol! {
    /// EIP-2612 permit, signed by the token holder.
    #[derive(Debug)]
    struct Permit {
        address owner;
        address spender;
        uint256 value;
        uint256 nonce;
        uint256 deadline;
    }
}

pub use GpuEscrow::Rental;
