"""The core every stage of the pipeline stands on: where files go (paths), content-addressed stages (stages), what
produced an output (provenance), worker processes (pool), a quick exit (shutdown), the offline hub guard (hub)."""
