//! The HTTP duration and body-size histograms of the semantic conventions,
//! created from their `semconv::metrics` catalog entries and fed one
//! measurement per exchange. The body-size histograms are opt-in: they are
//! created only when `telemetry.metrics.body_size` is on.

use opentelemetry::metrics::{Histogram, Meter};
use semconv::metrics::{
    http_measurement, http_metric_defs, HttpMeasurement, DURATION_BUCKETS_S, SIZE_BUCKETS_BY,
};
use semconv::model::Exchange;
use semconv::options::MappingOptions;
use semconv::spans::SpanKind;

use super::spans::key_values;

/// The HTTP duration and body-size histograms (semconv names and buckets).
pub struct HttpInstruments {
    client: KindInstruments,
    server: KindInstruments,
}

/// The histograms of one side (client or server).
struct KindInstruments {
    duration: Histogram<f64>,
    /// Request and response body sizes, when switched on.
    sizes: Option<(Histogram<u64>, Histogram<u64>)>,
}

impl HttpInstruments {
    /// Create the histograms of both sides on `meter`: the durations, and
    /// the body sizes when `body_sizes` (`telemetry.metrics.body_size`).
    pub fn new(meter: &Meter, body_sizes: bool) -> Self {
        Self {
            client: KindInstruments::new(meter, SpanKind::Client, body_sizes),
            server: KindInstruments::new(meter, SpanKind::Server, body_sizes),
        }
    }

    /// Record the exchange's HTTP metrics (nothing without a request),
    /// mapped with `options`.
    pub fn record(&self, ex: &Exchange, options: &MappingOptions) {
        if let Some(mm) = http_measurement(ex, options) {
            self.record_measurement(mm);
        }
    }

    pub(crate) fn record_measurement(&self, mm: HttpMeasurement) {
        let side = match mm.kind {
            SpanKind::Client => &self.client,
            SpanKind::Server => &self.server,
        };
        let attrs = key_values(mm.attributes);
        side.duration.record(mm.duration_s, &attrs);
        let Some((request_size, response_size)) = &side.sizes else {
            return;
        };
        if let Some(n) = mm.request_body_size {
            request_size.record(n, &attrs);
        }
        if let Some(n) = mm.response_body_size {
            response_size.record(n, &attrs);
        }
    }
}

impl KindInstruments {
    fn new(meter: &Meter, kind: SpanKind, body_sizes: bool) -> Self {
        let (duration, request_size, response_size) = http_metric_defs(kind);
        let size = |def: &'static semconv::metrics::MetricDef| {
            meter
                .u64_histogram(def.name)
                .with_unit(def.unit)
                .with_description(def.description)
                .with_boundaries(SIZE_BUCKETS_BY.to_vec())
                .build()
        };
        Self {
            duration: meter
                .f64_histogram(duration.name)
                .with_unit(duration.unit)
                .with_description(duration.description)
                .with_boundaries(DURATION_BUCKETS_S.to_vec())
                .build(),
            sizes: body_sizes.then(|| (size(request_size), size(response_size))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_metrics::{assert_in_catalog, collect};
    use super::*;

    #[test]
    fn body_size_histograms_are_opt_in() {
        let collected = collect(
            |m| HttpInstruments::new(m, false),
            |http| {
                http.record_measurement(HttpMeasurement {
                    kind: SpanKind::Server,
                    duration_s: 0.012,
                    request_body_size: Some(10),
                    response_body_size: Some(256),
                    attributes: vec![],
                });
            },
        );
        assert_in_catalog(&collected);
        let names: Vec<&str> = collected.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["http.server.request.duration"]);
    }

    #[test]
    fn the_http_histograms_are_their_catalog_entries() {
        let collected = collect(
            |m| HttpInstruments::new(m, true),
            |http| {
                let m = HttpMeasurement {
                    kind: SpanKind::Client,
                    duration_s: 0.012,
                    request_body_size: Some(0),
                    response_body_size: Some(256),
                    attributes: vec![semconv::value::Attribute::str(
                        semconv::attributes::HTTP_REQUEST_METHOD,
                        "GET",
                    )],
                };
                http.record_measurement(m.clone());
                http.record_measurement(HttpMeasurement {
                    kind: SpanKind::Server,
                    ..m
                });
            },
        );
        assert_in_catalog(&collected);
        let names: Vec<&str> = collected.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), 6, "{names:?}");
    }
}
