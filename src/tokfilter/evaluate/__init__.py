"""Evaluation: multiple-choice accuracy on standard files, domain loss, ontology probes, compute slowdown, and an
lm-evaluation-harness adapter. Commands: `tokfilter eval {mcq,loss,probes,lmeval}` and `tokfilter slowdown`."""
