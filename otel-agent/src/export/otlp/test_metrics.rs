//! Test support: collect what a meter's instruments report, through the
//! SDK's in-memory exporter, as (name, unit, description, attribute keys of
//! each data point).

use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

/// One metric as collected.
#[derive(Debug)]
pub struct Collected {
    pub name: String,
    pub unit: String,
    pub description: String,
    /// The attribute keys of each data point.
    pub points: Vec<Vec<String>>,
    /// Sums and gauges: each data point as (`key=value` attributes, value).
    pub values: Vec<(Vec<String>, f64)>,
    /// Sums: whether monotonic.
    pub monotonic: Option<bool>,
    /// Histograms: each data point as (`key=value` attributes, count, sum).
    pub histograms: Vec<(Vec<String>, u64, f64)>,
}

fn keys<'a>(attrs: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> Vec<String> {
    attrs.map(|kv| kv.key.to_string()).collect()
}

fn points<T>(data: &MetricData<T>) -> Vec<Vec<String>> {
    match data {
        MetricData::Gauge(g) => g.data_points().map(|p| keys(p.attributes())).collect(),
        MetricData::Sum(s) => s.data_points().map(|p| keys(p.attributes())).collect(),
        MetricData::Histogram(h) => h.data_points().map(|p| keys(p.attributes())).collect(),
        MetricData::ExponentialHistogram(h) => {
            h.data_points().map(|p| keys(p.attributes())).collect()
        }
    }
}

fn key_values<'a>(attrs: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> Vec<String> {
    attrs.map(|kv| format!("{}={}", kv.key, kv.value)).collect()
}

fn values<T: Copy>(
    data: &MetricData<T>,
    f: impl Fn(T) -> f64,
) -> (Vec<(Vec<String>, f64)>, Option<bool>) {
    match data {
        MetricData::Gauge(g) => (
            g.data_points()
                .map(|p| (key_values(p.attributes()), f(p.value())))
                .collect(),
            None,
        ),
        MetricData::Sum(s) => (
            s.data_points()
                .map(|p| (key_values(p.attributes()), f(p.value())))
                .collect(),
            Some(s.is_monotonic()),
        ),
        _ => (Vec::new(), None),
    }
}

fn histograms<T: Copy>(data: &MetricData<T>, f: impl Fn(T) -> f64) -> Vec<(Vec<String>, u64, f64)> {
    match data {
        MetricData::Histogram(h) => h
            .data_points()
            .map(|p| (key_values(p.attributes()), p.count(), f(p.sum())))
            .collect(),
        _ => Vec::new(),
    }
}

/// Create instruments with `setup`, let `record` use them, then collect.
pub fn collect<T>(setup: impl FnOnce(&Meter) -> T, record: impl FnOnce(&mut T)) -> Vec<Collected> {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let mut instruments = setup(&provider.meter("test"));
    record(&mut instruments);
    provider.force_flush().expect("flush");
    let mut out = Vec::new();
    for rm in exporter.get_finished_metrics().expect("metrics") {
        for sm in rm.scope_metrics() {
            for m in sm.metrics() {
                let (points, (values, monotonic), histograms) = match m.data() {
                    AggregatedMetrics::F64(d) => {
                        (points(d), values(d, |v| v), histograms(d, |v| v))
                    }
                    AggregatedMetrics::U64(d) => (
                        points(d),
                        values(d, |v| v as f64),
                        histograms(d, |v| v as f64),
                    ),
                    AggregatedMetrics::I64(d) => (
                        points(d),
                        values(d, |v| v as f64),
                        histograms(d, |v| v as f64),
                    ),
                };
                out.push(Collected {
                    name: m.name().to_string(),
                    unit: m.unit().to_string(),
                    description: m.description().to_string(),
                    points,
                    values,
                    monotonic,
                    histograms,
                });
            }
        }
    }
    let _ = provider.shutdown();
    out
}

/// Every collected metric is its catalog entry: name, unit, description,
/// and data points carrying only the listed attribute keys.
pub fn assert_in_catalog(collected: &[Collected]) {
    for c in collected {
        let def = semconv::metrics::metric_def(&c.name)
            .unwrap_or_else(|| panic!("{} is not in the catalog", c.name));
        assert_eq!(c.unit, def.unit, "{}", c.name);
        assert_eq!(c.description, def.description, "{}", c.name);
        for keys in &c.points {
            for k in keys {
                assert!(
                    def.attributes.contains(&k.as_str()),
                    "{} carries {k}, not in {:?}",
                    c.name,
                    def.attributes
                );
            }
        }
    }
}

/// OTLP metrics as collected (the HTTP histograms write these).
pub fn from_proto(metrics: &[opentelemetry_proto::tonic::metrics::v1::Metric]) -> Vec<Collected> {
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    let text = |kv: &KeyValue| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    };
    metrics
        .iter()
        .map(|m| {
            let Some(Data::Histogram(h)) = &m.data else {
                panic!("{} is not a histogram", m.name);
            };
            Collected {
                name: m.name.clone(),
                unit: m.unit.clone(),
                description: m.description.clone(),
                points: h
                    .data_points
                    .iter()
                    .map(|p| p.attributes.iter().map(|kv| kv.key.clone()).collect())
                    .collect(),
                values: vec![],
                monotonic: None,
                histograms: h
                    .data_points
                    .iter()
                    .map(|p| {
                        let attrs = p
                            .attributes
                            .iter()
                            .map(|kv| format!("{}={}", kv.key, text(kv)))
                            .collect();
                        (attrs, p.count, p.sum.unwrap_or(f64::NAN))
                    })
                    .collect(),
            }
        })
        .collect()
}
