//! gRPC recognition of an exchange: service and method from `:path`, `grpc-status` and the percent-decoded `grpc-message` from the response.

use super::message::Message;

/// gRPC call details of an exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grpc {
    /// Fully qualified service, e.g. `helloworld.Greeter` (from `:path`).
    pub service: String,
    /// Method name, e.g. `SayHello` (from `:path`).
    pub method: String,
    /// `grpc-status` from the response trailers, or from the response headers
    /// of a trailers-only response.
    pub status: Option<u32>,
    /// `grpc-message`, percent-decoded, from the same place as `status`.
    pub message: Option<String>,
}

/// gRPC details when either side has a `content-type` of `application/grpc...`.
pub(super) fn grpc_of(request: Option<&Message>, response: Option<&Message>) -> Option<Grpc> {
    let is_grpc = [request, response].into_iter().flatten().any(|m| {
        m.pseudo("content-type").is_some_and(|ct| {
            ct.get(..16)
                .is_some_and(|p| p.eq_ignore_ascii_case("application/grpc"))
        })
    });
    if !is_grpc {
        return None;
    }
    let path = request.and_then(Message::path).unwrap_or_default();
    let path = path.strip_prefix('/').unwrap_or(path);
    let (service, method) = path.rsplit_once('/').unwrap_or((path, ""));
    let lookup = |name: &str| {
        response.and_then(|m| {
            m.trailers
                .iter()
                .chain(m.headers.iter())
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value.as_ref())
        })
    };
    Some(Grpc {
        service: service.to_string(),
        method: method.to_string(),
        status: lookup("grpc-status").and_then(|s| s.trim().parse().ok()),
        message: lookup("grpc-message").map(percent_decode),
    })
}

/// Decodes `%XX` escapes (as in `grpc-message`), lossily as UTF-8.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = |k: usize| b.get(k).and_then(|d| char::from(*d).to_digit(16));
            if let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use crate::http2::testutil::*;
    use crate::http2::Side::{Request as Req, Response as Resp};
    use crate::http2::{Grpc, Http2Stream, Limits};

    #[test]
    fn grpc_unary_built_from_frames() {
        let mut h2 = Http2Stream::new(Limits {
            max_body_capture: 64,
            ..Limits::default()
        });
        open(&mut h2);
        let block = Enc::default()
            .request("POST", "/pkg.Service/Method")
            .lit("content-type", "application/grpc")
            .lit("te", "trailers")
            .done();
        h2.push(Req, 10, &headers(1, false, &block));
        h2.push(Req, 11, &data(1, true, &[0, 0, 0, 0, 3, 1, 2, 3]));
        let block = Enc::default()
            .status(200)
            .lit("content-type", "application/grpc+proto")
            .done();
        h2.push(Resp, 12, &headers(1, false, &block));
        h2.push(Resp, 13, &data(1, false, &[0, 0, 0, 0, 2, 9, 9]));
        let trailers = Enc::default()
            .lit("grpc-status", "0")
            .lit("grpc-message", "all%20good")
            .done();
        h2.push(Resp, 14, &headers(1, true, &trailers));
        let out = h2.drain();
        assert_eq!(out.len(), 1);
        let e = &out[0];
        assert_eq!(
            e.grpc,
            Some(Grpc {
                service: "pkg.Service".into(),
                method: "Method".into(),
                status: Some(0),
                message: Some("all good".into()),
            })
        );
        assert_eq!(req(e).body.as_deref(), Some(&[0, 0, 0, 0, 3, 1, 2, 3][..]));
        assert_eq!(resp(e).body_size, 7);
        assert_eq!((req(e).start_ns, req(e).end_ns), (10, 11));
        assert_eq!((resp(e).start_ns, resp(e).end_ns), (12, 14));
        assert!(!e.partial);
    }
}
