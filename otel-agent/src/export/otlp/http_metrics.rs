//! The HTTP duration and body-size histograms of the semantic conventions,
//! aggregated here — one series per attribute set, fed one measurement per
//! exchange — and written out as cumulative OTLP histograms
//! (`metric_export` sends them). The body-size histograms are opt-in: they
//! are kept only when `telemetry.metrics.body_size` is on.
//!
//! The SDK's instruments did this before, at ~2.3k instructions per
//! exchange, ~1.4k of them hashing the attribute key-values on every
//! measurement (bench/instructions.sh, callgrind); here an exchange whose
//! attribute set was seen recently finds its series without building or
//! hashing anything (`Matcher`).

use opentelemetry_proto::tonic::common::v1::KeyValue as ProtoKeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, AggregationTemporality, Histogram as ProtoHistogram, HistogramDataPoint, Metric,
};
use opentelemetry_proto::transform::common::tonic::Attributes;
use semconv::metrics::{
    http_measurement_with, http_metric_defs, HttpMeasurement, MetricDef, DURATION_BUCKETS_S,
    HTTP_METRIC_ATTRIBUTES, SIZE_BUCKETS_BY,
};
use semconv::model::Exchange;
use semconv::options::MappingOptions;
use semconv::spans::{ExchangeFacts, SpanKind};
use semconv::value::{AttrValue, Attribute, AttributeSink};

use super::spans::key_values;

/// Series (attribute sets) kept per process, the overflow series included:
/// the SDK's default cardinality limit. Past it, new attribute sets are
/// recorded on one series with the attribute `otel.metric.overflow=true`,
/// as the SDK does.
pub const MAX_SERIES: usize = 2000;

/// The attribute of the overflow series.
pub const OVERFLOW_ATTRIBUTE: &str = "otel.metric.overflow";

/// One explicit-bucket histogram: count, sum, min, max and a count per
/// bucket (a bucket holds the values up to and including its bound).
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    buckets: Box<[u64]>,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            buckets: vec![0; bounds.len() + 1].into_boxed_slice(),
        }
    }

    /// Add one value (a value that is not a finite number is ignored, as
    /// the SDK does).
    fn record(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        let i = self.bounds.partition_point(|&b| b < v);
        if let Some(n) = self.buckets.get_mut(i) {
            *n += 1;
        }
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The OTLP data point, `None` before the first value.
    fn point(
        &self,
        attributes: &[ProtoKeyValue],
        start_unix_ns: u64,
        now_unix_ns: u64,
    ) -> Option<HistogramDataPoint> {
        (self.count > 0).then(|| HistogramDataPoint {
            attributes: attributes.to_vec(),
            start_time_unix_nano: start_unix_ns,
            time_unix_nano: now_unix_ns,
            count: self.count,
            sum: Some(self.sum),
            bucket_counts: self.buckets.to_vec(),
            explicit_bounds: self.bounds.to_vec(),
            exemplars: vec![],
            flags: 0,
            min: Some(self.min),
            max: Some(self.max),
        })
    }
}

/// The histograms of one side (client or server) of one series.
#[derive(Clone, Debug)]
struct SideHistograms {
    duration: Histogram,
    /// Request and response body sizes, when switched on.
    sizes: Option<(Histogram, Histogram)>,
}

impl SideHistograms {
    fn new(body_sizes: bool) -> Self {
        Self {
            duration: Histogram::new(DURATION_BUCKETS_S),
            sizes: body_sizes.then(|| {
                (
                    Histogram::new(SIZE_BUCKETS_BY),
                    Histogram::new(SIZE_BUCKETS_BY),
                )
            }),
        }
    }

    fn record<A>(&mut self, mm: &HttpMeasurement<A>) {
        self.duration.record(mm.duration_s);
        let Some((request_size, response_size)) = &mut self.sizes else {
            return;
        };
        if let Some(n) = mm.request_body_size {
            request_size.record(n as f64);
        }
        if let Some(n) = mm.response_body_size {
            response_size.record(n as f64);
        }
    }
}

/// One attribute set and its histograms, per side.
#[derive(Debug)]
struct Series {
    attributes: Vec<Attribute>,
    client: Option<SideHistograms>,
    server: Option<SideHistograms>,
}

