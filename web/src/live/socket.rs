//! The live feed's WebSocket: the upgrade (RFC 6455 §4.2) and a socket that sends a large
//! message in fragments.
//!
//! Why not axum's `WebSocket`: it cannot send a message in fragments, and tungstenite copies
//! each frame whole into the connection's write buffer and keeps that capacity for the
//! connection's life. Every live-feed connection then held the size of the largest message it
//! ever sent (a 10,000-car snapshot is 1.75 MB: 200 dispatcher screens held ~400 MiB). Sent
//! in fragments of at most [`FRAGMENT`] bytes, a connection's buffer stays near that size.

use std::future::Future;

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
pub(crate) use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
pub(crate) use tokio_tungstenite::tungstenite::{Error, Message, Utf8Bytes};
use tokio_util::task::TaskTracker;

use crate::error::ApiError;

/// Largest fragment of a text message. Messages up to this size go out as one frame.
pub(crate) const FRAGMENT: usize = 64 * 1024;
/// Bytes gathered before tungstenite writes to the socket (its default is 128 KiB).
const WRITE_BUFFER: usize = FRAGMENT;

/// A valid WebSocket upgrade request (HTTP/1.1 GET with the handshake headers).
pub(crate) struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let refuse = |why: &str| ApiError::BadRequest(format!("expected a WebSocket upgrade: {why}"));
        if parts.method != Method::GET {
            return Err(refuse("the method must be GET"));
        }
        if !has_token(parts, header::CONNECTION, "upgrade") {
            return Err(refuse("no `Connection: upgrade` header"));
        }
        if !has_token(parts, header::UPGRADE, "websocket") {
            return Err(refuse("no `Upgrade: websocket` header"));
        }
        if parts.headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
            return Err(refuse("`Sec-WebSocket-Version` must be 13"));
        }
        let key = parts
            .headers
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or_else(|| refuse("no `Sec-WebSocket-Key` header"))?;
        let on_upgrade =
            parts.extensions.remove::<OnUpgrade>().ok_or_else(|| refuse("this connection cannot be upgraded"))?;
        Ok(Self { key, on_upgrade })
    }
}

/// Whether a comma-separated header has `token` (case-insensitive), in any of its lines.
fn has_token(parts: &Parts, name: HeaderName, token: &str) -> bool {
    parts
        .headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

impl Upgrade {
    /// Answers 101 and serves the connection with `serve`, in a task on `tasks`, once the
    /// client has switched. `max_incoming` caps what the client may send (a message and a
    /// frame).
    pub(crate) fn on_upgrade<F, Fut>(
        self,
        tasks: &TaskTracker,
        read_buffer: usize,
        max_incoming: usize,
        serve: F,
    ) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let config = WebSocketConfig::default()
            .read_buffer_size(read_buffer)
            .write_buffer_size(WRITE_BUFFER)
            .max_message_size(Some(max_incoming))
            .max_frame_size(Some(max_incoming));
        let on_upgrade = self.on_upgrade;
        tasks.spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let stream =
                        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
                    serve(Socket(stream)).await;
                }
                Err(e) => tracing::debug!(error = %e, "live feed upgrade failed"),
            }
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(self.key.as_bytes())) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}

/// A server-side WebSocket connection.
pub(crate) struct Socket(WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>);

impl Socket {
    /// Sends a message; a text larger than [`FRAGMENT`] goes out in fragments.
    pub(crate) async fn send(&mut self, msg: Message) -> Result<(), Error> {
        match msg {
            Message::Text(text) if text.len() > FRAGMENT => {
                for frame in fragments(Bytes::from(text)) {
                    // `feed` waits until the previous fragment has left the buffer.
                    self.0.feed(Message::Frame(frame)).await?;
                }
                self.0.flush().await
            }
            other => self.0.send(other).await,
        }
    }

    /// The next message from the client; pings are answered by the socket itself.
    pub(crate) async fn recv(&mut self) -> Option<Result<Message, Error>> {
        self.0.next().await
    }
}

/// A text message's frames: the first a text frame, the rest continuations, the last final;
/// cut at UTF-8 character boundaries (RFC 6455 allows any cut, but a client that decodes
/// fragment by fragment is spared a split character).
fn fragments(bytes: Bytes) -> Vec<Frame> {
    let mut frames = Vec::with_capacity(bytes.len() / FRAGMENT + 1);
    let mut start = 0;
    while start < bytes.len() {
        let mut end = (start + FRAGMENT).min(bytes.len());
        // A UTF-8 continuation byte is 0b10xx_xxxx: back off to the character's first byte.
        while end < bytes.len() && end > start + 1 && bytes[end] & 0xC0 == 0x80 {
            end -= 1;
        }
        let opcode = if start == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
        frames.push(Frame::message(bytes.slice(start..end), opcode, end == bytes.len()));
        start = end;
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_text_is_cut_into_fragments_at_character_boundaries() {
        // 3-byte characters so that plain cuts at FRAGMENT would split one.
        let text: String = std::iter::repeat_n("浙L12345,", 20_000).collect();
        let bytes = Bytes::from(text.clone());
        let frames = fragments(bytes);
        assert!(frames.len() >= 3);
        let mut joined = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            let h = f.header();
            let want = if i == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
            assert_eq!(h.opcode, want);
            assert_eq!(h.is_final, i == frames.len() - 1);
            assert!(f.payload().len() <= FRAGMENT);
            assert!(std::str::from_utf8(f.payload()).is_ok(), "fragment {i} holds whole characters");
            joined.extend_from_slice(f.payload());
        }
        assert_eq!(joined, text.as_bytes());
    }
}
