//! The HTTP duration and body-size histograms of the semantic conventions,
//! created from their `semconv::metrics` catalog entries and fed one
//! measurement per exchange. The body-size histograms are opt-in: they are
//! created only when `telemetry.metrics.body_size` is on.

use opentelemetry::metrics::{Histogram, Meter};
use opentelemetry::KeyValue;
use semconv::metrics::{
    http_measurement_with, http_metric_defs, HttpMeasurement, DURATION_BUCKETS_S,
    HTTP_METRIC_ATTRIBUTES, SIZE_BUCKETS_BY,
};
use semconv::model::Exchange;
use semconv::options::MappingOptions;
use semconv::spans::{ExchangeFacts, SpanKind};
use semconv::value::{AttrValue, Attribute, AttributeSink};

use super::spans::key_values;

/// The HTTP duration and body-size histograms (semconv names and buckets).
pub struct HttpInstruments {
    client: KindInstruments,
    server: KindInstruments,
    sets: AttributeSets,
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
            sets: AttributeSets::default(),
        }
    }

    /// Record the exchange's HTTP metrics (nothing without a request),
    /// mapped with `options`. The attributes are compared with the sets of
    /// earlier exchanges as they are mapped; only a new set is built.
    pub fn record(&mut self, ex: &Exchange, facts: &ExchangeFacts<'_>, options: &MappingOptions) {
        let mut matcher = Matcher::new(&self.sets.sets);
        let Some(mm) = http_measurement_with(ex, facts, options, &mut matcher) else {
            return;
        };
        let found = matcher.found();
        let index = match found {
            Some(i) => i,
            None => {
                let mut attributes = Vec::with_capacity(HTTP_METRIC_ATTRIBUTES.len());
                http_measurement_with(ex, facts, options, &mut attributes);
                self.sets.insert(attributes)
            }
        };
        if let Some(set) = self.sets.sets.get(index) {
            self.record_values(&mm, &set.key_values);
        }
    }

    #[cfg(test)]
    pub(crate) fn record_measurement(&self, mut mm: HttpMeasurement) {
        let attrs = key_values(std::mem::take(&mut mm.attributes));
        self.record_values(&mm, &attrs);
    }

    fn record_values<A>(&self, mm: &HttpMeasurement<A>, attrs: &[KeyValue]) {
        let side = match mm.kind {
            SpanKind::Client => &self.client,
            SpanKind::Server => &self.server,
        };
        side.duration.record(mm.duration_s, attrs);
        let Some((request_size, response_size)) = &side.sizes else {
            return;
        };
        if let Some(n) = mm.request_body_size {
            request_size.record(n, attrs);
        }
        if let Some(n) = mm.response_body_size {
            response_size.record(n, attrs);
        }
    }
}

/// The HTTP metric attribute sets of earlier exchanges, each with the SDK
/// key-values made from it once. The attributes are low-cardinality by
/// design (`HTTP_METRIC_ATTRIBUTES`), so most exchanges find their set
/// here and record without building a list or a key-value: that was ~1.9k
/// of ~4.6k instructions per exchange for the HTTP metrics
/// (bench/instructions.sh, callgrind), the rest being the SDK's own.
#[derive(Default)]
struct AttributeSets {
    sets: Vec<AttributeSet>,
    /// The set a new one replaces once there are [`AttributeSets::MAX`].
    next: usize,
}

struct AttributeSet {
    attributes: Vec<Attribute>,
    key_values: Vec<KeyValue>,
}

impl AttributeSets {
    /// Sets kept (one bit each in [`Matcher`]'s candidates).
    const MAX: usize = 64;

    /// Keep `attributes`; its index.
    fn insert(&mut self, attributes: Vec<Attribute>) -> usize {
        let set = AttributeSet {
            key_values: key_values(attributes.clone()),
            attributes,
        };
        if self.sets.len() < Self::MAX {
            self.sets.push(set);
            return self.sets.len() - 1;
        }
        let index = self.next % Self::MAX;
        self.next = index + 1;
        if let Some(slot) = self.sets.get_mut(index) {
            *slot = set;
        }
        index
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

    /// Exchanges recorded through the kept attribute sets give the data
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
            let collected = collect(
                |m| HttpInstruments::new(m, true),
                |http| {
                    for ex in &exchanges {
                        if kept {
                            http.record(ex, &ExchangeFacts::of(ex), &options);
                        } else if let Some(mm) = http_measurement(ex, &options) {
                            http.record_measurement(mm);
                        }
                    }
                },
            );
            let mut all: Vec<_> = collected
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
