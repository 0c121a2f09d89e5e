"""The control plane: its server, the CA, the config it pushes to sidecars, and the topology analyzer.

It imports `sandbox.mesh.config` and `sandbox.mesh.process`; never the data plane's proxy or the runtime."""
