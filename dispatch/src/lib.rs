//! fleet-dispatch
