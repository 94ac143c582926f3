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

        error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
        error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
        error ERC20InvalidSender(address sender);
        error ERC20InvalidReceiver(address receiver);
    }
}

pub use GpuEscrow::Rental;
