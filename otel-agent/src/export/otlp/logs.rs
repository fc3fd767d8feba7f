//! Connection reports → OTLP log records: the pure mapping of
//! `semconv::logs::connection_report` copied onto the SDK's record.

use std::time::SystemTime;

use opentelemetry::logs::{AnyValue, LogRecord, Logger as _, Severity as OtelSeverity};
use opentelemetry_sdk::logs::SdkLogger;
use semconv::logs::{connection_report, Severity};
use semconv::model::ConnectionReport;

use super::spans::{any_value, time};

/// Fill `rec` with the connection report; `observed` is when the agent saw it.
pub fn fill(rec: &mut impl LogRecord, r: &ConnectionReport, observed: SystemTime) {
    let data = connection_report(r);
    let (number, text) = match data.severity {
        Severity::Info => (OtelSeverity::Info, "INFO"),
        Severity::Warn => (OtelSeverity::Warn, "WARN"),
    };
    rec.set_severity_number(number);
    rec.set_severity_text(text);
    rec.set_body(AnyValue::String(data.body.into()));
    rec.set_event_name(data.event_name);
    rec.set_timestamp(time(data.timestamp_unix_ns));
    rec.set_observed_timestamp(observed);
    for a in data.attributes {
        rec.add_attribute(a.key, any_value(a.value));
    }
}

/// Emit one connection report on `logger`.
pub fn emit_report(logger: &SdkLogger, r: &ConnectionReport) {
    let mut rec = logger.create_log_record();
    fill(&mut rec, r, SystemTime::now());
    logger.emit(rec);
}
