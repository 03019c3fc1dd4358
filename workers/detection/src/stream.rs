//! Streaming model use for one partition key: warm-up, periodic retraining on a sliding
//! history that excludes anomalous windows, optional shingling and a model version counter.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::DetectionError;
use crate::explain::{Baseline, Explanation, explain};
use crate::forest::{ForestConfig, IsolationForest};

/// How a stream uses its model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StreamConfig {
    /// Windows collected before the first model is trained (no scoring before).
    pub warmup_windows: usize,
    /// Retrain after this many scored windows (0 = never retrain).
    pub retrain_every: usize,
    /// Maximum number of (non-anomalous) windows kept for training.
    pub history: usize,
    /// Number of previous windows appended to the current one (0 = no shingling).
    pub shingle: usize,
    /// Forest hyper-parameters; the seed of model version `v` is `seed + v`.
    pub forest: ForestConfig,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            warmup_windows: 64,
            retrain_every: 64,
            history: 1024,
            shingle: 0,
            forest: ForestConfig::default(),
        }
    }
}

/// The result of observing one window.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamOutcome {
    /// Still collecting training windows: `seen` of `needed`.
    WarmingUp {
        /// Windows collected so far.
        seen: usize,
        /// Windows needed before the first model.
        needed: usize,
    },
    /// The window was scored.
    Scored {
        /// Anomaly score `s` in (0, 1].
        score: f64,
        /// Whether the model's threshold flags it.
        anomalous: bool,
        /// Version of the model that scored it (1 = first model).
        model_version: u64,
    },
}

/// Per-key streaming detector.
#[derive(Debug, Clone)]
pub struct StreamDetector {
    cfg: StreamConfig,
    names: Vec<String>,
    recent: VecDeque<Vec<f64>>,
    history: VecDeque<Vec<f64>>,
    model: Option<(IsolationForest, Baseline)>,
    version: u64,
    since_train: usize,
    last_vector: Vec<f64>,
}

impl StreamDetector {
    /// Creates a detector for windows with the given base feature names.
    pub fn new(cfg: StreamConfig, base_names: &[String]) -> Result<Self, DetectionError> {
        cfg.forest.validate()?;
        if cfg.warmup_windows < 2 || cfg.history < cfg.warmup_windows || base_names.is_empty() {
            return Err(DetectionError::InvalidConfig(
                "stream needs warmup_windows >= 2, history >= warmup_windows and >= 1 feature"
                    .into(),
            ));
        }
        let mut names = base_names.to_vec();
        for lag in 1..=cfg.shingle {
            names.extend(base_names.iter().map(|n| format!("{n}@t-{lag}")));
        }
        Ok(Self {
            cfg,
            names,
            recent: VecDeque::new(),
            history: VecDeque::new(),
            model: None,
            version: 0,
            since_train: 0,
            last_vector: Vec::new(),
        })
    }

    /// Names of the model's input features (base names, then lagged copies).
    pub fn feature_names(&self) -> &[String] {
        &self.names
    }

    /// Current model version (0 before the first model).
    pub fn model_version(&self) -> u64 {
        self.version
    }

    /// The current model, if trained.
    pub fn model(&self) -> Option<&IsolationForest> {
        self.model.as_ref().map(|(m, _)| m)
    }

    /// The shingled vector of the last observed window.
    pub fn last_vector(&self) -> &[f64] {
        &self.last_vector
    }

    fn shingled(&mut self, features: &[f64]) -> Vec<f64> {
        let mut v = features.to_vec();
        for lag in 0..self.cfg.shingle {
            let prev = self.recent.get(lag).map_or(features, Vec::as_slice);
            v.extend_from_slice(prev);
        }
        if self.cfg.shingle > 0 {
            self.recent.push_front(features.to_vec());
            self.recent.truncate(self.cfg.shingle);
        }
        v
    }

    fn push_history(&mut self, v: Vec<f64>) {
        self.history.push_back(v);
        while self.history.len() > self.cfg.history {
            self.history.pop_front();
        }
    }

    fn train(&mut self) -> Result<(), DetectionError> {
        let rows: Vec<Vec<f64>> = self.history.iter().cloned().collect();
        let forest_cfg = ForestConfig {
            seed: self.cfg.forest.seed.wrapping_add(self.version + 1),
            ..self.cfg.forest
        };
        let forest = IsolationForest::fit(&rows, forest_cfg)?;
        let baseline = Baseline::fit(&rows)?;
        self.model = Some((forest, baseline));
        self.version += 1;
        self.since_train = 0;
        Ok(())
    }

