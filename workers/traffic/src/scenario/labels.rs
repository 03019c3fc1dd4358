//! Ground-truth labels of a scenario run.

use super::*;

/// One labelled incident in [`ScenarioLabels`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelledIncident {
    /// `inc-01`, `inc-02`, … in schedule order.
    pub id: String,
    /// What goes wrong.
    pub kind: Kind,
    /// The affected service.
    pub service: String,
    /// The affected endpoint, or `null` for the whole service.
    pub endpoint: Option<String>,
    /// Start, epoch ms (inclusive).
    pub start_ms: i64,
    /// End, epoch ms (exclusive).
    pub end_ms: i64,
    /// The incident's factor (multiplier or probability, see [`Incident::factor`]).
    #[serde(default)]
    pub factor: f64,
    /// The `--incident` spec that reproduces it.
    #[serde(default)]
    pub spec: String,
}

impl LabelledIncident {
    /// Whether `timestamp_ms` is inside the incident's window.
    pub fn contains(&self, timestamp_ms: i64) -> bool {
        (self.start_ms..self.end_ms).contains(&timestamp_ms)
    }
}

/// Ground truth of a scenario run: its time range, services and incidents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioLabels {
    /// First event time covered, epoch ms (inclusive).
    pub start_ms: i64,
    /// End of the covered time, epoch ms (exclusive).
    pub end_ms: i64,
    /// The seed of the run.
    #[serde(default)]
    pub seed: u64,
    /// The services, in generation order.
    pub services: Vec<String>,
    /// The incidents, in schedule order.
    pub incidents: Vec<LabelledIncident>,
}

impl ScenarioLabels {
    /// Incidents on `service` whose window contains `timestamp_ms`.
    pub fn active<'a>(
        &'a self,
        service: &'a str,
        timestamp_ms: i64,
    ) -> impl Iterator<Item = &'a LabelledIncident> + 'a {
        self.incidents
            .iter()
            .filter(move |i| i.service == service && i.contains(timestamp_ms))
    }

    /// Read a labels file.
    pub fn load(path: &Path) -> io::Result<Self> {
        let file = std::fs::File::open(path)?;
        Ok(serde_json::from_reader(io::BufReader::new(file))?)
    }

    /// Write a labels file (pretty JSON).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut w = io::BufWriter::new(std::fs::File::create(path)?);
        serde_json::to_writer_pretty(&mut w, self)?;
        w.write_all(b"\n")?;
        w.flush()
    }
}
