"""Console operations shared by the web console and the CLI: one function per change, checked and audited."""