/// The HTTP histograms of one process (or of the agent, for processes past
/// the limit): every series since `start_unix_ns`.
pub struct HttpHistograms {
    body_sizes: bool,
    /// When the series began: the start of every cumulative point.
    start_unix_ns: u64,
    series: Vec<Series>,
    /// Series by attribute set (looked up when `recent` has no match).
    index: rustc_hash::FxHashMap<Vec<Attribute>, usize>,
    /// The attribute sets of recent exchanges, matched as they are mapped.
    recent: AttributeSets,
}

impl HttpHistograms {
    /// No series yet, starting at `start_unix_ns`; with the body-size
    /// histograms when `body_sizes` (`telemetry.metrics.body_size`).
    pub fn new(body_sizes: bool, start_unix_ns: u64) -> Self {
        Self {
            body_sizes,
            start_unix_ns,
            series: Vec::new(),
            index: Default::default(),
            recent: AttributeSets::default(),
        }
    }

    /// Record the exchange's HTTP metrics (nothing without a request),
    /// mapped with `options`. The attributes are compared with the sets of
    /// recent exchanges as they are mapped; only a new set is built.
    pub fn record(&mut self, ex: &Exchange, facts: &ExchangeFacts<'_>, options: &MappingOptions) {
        let mut matcher = Matcher::new(&self.recent.sets);
        let Some(mm) = http_measurement_with(ex, facts, options, &mut matcher) else {
            return;
        };
        let series = match matcher.found().and_then(|i| self.recent.sets.get(i)) {
            Some(set) => set.series,
            None => {
                let mut attributes = Vec::with_capacity(HTTP_METRIC_ATTRIBUTES.len());
                http_measurement_with(ex, facts, options, &mut attributes);
                let series = self.series_of(&attributes);
                self.recent.insert(attributes, series);
                series
            }
        };
        self.record_on(series, &mm);
    }

    /// Record a measurement with its own attribute list (tests: the
    /// comparison with fresh lists).
    #[cfg(test)]
    pub(crate) fn record_measurement(&mut self, mm: &HttpMeasurement) {
        let series = self.series_of(&mm.attributes);
        self.record_on(series, mm);
    }

    /// The series of `attributes`: found, new, or the overflow series once
    /// there are [`MAX_SERIES`].
    fn series_of(&mut self, attributes: &[Attribute]) -> usize {
        if let Some(&i) = self.index.get(attributes) {
            return i;
        }
        let attributes = if self.series.len() + 1 < MAX_SERIES {
            attributes.to_vec()
        } else {
            vec![Attribute::bool(OVERFLOW_ATTRIBUTE, true)]
        };
        if let Some(&i) = self.index.get(&attributes) {
            return i;
        }
        let i = self.series.len();
        self.index.insert(attributes.clone(), i);
        self.series.push(Series {
            attributes,
            client: None,
            server: None,
        });
        i
    }

    fn record_on<A>(&mut self, series: usize, mm: &HttpMeasurement<A>) {
        let Some(s) = self.series.get_mut(series) else {
            return;
        };
        let side = match mm.kind {
            SpanKind::Client => &mut s.client,
            SpanKind::Server => &mut s.server,
        };
        side.get_or_insert_with(|| SideHistograms::new(self.body_sizes))
            .record(mm);
    }

    /// Exchanges recorded, of both sides.
    #[cfg(test)]
    pub(crate) fn exchanges(&self) -> u64 {
        self.series
            .iter()
            .flat_map(|s| [&s.client, &s.server])
            .flatten()
            .map(|h| h.duration.count())
            .sum()
    }