    /// Observes one window's base feature values.
    pub fn observe(&mut self, features: &[f64]) -> Result<StreamOutcome, DetectionError> {
        let base = self.names.len() / (self.cfg.shingle + 1);
        if features.len() != base {
            return Err(DetectionError::DimensionMismatch {
                expected: base,
                got: features.len(),
            });
        }
        if let Some(i) = features.iter().position(|v| !v.is_finite()) {
            return Err(DetectionError::NonFinite { feature: i });
        }
        let v = self.shingled(features);
        self.last_vector.clone_from(&v);
        let Some((model, _)) = &self.model else {
            self.push_history(v);
            let seen = self.history.len();
            if seen >= self.cfg.warmup_windows {
                self.train()?;
            }
            return Ok(StreamOutcome::WarmingUp {
                seen,
                needed: self.cfg.warmup_windows,
            });
        };
        let score = model.score(&v)?;
        let anomalous = model.is_anomalous(score);
        let model_version = self.version;
        if !anomalous {
            self.push_history(v);
        }
        self.since_train += 1;
        if self.cfg.retrain_every > 0 && self.since_train >= self.cfg.retrain_every {
            self.train()?;
        }
        Ok(StreamOutcome::Scored {
            score,
            anomalous,
            model_version,
        })
    }

    /// Explains the last observed window under the current model (`None` before training).
    pub fn explain_last(&self) -> Option<Result<Explanation, DetectionError>> {
        let (model, baseline) = self.model.as_ref()?;
        Some(explain(model, baseline, &self.last_vector, &self.names))
    }
}

/// One [`StreamDetector`] per partition key, created on first sight.
#[derive(Debug, Clone)]
pub struct KeyedStreams {
    cfg: StreamConfig,
    base_names: Vec<String>,
    streams: BTreeMap<String, StreamDetector>,
}

impl KeyedStreams {
    /// Creates an empty set of streams (validates the configuration once).
    pub fn new(cfg: StreamConfig, base_names: &[String]) -> Result<Self, DetectionError> {
        StreamDetector::new(cfg, base_names)?;
        Ok(Self {
            cfg,
            base_names: base_names.to_vec(),
            streams: BTreeMap::new(),
        })
    }

    /// Observes one window of `key`.
    pub fn observe(
        &mut self,
        key: &str,
        features: &[f64],
    ) -> Result<StreamOutcome, DetectionError> {
        if !self.streams.contains_key(key) {
            let s = StreamDetector::new(self.cfg, &self.base_names)?;
            self.streams.insert(key.to_string(), s);
        }
        match self.streams.get_mut(key) {
            Some(s) => s.observe(features),
            None => Err(DetectionError::InvalidConfig("stream vanished".into())),
        }
    }

    /// The stream of one key.
    pub fn get(&self, key: &str) -> Option<&StreamDetector> {
        self.streams.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn names() -> Vec<String> {
        vec!["event_count".into(), "p99_latency".into()]
    }

    fn cfg() -> StreamConfig {
        StreamConfig {
            warmup_windows: 50,
            retrain_every: 20,
            history: 100,
            shingle: 1,
            ..Default::default()
        }
    }

    #[test]
    fn warmup_then_scores_and_retrains() {
        let mut s = StreamDetector::new(cfg(), &names()).unwrap();
        let mut r = SplitMix64::new(1);
        for i in 0..50 {
            let out = s
                .observe(&[100.0 + r.next_f64(), 50.0 + r.next_f64()])
                .unwrap();
            assert_eq!(
                out,
                StreamOutcome::WarmingUp {
                    seen: i + 1,
                    needed: 50
                }
            );
        }
        assert_eq!(s.model_version(), 1);
        for _ in 0..20 {
            assert!(matches!(
                s.observe(&[100.0 + r.next_f64(), 50.0 + r.next_f64()])
                    .unwrap(),
                StreamOutcome::Scored {
                    model_version: 1,
                    ..
                }
            ));
        }
        assert_eq!(s.model_version(), 2);
        assert_eq!(s.feature_names().len(), 4);
        let StreamOutcome::Scored {
            score, anomalous, ..
        } = s.observe(&[100.5, 500.0]).unwrap()
        else {
            panic!("expected a score");
        };
        assert!(anomalous && score > 0.55, "{score}");
        let e = s.explain_last().unwrap().unwrap();
        let p99 = e
            .contributions
            .iter()
            .find(|c| c.feature == "p99_latency")
            .unwrap();
        assert!(p99.contribution > 0.0 && p99.robust_z > 100.0 && p99.actual == 500.0);
        assert!(s.observe(&[1.0]).is_err());
    }

    #[test]
    fn anomalous_windows_excluded_from_history() {
        let mut s = StreamDetector::new(
            StreamConfig {
                shingle: 0,
                ..cfg()
            },
            &names(),
        )
        .unwrap();
        let mut r = SplitMix64::new(2);
        for _ in 0..50 {
            s.observe(&[100.0 + r.next_f64(), 50.0 + r.next_f64()])
                .unwrap();
        }
        let before = s.history.len();
        s.observe(&[1000.0, 5000.0]).unwrap();
        assert_eq!(s.history.len(), before);
        assert!(s.history.iter().all(|v| v[0] < 200.0));
    }

    #[test]
    fn keyed_streams_are_independent() {
        let mut k = KeyedStreams::new(cfg(), &names()).unwrap();
        k.observe("a", &[1.0, 2.0]).unwrap();
        assert_eq!(
            k.observe("b", &[1.0, 2.0]).unwrap(),
            StreamOutcome::WarmingUp {
                seen: 1,
                needed: 50
            }
        );
        assert!(k.get("a").is_some());
    }
}
