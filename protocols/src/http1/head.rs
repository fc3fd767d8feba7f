//! Message heads: the request line, the status line and header fields parsed with httparse, salvaged when cut short, and trailer sections.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use super::body::FramingFields;
use super::message::{Header, Request, Response, Side};
use super::pairing::Progress;
use crate::names::StaticNames;

/// Which header fields a parsed head keeps (see `Limits::keep_headers`).
type Keep = Option<StaticNames>;

/// Headers parsed with a stack array before falling back to a larger one.
const FAST_HEADER_COUNT: usize = 64;
/// Largest number of headers accepted in one message head.
const MAX_HEADER_COUNT: usize = 256;

/// Request head fields.
#[derive(Debug)]
pub(super) struct ReqHead {
    pub(super) method: String,
    pub(super) target: String,
    pub(super) version: u8,
    pub(super) headers: Vec<Header>,
    /// What all its fields say about the body (kept or not).
    pub(super) framing: FramingFields,
}

/// Response head fields.
#[derive(Debug)]
pub(super) struct RespHead {
    pub(super) status: u16,
    pub(super) reason: String,
    pub(super) version: u8,
    pub(super) headers: Vec<Header>,
    /// What all its fields say about the body (kept or not).
    pub(super) framing: FramingFields,
    pub(super) informational: Vec<u16>,
}

/// A parsed head of either side.
#[derive(Debug)]
pub(super) enum Head {
    Request(ReqHead),
    Response(RespHead),
}

impl ReqHead {
    pub(super) fn into_request(self, p: Progress) -> Request {
        Request {
            method: self.method,
            target: self.target,
            version: self.version,
            headers: self.headers,
            body_size: p.body_size,
            body: p.body,
            body_truncated: p.truncated,
            body_capped: p.capped,
            start_ns: p.start_ns,
            end_ns: p.end_ns,
            complete: p.complete,
            wire_bytes: p.wire_bytes,
        }
    }
}

impl RespHead {
    pub(super) fn into_response(self, p: Progress) -> Response {
        Response {
            status: self.status,
            reason: self.reason,
            version: self.version,
            headers: self.headers,
            body_size: p.body_size,
            body: p.body,
            body_truncated: p.truncated,
            body_capped: p.capped,
            start_ns: p.start_ns,
            end_ns: p.end_ns,
            complete: p.complete,
            informational: self.informational,
            wire_bytes: p.wire_bytes,
        }
    }
}

/// Parses a complete trailer section (the fields `keep` selects); malformed
/// trailers are dropped.
pub(super) fn parse_trailers(buf: &[u8], keep: Keep) -> Vec<Header> {
    let mut headers = [httparse::EMPTY_HEADER; FAST_HEADER_COUNT];
    match httparse::parse_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete((_, parsed))) => convert_headers(parsed, keep),
        _ => Vec::new(),
    }
}

/// A lenient httparse configuration, as fits a passive observer.
fn parser_config() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .ignore_invalid_headers_in_responses(true)
        .ignore_invalid_headers_in_requests(true);
    config
}

/// Head length and head, `None` while incomplete.
type Parsed<T> = Result<Option<(usize, T)>, httparse::Error>;

pub(super) fn parse_head(side: Side, buf: &[u8], keep: Keep) -> Parsed<Head> {
    Ok(match side {
        Side::Request => parse_request(buf, keep)?.map(|(n, h)| (n, Head::Request(h))),
        Side::Response => parse_response(buf, keep)?.map(|(n, h)| (n, Head::Response(h))),
    })
}

fn parse_request(buf: &[u8], keep: Keep) -> Parsed<ReqHead> {
    with_room_for_headers(buf, keep, parse_request_into)
}

