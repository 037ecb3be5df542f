//! The GB/T 32960.3 side of a gateway connection: vehicle terminals (and forwarding platforms)
//! send frames of either edition; reports are handed to ingest in process
//! ([`crate::intake`]) and answered only once they are durable. Connections are accepted,
//! capped and tracked by [`crate::gateway`].

mod connection;

pub(crate) use connection::Gbt32960;
