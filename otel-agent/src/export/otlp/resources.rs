//! The OTLP resource of each observed process — the one place it is built:
//! spans, HTTP metrics and connection-report logs of a process all go out
//! under it (`semconv::resource::process_resource` plus the configured
//! resource attributes and the SDK and distro identity).

use std::collections::BTreeMap;
use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::Resource;
use rustc_hash::FxHashMap;
use semconv::model::ProcessInfo;

use super::span_proto::{AttributeWriter, SPAN_ATTRIBUTES};
use super::spans::{key_values, DISTRO_NAME, DISTRO_VERSION};

/// `resource` as an OTLP `Resource` message, and its schema URL.
pub fn proto_resource(
    resource: &Resource,
) -> (opentelemetry_proto::tonic::resource::v1::Resource, String) {
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    let r = ResourceAttributesWithSchema::from(resource);
    (
        opentelemetry_proto::tonic::resource::v1::Resource {
            attributes: r.attributes.0,
            dropped_attributes_count: 0,
            entity_refs: vec![],
        },
        r.schema_url.unwrap_or_default(),
    )
}

/// Process resources remembered at most; past that the cache starts over.
const MAX_RESOURCES: usize = 4096;

/// One observed process's resource and the key that tells it apart.
#[derive(Clone, Debug)]
pub struct ProcessResource {
    /// The resource itself.
    pub resource: Arc<Resource>,
    /// The process's pid.
    pub pid: u32,
    /// Equal for equal resources, different for different ones (the
    /// attributes written out in order): two process identities with the
    /// same attributes share one set of HTTP histograms by it, so their
    /// series are never exported twice.
    pub key: Arc<str>,
    /// The process attributes of its spans, encoded once
    /// ([`AttributeWriter::with_process`]).
    pub span_attributes: Arc<[u8]>,
}

/// Builds, and remembers, the resource of each observed process.
pub struct ProcessResources {
    /// By the address of the process identity (see [`Self::resource_of`]).
    by_identity: FxHashMap<usize, (Arc<ProcessInfo>, ProcessResource)>,
    service_name: Option<String>,
    resource_attributes: BTreeMap<String, String>,
    host_name: String,
}

impl ProcessResources {
    /// `service_name`: fixed, or `None` for the executable's name;
    /// `resource_attributes` go on every process resource.
    pub fn new(
        service_name: Option<String>,
        resource_attributes: BTreeMap<String, String>,
        host_name: String,
    ) -> Self {
        Self {
            by_identity: FxHashMap::default(),
            service_name,
            resource_attributes,
            host_name,
        }
    }

    /// The resource of process `p` (built on first use).
    pub fn resource_of(&mut self, p: &Arc<ProcessInfo>) -> ProcessResource {
        if self.by_identity.len() > MAX_RESOURCES {
            self.by_identity.clear();
        }
        // One identity per process (the tracker's cache shares it): the pointer is the key.
        let key = Arc::as_ptr(p) as usize;
        let (service_name, host_name) = (self.service_name.as_deref(), self.host_name.as_str());
        let extra = &self.resource_attributes;
        self.by_identity
            .entry(key)
            .or_insert_with(|| {
                // Holding the identity keeps its address from being reused while keyed.
                (p.clone(), build(p, service_name, host_name, extra))
            })
            .1
            .clone()
    }
}

