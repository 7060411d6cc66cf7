"""What every layer of rtseg may use: paths and atomic outputs, streaming statistics, signals,
the sidecar schema and the sidecar-vs-graph check. Imports nothing above it."""
