//! What every parser of a connection's bytes offers the connection tracker:
//! the two halves of a conversation, and one trait to drive them.

/// Which half of the conversation bytes belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// Bytes sent by the client.
    Request,
    /// Bytes sent by the server.
    Response,
}

/// A parser of one connection's two byte streams into exchanges. The
/// tracker feeds it the bytes of each side in stream order, says where bytes
/// were lost, and takes the exchanges it has finished.
pub trait ExchangeParser {
    /// One parsed request/response pair (or one HTTP/2 stream).
    type Exchange;
    /// Bytes of one side, at kernel time `ts_ns`.
    fn push(&mut self, side: Side, ts_ns: u64, data: &[u8]);
    /// `len` bytes of one side were lost before `ts_ns`: the parser must not
    /// pair or report across the gap as if nothing happened.
    fn gap(&mut self, side: Side, ts_ns: u64, len: u64);
    /// The exchanges finished so far.
    fn drain(&mut self) -> Vec<Self::Exchange>;
    /// The connection closed: everything left, complete or partial.
    fn close(&mut self, ts_ns: u64) -> Vec<Self::Exchange>;
    /// Desynchronisations so far.
    fn parse_errors(&self) -> u64;
}

macro_rules! exchange_parser {
    ($stream:ty, $exchange:ty) => {
        impl ExchangeParser for $stream {
            type Exchange = $exchange;
            fn push(&mut self, side: Side, ts_ns: u64, data: &[u8]) {
                <$stream>::push(self, side, ts_ns, data)
            }
            fn gap(&mut self, side: Side, ts_ns: u64, len: u64) {
                <$stream>::gap(self, side, ts_ns, len)
            }
            fn drain(&mut self) -> Vec<$exchange> {
                <$stream>::drain(self)
            }
            fn close(&mut self, ts_ns: u64) -> Vec<$exchange> {
                <$stream>::close(self, ts_ns)
            }
            fn parse_errors(&self) -> u64 {
                <$stream>::parse_errors(self)
            }
        }
    };
}

exchange_parser!(crate::http1::Http1Stream, crate::http1::Exchange);
exchange_parser!(crate::http2::Http2Stream, crate::http2::Exchange);
