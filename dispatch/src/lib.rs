//! Dispatch: which car serves which order, and the loop that applies it (docs/dispatch.md).
//!
//! Two layers. The matching engine ([`solver`], [`batch`], [`index`], [`pick`]) is pure and
//! synchronous: no storage, no clock, no tasks, so it is unit- and property-tested on its own
//! and benchmarked without a database. The [`service`] around it is the batch loop that does
//! have all three: it reads due orders and available cars from storage on a timer, calls the
//! engine, records assignments and waiting reasons, expires unanswered offers, and announces
//! changes on the bus (one instance of a cluster leads it at a time). The feasibility rule
//! itself is shared with the API's manual assignment and so lives in
//! `fleet_domain::feasibility`.
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
