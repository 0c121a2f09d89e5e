"""The runtime: the supervisor that starts the components, the experiment that drives a mesh, the learner's
commands, scenarios, the observer, its events, the load generator and the demo service. It may import every
plane; nothing of the planes imports it."""