    /// The histograms as cumulative OTLP metrics at `now_unix_ns`: the
    /// duration (and, when on, body-size) metric of each side that has a
    /// data point, in the order of the catalog.
    pub fn metrics(&self, now_unix_ns: u64) -> Vec<Metric> {
        let attributes: Vec<Vec<ProtoKeyValue>> = self
            .series
            .iter()
            .map(|s| Attributes::from(key_values(s.attributes.clone())).0)
            .collect();
        let mut out = Vec::new();
        for kind in [SpanKind::Client, SpanKind::Server] {
            let sides = || {
                self.series
                    .iter()
                    .zip(&attributes)
                    .filter_map(move |(s, a)| {
                        let side = match kind {
                            SpanKind::Client => s.client.as_ref(),
                            SpanKind::Server => s.server.as_ref(),
                        };
                        side.map(|h| (h, a.as_slice()))
                    })
            };
            let (duration, request_size, response_size) = http_metric_defs(kind);
            let (start, now) = (self.start_unix_ns, now_unix_ns);
            let mut push = |def: &MetricDef, points: Vec<HistogramDataPoint>| {
                if !points.is_empty() {
                    out.push(histogram_metric(def, points));
                }
            };
            push(
                duration,
                sides()
                    .filter_map(|(h, a)| h.duration.point(a, start, now))
                    .collect(),
            );
            if self.body_sizes {
                push(
                    request_size,
                    sides()
                        .filter_map(|(h, a)| h.sizes.as_ref()?.0.point(a, start, now))
                        .collect(),
                );
                push(
                    response_size,
                    sides()
                        .filter_map(|(h, a)| h.sizes.as_ref()?.1.point(a, start, now))
                        .collect(),
                );
            }
        }
        out
    }
}

