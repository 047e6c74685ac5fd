"""The build: Beam graph, transforms, validation, quarantine, consent, downloads, runner options."""
