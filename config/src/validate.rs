//! From the file as written ([`RawConfig`]) to validated [`Settings`]: the
//! checks that need more than one value, each reported at the position of
//! the value it is about.

use std::collections::BTreeSet;

use serde_saphyr::Spanned;

use crate::capture::{CaptureRule, DEFAULT_REDACTED_HEADERS, DEFAULT_REDACTED_QUERY_PARAMS};
use crate::env::{check_endpoint, check_header_name};
use crate::error::Located;
use crate::exporters::{ServiceName, Signal, TlsSettings};
use crate::filter::{PortFilter, ProcessMatcher};
use crate::raw::*;
use crate::values::{ByteSize, MatchKind, OneOrMany, RawMatcher};
use crate::{Limits, Settings};

type R<T> = Result<T, Located>;

/// Smallest ring buffer: one page.
pub const MIN_RING_BUFFER_BYTES: u64 = 4096;
/// Largest ring buffer.
pub const MAX_RING_BUFFER_BYTES: u64 = 1 << 30;
/// Largest payload one kernel event can carry (the probes' compiled-in buffer).
pub const MAX_EVENT_PAYLOAD_BYTES: u64 = 16 * 1024;
/// Bytes of a kernel data event besides its payload, ring buffer record header included.
pub const EVENT_OVERHEAD_BYTES: u64 = 64;

/// Is `bytes` a usable ring buffer size? `Err`: why not and what is expected.
pub fn check_ring_buffer(bytes: u64) -> Result<u32, String> {
    if !(MIN_RING_BUFFER_BYTES..=MAX_RING_BUFFER_BYTES).contains(&bytes) || !bytes.is_power_of_two()
    {
        let hint = if bytes.is_power_of_two() || bytes == 0 {
            String::new()
        } else {
            let lower = 1u64 << (63 - bytes.leading_zeros());
            format!(
                " (nearest: {} or {})",
                show_size(lower),
                show_size(lower << 1)
            )
        };
        return Err(format!(
            "ring buffer size {bytes} is not a power of two from 4KiB to 1GiB{hint}: expected e.g. 4MiB, 16MiB, 64MiB"
        ));
    }
    Ok(bytes as u32)
}

/// `16MiB`, `4KiB`, or bytes.
fn show_size(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{}GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}KiB", n >> 10),
        n => n.to_string(),
    }
}

fn at<T>(s: &Spanned<T>, message: impl Into<String>) -> Located {
    Located::at(&s.referenced, message)
}

fn size_in(s: &Spanned<ByteSize>, what: &str, lo: u64, hi: u64) -> R<u64> {
    let n = s.value.0;
    if n < lo || n > hi {
        return Err(at(
            s,
            format!(
                "{what} {n} is out of range: expected {} to {}",
                show_size(lo),
                show_size(hi)
            ),
        ));
    }
    Ok(n)
}

/// A condition list must not be empty: an empty list would never match.
fn non_empty<T>(s: &Spanned<OneOrMany<T>>, key: &str) -> R<()> {
    if s.value.0.is_empty() {
        return Err(at(
            s,
            format!("empty list for \"{key}\": give at least one value, or remove the key"),
        ));
    }
    Ok(())
}

fn matchers(
    s: &Option<Spanned<OneOrMany<RawMatcher>>>,
    key: &str,
    default: MatchKind,
    fold_case: bool,
) -> R<Vec<crate::Matcher>> {
    match s {
        None => Ok(Vec::new()),
        Some(s) => {
            non_empty(s, key)?;
            Ok(s.value
                .0
                .iter()
                .map(|m| m.build(default, fold_case))
                .collect())
        }
    }
}

pub(crate) fn build(raw: RawConfig) -> R<Settings> {
    let mut s = Settings::default();
    if let Some(e) = raw.exporters {
        exporters(&mut s, e)?;
    }
    if let Some(r) = raw.resource {
        resource(&mut s, r)?;
    }
    if let Some(c) = raw.capture {
        capture(&mut s, c)?;
    }
    if let Some(f) = raw.filters {
        filters(&mut s, f)?;
    }
    if let Some(r) = raw.redaction {
        redaction(&mut s, r)?;
    }
    if let Some(l) = raw.limits {
        s.limits = limits(l)?;
    }
    if let Some(t) = raw.telemetry {
        telemetry(&mut s, t)?;
    }
    Ok(s)
}