/// A cumulative histogram metric: `def`'s name, unit and description.
fn histogram_metric(def: &MetricDef, data_points: Vec<HistogramDataPoint>) -> Metric {
    Metric {
        name: def.name.into(),
        description: def.description.into(),
        unit: def.unit.into(),
        metadata: vec![],
        data: Some(metric::Data::Histogram(ProtoHistogram {
            data_points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
    }
}

/// The HTTP metric attribute sets of recent exchanges, each with its
/// series. The attributes are low-cardinality by design
/// (`HTTP_METRIC_ATTRIBUTES`), so most exchanges find their set here and
/// record without building a list: that was ~1.9k of ~4.6k instructions
/// per exchange for the HTTP metrics (bench/instructions.sh, callgrind).
#[derive(Default)]
struct AttributeSets {
    sets: Vec<AttributeSet>,
    /// The set a new one replaces once there are [`AttributeSets::MAX`].
    next: usize,
}

struct AttributeSet {
    attributes: Vec<Attribute>,
    series: usize,
}

impl AttributeSets {
    /// Sets kept (one bit each in [`Matcher`]'s candidates).
    const MAX: usize = 64;

    /// Keep `attributes`, whose series is `series`.
    fn insert(&mut self, attributes: Vec<Attribute>, series: usize) {
        let set = AttributeSet { attributes, series };
        if self.sets.len() < Self::MAX {
            self.sets.push(set);
            return;
        }
        let index = self.next % Self::MAX;
        self.next = index + 1;
        if let Some(slot) = self.sets.get_mut(index) {
            *slot = set;
        }
    }
}

/// A sink that compares the attributes it is given, in order, with every
/// kept set at once: a bit per set still equal so far.
struct Matcher<'s> {
    sets: &'s [AttributeSet],
    candidates: u64,
    /// Attributes compared so far.
    at: usize,
}

impl<'s> Matcher<'s> {
    fn new(sets: &'s [AttributeSet]) -> Self {
        let candidates = match sets.len() {
            n if n >= 64 => u64::MAX,
            n => (1u64 << n) - 1,
        };
        Matcher {
            sets,
            candidates,
            at: 0,
        }
    }

    /// Drop the candidates whose next attribute is not `same`.
    #[inline]
    fn compare(&mut self, same: impl Fn(&Attribute) -> bool) {
        let mut left = self.candidates;
        while left != 0 {
            let i = left.trailing_zeros() as usize;
            left &= left - 1;
            let equal = self
                .sets
                .get(i)
                .and_then(|s| s.attributes.get(self.at))
                .is_some_and(&same);
            if !equal {
                self.candidates &= !(1u64 << i);
            }
        }
        self.at += 1;
    }

    /// The set equal to all the attributes given, if any.
    fn found(&self) -> Option<usize> {
        let mut left = self.candidates;
        while left != 0 {
            let i = left.trailing_zeros() as usize;
            left &= left - 1;
            if self
                .sets
                .get(i)
                .is_some_and(|s| s.attributes.len() == self.at)
            {
                return Some(i);
            }
        }
        None
    }
}

impl AttributeSink for Matcher<'_> {
    fn str(&mut self, key: &'static str, value: &str) {
        self.compare(|a| a.key == key && a.value.as_str() == Some(value));
    }

    fn int(&mut self, key: &'static str, value: i64) {
        self.compare(|a| a.key == key && a.value == AttrValue::Int(value));
    }

    fn bool(&mut self, key: &'static str, value: bool) {
        self.compare(|a| a.key == key && a.value == AttrValue::Bool(value));
    }

    fn str_array<S: AsRef<str>>(&mut self, key: &str, values: &[S]) {
        self.compare(|a| {
            a.key == key
                && a.value.as_str_array().is_some_and(|kept| {
                    kept.len() == values.len()
                        && kept.iter().zip(values).all(|(k, v)| k == v.as_ref())
                })
        });
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

    use super::super::test_metrics::{assert_in_catalog, from_proto};
    use super::*;

    fn measurement(kind: SpanKind, duration_s: f64, attributes: Vec<Attribute>) -> HttpMeasurement {
        HttpMeasurement {
            kind,
            duration_s,
            request_body_size: Some(10),
            response_body_size: Some(256),
            attributes,
        }
    }

    #[test]
    fn body_size_histograms_are_opt_in() {
        let mut http = HttpHistograms::new(false, 1);
        http.record_measurement(&measurement(SpanKind::Server, 0.012, vec![]));
        let collected = from_proto(&http.metrics(2));
        assert_in_catalog(&collected);
        let names: Vec<&str> = collected.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["http.server.request.duration"]);
    }

    #[test]
    fn the_http_histograms_are_their_catalog_entries() {
        let mut http = HttpHistograms::new(true, 1);
        let attrs = vec![Attribute::str(
            semconv::attributes::HTTP_REQUEST_METHOD,
            "GET",
        )];
        http.record_measurement(&measurement(SpanKind::Client, 0.012, attrs.clone()));
        http.record_measurement(&measurement(SpanKind::Server, 0.012, attrs));
        let metrics = http.metrics(2);
        let collected = from_proto(&metrics);
        assert_in_catalog(&collected);
        let names: Vec<&str> = collected.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), 6, "{names:?}");
        for m in &metrics {
            let Some(metric::Data::Histogram(h)) = &m.data else {
                panic!("{m:?}");
            };
            assert_eq!(
                h.aggregation_temporality,
                AggregationTemporality::Cumulative as i32
            );
            for p in &h.data_points {
                assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (1, 2));
                assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
            }
        }
    }

    /// The same values on an SDK histogram and on ours give the same
    /// count, sum, min, max and bucket counts: values on bucket bounds,
    /// between them, zero and past the last bound. (A value that is not a
    /// finite number, which no exchange gives, is ignored here; the SDK
    /// would count it and make the sum NaN for good.)
    #[test]
    fn buckets_count_as_the_sdks_do() {
        let mut values: Vec<f64> = DURATION_BUCKETS_S.to_vec();
        values.extend(DURATION_BUCKETS_S.iter().map(|b| b * 1.5));
        values.extend([0.0, 1e-9, 99.0, 10.000_001]);
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        let sdk = provider
            .meter("test")
            .f64_histogram("h")
            .with_boundaries(DURATION_BUCKETS_S.to_vec())
            .build();
        let mut ours = Histogram::new(DURATION_BUCKETS_S);
        for v in &values {
            sdk.record(*v, &[]);
            ours.record(*v);
        }
        provider.force_flush().expect("flush");
        let exported = exporter.get_finished_metrics().expect("metrics");
        let m = exported
            .iter()
            .flat_map(|rm| rm.scope_metrics())
            .flat_map(|sm| sm.metrics())
            .next()
            .expect("the SDK's histogram");
        let AggregatedMetrics::F64(MetricData::Histogram(h)) = m.data() else {
            panic!("{:?}", m.data());
        };
        let p = h.data_points().next().expect("a point");
        let before = ours.clone();
        ours.record(f64::NAN);
        ours.record(f64::INFINITY);
        assert_eq!(ours, before, "not a finite number: ignored");
        let point = ours.point(&[], 1, 2).expect("a point");
        assert_eq!(point.count, p.count());
        assert_eq!(point.sum, Some(p.sum()));
        assert_eq!(point.min, p.min());
        assert_eq!(point.max, p.max());
        assert_eq!(point.bucket_counts, p.bucket_counts().collect::<Vec<_>>());
        assert_eq!(point.explicit_bounds, p.bounds().collect::<Vec<_>>());
        let _ = provider.shutdown();
    }

    /// Past [`MAX_SERIES`] attribute sets, new ones go to the overflow
    /// series: no exchange is lost, known sets keep their own series.
    #[test]
    fn past_the_cardinality_limit_new_sets_overflow() {
        let mut http = HttpHistograms::new(false, 1);
        let set = |i: usize| vec![Attribute::int("http.response.status_code", i as i64)];
        let n = MAX_SERIES + 10;
        for i in 0..n {
            http.record_measurement(&measurement(SpanKind::Server, 0.01, set(i)));
        }
        http.record_measurement(&measurement(SpanKind::Server, 0.01, set(0)));
        assert_eq!(http.exchanges(), n as u64 + 1);
        let collected = from_proto(&http.metrics(2));
        let points = &collected[0].histograms;
        assert_eq!(points.len(), MAX_SERIES);
        let overflow: Vec<_> = points
            .iter()
            .filter(|(a, ..)| a == &[format!("{OVERFLOW_ATTRIBUTE}=true")])
            .collect();
        assert_eq!(overflow.len(), 1);
        assert_eq!(overflow[0].1, 11, "the sets past the limit");
        let first = points
            .iter()
            .find(|(a, ..)| a == &["http.response.status_code=0".to_string()]);
        assert_eq!(first.map(|p| p.1), Some(2));
    }

    /// Exchanges recorded through the recent attribute sets give the data
    /// points of recording each one's own list: with more distinct sets
    /// than are kept (so some are replaced), sets that are prefixes of
    /// others (no response), both sides and the body sizes.
    #[test]
    fn kept_attribute_sets_record_what_fresh_lists_do() {
        use super::super::spans::tests::{client, process, server};
        use semconv::metrics::http_measurement;
        let p = process(1, "/usr/sbin/nginx");
        let mut exchanges = Vec::new();
        for round in 0..3u16 {
            for status in 100..(100 + AttributeSets::MAX as u16 + 10) {
                let status = status + round % 2;
                let mut ex = if status % 2 == 0 {
                    server(&p, status)
                } else {
                    client(&p, status)
                };
                ex.end_unix_ns = ex.start_unix_ns + u64::from(status) * 1000;
                if let Some(r) = ex.response.as_mut() {
                    r.body_size = u64::from(status);
                }
                exchanges.push(ex);
            }
            let mut ex = server(&p, 200);
            ex.response = None;
            exchanges.push(ex);
        }
        let options = MappingOptions {
            body_size_metrics: true,
            ..MappingOptions::default()
        };
        let points = |kept: bool| {
            let mut http = HttpHistograms::new(true, 1);
            for ex in &exchanges {
                if kept {
                    http.record(ex, &ExchangeFacts::of(ex), &options);
                } else if let Some(mm) = http_measurement(ex, &options) {
                    http.record_measurement(&mm);
                }
            }
            let mut all: Vec<_> = from_proto(&http.metrics(2))
                .into_iter()
                .flat_map(|c| {
                    c.histograms
                        .into_iter()
                        .map(move |(mut attrs, count, sum)| {
                            attrs.sort();
                            (c.name.clone(), attrs, count, sum.to_bits())
                        })
                })
                .collect();
            all.sort();
            all
        };
        let kept = points(true);
        assert_eq!(kept, points(false));
        let durations = kept
            .iter()
            .filter(|(name, ..)| name.ends_with(".duration"))
            .count();
        // The statuses of rounds 0 and 2, those of round 1 (one higher), and
        // the exchange without a response.
        assert_eq!(durations, AttributeSets::MAX + 10 + 1 + 1, "{kept:?}");
    }
}
