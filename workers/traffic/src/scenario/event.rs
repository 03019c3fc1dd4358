//! One generated event and its NDJSON encoding.

/// One generated event, borrowing its names from the [`Scenario`](super::Scenario).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event<'a> {
    /// Event time, epoch ms.
    pub timestamp: i64,
    /// The service.
    pub service: &'a str,
    /// The endpoint.
    pub endpoint: &'a str,
    /// HTTP status.
    pub status: u16,
    /// Latency in ms (0.1 ms resolution).
    pub latency_ms: f64,
    /// The `region` attribute.
    pub region: &'a str,
}

impl Event<'_> {
    /// Whether the status is a 5xx.
    pub fn is_error(&self) -> bool {
        self.status >= 500
    }

    /// Append the event as one NDJSON line (the `helios ingest` schema: `timestamp`, `service`,
    /// `endpoint`, `status`, `latency_ms`, `attributes.region`).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"timestamp\":");
        if self.timestamp < 0 {
            out.push(b'-');
        }
        write_u64(out, self.timestamp.unsigned_abs());
        out.extend_from_slice(b",\"service\":");
        write_str(out, self.service);
        out.extend_from_slice(b",\"endpoint\":");
        write_str(out, self.endpoint);
        out.extend_from_slice(b",\"status\":");
        write_u64(out, u64::from(self.status));
        out.extend_from_slice(b",\"latency_ms\":");
        let tenths = if self.latency_ms.is_finite() && self.latency_ms > 0.0 {
            (self.latency_ms * 10.0).round() as u64
        } else {
            0
        };
        write_u64(out, tenths / 10);
        out.push(b'.');
        out.push(b'0' + (tenths % 10) as u8);
        out.extend_from_slice(b",\"attributes\":{\"region\":");
        write_str(out, self.region);
        out.extend_from_slice(b"}}\n");
    }
}

fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}
