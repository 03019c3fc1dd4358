"""scikit-learn's IsolationForest on the same inputs as Helios.

Usage:
  sklearn_iforest.py TRAIN.csv TEST.csv LABELS.csv   (helios eval compare-sklearn)
      one JSON object: fit seconds, score rows/s (n_jobs=1), ROC-AUC of -score_samples.
  sklearn_iforest.py --scores TRAIN.csv TEST.csv     (helios eval multivariate baseline)
      one JSON object: -score_samples of the training and of the test rows (higher = more
      anomalous), scikit-learn's defaults (100 trees, max_samples="auto") and random_state 42.
"""
import json
import sys
import time

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score


def load(path):
    return np.atleast_2d(np.loadtxt(path, delimiter=",", ndmin=2))


if sys.argv[1] == "--scores":
    train = load(sys.argv[2])
    test = load(sys.argv[3])
    model = IsolationForest(random_state=42, n_jobs=1).fit(train)
    print(json.dumps({
        "train": (-model.score_samples(train)).tolist(),
        "test": (-model.score_samples(test)).tolist(),
        "version": __import__("sklearn").__version__,
    }))
    sys.exit(0)

train = load(sys.argv[1])
test = load(sys.argv[2])
labels = np.loadtxt(sys.argv[3], delimiter=",")

model = IsolationForest(n_estimators=100, max_samples=256, random_state=42, n_jobs=1)
t0 = time.perf_counter()
model.fit(train)
fit_s = time.perf_counter() - t0
model.score_samples(test[:1000])  # warm-up
t0 = time.perf_counter()
scores = -model.score_samples(test)
score_s = time.perf_counter() - t0
print(json.dumps({
    "fit_s": fit_s,
    "score_rows_per_s": len(test) / score_s,
    "roc_auc": float(roc_auc_score(labels, scores)),
    "version": __import__("sklearn").__version__,
}))
