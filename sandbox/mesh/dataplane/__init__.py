"""The data plane: the sidecar proxy, HTTP/1.1, listeners, TLS, paths and the policy layers it stacks.

It imports `sandbox.mesh.config`, `sandbox.mesh.process` and, from the control plane, only the config it is
sent (`meshconfig`) and certificates (`ca`); never the runtime, which starts and drives it."""
