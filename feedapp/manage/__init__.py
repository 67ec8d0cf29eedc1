"""Domain functions of the console and its CLI twin: one code path per operation, role-checked and audited."""
