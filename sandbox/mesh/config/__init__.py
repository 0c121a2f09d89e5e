"""Configuration: the topology grammar (schema, topology, files), SPIFFE IDs, the response flags, the
layers' typed errors and the model types every plane speaks. It imports nothing else of the engine, so
every plane can import it."""
