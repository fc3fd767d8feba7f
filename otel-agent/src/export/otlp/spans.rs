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
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SpanData, SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;
use rustc_hash::FxHashMap;
use semconv::model::{Exchange, ProcessInfo};
use semconv::spans::{span, SpanKind, SpanStatus};
use semconv::value::{AttrValue, Attribute};

/// The agent's name and version, as `telemetry.distro.*`.
pub const DISTRO_NAME: &str = "otel-agent";
/// The agent's version.
pub const DISTRO_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Process resources remembered at most; past that the cache starts over.
const MAX_RESOURCES: usize = 4096;

/// Builds one span (with its process resource) and records the HTTP metrics
/// for each exchange.
pub struct SpanBuilder {
    /// By the address of the process identity (see `resource_of`).
    resources: FxHashMap<usize, (Arc<ProcessInfo>, Arc<Resource>)>,
    service_name: Option<String>,
    resource_attributes: BTreeMap<String, String>,
    host_name: String,
    ids: Box<dyn IdGenerator>,
    scope: InstrumentationScope,
}

impl SpanBuilder {
    /// `service_name`: fixed, or `None` for the executable's name;
    /// `resource_attributes` go on every process resource.
    pub fn new(
        service_name: Option<String>,
        resource_attributes: BTreeMap<String, String>,
        host_name: String,
    ) -> Self {
        Self {
            resources: FxHashMap::default(),
            service_name,
            resource_attributes,
            host_name,
            ids: Box::new(RandomIdGenerator::default()),
            scope: InstrumentationScope::builder(DISTRO_NAME)
                .with_version(DISTRO_VERSION)
                .build(),
        }
    }

    /// Take trace and span ids from `ids` instead of random ones (golden
    /// tests give fixed ids).
    pub fn with_id_generator(mut self, ids: Box<dyn IdGenerator>) -> Self {
        self.ids = ids;
        self
    }

    /// The exchange's span and the resource of its process.
    pub fn span(&mut self, ex: &Exchange) -> (Arc<Resource>, SpanData) {
        (self.resource_of(&ex.connection.process), self.span_data(ex))
    }

    fn resource_of(&mut self, p: &Arc<ProcessInfo>) -> Arc<Resource> {
        if self.resources.len() > MAX_RESOURCES {
            self.resources.clear();
        }
        // One identity per process (the tracker's cache shares it): the pointer is the key.
        let key = Arc::as_ptr(p) as usize;
        let (service_name, host_name) = (self.service_name.as_deref(), self.host_name.as_str());
        let extra = &self.resource_attributes;
        self.resources
            .entry(key)
            .or_insert_with(|| {
                let attrs = semconv::resource::process_resource(p, service_name, host_name);
                // Holding the identity keeps its address from being reused while keyed.
                let resource = Arc::new(
                    Resource::builder_empty()
                        .with_detector(Box::new(TelemetryResourceDetector))
                        .with_attributes(
                            extra
                                .iter()
                                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
                        )
                        .with_attributes(key_values(attrs))
                        .with_attributes([
                            KeyValue::new("telemetry.distro.name", DISTRO_NAME),
                            KeyValue::new("telemetry.distro.version", DISTRO_VERSION),
                        ])
                        .build(),
                );
                (p.clone(), resource)
            })
            .1
            .clone()
    }

    fn span_data(&self, ex: &Exchange) -> SpanData {
        let r = span(ex);
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

/// Spans grouped by the resource of their process (one export request each),
/// groups in order of first appearance.
pub fn group_by_resource(
    batch: Vec<(Arc<Resource>, SpanData)>,
) -> Vec<(Arc<Resource>, Vec<SpanData>)> {
    let mut groups: Vec<(Arc<Resource>, Vec<SpanData>)> = Vec::new();
    for (res, span) in batch {
        match groups.iter_mut().find(|(r, _)| Arc::ptr_eq(r, &res)) {
            Some((_, spans)) => spans.push(span),
            None => groups.push((res, vec![span])),
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
