"""demo: synthetic ToonTown-like screenshots with labelImg XML, for trying the tool (off the
main path; see docs/synth.md)."""
