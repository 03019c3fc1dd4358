//! `helios backtest --windows FILE`: every reported window as one NDJSON line — what the worker
//! stores per window, plus the ground truth — so a miss or a false alert can be read window by
//! window (`jq 'select(.key == "auth")'`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use helios_detection::engine::Guard;

use super::Error;

/// One window of the export.
#[derive(Debug)]
pub struct WindowLine<'a> {
    /// The partition key.
    pub key: &'a str,
    /// Window start, RFC 3339.
    pub start: String,
    /// Window end, RFC 3339.
    pub end: String,
    /// The core's score (null while the key warms up).
    pub score: Option<f64>,
    /// Whether the window was flagged (threshold or a guard).
    pub anomalous: bool,
    /// The features that drove the flag, most responsible first.
    pub drivers: &'a [String],
    /// The guard that flagged it whatever the threshold.
    pub guard: Option<Guard>,
    /// The window's feature values, by feature name.
    pub values: serde_json::Map<String, serde_json::Value>,
    /// With `--labels`: whether the window overlaps an incident of its key.
    pub incident: Option<bool>,
}

impl WindowLine<'_> {
    /// The JSON object of the line (`incident` only with labels).
    fn json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "key": self.key,
            "start": self.start,
            "end": self.end,
            "score": self.score,
            "anomalous": self.anomalous,
            "drivers": self.drivers,
            "guard": self.guard.map(Guard::as_str),
            "values": self.values,
        });
        if let (Some(incident), Some(map)) = (self.incident, v.as_object_mut()) {
            map.insert("incident".into(), incident.into());
        }
        v
    }
}

/// The open export file.
pub struct WindowsOut {
    path: PathBuf,
    out: BufWriter<File>,
}

impl WindowsOut {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> Result<Self, Error> {
        let file = File::create(path).map_err(|source| write_error(path, source))?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 16, file),
        })
    }

    /// Appends one window.
    pub fn write(&mut self, line: &WindowLine<'_>) -> Result<(), Error> {
        serde_json::to_writer(&mut self.out, &line.json())
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|source| write_error(&self.path, source))
    }

    /// Flushes what is buffered.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.out
            .flush()
            .map_err(|source| write_error(&self.path, source))
    }
}

/// Feature values by name (a non-finite value becomes null).
pub fn values(names: &[String], values: &[f64]) -> serde_json::Map<String, serde_json::Value> {
    names
        .iter()
        .zip(values)
        .map(|(n, v)| (n.clone(), serde_json::Number::from_f64(*v).into()))
        .collect()
}

fn write_error(path: &Path, source: std::io::Error) -> Error {
    Error::Windows {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_named_and_nan_is_null() {
        let names = vec!["event_count".to_string(), "p99_latency".to_string()];
        let v = values(&names, &[12.0, f64::NAN]);
        assert_eq!(
            serde_json::Value::Object(v).to_string(),
            r#"{"event_count":12.0,"p99_latency":null}"#
        );
    }
}
