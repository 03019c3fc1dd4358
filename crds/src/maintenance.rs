//! Maintenance windows of a Detector: times (absolute, or weekly) during which its anomalies
//! are recorded but never notified and its windows stay out of training.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One maintenance window: `start`/`end` (absolute), or `from`/`to` on `days` (weekly, UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "(has(self.start) && has(self.end) && !has(self.from) && !has(self.to) && !has(self.days)) || (!has(self.start) && !has(self.end) && has(self.from) && has(self.to))", "message": "a maintenance window is either start and end, or from and to (with optional days)", "fieldPath": ".start"},
    {"rule": "!has(self.start) || !has(self.end) || timestamp(self.end) > timestamp(self.start)", "message": "end must be after start", "fieldPath": ".end"},
    {"rule": "!has(self.from) || !has(self.to) || self.from != self.to", "message": "from and to must differ", "fieldPath": ".to"}
]))]
pub struct MaintenanceWindow {
    /// A name for logs and metrics (e.g. `weekly-deploys`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub name: Option<String>,
    /// Absolute start (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), extend("format" = "date-time"))]
    pub start: Option<String>,
    /// Absolute end (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), extend("format" = "date-time"))]
    pub end: Option<String>,
    /// Weekly: start time of day, `HH:MM` UTC (a window past midnight, e.g. `22:00`–`02:00`,
    /// belongs to the day it starts on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 5), regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub from: Option<String>,
    /// Weekly: end time of day, `HH:MM` UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 5), regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub to: Option<String>,
    /// Weekly: the days it starts on (default: every day).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 7))]
    pub days: Vec<Weekday>,
    /// The keys it applies to (partition key values, e.g. `checkout`); empty: every key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 253)))]
    pub keys: Vec<String>,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Weekday {
    /// Days since Monday (0–6).
    pub fn index(self) -> i64 {
        match self {
            Self::Mon => 0,
            Self::Tue => 1,
            Self::Wed => 2,
            Self::Thu => 3,
            Self::Fri => 4,
            Self::Sat => 5,
            Self::Sun => 6,
        }
    }
}