fn telemetry(s: &mut Settings, raw: RawTelemetry) -> R<()> {
    let t = &mut s.telemetry;
    if let Some(methods) = raw.known_methods {
        t.known_methods.clear();
        for m in methods {
            crate::telemetry::check_known_method(&m.value).map_err(|e| at(&m, e))?;
            if !t.known_methods.contains(&m.value) {
                t.known_methods.push(m.value);
            }
        }
    }
    if let Some(h) = raw.span_headers {
        t.span_request_headers = header_names(h.request)?;
        t.span_response_headers = header_names(h.response)?;
    }
    if let Some(m) = raw.metrics {
        t.body_size_metrics = m.body_size.unwrap_or(t.body_size_metrics);
        t.server_address_on_server_metrics = m
            .server_address
            .unwrap_or(t.server_address_on_server_metrics);
    }
    if let Some(p) = raw.client_span_from_traceparent {
        t.client_span_from_traceparent = p;
    }
    if let Some(l) = raw.trace_links {
        if let Some(w) = &l.wait {
            if w.value.0 > std::time::Duration::from_secs(60) {
                return Err(at(w, "wait: expected at most 60s, e.g. 1s"));
            }
            t.trace_links.wait = w.value.0;
        }
        if let Some(m) = &l.max_held {
            t.trace_links.max_held = m.value;
        }
    }
    Ok(())
}

/// Header names, checked, lowercased, without duplicates.
fn header_names(list: Option<Vec<Spanned<String>>>) -> R<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for h in list.unwrap_or_default() {
        check_header_name(&h.value).map_err(|m| at(&h, m))?;
        let name = h.value.to_ascii_lowercase();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

fn exporters(s: &mut Settings, raw: RawExporters) -> R<()> {
    let ex = &mut s.exporters;
    if let Some(v) = raw.enabled {
        ex.enabled = v;
    }
    if let Some(v) = raw.stdout {
        ex.stdout = v;
    }
    if let Some(sig) = raw.signals {
        ex.signals.traces = sig.traces.unwrap_or(ex.signals.traces);
        ex.signals.metrics = sig.metrics.unwrap_or(ex.signals.metrics);
        ex.signals.logs = sig.logs.unwrap_or(ex.signals.logs);
    }
    let Some(o) = raw.otlp else { return Ok(()) };
    let url = |u: &Option<Spanned<String>>| -> R<Option<String>> {
        match u {
            None => Ok(None),
            Some(u) => {
                check_endpoint(&u.value).map_err(|m| at(u, m))?;
                Ok(Some(u.value.trim().to_string()))
            }
        }
    };
    ex.endpoint = url(&o.endpoint)?;
    ex.signal_endpoints
        .set(Signal::Traces, url(&o.traces_endpoint)?);
    ex.signal_endpoints
        .set(Signal::Metrics, url(&o.metrics_endpoint)?);
    ex.signal_endpoints
        .set(Signal::Logs, url(&o.logs_endpoint)?);
    if let Some(p) = o.protocol {
        ex.protocol = p;
    }
    if let Some(h) = o.headers {
        for (k, v) in h.0 {
            check_header_name(&k.value).map_err(|m| at(&k, m))?;
            let name = k.value.to_ascii_lowercase();
            if ex.headers.insert(name.clone(), v).is_some() {
                return Err(at(
                    &k,
                    format!("header \"{name}\" is given twice (names are case-insensitive)"),
                ));
            }
        }
    }
    if let Some(t) = o.tls {
        let tls = TlsSettings {
            ca_file: t.value.ca_file.clone(),
            cert_file: t.value.cert_file.clone(),
            key_file: t.value.key_file.clone(),
            insecure: t.value.insecure.unwrap_or(false),
        };
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            return Err(at(
                &t,
                "a client certificate needs its key: set both cert_file and key_file, or neither",
            ));
        }
        ex.tls = tls;
    }
    if let Some(t) = o.timeout {
        if t.value.0.is_zero() {
            return Err(at(&t, "timeout 0: expected a positive duration, e.g. 10s"));
        }
        ex.timeout = t.value.0;
    }
    if let Some(c) = o.compression {
        ex.compression = c;
    }
    Ok(())
}

