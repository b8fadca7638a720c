"""Browser tests of the web GUI (a package, so its package-scoped browser and control plane end with it)."""
