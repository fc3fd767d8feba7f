//! Exchanges → OTLP span data: the part of the OTLP span export
//! that does not touch the network. The exporter queues what this builds;
//! the pipeline benchmark (`cargo bench -p otel-agent --bench pipeline`)
//! runs it on replayed captures and encodes the result as the exporter would.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::logs::AnyValue;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind as OtelSpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SpanData, SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;
use semconv::model::{Exchange, ProcessInfo};
use semconv::options::MappingOptions;
use semconv::spans::{span, SpanKind, SpanStatus};
use semconv::value::{AttrValue, Attribute};

use super::resources::{ProcessResource, ProcessResources};

/// The agent's name and version, as `telemetry.distro.*`.
pub const DISTRO_NAME: &str = "otel-agent";
/// The agent's version.
pub const DISTRO_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Builds one span (with its process resource) and records the HTTP metrics
/// for each exchange.
pub struct SpanBuilder {
    resources: ProcessResources,
    options: MappingOptions,
    ids: Box<dyn IdGenerator>,
    scope: InstrumentationScope,
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
            ids: Box::new(RandomIdGenerator::default()),
            scope: InstrumentationScope::builder(DISTRO_NAME)
                .with_version(DISTRO_VERSION)
                .build(),
        }
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
    }

    /// Take trace and span ids from `ids` instead of random ones (golden
    /// tests give fixed ids).
    pub fn with_id_generator(mut self, ids: Box<dyn IdGenerator>) -> Self {
        self.ids = ids;
        self
    }

    /// The mapping options the spans are built with.
    pub fn options(&self) -> &MappingOptions {
        &self.options
    }

    /// The exchange's span and the resource of its process.
    pub fn span(&mut self, ex: &Exchange) -> (Arc<Resource>, SpanData) {
        (
            self.resource_of(&ex.connection.process).resource,
            self.span_data(ex),
        )
    }

    /// The resource of process `p`: the one its spans, HTTP metrics and
    /// connection reports go out under.
    pub fn resource_of(&mut self, p: &Arc<ProcessInfo>) -> ProcessResource {
        self.resources.resource_of(p)
    }

    fn span_data(&self, ex: &Exchange) -> SpanData {
        let r = span(ex, &self.options);
        let trace_id = r.parent.as_ref().map_or_else(
            || self.ids.new_trace_id(),
            |p| TraceId::from_bytes(p.trace_id),
        );
        let parent_span_id = r
            .parent
            .as_ref()
            .map_or(SpanId::INVALID, |p| SpanId::from_bytes(p.span_id));
        SpanData {
            span_context: SpanContext::new(
                trace_id,
                self.ids.new_span_id(),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id,
            parent_span_is_remote: r.parent.is_some(),
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
        }
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
mod tests {
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

    fn process(pid: u32, exe: &str) -> Arc<ProcessInfo> {
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
        }
    }

    fn client(p: &Arc<ProcessInfo>, status: u16) -> Exchange {
        exchange(p, Direction::EgressExternal, status)
    }

    fn server(p: &Arc<ProcessInfo>, status: u16) -> Exchange {
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
        assert_eq!(b.span(&client(&p, 200)).1.span_kind, OtelSpanKind::Client);
        let internal = exchange(&p, Direction::EgressInternal, 200);
        assert_eq!(b.span(&internal).1.span_kind, OtelSpanKind::Client);
        assert_eq!(b.span(&server(&p, 200)).1.span_kind, OtelSpanKind::Server);
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
            assert_eq!(b.span(&server(&p, status)).1.status, expected, "{status}");
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
            assert_eq!(b.span(&client(&p, status)).1.status, expected, "{status}");
        }
    }

    #[test]
    fn a_captured_traceparent_gives_the_trace_and_remote_parent() {
        let mut b = builder(None);
        let mut ex = server(&process(1, "/usr/sbin/nginx"), 200);
        if let Some(r) = ex.request.as_mut() {
            r.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        }
        let (_, span) = b.span(&ex);
        assert_eq!(
            span.span_context.trace_id(),
            TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736)
        );
        assert_eq!(span.parent_span_id, SpanId::from(0x00f0_67aa_0ba9_02b7));
        assert!(span.parent_span_is_remote);
        // The span itself is new.
        assert_eq!(span.span_context.span_id(), SpanId::from(1));
        assert!(span.span_context.is_sampled());
    }

    #[test]
    fn without_a_traceparent_the_ids_come_from_the_generator() {
        let mut b = builder(None);
        let p = process(1, "/usr/bin/curl");
        let (_, first) = b.span(&client(&p, 200));
        let (_, second) = b.span(&client(&p, 200));
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
        let (_, span) = b.span(&ex);
        assert_eq!(span.span_context.trace_id(), TraceId::from(TRACE));
        assert_eq!(span.parent_span_id, SpanId::INVALID);
        assert!(!span.parent_span_is_remote);
    }

    #[test]
    fn span_times_come_from_the_exchange() {
        let mut b = builder(None);
        let p = process(1, "/usr/bin/curl");
        let (_, span) = b.span(&client(&p, 200));
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
        let (_, span) = b.span(&backwards);
        assert_eq!(
            span.end_time, span.start_time,
            "never ends before it starts"
        );
    }

    #[test]
    fn span_name_attributes_and_scope() {
        let mut b = builder(None);
        let (_, span) = b.span(&client(&process(1, "/usr/bin/curl"), 201));
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
            .map(|p| b.span(&client(p, 200)))
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
}
