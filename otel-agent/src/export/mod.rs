//! Exporters: where exchanges and connection reports go (stdout JSON, OTLP),
//! both fed by the reader (`capture::reader::Outlet`).

pub mod connection_cache;
pub mod json_object;
pub mod otlp;
pub mod stdout;

use otel_agent_config::Settings;
use semconv::options::{KnownMethods, MappingOptions};

/// The semantic-convention mapping options of the settings (`telemetry`):
/// built once, handed to the span and metric mapping.
pub fn mapping_options(settings: &Settings) -> MappingOptions {
    let t = &settings.telemetry;
    MappingOptions {
        known_methods: KnownMethods::new(t.known_methods.iter().cloned()),
        span_request_headers: t.span_request_headers.clone(),
        span_response_headers: t.span_response_headers.clone(),
        body_size_metrics: t.body_size_metrics,
        server_address_on_server_metrics: t.server_address_on_server_metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_settings_give_the_default_mapping() {
        assert_eq!(
            mapping_options(&Settings::default()),
            MappingOptions::default()
        );
    }

    #[test]
    fn known_methods_come_from_the_settings() {
        let mut s = Settings::default();
        s.telemetry.known_methods = vec!["GET".into(), "PROPFIND".into()];
        let m = mapping_options(&s);
        assert_eq!(m.known_methods.normalize("PROPFIND"), "PROPFIND");
        assert_eq!(m.known_methods.normalize("POST"), "_OTHER");
    }

    #[test]
    fn opt_ins_come_from_the_settings() {
        let mut s = Settings::default();
        s.telemetry.span_request_headers = vec!["x-request-id".into()];
        s.telemetry.span_response_headers = vec!["content-type".into()];
        s.telemetry.body_size_metrics = true;
        s.telemetry.server_address_on_server_metrics = true;
        let m = mapping_options(&s);
        assert_eq!(m.span_request_headers, ["x-request-id"]);
        assert_eq!(m.span_response_headers, ["content-type"]);
        assert!(m.body_size_metrics && m.server_address_on_server_metrics);
    }
}
