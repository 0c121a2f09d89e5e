"""The mesh engine, one sub-package per plane (no Django anywhere in it).

- `config`: the topology grammar and the types every plane speaks (imports nothing else of the engine);
- `dataplane`: the sidecar proxy, HTTP/1.1, TLS and the policy layers (imports config, the control plane's
  wire contract and certificates, and `process`; never the runtime);
- `controlplane`: the control plane, its CA, the analyzer and the config it pushes (imports config and
  `process`; never the runtime);
- `runtime`: what starts and drives a mesh: supervisor, experiment, commands, observer, load generator and
  the demo service (may import every plane);
- `process`: what every component process shares (imports nothing of the engine);
- `__main__`: the command line.
"""
