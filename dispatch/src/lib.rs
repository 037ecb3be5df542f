//! Dispatch's matching engine: which car serves which order (contract §6, issue 5).
//!
//! Pure and synchronous: no storage, no clock, no tasks. The batch loop that reads due
//! orders and available cars, calls this crate and records the result lives with the order
//! lifecycle; the feasibility rule itself is shared with the API's manual assignment and so
//! lives in `fleet_domain::feasibility`.
//!
//! - [`solver`]: exact minimum-cost rectangular assignment with forbidden pairs (most pairs
//!   first, then least cost), a shortest-augmenting-path Hungarian method.
//! - [`batch`]: a batch of due orders against candidate cars: feasible pairs costed by pickup
//!   road metres, the optimum, a waiting reason for every order left over, and the
//!   first-come-nearest greedy baseline.
//! - [`index`]: an H3 index of available cars with an exact nearest-first search by growing
//!   rings.
//! - [`pick`]: the nearest feasible car for one order, through the index.
//! - [`service`]: the batch loop (leader election, accept timeouts, recording assignments
//!   and waiting reasons, bus announcements) around the engine.

pub mod batch;
pub mod index;
pub mod pick;
pub mod service;
pub mod solver;

pub use batch::{
    BatchCar, BatchOrder, BatchOutcome, FeasiblePairs, Match, Waiting, assign_greedy, assign_optimal, feasible_pairs,
};
pub use index::{Candidate, CarIndex, InvalidPosition, Nearest, RESOLUTION};
pub use pick::{NoPick, Pick, pick_nearest};
pub use service::{Config, Dispatcher};
pub use solver::{Assignment, CostMatrix, MAX_COST, TooLarge, solve};