/// `parse` with room for [`FAST_HEADER_COUNT`] fields on the stack, and
/// again with [`MAX_HEADER_COUNT`] when the head has more.
fn with_room_for_headers<T>(
    buf: &[u8],
    keep: Keep,
    parse: impl for<'b> Fn(&'b [u8], &mut [MaybeUninit<httparse::Header<'b>>], Keep) -> Parsed<T>,
) -> Parsed<T> {
    let mut headers = [const { MaybeUninit::uninit() }; FAST_HEADER_COUNT];
    match parse(buf, &mut headers, keep) {
        Err(httparse::Error::TooManyHeaders) => {
            parse(buf, &mut uninit_headers(MAX_HEADER_COUNT), keep)
        }
        other => other,
    }
}

fn parse_request_into<'b>(
    buf: &'b [u8],
    headers: &mut [MaybeUninit<httparse::Header<'b>>],
    keep: Keep,
) -> Parsed<ReqHead> {
    let mut req = httparse::Request::new(&mut []);
    Ok(
        match parser_config().parse_request_with_uninit_headers(&mut req, buf, headers)? {
            httparse::Status::Partial => None,
            httparse::Status::Complete(n) => Some((
                n,
                ReqHead {
                    method: req.method.unwrap_or_default().to_owned(),
                    target: req.path.unwrap_or_default().to_owned(),
                    version: req.version.unwrap_or(1),
                    framing: framing_fields(req.headers),
                    headers: convert_headers(req.headers, keep),
                },
            )),
        },
    )
}

fn parse_response(buf: &[u8], keep: Keep) -> Parsed<RespHead> {
    with_room_for_headers(buf, keep, parse_response_into)
}

fn parse_response_into<'b>(
    buf: &'b [u8],
    headers: &mut [MaybeUninit<httparse::Header<'b>>],
    keep: Keep,
) -> Parsed<RespHead> {
    let mut resp = httparse::Response::new(&mut []);
    Ok(
        match parser_config().parse_response_with_uninit_headers(&mut resp, buf, headers)? {
            httparse::Status::Partial => None,
            httparse::Status::Complete(n) => Some((
                n,
                RespHead {
                    status: resp.code.unwrap_or_default(),
                    reason: resp.reason.unwrap_or_default().to_owned(),
                    version: resp.version.unwrap_or(1),
                    framing: framing_fields(resp.headers),
                    headers: convert_headers(resp.headers, keep),
                    informational: Vec::new(),
                },
            )),
        },
    )
}

/// Room for `n` header fields, left uninitialised: httparse writes those it
/// parses. Initialising the stack array of 64 fields cost ~250 instructions
/// per head (bench/instructions.sh, callgrind).
fn uninit_headers<'b>(n: usize) -> Vec<MaybeUninit<httparse::Header<'b>>> {
    std::iter::repeat_with(MaybeUninit::uninit)
        .take(n)
        .collect()
}

/// Request line fields of an incomplete head, if at least the method was received.
pub(super) fn salvage_request(buf: &[u8]) -> Option<ReqHead> {
    let mut headers = [httparse::EMPTY_HEADER; 1];
    let mut req = httparse::Request::new(&mut headers);
    let _ = parser_config().parse_request(&mut req, buf);
    Some(ReqHead {
        method: req.method?.to_owned(),
        target: req.path.unwrap_or_default().to_owned(),
        version: req.version.unwrap_or(1),
        headers: Vec::new(),
        framing: FramingFields::default(),
    })
}

/// Status line fields of an incomplete head, if at least the status was received.
pub(super) fn salvage_response(buf: &[u8]) -> Option<RespHead> {
    let mut headers = [httparse::EMPTY_HEADER; 1];
    let mut resp = httparse::Response::new(&mut headers);
    let _ = parser_config().parse_response(&mut resp, buf);
    Some(RespHead {
        status: resp.code?,
        reason: resp.reason.unwrap_or_default().to_owned(),
        version: resp.version.unwrap_or(1),
        headers: Vec::new(),
        framing: FramingFields::default(),
        informational: Vec::new(),
    })
}

fn framing_fields(headers: &[httparse::Header<'_>]) -> FramingFields {
    FramingFields::of(headers.iter().map(|h| (h.name, h.value)))
}

/// Owned copies of the header fields `keep` selects (all for `None`; else
/// those named). At level `summary` the agent keeps a handful: copying every
/// field was ~6 % of the pipeline bench's time per exchange (perf, HTTP/1
/// summary).
fn convert_headers(headers: &[httparse::Header<'_>], keep: Keep) -> Vec<Header> {
    let owned = |h: &httparse::Header<'_>| Header {
        name: Cow::Owned(h.name.to_owned()),
        value: crate::text::lossy(h.value),
    };
    match keep {
        // Every field: the list is allocated once, at its size (a filtered
        // collect grows it 4 → 8 → 16, ~200 instructions per head at level
        // `details`: bench/instructions.sh, callgrind).
        None => headers.iter().map(owned).collect(),
        Some(names) => headers
            .iter()
            .filter_map(|h| {
                Some(Header {
                    name: Cow::Borrowed(names.find(h.name)?),
                    value: crate::text::lossy(h.value),
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nCookie: c\r\nTransfer-Encoding: chunked\r\nTraceparent: t\r\n\r\n";

    fn names(h: &Head) -> Vec<&str> {
        let headers = match h {
            Head::Request(r) => &r.headers,
            Head::Response(r) => &r.headers,
        };
        headers.iter().map(|h| h.name.as_ref()).collect()
    }

    #[test]
    fn kept_headers_are_the_named_ones_and_framing_is_read_from_all() {
        let (n, all) = parse_head(Side::Request, REQ, None).unwrap().unwrap();
        assert_eq!(n, REQ.len());
        assert_eq!(
            names(&all),
            [
                "Host",
                "Accept",
                "Cookie",
                "Transfer-Encoding",
                "Traceparent"
            ]
        );
        let (_, some) = parse_head(
            Side::Request,
            REQ,
            Some(StaticNames::new(&["host", "traceparent"])),
        )
        .unwrap()
        .unwrap();
        // Kept by the list: named as it names them.
        assert_eq!(names(&some), ["host", "traceparent"]);
        let (_, none) = parse_head(Side::Request, REQ, Some(StaticNames::new(&[])))
            .unwrap()
            .unwrap();
        assert!(names(&none).is_empty());
        let framing = |h: &Head| match h {
            Head::Request(r) => r.framing,
            Head::Response(r) => r.framing,
        };
        assert_eq!(framing(&none), framing(&all));
        assert_eq!(
            super::super::body::request_framing(&framing(&none)),
            super::super::body::Framing::Chunked
        );
    }
}
