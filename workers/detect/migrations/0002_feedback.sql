-- Feedback on anomalies (`helios.dev/feedback-<anomalyId>` annotations on the Detector):
-- `false-positive` or `confirmed`, and when the worker took it in.
ALTER TABLE helios.anomalies ADD COLUMN IF NOT EXISTS feedback text;
ALTER TABLE helios.anomalies ADD COLUMN IF NOT EXISTS feedback_at timestamptz;
