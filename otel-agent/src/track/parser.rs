//! The parser of a connection's plaintext, by protocol, driven through the
//! parsers' one trait ([`protocols::ExchangeParser`]), and the limits every
//! parser of this agent gets — derived from the settings once, not per event.

use otel_agent_config::{CaptureLevel, Settings};
use protocols::http1::{self, Http1Stream};
use protocols::http2::{self, Http2Stream};
use protocols::{ExchangeParser, GapCause, Side};
use semconv::model::L7Protocol;

use crate::track::assemble::{Parsed, SUMMARY_HEADERS};

/// What every parser is allowed to keep, fixed by the settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParserLimits {
    /// Largest HTTP/1 head accepted.
    pub max_header_bytes: usize,
    /// Body bytes kept per message: the body limit when some rule can raise
    /// an exchange to level `full`, else 0 (bodies are never exported).
    pub max_body_capture: usize,
    /// Header fields the parsers keep (HTTP/1 and HTTP/2): all when some rule can raise
    /// an exchange to level `details` (headers are exported), else only
    /// those the assembly reads ([`SUMMARY_HEADERS`]).
    pub keep_headers: Option<protocols::names::StaticNames>,
}

impl ParserLimits {
    /// The limits the settings give.
    pub fn of(settings: &Settings) -> Self {
        let capture = &settings.capture;
        let possible = |level: CaptureLevel| {
            capture.level >= level || capture.rules.iter().any(|r| r.level >= Some(level))
        };
        let full_possible = possible(CaptureLevel::Full);
        Self {
            max_header_bytes: settings.limits.max_header_bytes,
            max_body_capture: if full_possible {
                capture.max_body_bytes
            } else {
                0
            },
            keep_headers: if possible(CaptureLevel::Details) {
                None
            } else {
                Some(SUMMARY_HEADERS)
            },
        }
    }
}

/// The parser of a connection's plaintext, by protocol.
pub(crate) enum Parser {
    Http1(Box<Http1Stream>),
    Http2(Box<Http2Stream>),
}

impl Parser {
    pub(crate) fn new(protocol: L7Protocol, limits: ParserLimits) -> Self {
        let ParserLimits {
            max_header_bytes,
            max_body_capture,
            keep_headers,
        } = limits;
        match protocol {
            L7Protocol::Http2 => Parser::Http2(Box::new(Http2Stream::new(http2::Limits {
                max_body_capture,
                keep_headers,
            }))),
            _ => Parser::Http1(Box::new(Http1Stream::new(http1::Limits {
                max_header_bytes,
                max_body_capture,
                keep_headers,
            }))),
        }
    }

    pub(crate) fn push(&mut self, side: Side, ts: u64, data: &[u8]) {
        match self {
            Parser::Http1(p) => ExchangeParser::push(&mut **p, side, ts, data),
            Parser::Http2(p) => ExchangeParser::push(&mut **p, side, ts, data),
        }
    }

    pub(crate) fn gap(&mut self, side: Side, ts: u64, len: u64, cause: GapCause) {
        match self {
            Parser::Http1(p) => ExchangeParser::gap(&mut **p, side, ts, len, cause),
            Parser::Http2(p) => ExchangeParser::gap(&mut **p, side, ts, len, cause),
        }
    }

    pub(crate) fn skippable(&self, side: Side) -> u64 {
        match self {
            Parser::Http1(p) => ExchangeParser::skippable(&**p, side),
            Parser::Http2(p) => ExchangeParser::skippable(&**p, side),
        }
    }

    pub(crate) fn skip(&mut self, side: Side, ts: u64, len: u64) {
        match self {
            Parser::Http1(p) => ExchangeParser::skip(&mut **p, side, ts, len),
            Parser::Http2(p) => ExchangeParser::skip(&mut **p, side, ts, len),
        }
    }

    pub(crate) fn tail_lost(&mut self, side: Side, ts: u64, cause: GapCause) {
        match self {
            Parser::Http1(p) => ExchangeParser::tail_lost(&mut **p, side, ts, cause),
            Parser::Http2(p) => ExchangeParser::tail_lost(&mut **p, side, ts, cause),
        }
    }

    /// The exchanges finished so far, appended to `out` (reused by the
    /// tracker: a new list per drained exchange, and its conversion, were
    /// ~300 instructions per exchange, bench/instructions.sh, callgrind).
    pub(crate) fn drain_into(&mut self, out: &mut Vec<Parsed>) {
        match self {
            Parser::Http1(p) => ExchangeParser::drain_into(&mut **p, out),
            Parser::Http2(p) => ExchangeParser::drain_into(&mut **p, out),
        }
    }

    pub(crate) fn close(&mut self, ts: u64) -> Vec<Parsed> {
        match self {
            Parser::Http1(p) => parsed(ExchangeParser::close(&mut **p, ts)),
            Parser::Http2(p) => parsed(ExchangeParser::close(&mut **p, ts)),
        }
    }

    pub(crate) fn parse_errors(&self) -> u64 {
        match self {
            Parser::Http1(p) => ExchangeParser::parse_errors(&**p),
            Parser::Http2(p) => ExchangeParser::parse_errors(&**p),
        }
    }
}

/// A parser's exchanges as the tracker's [`Parsed`].
fn parsed<E>(exchanges: Vec<E>) -> Vec<Parsed>
where
    Parsed: From<E>,
{
    exchanges.into_iter().map(Parsed::from).collect()
}
