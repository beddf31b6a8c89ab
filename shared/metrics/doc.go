// Package metrics is the vocabulary the core and the metric backends share:
// the metrics level and dimensions (KCL's metricsLevel and
// metricsEnabledDimensions), and a fixed-bucket duration histogram the core
// fills on its hot path with atomic adds only. The core exposes cumulative
// counters and histograms in a snapshot (coordinator.Worker.Snapshot); the
// backends (shared/telemetry) read it and name the metrics. No backend is
// imported by the core.
package metrics