fn build(
    p: &ProcessInfo,
    service_name: Option<&str>,
    host_name: &str,
    extra: &BTreeMap<String, String>,
) -> ProcessResource {
    let attrs = semconv::resource::process_resource(p, service_name, host_name);
    let key = format!("{extra:?}{attrs:?}");
    let resource = Resource::builder_empty()
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
        .build();
    let mut span_attributes = Vec::new();
    semconv::resource::process_attributes(
        p,
        &mut AttributeWriter::new(SPAN_ATTRIBUTES, &mut span_attributes),
    );
    ProcessResource {
        resource: Arc::new(resource),
        pid: p.pid,
        key: key.into(),
        span_attributes: span_attributes.into(),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::Key;

    use super::*;

    fn resources(service_name: Option<&str>) -> ProcessResources {
        let extra = BTreeMap::from([(
            "deployment.environment.name".to_string(),
            "test".to_string(),
        )]);
        ProcessResources::new(service_name.map(str::to_string), extra, "web-1".into())
    }

    fn process(pid: u32, exe: &str) -> Arc<ProcessInfo> {
        Arc::new(ProcessInfo {
            pid,
            exe: exe.into(),
            comm: exe.rsplit('/').next().unwrap_or(exe).into(),
            ..Default::default()
        })
    }

    fn attr(resource: &Resource, key: &'static str) -> Option<String> {
        resource
            .get(&Key::from_static_str(key))
            .map(|v| v.to_string())
    }

    #[test]
    fn one_resource_per_process() {
        let mut r = resources(None);
        let curl = process(100, "/usr/bin/curl");
        let r1 = r.resource_of(&curl);
        let r2 = r.resource_of(&curl);
        assert!(
            Arc::ptr_eq(&r1.resource, &r2.resource),
            "same process → same resource"
        );
        let python = process(200, "/usr/bin/python3");
        let r3 = r.resource_of(&python);
        assert!(!Arc::ptr_eq(&r1.resource, &r3.resource));
        assert_ne!(r1.key, r3.key);
        assert_eq!(attr(&r1.resource, "service.name").as_deref(), Some("curl"));
        assert_eq!(attr(&r1.resource, "process.pid").as_deref(), Some("100"));
        assert_eq!(
            attr(&r3.resource, "service.name").as_deref(),
            Some("python3")
        );
        assert_eq!(attr(&r3.resource, "process.pid").as_deref(), Some("200"));
        // UUID v5 of "web-1/200" (host name and pid).
        assert_eq!(
            attr(&r3.resource, "service.instance.id").as_deref(),
            Some("31f646b1-60f1-58f8-a211-e1ea3c89649b")
        );
    }

    #[test]
    fn equal_identities_give_equal_keys() {
        let mut r = resources(None);
        // Two identities of one process (e.g. after the tracker's cache
        // started over): the same key, so one set of HTTP histograms.
        let a = r.resource_of(&process(100, "/usr/bin/curl"));
        let b = r.resource_of(&process(100, "/usr/bin/curl"));
        assert!(!Arc::ptr_eq(&a.resource, &b.resource));
        assert_eq!(a.key, b.key);
        assert_eq!(*a.resource, *b.resource);
        // After an exec the executable differs: another key.
        let c = r.resource_of(&process(100, "/usr/bin/wget"));
        assert_ne!(a.key, c.key);
    }

    #[test]
    fn a_fixed_service_name_replaces_the_executable_name() {
        let mut r = resources(Some("checkout"));
        let res = r.resource_of(&process(100, "/usr/bin/curl")).resource;
        assert_eq!(attr(&res, "service.name").as_deref(), Some("checkout"));
        assert_eq!(
            attr(&res, "process.executable.name").as_deref(),
            Some("curl")
        );
    }

    #[test]
    fn the_resource_carries_host_distro_sdk_and_extra_attributes() {
        let mut r = resources(None);
        let res = r.resource_of(&process(100, "/usr/bin/curl")).resource;
        assert_eq!(attr(&res, "host.name").as_deref(), Some("web-1"));
        assert_eq!(attr(&res, "os.type").as_deref(), Some("linux"));
        assert_eq!(
            attr(&res, "telemetry.distro.name").as_deref(),
            Some(DISTRO_NAME)
        );
        assert_eq!(
            attr(&res, "telemetry.distro.version").as_deref(),
            Some(DISTRO_VERSION)
        );
        assert_eq!(
            attr(&res, "telemetry.sdk.language").as_deref(),
            Some("rust")
        );
        assert_eq!(
            attr(&res, "deployment.environment.name").as_deref(),
            Some("test")
        );
    }
}
