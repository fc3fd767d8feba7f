//! Sends encoded OTLP export requests (`ExportTraceServiceRequest`,
//! `ExportMetricsServiceRequest`) to the collector: gRPC (tonic, with a
//! codec that passes the bytes through) or HTTP/protobuf (reqwest), with
//! the configured headers, timeout, gzip and TLS — what the SDK's
//! exporters do, minus their conversion of SDK data, so that a request is
//! encoded once and a retry resends the same bytes.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use otel_agent_config::{Compression, Protocol};
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use super::{grpc_tls, http_client, OtlpConfig, OtlpError};

/// The gRPC method of OTLP traces.
pub const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// The gRPC method of OTLP metrics.
pub const METRICS_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
/// OTLP/HTTP's content type.
const PROTOBUF: &str = "application/x-protobuf";

/// Why one export attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The gRPC call failed (status from the collector or the transport).
    #[error("gRPC: {0}")]
    Grpc(#[from] tonic::Status),
    /// The gRPC channel was not ready.
    #[error("gRPC channel: {0}")]
    Channel(String),
    /// The HTTP request could not be sent.
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// The collector answered with an error status.
    #[error("HTTP status {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The body could not be compressed.
    #[error("gzip: {0}")]
    Gzip(#[from] std::io::Error),
}

/// Where encoded requests of one signal go (a clone shares the connection).
#[derive(Clone)]
pub enum OtlpTransport {
    /// OTLP/gRPC.
    Grpc {
        /// The signal's export method ([`TRACES_PATH`], [`METRICS_PATH`]).
        path: &'static str,
        /// The client over a lazily connected channel.
        grpc: tonic::client::Grpc<Channel>,
        /// Configured headers, as gRPC metadata.
        metadata: tonic::metadata::MetadataMap,
        /// Request timeout.
        timeout: Duration,
    },
    /// OTLP/HTTP with protobuf bodies.
    Http {
        /// The HTTP client (TLS settings applied).
        client: reqwest::Client,
        /// The signal's URL.
        url: String,
        /// Configured headers.
        headers: http::HeaderMap,
        /// Gzip request bodies.
        gzip: bool,
    },
}

/// Headers from the settings that are valid HTTP header names and values
/// (the settings are validated; anything else is skipped, as the SDK does).
pub fn header_map(cfg: &OtlpConfig) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    for (k, v) in &cfg.headers {
        if let (Ok(k), Ok(v)) = (
            k.parse::<http::HeaderName>(),
            v.parse::<http::HeaderValue>(),
        ) {
            headers.insert(k, v);
        }
    }
    headers
}

impl OtlpTransport {
    /// The transport to `url` with `cfg`'s protocol and settings; `path`:
    /// the signal's gRPC method. Must run inside the tokio runtime (the
    /// gRPC channel connects lazily on it).
    pub fn new(cfg: &OtlpConfig, url: &str, path: &'static str) -> Result<Self, OtlpError> {
        let build = |reason: String| OtlpError::Transport {
            url: url.to_string(),
            reason,
        };
        Ok(match cfg.protocol {
            Protocol::Grpc => {
                let mut endpoint = Channel::from_shared(url.to_string())
                    .map_err(|e| build(e.to_string()))?
                    .timeout(cfg.timeout);
                if let Some(tls) = grpc_tls(&cfg.tls)? {
                    endpoint = endpoint.tls_config(tls).map_err(|e| build(e.to_string()))?;
                }
                let mut grpc = tonic::client::Grpc::new(endpoint.connect_lazy());
                if cfg.compression == Compression::Gzip {
                    grpc = grpc.send_compressed(CompressionEncoding::Gzip);
                }
                OtlpTransport::Grpc {
                    path,
                    grpc,
                    metadata: tonic::metadata::MetadataMap::from_headers(header_map(cfg)),
                    timeout: cfg.timeout,
                }
            }
            Protocol::HttpProtobuf => OtlpTransport::Http {
                client: http_client(&cfg.tls, cfg.timeout)?,
                url: url.to_string(),
                headers: header_map(cfg),
                gzip: cfg.compression == Compression::Gzip,
            },
        })
    }

    /// Send one request body; Ok when the collector accepted it.
    pub async fn send(&mut self, body: Bytes) -> Result<(), SendError> {
        match self {
            OtlpTransport::Grpc {
                path,
                grpc,
                metadata,
                timeout,
            } => {
                grpc.ready()
                    .await
                    .map_err(|e| SendError::Channel(e.to_string()))?;
                let mut request = tonic::Request::new(body);
                *request.metadata_mut() = metadata.clone();
                request.set_timeout(*timeout);
                grpc.unary(request, PathAndQuery::from_static(path), RawCodec)
                    .await?;
                Ok(())
            }
            OtlpTransport::Http {
                client,
                url,
                headers,
                gzip,
            } => {
                let mut request = client
                    .post(url.as_str())
                    .header(http::header::CONTENT_TYPE, PROTOBUF)
                    .headers(headers.clone());
                let body = if *gzip {
                    request = request.header(http::header::CONTENT_ENCODING, "gzip");
                    Bytes::from(gzip_bytes(&body)?)
                } else {
                    body
                };
                let response = request.body(body).send().await?;
                let status = response.status();
                if status.is_success() {
                    return Ok(());
                }
                let text = response.text().await.unwrap_or_default();
                Err(SendError::Status {
                    status: status.as_u16(),
                    body: text.chars().take(200).collect(),
                })
            }
        }
    }
}

fn gzip_bytes(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::default(),
    );
    enc.write_all(body)?;
    enc.finish()
}

/// A codec whose requests are already-encoded protobuf bytes and whose
/// responses (`Export*ServiceResponse`) are read and ignored: partial
/// success is not reported per item by collectors we know, and a rejected
/// request comes back as a gRPC status.
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ();
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ();
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Self::Error> {
        let n = src.remaining();
        src.advance(n);
        Ok(Some(()))
    }
}