fn resource(s: &mut Settings, raw: RawResource) -> R<()> {
    if let Some(n) = raw.service_name {
        s.resource.service_name = n;
    }
    if let Some(a) = raw.attributes {
        for (k, v) in a.0 {
            match k.value.as_str() {
                "" => return Err(at(&k, "empty attribute name")),
                "service.name" => {
                    return Err(at(
                        &k,
                        "service.name is set with resource.service_name: expected `service_name: {fixed: NAME}`",
                    ))
                }
                _ => {
                    s.resource.attributes.insert(k.value, v);
                }
            }
        }
    }
    if let ServiceName::Fixed(n) = &mut s.resource.service_name {
        *n = n.trim().to_string();
    }
    Ok(())
}

fn capture(s: &mut Settings, raw: RawCapture) -> R<()> {
    let c = &mut s.capture;
    if let Some(l) = raw.level {
        c.level = l;
    }
    if let Some(b) = &raw.body_limit {
        c.max_body_bytes = size_in(b, "body limit", 0, 1 << 30)? as usize;
    }
    if let Some(d) = raw.decompress {
        c.decompress = d;
    }
    if let Some(r) = raw.sample {
        c.sample_ratio = r.0;
    }
    for rule in raw.rules.unwrap_or_default() {
        let w = rule.when.unwrap_or_default();
        let methods = match &w.method {
            None => Vec::new(),
            Some(m) => {
                non_empty(m, "method")?;
                let mut out = Vec::new();
                for name in &m.value.0 {
                    check_method(name).map_err(|msg| at(m, msg))?;
                    out.push(name.to_ascii_uppercase());
                }
                out
            }
        };
        let statuses = match &w.status {
            None => Vec::new(),
            Some(st) => {
                non_empty(st, "status")?;
                st.value.0.clone()
            }
        };
        c.rules.push(CaptureRule {
            name: rule.name,
            hosts: matchers(&w.host, "host", MatchKind::Exact, true)?,
            paths: matchers(&w.path, "path", MatchKind::Prefix, false)?,
            methods,
            statuses,
            exes: matchers(&w.exe, "exe", MatchKind::Exact, false)?,
            level: rule.level,
            sample_ratio: rule.sample.map(|r| r.0),
        });
    }
    Ok(())
}

fn check_method(m: &str) -> Result<(), String> {
    if !m.is_empty()
        && m.bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(format!(
            "invalid method {m:?}: expected an HTTP method such as GET or POST"
        ))
    }
}

fn process_matchers(list: Option<Vec<Spanned<RawProcessMatcher>>>) -> R<Vec<ProcessMatcher>> {
    let mut out = Vec::new();
    for entry in list.unwrap_or_default() {
        let m = &entry.value;
        if m.exe.is_none() && m.comm.is_none() && m.pid.is_none() {
            return Err(at(
                &entry,
                "empty process matcher: expected at least one of exe, comm, pid",
            ));
        }
        let pid = match &m.pid {
            None => Vec::new(),
            Some(p) => {
                non_empty(p, "pid")?;
                p.value.0.iter().map(|p| p.0).collect()
            }
        };
        out.push(ProcessMatcher {
            exe: matchers(&m.exe, "exe", MatchKind::Exact, false)?,
            comm: matchers(&m.comm, "comm", MatchKind::Exact, false)?,
            pid,
        });
    }
    Ok(out)
}

fn filters(s: &mut Settings, raw: RawFilters) -> R<()> {
    let f = &mut s.filter;
    if let Some(d) = raw.direction {
        f.direction = d;
    }
    if let Some(p) = raw.processes {
        f.include = process_matchers(p.include)?;
        f.exclude = process_matchers(p.exclude)?;
    }
    if let Some(p) = raw.ports {
        f.ports = PortFilter {
            include: p.include.unwrap_or_default(),
            exclude: p.exclude.unwrap_or_default(),
        };
    }
    if let Some(l) = raw.ignore_loopback {
        f.ignore_loopback = l;
    }
    Ok(())
}

