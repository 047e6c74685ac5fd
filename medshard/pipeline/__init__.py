"""The build: Beam graph, transforms, validation, quarantine, runner options."""
