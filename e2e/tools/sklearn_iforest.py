"""scikit-learn's IsolationForest on the same inputs as `helios eval compare-sklearn`.

Usage: sklearn_iforest.py TRAIN.csv TEST.csv LABELS.csv
Prints one JSON object: fit seconds, score rows/s (n_jobs=1), ROC-AUC of -score_samples.
"""
import json
import sys
import time

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

train = np.loadtxt(sys.argv[1], delimiter=",")
test = np.loadtxt(sys.argv[2], delimiter=",")
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