fn redaction(s: &mut Settings, raw: RawRedaction) -> R<()> {
    let replace = raw.replace_defaults.unwrap_or(false);
    let c = &mut s.capture;
    let mut headers: Vec<String> = if replace {
        Vec::new()
    } else {
        DEFAULT_REDACTED_HEADERS
            .iter()
            .map(|h| h.to_string())
            .collect()
    };
    for h in raw.headers.unwrap_or_default() {
        check_header_name(&h.value).map_err(|m| at(&h, m))?;
        let name = h.value.to_ascii_lowercase();
        if !headers.contains(&name) {
            headers.push(name);
        }
    }
    let mut params: Vec<String> = if replace {
        Vec::new()
    } else {
        DEFAULT_REDACTED_QUERY_PARAMS
            .iter()
            .map(|p| p.to_string())
            .collect()
    };
    let mut seen: BTreeSet<String> = params.iter().map(|p| p.to_ascii_lowercase()).collect();
    for p in raw.query_params.unwrap_or_default() {
        if p.value.is_empty() || p.value.contains(['&', '=', '#']) {
            return Err(at(
                &p,
                format!(
                    "invalid query parameter name {:?}: expected a name without &, = or #",
                    p.value
                ),
            ));
        }
        if seen.insert(p.value.to_ascii_lowercase()) {
            params.push(p.value);
        }
    }
    c.redact_headers = headers.into();
    c.redact_query_params = params;
    Ok(())
}

fn limits(raw: RawLimits) -> R<Limits> {
    let mut l = Limits::default();
    if let Some(p) = &raw.max_event_payload {
        l.max_event_payload =
            size_in(p, "event payload limit", 64, MAX_EVENT_PAYLOAD_BYTES)? as usize;
    }
    if let Some(r) = &raw.ring_buffer {
        l.ring_buffer_bytes = check_ring_buffer(r.value.0).map_err(|m| at(r, m))?;
        let need = (l.max_event_payload as u64 + EVENT_OVERHEAD_BYTES).next_power_of_two();
        if u64::from(l.ring_buffer_bytes) < need {
            return Err(at(
                r,
                format!(
                    "ring buffer size {} cannot hold one event of limits.max_event_payload ({}) plus its header: expected at least {}",
                    r.value.0,
                    l.max_event_payload,
                    show_size(need)
                ),
            ));
        }
    }
    if let Some(c) = &raw.max_connections {
        if !(64..=1 << 22).contains(&c.value) {
            return Err(at(
                c,
                format!(
                    "max_connections {} is out of range: expected 64 to 4194304",
                    c.value
                ),
            ));
        }
        l.max_connections = c.value;
    }
    if let Some(q) = &raw.export_queue {
        if !(1..=1 << 24).contains(&q.value) {
            return Err(at(
                q,
                format!(
                    "export_queue {} is out of range: expected 1 to 16777216",
                    q.value
                ),
            ));
        }
        l.export_queue = q.value;
    }
    if let Some(shed) = raw.shed_spans {
        l.shed_spans = shed;
    }
    if let Some(h) = &raw.max_header_bytes {
        l.max_header_bytes = size_in(h, "header limit", 1024, 16 << 20)? as usize;
    }
    if let Some(n) = &raw.max_metric_processes {
        if n.value > 1 << 16 {
            return Err(at(
                n,
                format!(
                    "max_metric_processes {} is out of range: expected 0 to 65536",
                    n.value
                ),
            ));
        }
        l.max_metric_processes = n.value;
    }
    if let Some(t) = &raw.metric_process_idle {
        if t.value.0 < std::time::Duration::from_secs(1) {
            return Err(at(t, "metric_process_idle: expected at least 1s, e.g. 10m"));
        }
        l.metric_process_idle = t.value.0;
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_buffer_sizes() {
        assert_eq!(check_ring_buffer(4096), Ok(4096));
        assert_eq!(check_ring_buffer(16 << 20), Ok(16 << 20));
        let e = check_ring_buffer(3 << 20).unwrap_err();
        assert!(e.contains("nearest: 2MiB or 4MiB"), "{e}");
        assert!(check_ring_buffer(2048).is_err());
        assert!(check_ring_buffer(0).is_err());
        assert!(check_ring_buffer(2 << 30).is_err());
    }
}
