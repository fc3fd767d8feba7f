//! Exchanges → OTLP span data: the part of the OTLP span export
//! that does not touch the network. The exporter queues what this builds;
//! the pipeline benchmark (`cargo bench -p otel-agent --bench pipeline`)
//! runs it on replayed captures and encodes the result as the exporter would.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::shedding;
use crate::export::connection_cache::ConnectionCache;
use opentelemetry::logs::AnyValue;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind as OtelSpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{IdGenerator, SpanData, SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;
use otel_agent_config::ClientSpanFromTraceparent;
use semconv::model::{Exchange, ProcessInfo};
use semconv::options::MappingOptions;
use semconv::spans::{
    connection_attributes, span, span_into_with, trace_place, ExchangeFacts, SpanKind, SpanStatus,
};
use semconv::trace_context::{LinkKind, TracePlace};
use semconv::value::{AttrValue, Attribute};

use super::buffer_pool::{BufferPool, BufferSource};
use super::resources::{ProcessResource, ProcessResources};
use super::span_proto::{encode_span, AttributeWriter, EncodedSpan, SpanIds, SPAN_ATTRIBUTES};
use crate::link::ids::{otel_ids, IdSource};

/// The agent's name and version, as `telemetry.distro.*`.
pub const DISTRO_NAME: &str = "otel-agent";
/// The agent's version.
pub const DISTRO_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Why the span of an exchange is not exported (the exporter counts each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanSkip {
    /// The caller's `traceparent` says the trace is not sampled (trace-flags
    /// bit 0 clear); the exchange still counts in the HTTP metrics.
    NotSampled,
    /// A client span whose id (the `traceparent` parent-id) the program's own
    /// instrumentation exports (`telemetry.client_span_from_traceparent: skip`).
    ClientSpanOfInstrumentedProgram,
    /// Shed under pressure: the trace's randomness is below the shedding
    /// level's threshold (`shedding`).
    Shed,
}

/// Trace id, span id, parent span id (invalid for none), whether the parent
/// is remote, and the trace state.
type Ids = (TraceId, SpanId, SpanId, bool, TraceState);

/// The largest buffer a span starts with (a span with large header
/// attributes grows its own).
const MAX_SPAN_HINT: usize = 8 * 1024;

/// Builds one span (with its process resource) and records the HTTP metrics
/// for each exchange.
pub struct SpanBuilder {
    resources: ProcessResources,
    options: MappingOptions,
    /// Ids for exchanges that come without (no linker ran: replays, tests).
    fallback: IdSource,
    scope: InstrumentationScope,
    client_spans: ClientSpanFromTraceparent,
    /// The largest span encoded so far (up to [`MAX_SPAN_HINT`]): the next
    /// one's buffer starts there. With the last span's size, every span
    /// larger than the one before (a CLIENT span after a SERVER one) grew
    /// its buffer once, copying it (~290 instructions per span on average,
    /// bench/instructions.sh, callgrind).
    encoded_len_hint: usize,
    /// The attributes of the span being encoded (reused).
    attributes: Vec<u8>,
    /// Each open connection's attributes, encoded once.
    connections: ConnectionCache,
    /// Where span buffers come from when the exporter gives them back
    /// (`buffer_pool`); `None`: each span a new buffer.
    buffers: Option<BufferSource>,
}

impl SpanBuilder {
    /// `service_name`: fixed, or `None` for the executable's name;
    /// `resource_attributes` go on every process resource; `options` (from
    /// the settings, see [`crate::export::mapping_options`]) steer the
    /// semantic-convention mapping.
    pub fn new(
        service_name: Option<String>,
        resource_attributes: BTreeMap<String, String>,
        host_name: String,
        options: MappingOptions,
    ) -> Self {
        Self {
            resources: ProcessResources::new(service_name, resource_attributes, host_name),
            options,
            fallback: IdSource::default(),
            scope: InstrumentationScope::builder(DISTRO_NAME)
                .with_version(DISTRO_VERSION)
                .build(),
            client_spans: ClientSpanFromTraceparent::Export,
            encoded_len_hint: 512,
            attributes: Vec::with_capacity(1024),
            connections: ConnectionCache::default(),
            buffers: None,
        }
    }

    /// What to do with the client span of a request carrying a valid
    /// `traceparent` (default: export it).
    pub fn with_client_spans(mut self, policy: ClientSpanFromTraceparent) -> Self {
        self.client_spans = policy;
        self
    }

    /// The span builder of an OTLP configuration (service name, resource
    /// attributes, mapping options) on host `host_name`.
    pub fn of_config(cfg: &super::OtlpConfig, host_name: String) -> Self {
        Self::new(
            cfg.service_name.clone(),
            cfg.resource_attributes.clone(),
            host_name,
            cfg.mapping.clone(),
        )
        .with_client_spans(cfg.client_span_from_traceparent)
    }

    /// Encode spans into buffers taken from `pool`, where the exporter
    /// gives them back.
    pub fn with_buffer_pool(mut self, pool: BufferPool) -> Self {
        self.buffers = Some(BufferSource::new(pool));
        self
    }

    /// For exchanges without ids, take trace and span ids from `ids`
    /// instead of random ones (golden tests give fixed ids).
    pub fn with_id_generator(mut self, ids: Box<dyn IdGenerator>) -> Self {
        self.fallback = IdSource::new(ids);
        self
    }

    /// The mapping options the spans are built with.
    pub fn options(&self) -> &MappingOptions {
        &self.options
    }

    /// The exchange's span and the resource of its process, or why the span
    /// is not exported.
    pub fn span(&mut self, ex: &Exchange) -> Result<(Arc<Resource>, SpanData), SpanSkip> {
        let data = self.span_data(ex)?;
        Ok((self.resource_of(&ex.connection.process).resource, data))
    }

    /// Exchanges without ids: client spans whose `traceparent` id had been
    /// taken already (a request sent again with the same header): each was
    /// exported as a child of that id, with an id of its own.
    pub fn repeated_client_span_ids(&self) -> u64 {
        self.fallback.repeated_client_span_ids()
    }

    /// The resource of process `p`: the one its spans, HTTP metrics and
    /// connection reports go out under.
    pub fn resource_of(&mut self, p: &Arc<ProcessInfo>) -> ProcessResource {
        self.resources.resource_of(p)
    }

    /// Connection `id` is closed: its encoded attributes go.
    pub fn forget_connection(&mut self, id: u64) {
        self.connections.forget(id);
    }

    /// The ids of the exchange's span, or why it is not exported: decided
    /// before any attribute is mapped.
    fn placed(&mut self, ex: &Exchange, shed_level: u32) -> Result<Ids, SpanSkip> {
        // Shed before any work on the span when its ids are known already.
        if let Some(ids) = &ex.ids {
            if ids.sampled && shedding::sheds(ids, shed_level) {
                return Err(SpanSkip::Shed);
            }
        }
        let trace = trace_place(ex, SpanKind::of(ex));
        let own;
        let placed = match &ex.ids {
            Some(ids) => ids,
            None => {
                own = self.fallback.place(&trace, LinkKind::Root);
                &own
            }
        };
        if !placed.sampled {
            return Err(SpanSkip::NotSampled);
        }
        if matches!(trace, TracePlace::Is(_))
            && self.client_spans == ClientSpanFromTraceparent::Skip
        {
            return Err(SpanSkip::ClientSpanOfInstrumentedProgram);
        }
        if ex.ids.is_none() && shedding::sheds(placed, shed_level) {
            return Err(SpanSkip::Shed);
        }
        let (trace_id, span_id, parent_span_id) = otel_ids(placed);
        let marked =
            (shed_level > 0).then(|| shedding::with_threshold(placed.state.as_deref(), shed_level));
        let trace_state = marked
            .as_deref()
            .or(placed.state.as_deref())
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        Ok((
            trace_id,
            span_id,
            parent_span_id,
            placed.parent_is_remote,
            trace_state,
        ))
    }

    /// The exchange's span encoded as an OTLP `Span` message (what the
    /// exporter queues) and the resource of its process, or why the span is
    /// not exported.
    /// Past shedding level 0 (`shedding`), only the spans of traces the
    /// level keeps, with the level's threshold in their trace state.
    pub fn encoded(
        &mut self,
        ex: &Exchange,
        shed_level: u32,
    ) -> Result<(Arc<Resource>, EncodedSpan), SpanSkip> {
        let process = self.resources.resource_of(&ex.connection.process);
        self.encoded_under(ex, None, &process, shed_level)
    }

    /// [`Self::encoded`] when the caller has the resource of the
    /// exchange's process already ([`Self::resource_of`]), and maybe its
    /// facts (worked out here otherwise): the exporter has both once for
    /// the span and the HTTP metrics.
    pub fn encoded_under(
        &mut self,
        ex: &Exchange,
        facts: Option<&ExchangeFacts<'_>>,
        process: &ProcessResource,
        shed_level: u32,
    ) -> Result<(Arc<Resource>, EncodedSpan), SpanSkip> {
        let (trace_id, span_id, parent_span_id, parent_is_remote, trace_state) =
            self.placed(ex, shed_level)?;
        let own;
        let facts = match facts {
            Some(f) => f,
            None => {
                own = ExchangeFacts::of(ex);
                &own
            }
        };
        let ids = SpanIds {
            trace_id: trace_id.to_bytes(),
            span_id: span_id.to_bytes(),
            parent_span_id: parent_span_id.to_bytes(),
            parent_is_remote,
            trace_flags: TraceFlags::SAMPLED.to_u8(),
            trace_state: trace_state.header(),
        };
        self.attributes.clear();
        // Written once per connection: ~900 instructions per span before
        // (bench/instructions.sh, callgrind).
        let connection = self.connections.get_or_write(&ex.connection, |c, buf| {
            connection_attributes(
                c,
                &mut AttributeWriter::new(SPAN_ATTRIBUTES, buf)
                    .with_process(&c.process, &process.span_attributes),
            );
        });
        let head = span_into_with(
            ex,
            facts,
            &self.options,
            &mut AttributeWriter::new(SPAN_ATTRIBUTES, &mut self.attributes)
                .with_connection(&ex.connection, connection),
        );
        let room = self.encoded_len_hint + 64;
        let mut buf = match &mut self.buffers {
            Some(source) => source.take(room),
            None => Vec::with_capacity(room),
        };
        encode_span(&head, &ids, &self.attributes, &mut buf);
        self.encoded_len_hint = self.encoded_len_hint.max(buf.len().min(MAX_SPAN_HINT));
        Ok((process.resource.clone(), EncodedSpan(buf)))
    }

    fn span_data(&mut self, ex: &Exchange) -> Result<SpanData, SpanSkip> {
        let (trace_id, span_id, parent_span_id, parent_span_is_remote, trace_state) =
            self.placed(ex, 0)?;
        let r = span(ex, &self.options);
        Ok(SpanData {
            span_context: SpanContext::new(
                trace_id,
                span_id,
                TraceFlags::SAMPLED,
                false,
                trace_state,
            ),
            parent_span_id,
            parent_span_is_remote,
            span_kind: match r.kind {
                SpanKind::Client => OtelSpanKind::Client,
                SpanKind::Server => OtelSpanKind::Server,
            },
            name: r.name.into(),
            start_time: time(r.start_unix_ns),
            end_time: time(r.end_unix_ns.max(r.start_unix_ns)),
            attributes: key_values(r.attributes),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: match r.status {
                SpanStatus::Unset => Status::Unset,
                SpanStatus::Error { description } => Status::error(description),
            },
            instrumentation_scope: self.scope.clone(),
        })
    }
}

/// Spans (or log records) grouped by the resource of their process (one
/// export request each), groups in order of first appearance.
pub fn group_by_resource<T>(batch: Vec<(Arc<Resource>, T)>) -> Vec<(Arc<Resource>, Vec<T>)> {
    let mut groups: Vec<(Arc<Resource>, Vec<T>)> = Vec::new();
    for (res, item) in batch {
        match groups.iter_mut().find(|(r, _)| Arc::ptr_eq(r, &res)) {
            Some((_, items)) => items.push(item),
            None => groups.push((res, vec![item])),
        }
    }
    groups
}

/// An OTel attribute value from a semconv one. Strings become reference
/// counted: a span is copied for each export attempt and again by the OTLP
/// encoder, and copying an `Arc<str>` allocates nothing.
fn otel_value(v: AttrValue) -> Value {
    match v {
        AttrValue::Str(s) => Value::String(StringValue::from(Arc::<str>::from(s))),
        AttrValue::Int(i) => Value::I64(i),
        AttrValue::Bool(b) => Value::Bool(b),
        AttrValue::StrArray(a) => Value::Array(Array::String(
            a.into_iter()
                .map(|s| StringValue::from(Arc::<str>::from(s)))
                .collect(),
        )),
    }
}

/// OTel key-values from semconv attributes.
pub fn key_values(attrs: Vec<Attribute>) -> Vec<KeyValue> {
    attrs
        .into_iter()
        .map(|a| KeyValue::new(a.key, otel_value(a.value)))
        .collect()
}

/// An OTel log value from a semconv one.
pub fn any_value(v: AttrValue) -> AnyValue {
    match v {
        AttrValue::Str(s) => AnyValue::String(s.into()),
        AttrValue::Int(i) => AnyValue::Int(i),
        AttrValue::Bool(b) => AnyValue::Boolean(b),
        AttrValue::StrArray(a) => AnyValue::ListAny(Box::new(
            a.into_iter().map(|s| AnyValue::String(s.into())).collect(),
        )),
    }
}

/// A system time from Unix nanoseconds.
pub fn time(unix_ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(unix_ns)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use opentelemetry::Key;
    use semconv::model::{Connection, Direction, Endpoints, L7Protocol, Request, Response};

    use super::*;

    /// Every trace id is `TRACE`; span ids count up from 1.
    #[derive(Debug, Default)]
    struct Fixed(AtomicU64);

    const TRACE: u128 = 0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c;

    impl IdGenerator for Fixed {
        fn new_trace_id(&self) -> TraceId {
            TraceId::from(TRACE)
        }
        fn new_span_id(&self) -> SpanId {
            SpanId::from(self.0.fetch_add(1, Ordering::Relaxed) + 1)
        }
    }

    fn builder(service_name: Option<&str>) -> SpanBuilder {
        let extra = BTreeMap::from([(
            "deployment.environment.name".to_string(),
            "test".to_string(),
        )]);
        SpanBuilder::new(
            service_name.map(str::to_string),
            extra,
            "web-1".into(),
            MappingOptions::default(),
        )
        .with_id_generator(Box::<Fixed>::default())
    }

    /// The exchange's span, which must be exported.
    fn exported(b: &mut SpanBuilder, ex: &Exchange) -> (Arc<Resource>, SpanData) {
        b.span(ex).expect("span exported")
    }

    pub(crate) fn process(pid: u32, exe: &str) -> Arc<ProcessInfo> {
        Arc::new(ProcessInfo {
            pid,
            exe: exe.into(),
            comm: exe.rsplit('/').next().unwrap_or(exe).into(),
            ..Default::default()
        })
    }

    /// 2026-01-01T00:00:00Z
    const START: u64 = 1_767_225_600_000_000_000;

    fn exchange(process: &Arc<ProcessInfo>, direction: Direction, status: u16) -> Exchange {
        Exchange {
            connection: Connection {
                id: 9,
                process: process.clone(),
                direction,
                endpoints: Endpoints {
                    local: "10.0.0.2:51000".parse().unwrap(),
                    remote: "10.0.0.9:8080".parse().unwrap(),
                },
                protocol: L7Protocol::Http1,
                tls: None,
            },
            request: Some(Request {
                method: "GET".into(),
                target: "/items".into(),
                authority: Some("api.example.com".into()),
                scheme: "http".into(),
                version: "1.1".into(),
                ..Default::default()
            }),
            response: Some(Response {
                status,
                ..Default::default()
            }),
            start_unix_ns: START + 1_000,
            end_unix_ns: START + 4_001_000,
            partial: false,
            gap: false,
            gap_causes: Vec::new(),
            http2: None,
            grpc: None,
            link: Default::default(),
            ids: None,
        }
    }

    pub(crate) fn client(p: &Arc<ProcessInfo>, status: u16) -> Exchange {
        exchange(p, Direction::EgressExternal, status)
    }

    pub(crate) fn server(p: &Arc<ProcessInfo>, status: u16) -> Exchange {
        exchange(p, Direction::Ingress, status)
    }

    fn attr(resource: &Resource, key: &'static str) -> Option<String> {
        resource
            .get(&Key::from_static_str(key))
            .map(|v| v.to_string())
    }

    fn span_attr(span: &SpanData, key: &str) -> Option<Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    }

    #[test]
    fn span_kind_follows_the_direction() {
        let mut b = builder(None);
        let p = process(1, "/usr/bin/curl");
        assert_eq!(
            exported(&mut b, &client(&p, 200)).1.span_kind,
            OtelSpanKind::Client
        );
        let internal = exchange(&p, Direction::EgressInternal, 200);
        assert_eq!(
            exported(&mut b, &internal).1.span_kind,
            OtelSpanKind::Client
        );
        assert_eq!(
            exported(&mut b, &server(&p, 200)).1.span_kind,
            OtelSpanKind::Server
        );
    }

    #[test]
    fn server_spans_fail_on_5xx_only() {
        let mut b = builder(None);
        let p = process(1, "/usr/sbin/nginx");
        for (status, expected) in [
            (200, Status::Unset),
            (404, Status::Unset),
            (499, Status::Unset),
            (500, Status::error("")),
            (503, Status::error("")),
        ] {
            assert_eq!(
                exported(&mut b, &server(&p, status)).1.status,
                expected,
                "{status}"
            );
        }
    }

    #[test]
    fn client_spans_fail_on_4xx_and_5xx() {
        let mut b = builder(None);
        let p = process(1, "/usr/bin/curl");
        for (status, expected) in [
            (200, Status::Unset),
            (302, Status::Unset),
            (400, Status::error("")),
            (404, Status::error("")),
            (503, Status::error("")),
        ] {
            assert_eq!(
                exported(&mut b, &client(&p, status)).1.status,
                expected,
                "{status}"
            );
        }
    }

    const TP_TRACE: u128 = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736;
    const TP_PARENT: u64 = 0x00f0_67aa_0ba9_02b7;

    /// `ex` with a `traceparent` (flags `flags`) and a `tracestate`.
    fn with_context(mut ex: Exchange, flags: &str, state: Option<&str>) -> Exchange {
        if let Some(r) = ex.request.as_mut() {
            r.traceparent = Some(format!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}"
            ));
            r.tracestate = state.map(str::to_string);
        }
        ex
    }

    #[test]
    fn a_server_span_is_the_child_of_the_traceparent_request() {
        let mut b = builder(None);
        let ex = with_context(server(&process(1, "/usr/sbin/nginx"), 200), "01", None);
        let (_, span) = exported(&mut b, &ex);
        assert_eq!(span.span_context.trace_id(), TraceId::from(TP_TRACE));
        assert_eq!(span.parent_span_id, SpanId::from(TP_PARENT));
        assert!(span.parent_span_is_remote);
        // The span itself is new.
        assert_eq!(span.span_context.span_id(), SpanId::from(1));
        assert!(span.span_context.is_sampled());
    }

    #[test]
    fn a_client_span_is_the_traceparent_request() {
        let mut b = builder(None);
        let ex = with_context(
            client(&process(1, "/usr/bin/curl"), 200),
            "01",
            Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        );
        let (_, span) = exported(&mut b, &ex);
        assert_eq!(span.span_context.trace_id(), TraceId::from(TP_TRACE));
        assert_eq!(span.span_context.span_id(), SpanId::from(TP_PARENT));
        assert_eq!(
            span.parent_span_id,
            SpanId::INVALID,
            "its parent is unknown"
        );
        assert!(!span.parent_span_is_remote);
        assert!(span.span_context.is_sampled());
        assert_eq!(
            span.span_context.trace_state().header(),
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
        );
    }

    #[test]
    fn a_repeated_client_request_gets_its_own_id_under_the_first() {
        let mut b = builder(None);
        let ex = with_context(client(&process(1, "/usr/bin/curl"), 200), "01", None);
        let (_, first) = exported(&mut b, &ex);
        let (_, retry) = exported(&mut b, &ex);
        assert_eq!(first.span_context.span_id(), SpanId::from(TP_PARENT));
        assert_eq!(retry.span_context.trace_id(), TraceId::from(TP_TRACE));
        assert_eq!(
            retry.span_context.span_id(),
            SpanId::from(1),
            "no duplicate id"
        );
        assert_eq!(retry.parent_span_id, SpanId::from(TP_PARENT));
        assert_eq!(b.repeated_client_span_ids(), 1);
    }

    #[test]
    fn a_not_sampled_traceparent_exports_no_span() {
        let mut b = builder(None);
        let p = process(1, "/usr/bin/curl");
        for ex in [
            with_context(client(&p, 200), "00", None),
            with_context(server(&p, 200), "00", None),
        ] {
            assert_eq!(b.span(&ex).err(), Some(SpanSkip::NotSampled));
        }
        // Other flag bits do not matter.
        assert!(b.span(&with_context(server(&p, 200), "03", None)).is_ok());
        assert!(b.span(&with_context(server(&p, 200), "02", None)).is_err());
    }

    #[test]
    fn skip_policy_drops_client_spans_with_a_traceparent_only() {
        let mut b = builder(None).with_client_spans(ClientSpanFromTraceparent::Skip);
        let p = process(1, "/usr/bin/python3");
        assert_eq!(
            b.span(&with_context(client(&p, 200), "01", None)).err(),
            Some(SpanSkip::ClientSpanOfInstrumentedProgram)
        );
        assert!(b.span(&with_context(server(&p, 200), "01", None)).is_ok());
        assert!(b.span(&client(&p, 200)).is_ok(), "no traceparent: exported");
    }

    #[test]
    fn an_invalid_tracestate_is_dropped_and_the_span_kept() {
        let mut b = builder(None);
        let ex = with_context(
            server(&process(1, "/usr/sbin/nginx"), 200),
            "01",
            Some("UPPER=1"),
        );
        let (_, span) = exported(&mut b, &ex);
        assert_eq!(span.span_context.trace_state().header(), "");
        assert_eq!(span.parent_span_id, SpanId::from(TP_PARENT));
    }

    #[test]
    fn without_a_traceparent_the_ids_come_from_the_generator() {
        let mut b = builder(None);
        let p = process(1, "/usr/bin/curl");
        let (_, first) = exported(&mut b, &client(&p, 200));
        let (_, second) = exported(&mut b, &client(&p, 200));
        assert_eq!(first.span_context.trace_id(), TraceId::from(TRACE));
        assert_eq!(first.span_context.span_id(), SpanId::from(1));
        assert_eq!(second.span_context.span_id(), SpanId::from(2));
        assert_eq!(first.parent_span_id, SpanId::INVALID);
        assert!(!first.parent_span_is_remote);
        // An invalid header is no parent either.
        let mut ex = client(&p, 200);
        if let Some(r) = ex.request.as_mut() {
            r.traceparent = Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01".into());
        }
        let (_, span) = exported(&mut b, &ex);
        assert_eq!(span.span_context.trace_id(), TraceId::from(TRACE));
        assert_eq!(span.parent_span_id, SpanId::INVALID);
        assert!(!span.parent_span_is_remote);
    }

    #[test]
    fn span_times_come_from_the_exchange() {
        let mut b = builder(None);
        let p = process(1, "/usr/bin/curl");
        let (_, span) = exported(&mut b, &client(&p, 200));
        assert_eq!(
            span.start_time,
            UNIX_EPOCH + Duration::from_nanos(START + 1_000)
        );
        assert_eq!(
            span.end_time,
            UNIX_EPOCH + Duration::from_nanos(START + 4_001_000)
        );
        let mut backwards = client(&p, 200);
        backwards.end_unix_ns = START;
        let (_, span) = exported(&mut b, &backwards);
        assert_eq!(
            span.end_time, span.start_time,
            "never ends before it starts"
        );
    }

    #[test]
    fn span_name_attributes_and_scope() {
        let mut b = builder(None);
        let (_, span) = exported(&mut b, &client(&process(1, "/usr/bin/curl"), 201));
        assert_eq!(span.name, "GET");
        assert_eq!(
            span_attr(&span, "http.request.method"),
            Some(Value::from("GET"))
        );
        assert_eq!(
            span_attr(&span, "http.response.status_code"),
            Some(Value::I64(201))
        );
        assert_eq!(
            span_attr(&span, "url.full"),
            Some(Value::from("http://api.example.com/items"))
        );
        assert_eq!(span_attr(&span, "tap.connection.id"), Some(Value::I64(9)));
        assert_eq!(span.instrumentation_scope.name(), DISTRO_NAME);
        assert_eq!(span.instrumentation_scope.version(), Some(DISTRO_VERSION));
        assert_eq!(span.dropped_attributes_count, 0);
    }

    #[test]
    fn group_by_resource_groups_in_order_of_first_appearance() {
        let mut b = builder(None);
        let (a, bb, c) = (
            process(1, "/usr/bin/a"),
            process(2, "/usr/bin/b"),
            process(3, "/usr/bin/c"),
        );
        // Span ids 1..=6 in batch order.
        let batch: Vec<_> = [&bb, &a, &bb, &c, &a, &bb]
            .into_iter()
            .map(|p| exported(&mut b, &client(p, 200)))
            .collect();
        let groups = group_by_resource(batch);
        let shape: Vec<(String, Vec<u64>)> = groups
            .iter()
            .map(|(r, spans)| {
                (
                    attr(r, "service.name").unwrap_or_default(),
                    spans
                        .iter()
                        .map(|s| u64::from_be_bytes(s.span_context.span_id().to_bytes()))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("b".to_string(), vec![1, 3, 6]),
                ("a".to_string(), vec![2, 5]),
                ("c".to_string(), vec![4]),
            ]
        );
        assert!(group_by_resource::<SpanData>(Vec::new()).is_empty());
    }

    /// The hand-written protobuf is what the SDK's conversion of the same
    /// span gives, for spans of every shape the mapping makes: a root,
    /// a child of a `traceparent` with a `tracestate`, an error, headers
    /// as string arrays.
    #[test]
    fn encoded_spans_equal_the_sdk_conversion() {
        use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
        use prost::Message as _;
        let p = process(1, "/usr/sbin/nginx");
        let mut with_headers = server(&p, 503);
        if let Some(r) = with_headers.request.as_mut() {
            r.headers = vec![
                semconv::model::Header {
                    name: "accept".into(),
                    value: "text/html".into(),
                },
                semconv::model::Header {
                    name: "accept".into(),
                    value: "*/*".into(),
                },
            ];
        }
        let mut no_response = client(&p, 200);
        no_response.response = None;
        no_response.partial = true;
        // Process attributes of every kind, written from what the span
        // builder encoded for the process.
        let full = Arc::new(ProcessInfo {
            command_args: vec!["python3".into(), "-m".into(), "http.server".into()],
            container_id: Some("0123abcd".into()),
            k8s_pod_uid: Some("pod-1".into()),
            ..(*process(7, "/usr/bin/python3")).clone()
        });
        let cases = [
            server(&full, 200),
            client(&full, 200),
            server(&p, 200),
            client(&p, 404),
            with_context(server(&p, 200), "01", Some("congo=t61rcWkgMzE")),
            with_context(client(&p, 200), "01", None),
            with_headers,
            no_response,
        ];
        let options = MappingOptions {
            span_request_headers: vec!["accept".into()],
            ..MappingOptions::default()
        };
        let mut arrays = 0;
        for ex in &cases {
            let mut sdk = builder(None);
            sdk.options = options.clone();
            let mut ours = builder(None);
            ours.options = options.clone();
            let (_, data) = exported(&mut sdk, ex);
            let (_, encoded) = ours.encoded(ex, 0).expect("span exported");
            let decoded = ProtoSpan::decode(encoded.0.as_slice()).expect("valid protobuf");
            assert_eq!(decoded, ProtoSpan::from(data), "{ex:?}");
            arrays += decoded
                .attributes
                .iter()
                .filter(|a| a.key == "http.request.header.accept")
                .count();
        }
        assert_eq!(arrays, 1, "the header case carries its string array");
    }

    /// Under shedding, a trace is kept or shed by its randomness (the last
    /// 56 bits of its id), and a kept span says its threshold in `ot`.
    #[test]
    fn shedding_keeps_whole_traces_and_marks_their_threshold() {
        use super::shedding::MAX_LEVEL as MAX_SHED_LEVEL;
        use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
        use prost::Message as _;
        let p = process(1, "/usr/sbin/nginx");
        // TRACE's randomness is 0x48eb…: about 0.28 of the range.
        let own = server(&p, 200);
        let mut b = builder(None);
        assert!(b.encoded(&own, 0).is_ok());
        assert!(matches!(b.encoded(&own, 1), Err(SpanSkip::Shed)));
        // TP_TRACE's is 0xce92…: about 0.81, kept at 1/2 and 1/4, not 1/8.
        let ex = with_context(server(&p, 200), "01", Some("congo=t61rcWkgMzE"));
        let (_, kept) = b.encoded(&ex, 2).expect("kept at level 2");
        let decoded = ProtoSpan::decode(kept.0.as_slice()).expect("valid protobuf");
        assert_eq!(decoded.trace_state, "ot=th:c,congo=t61rcWkgMzE");
        assert!(matches!(b.encoded(&ex, 3), Err(SpanSkip::Shed)));
        // A span not sampled upstream counts as that, whatever the level.
        let unsampled = with_context(server(&p, 200), "00", None);
        assert!(matches!(
            b.encoded(&unsampled, MAX_SHED_LEVEL),
            Err(SpanSkip::NotSampled)
        ));
        // Level 0: the trace state as received.
        let (_, all) = b.encoded(&ex, 0).expect("kept");
        let decoded = ProtoSpan::decode(all.0.as_slice()).expect("valid protobuf");
        assert_eq!(decoded.trace_state, "congo=t61rcWkgMzE");
    }
}
