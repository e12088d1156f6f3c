"""demo: synthetic ToonTown-like screenshots with labelImg XML, for trying the tool (off the
main path; see docs/synth.md). `synth` plans, renders and writes them; `placement` decides
where figures stand, `figures` draws Cogs, Toons and nametags, `scenery` the street and its
light, `drawing` the shared primitives."""
