//! Property-based fuzzing of the request parser (runs briefly in CI): arbitrary bodies never
//! panic and never yield an event without the required fields; valid events always parse back
//! to what was sent.

use helios_ingest::body::{self, BodyError, Format};
use proptest::prelude::*;

fn format() -> impl Strategy<Value = Format> {
    prop_oneof![Just(Format::Json), Just(Format::Ndjson)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), fmt in format()) {
        if let Ok(events) = body::parse(&bytes, fmt) {
            for e in events {
                prop_assert!(!e.service.is_empty());
                prop_assert!(e.latency_ms.map_or(!e.metrics.is_empty(), |l| l.is_finite() && l >= 0.0));
                prop_assert!(e.metrics.values().all(|v| v.is_finite()));
                prop_assert!(e.status.is_some() || e.error.is_some() || !e.metrics.is_empty());
            }
        }
        let _ = body::decode(&bytes, Some("gzip"), 4096);
    }

    #[test]
    fn json_shaped_noise_is_refused_with_a_field(
        keys in proptest::collection::vec("[a-z_]{1,12}", 0..6),
        vals in proptest::collection::vec(prop_oneof![
            Just(serde_json::json!(null)), any::<i64>().prop_map(serde_json::Value::from),
            "[a-z]{0,8}".prop_map(serde_json::Value::from), any::<bool>().prop_map(serde_json::Value::from)
        ], 0..6),
    ) {
        let obj: serde_json::Map<String, serde_json::Value> = keys.into_iter().zip(vals).collect();
        let text = serde_json::Value::Object(obj).to_string();
        match body::parse(text.as_bytes(), Format::Json) {
            Ok(events) => prop_assert_eq!(events.len(), 1),
            Err(BodyError::Invalid { errors, .. }) => prop_assert!(!errors[0].field.is_empty()),
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn valid_events_round_trip(
        ts in 0i64..4_102_444_800_000, service in "[a-z][a-z0-9-]{0,20}", status in 100u16..600,
        latency in 0.0f64..1e6, region in "[a-z0-9-]{0,12}", n in 1usize..20, fmt in format(),
    ) {
        let ev = serde_json::json!({"timestamp": ts, "service": service, "status": status,
            "latency_ms": latency, "attributes": {"region": region}});
        let text = match fmt {
            Format::Json => serde_json::Value::Array(vec![ev; n]).to_string(),
            Format::Ndjson => vec![ev.to_string(); n].join("\n"),
        };
        let events = body::parse(text.as_bytes(), fmt).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(events.len(), n);
        prop_assert_eq!(events[0].timestamp, ts);
        prop_assert_eq!(&events[0].service, &service);
        prop_assert_eq!(events[0].status, Some(status));
        prop_assert_eq!(events[0].latency_ms, Some(latency));
        prop_assert_eq!(events[0].attributes.get("region"), Some(&region));
    }

    #[test]
    fn valid_metrics_round_trip(
        metrics in proptest::collection::btree_map("[A-Za-z0-9_.-]{1,100}", -1e300f64..1e300, 1..=64),
    ) {
        let ev = serde_json::json!({"timestamp": 1, "service": "s", "metrics": metrics});
        let events = body::parse(ev.to_string().as_bytes(), Format::Json)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&events[0].metrics, &metrics);
        let wire = serde_json::to_value(&events[0]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: std::collections::BTreeMap<String, f64> = serde_json::from_value(wire["metrics"].clone())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, metrics);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// OTLP bodies: arbitrary bytes in either encoding never panic the decoder or the mapping,
    /// and whatever maps is a valid event whose counts add up.
    #[test]
    fn arbitrary_otlp_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        use helios_ingest::otlp::{decode, map};
        for enc in [decode::Encoding::Protobuf, decode::Encoding::Json] {
            if let Ok(req) = decode::traces(&bytes, enc) {
                let spans: usize = req.resource_spans.iter()
                    .flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum();
                let mapped = map::request(&req, &map::SpanMapping::default());
                prop_assert_eq!(mapped.spans(), spans);
                for e in &mapped.events {
                    prop_assert!(!e.service.is_empty());
                    prop_assert!(e.latency_ms.is_some_and(|l| l.is_finite() && l >= 0.0));
                    prop_assert!(e.status.is_some() || e.error.is_some());
                }
            }
        }
    }
}
