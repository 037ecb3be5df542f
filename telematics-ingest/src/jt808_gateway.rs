//! The JT/T 808 side of a gateway connection: Beidou vehicle terminals (2013 and 2019
//! headers) register and authenticate by their phone number, and send location reports,
//! which are decoded here and handed to ingest in process ([`crate::intake`]); each is
//! answered only once it is durable.
//!
//! A terminal is known by the `terminal_phone` of a registered vehicle. The authentication
//! code a registration gives is kept with the vehicle, so any instance (and a restarted one)
//! accepts it: a gateway holds nothing beyond its connections ([`crate::gateway`]).

mod connection;

pub(crate) use connection::Jt808;
